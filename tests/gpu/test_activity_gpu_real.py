"""GPU activity from a real NVIDIA driver: an idle GPU reads idle, one running a kernel loop
reads active. Runs only where NVML finds a GPU and torch can use it (skipped elsewhere, with
the reason, like test_nvml_real). MIG settings are read, never changed: under MIG, NVML has
no utilisation per instance and the activity reader counts processes instead."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ds01ctl.live.activity import gpu_active
from ds01ctl.live.nvml import NvmlSource

pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py (module pynvml) is not installed")


def _reason() -> str | None:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return f"NVML is not usable here: {exc}"
    try:
        if pynvml.nvmlDeviceGetCount() == 0:
            return "NVML finds no GPU"
    finally:
        pynvml.nvmlShutdown()
    probe = subprocess.run(
        [sys.executable, "-c", "import torch; assert torch.cuda.is_available()"],
        capture_output=True, check=False,
    )  # fmt: skip
    return None if probe.returncode == 0 else "torch with CUDA is not available to load the GPU"


_REASON = _reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]

BURN = """
import torch, time
a = torch.randn(8192, 8192, device="cuda")
end = time.time() + 20
while time.time() < end:
    a = (a @ a).clamp_(-1, 1)
torch.cuda.synchronize()
"""


def test_gpu_activity_idle_then_busy() -> None:
    inventory = NvmlSource().snapshot()
    gpu = inventory.gpus[0]
    if gpu.mig_enabled:
        assert gpu.util_pct is None  # what the reader works around under MIG
        pytest.skip("MIG is on: no utilisation per instance to check (settings left alone)")
    assert gpu_active(inventory, "x" * 64, (gpu.uuid,), 5) is False, gpu.util_pct
    burner = subprocess.Popen([sys.executable, "-c", BURN])
    try:
        seen = []
        deadline = time.monotonic() + 18
        while time.monotonic() < deadline:
            time.sleep(1)
            snapshot = NvmlSource().snapshot()
            seen.append(snapshot.gpus[0].util_pct)
            if gpu_active(snapshot, "x" * 64, (gpu.uuid,), 5):
                break
        else:
            pytest.fail(f"a kernel loop never read as active: utilisation {seen}")
    finally:
        burner.kill()
        burner.wait()
