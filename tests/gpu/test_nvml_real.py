"""`NvmlSource` against a real NVIDIA driver, checked with `nvidia-smi` (DESIGN §7).

It runs only where NVML finds a GPU and skips the whole module, with the reason, everywhere
else; the fixture and fake-NVML tests in tests/unit cover the rest without a GPU.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

import pytest

from ds01ctl.live.nvml import NvmlSource, _Reader
from ds01ctl.model.inventory import GpuInventory

pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py (module pynvml) is not installed")


def _no_gpu_reason() -> str | None:
    """Why this host cannot run these tests, or None when NVML finds a GPU."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return f"NVML is not usable here: {exc}"
    try:
        count = pynvml.nvmlDeviceGetCount()
    finally:
        pynvml.nvmlShutdown()
    if count == 0:
        return "NVML finds no GPU"
    if shutil.which("nvidia-smi") is None:
        return "nvidia-smi is not on PATH, so there is nothing to compare NVML with"
    return None


_REASON = _no_gpu_reason()
if _REASON is not None:
    pytest.skip(_REASON, allow_module_level=True)

pytestmark = pytest.mark.gpu

_GPU_LINE = re.compile(r"^GPU (\d+): (.+) \(UUID: (GPU-[^)]+)\)$")
_MIG_LINE = re.compile(r"^\s+MIG .+\(UUID: (MIG-[^)]+)\)$")


@dataclass(frozen=True)
class SmiGpu:
    """One row of `nvidia-smi --query-gpu=uuid,name,memory.total,mig.mode.current`."""

    uuid: str
    name: str
    memory_mib: int
    mig_mode: str  # Enabled, Disabled, or [N/A] where the GPU has no MIG


def _smi(*args: str) -> str:
    done = subprocess.run(
        ["nvidia-smi", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


@pytest.fixture(scope="module")
def inventory() -> GpuInventory:
    return NvmlSource().snapshot()


@pytest.fixture(scope="module")
def smi_gpus() -> dict[str, SmiGpu]:
    query = "--query-gpu=uuid,name,memory.total,mig.mode.current"
    found = {}
    for row in _smi(query, "--format=csv,noheader,nounits").strip().splitlines():
        uuid, name, memory, mode = (f.strip() for f in row.split(","))  # names hold no commas
        found[uuid] = SmiGpu(uuid, name, int(memory), mode)
    return found


@pytest.fixture(scope="module")
def smi_list() -> dict[str, str]:
    """`nvidia-smi -L` as device uuid → parent GPU uuid (a GPU is its own parent)."""
    parents: dict[str, str] = {}
    parent = ""
    for line in _smi("-L").splitlines():
        if match := _GPU_LINE.match(line):
            parent = match.group(3)
            parents[parent] = parent
        elif match := _MIG_LINE.match(line):
            parents[match.group(1)] = parent
    return parents


def test_nvml_real_gpu_uuids_match_nvidia_smi(
    inventory: GpuInventory, smi_gpus: dict[str, SmiGpu], smi_list: dict[str, str]
) -> None:
    ours = {g.uuid for g in inventory.gpus}
    assert ours == set(smi_gpus)
    assert ours == {u for u, parent in smi_list.items() if u == parent}


def test_nvml_real_gpu_names_match_nvidia_smi(
    inventory: GpuInventory, smi_gpus: dict[str, SmiGpu]
) -> None:
    assert {g.uuid: g.name for g in inventory.gpus} == {u: s.name for u, s in smi_gpus.items()}


def test_nvml_real_gpu_memory_within_one_percent(
    inventory: GpuInventory, smi_gpus: dict[str, SmiGpu]
) -> None:
    for gpu in inventory.gpus:
        expected = smi_gpus[gpu.uuid].memory_mib
        assert abs(gpu.memory_total_mib - expected) <= expected / 100, gpu.uuid


def test_nvml_real_mig_mode_matches_nvidia_smi(
    inventory: GpuInventory, smi_gpus: dict[str, SmiGpu]
) -> None:
    for gpu in inventory.gpus:
        mode = smi_gpus[gpu.uuid].mig_mode
        assert gpu.mig_enabled == (mode == "Enabled"), (gpu.uuid, mode)
        if mode.strip("[]") == "N/A":  # no MIG on this GPU: NVML says NotSupported
            assert gpu.mig_pending is None, gpu.uuid


def test_nvml_real_every_mig_device_is_in_the_inventory(
    inventory: GpuInventory, smi_list: dict[str, str]
) -> None:
    devices = {d.uuid: d for d in inventory.devices(include_unhealthy=True)}
    for uuid, parent in smi_list.items():
        if uuid.startswith("MIG-"):
            assert uuid in devices, f"{uuid} (on {parent}) is missing from the inventory"
            assert devices[uuid].gpu_uuid == parent


def test_nvml_real_gpm_sampling_is_best_effort_on_the_real_driver(
    inventory: GpuInventory,
) -> None:
    # GPM by GPU instance is asked of every GPU: on a GPU without MIG (no instance 0) or
    # without GPM the answer is "unmeasured" (an empty map), never an error; with MIG on, each
    # instance the inventory lists reads a utilisation in 0..100.
    reader = _Reader(pynvml)  # the snapshot's own reader, which asks GPM under MIG
    pynvml.nvmlInit()
    try:
        for gpu in inventory.gpus:
            handle = pynvml.nvmlDeviceGetHandleByUUID(gpu.uuid)
            gi_ids = [m.gi_id for m in gpu.migs] if gpu.mig_enabled else [0]
            found = reader.gpm_sm_util(handle, gi_ids)
            assert set(found) <= set(gi_ids), gpu.uuid
            assert all(0 <= v <= 100 for v in found.values()), found
            if not gpu.mig_enabled:
                assert found == {}, (gpu.uuid, found)
    finally:
        pynvml.nvmlShutdown()
