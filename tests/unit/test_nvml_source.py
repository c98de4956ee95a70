"""NvmlSource against a fake pynvml that keeps the real module's quirks, and cgroup parsing.

The fake raises the real `pynvml.NVMLError` subclasses (the wrapper is pure Python and imports
without a driver), so only the driver is simulated, never the exception API.
"""

from __future__ import annotations

import ctypes
import dataclasses
import subprocess
import sys
import types
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import pynvml
import pytest

from ds01ctl.errors import InventoryError
from ds01ctl.live.gpus import inventory_yaml, parse_inventory
from ds01ctl.live.nvml import NvmlSource
from ds01ctl.live.procs import container_id_from_cgroup, container_processes
from ds01ctl.model.inventory import GpuInventory

MIB = 1024 * 1024
NOT_MIG = 0xFFFFFFFF  # gpuInstanceId/computeInstanceId of a process outside MIG
NOW = datetime(2026, 1, 12, 8, 30, tzinfo=UTC)
CID_A = "3f" * 32
CID_B = "9c" * 32


def fail(code: int) -> pynvml.NVMLError:
    return pynvml.NVMLError(code)  # the wrapper maps the code to its NVMLError_* subclass


# --------------------------------------------------------------------------- the fake driver

# H100 80GB HBM3 GPU instance profiles by profile *index*: (id, slices, MiB, name) [gpu.md §2.2].
H100_PROFILES = {
    0: (19, 1, 9984, "MIG 1g.10gb"),
    1: (14, 2, 20096, "MIG 2g.20gb"),
    2: (9, 3, 40448, "MIG 3g.40gb"),
    3: (5, 4, 40448, "MIG 4g.40gb"),
    4: (0, 7, 81152, "MIG 7g.80gb"),
    7: (20, 1, 9984, "MIG 1g.10gb+me"),
    9: (15, 1, 20096, "MIG 1g.20gb"),
}


@dataclass
class FakeMig:
    uuid: str
    gi_id: int
    profile_id: int
    gi_slices: int
    memory_mb: int
    start: int
    ci_slices: int | None = None  # None: the compute instance spans its GPU instance
    ci_id: int = 0
    procs: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, bytes)


@dataclass
class FakeGpu:
    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    bus_id: str = "00000000:19:00.0"
    total: int = 81559 * MIB
    used: int = 1024 * MIB
    reserved: int = 480 * MIB  # v1 `used` includes it
    mig_mode: list[int] | None = field(default_factory=lambda: [0, 0])  # None: not MIG-capable
    arch: int = pynvml.NVML_DEVICE_ARCH_HOPPER
    util: int = 37
    slots: list[FakeMig | None] = field(default_factory=list)  # None: an empty MIG slot
    procs: list[tuple[int, int | None]] = field(default_factory=list)
    lost_at: str | None = None  # "handle" or "memory": where NVML starts saying GpuIsLost
    profile_names: str = "str"  # "str", "bytes" or "none" (old wrappers / plain structures)


class FakeNvml(types.ModuleType):
    """Just the pynvml surface NvmlSource uses, with the real module's return shapes."""

    NVMLError = pynvml.NVMLError
    nvmlMemory_v2 = pynvml.nvmlMemory_v2
    NVML_GPU_INSTANCE_PROFILE_COUNT = pynvml.NVML_GPU_INSTANCE_PROFILE_COUNT

    gpus: list[FakeGpu]
    faults: dict[str, Any]
    calls: list[str]
    names: dict[int, str]

    def __init__(self, gpus: list[FakeGpu], **faults: Any) -> None:
        super().__init__("fake_pynvml")
        self.gpus = gpus
        self.faults = faults  # init / count / gi_by_id: an NVML error code; no_v2 / no_arch: True
        self.calls: list[str] = []
        self.names = {4242: "/usr/bin/python3"}

    # ---- library
    def nvmlInit(self) -> None:
        self.calls.append("init")
        if "init" in self.faults:
            raise fail(self.faults["init"])

    def nvmlShutdown(self) -> None:
        self.calls.append("shutdown")

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.159.04"

    def nvmlSystemGetProcessName(self, pid: int) -> str:
        if pid not in self.names:
            raise fail(pynvml.NVML_ERROR_NOT_FOUND)
        return self.names[pid]

    # ---- devices; handles are ("gpu", i) or ("mig", i, slot)
    def nvmlDeviceGetCount(self) -> int:
        if "count" in self.faults:
            raise fail(self.faults["count"])
        return len(self.gpus)

    def _gpu(self, handle: tuple[Any, ...], field_: str = "") -> FakeGpu:
        gpu = self.gpus[int(handle[1])]
        if gpu.lost_at == field_:
            raise fail(pynvml.NVML_ERROR_GPU_IS_LOST)
        return gpu

    def _mig(self, handle: tuple[Any, ...]) -> FakeMig:
        if handle[0] != "mig":
            raise fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)  # as the real call on a GPU handle
        mig = self.gpus[int(handle[1])].slots[int(handle[2])]
        assert mig is not None
        return mig

    def nvmlDeviceGetHandleByIndex(self, index: int) -> tuple[str, int]:
        self._gpu(("gpu", index), "handle")
        return ("gpu", index)

    def nvmlDeviceGetUUID(self, handle: tuple[Any, ...]) -> str:
        return self._mig(handle).uuid if handle[0] == "mig" else self._gpu(handle).uuid

    def nvmlDeviceGetName(self, handle: tuple[Any, ...]) -> str:
        return self._gpu(handle, "name").name

    def nvmlDeviceGetPciInfo(self, handle: tuple[Any, ...]) -> Any:
        return types.SimpleNamespace(busId=self._gpu(handle).bus_id)

    def nvmlDeviceGetArchitecture(self, handle: tuple[Any, ...]) -> int:
        if self.faults.get("no_arch"):
            raise fail(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        return self._gpu(handle).arch

    def nvmlDeviceGetMemoryInfo(self, handle: tuple[Any, ...], version: int | None = None) -> Any:
        if version is not None and self.faults.get("no_v2"):
            raise fail(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)  # a driver older than _v2
        if handle[0] == "mig":
            mig = self._mig(handle)
            return types.SimpleNamespace(total=mig.memory_mb * MIB, used=7 * MIB)
        gpu = self._gpu(handle, "memory")
        used = gpu.used if version else gpu.used + gpu.reserved
        return types.SimpleNamespace(total=gpu.total, used=used, reserved=gpu.reserved)

    def nvmlDeviceGetUtilizationRates(self, handle: tuple[Any, ...]) -> Any:
        gpu = self._gpu(handle)
        if gpu.mig_mode and gpu.mig_mode[0]:
            raise fail(pynvml.NVML_ERROR_NOT_SUPPORTED)  # no utilisation under MIG
        return types.SimpleNamespace(gpu=gpu.util, memory=3)

    def nvmlDeviceGetMigMode(self, handle: tuple[Any, ...]) -> list[int]:
        gpu = self._gpu(handle)
        if gpu.mig_mode is None:
            raise fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return list(gpu.mig_mode)  # [current, pending]

    def nvmlDeviceGetGpuInstanceProfileInfo(self, handle: tuple[Any, ...], idx: int) -> Any:
        gpu = self._gpu(handle)
        if gpu.mig_mode is None or idx not in H100_PROFILES:
            raise fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        pid, slices, mib, name = H100_PROFILES[idx]
        info = types.SimpleNamespace(id=pid, sliceCount=slices, memorySizeMB=mib)
        if gpu.profile_names != "none":
            info.name = name.encode() if gpu.profile_names == "bytes" else name
        return info

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: tuple[Any, ...]) -> int:
        gpu = self._gpu(handle)
        return 7 if gpu.mig_mode and gpu.mig_mode[0] else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: tuple[Any, ...], i: int) -> Any:
        gpu = self._gpu(handle)
        if not (gpu.mig_mode and gpu.mig_mode[0]) or i >= len(gpu.slots) or gpu.slots[i] is None:
            raise fail(pynvml.NVML_ERROR_NOT_FOUND)  # an empty slot, or MIG off
        return ("mig", handle[1], i)

    def nvmlDeviceIsMigDeviceHandle(self, handle: tuple[Any, ...]) -> ctypes.c_uint:
        return ctypes.c_uint(handle[0] == "mig")  # a c_uint, not an int, as the real one

    def nvmlDeviceGetGpuInstanceId(self, handle: tuple[Any, ...]) -> int:
        return self._mig(handle).gi_id

    def nvmlDeviceGetComputeInstanceId(self, handle: tuple[Any, ...]) -> int:
        return self._mig(handle).ci_id

    def nvmlDeviceGetAttributes(self, handle: tuple[Any, ...]) -> Any:
        if handle[0] != "mig":
            raise fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        mig = self._mig(handle)
        return types.SimpleNamespace(
            gpuInstanceSliceCount=mig.gi_slices,
            computeInstanceSliceCount=mig.ci_slices or mig.gi_slices,
            memorySizeMB=mig.memory_mb,
            multiprocessorCount=16 * mig.gi_slices,
        )

    def nvmlDeviceGetGpuInstanceById(self, handle: tuple[Any, ...], gi_id: int) -> Any:
        if "gi_by_id" in self.faults:
            raise fail(self.faults["gi_by_id"])
        return ("gi", handle[1], gi_id)

    def nvmlGpuInstanceGetInfo(self, gi: tuple[Any, ...]) -> Any:
        mig = next(m for m in self.gpus[gi[1]].slots if m is not None and m.gi_id == gi[2])
        placement = types.SimpleNamespace(start=mig.start, size=mig.gi_slices)
        return types.SimpleNamespace(id=mig.gi_id, profileId=mig.profile_id, placement=placement)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: tuple[Any, ...]) -> list[Any]:
        self.calls.append(f"procs:{handle}")
        if handle[0] == "mig":
            mig = self._mig(handle)
            return [_proc(pid, used, mig.gi_id, mig.ci_id) for pid, used in mig.procs]
        gpu = self._gpu(handle)
        if gpu.mig_mode and gpu.mig_mode[0]:
            raise fail(pynvml.NVML_ERROR_NO_PERMISSION)  # aggregate query on a MIG parent
        return [_proc(pid, used, NOT_MIG, NOT_MIG) for pid, used in gpu.procs]


def _proc(pid: int, used: int | None, gi: int, ci: int) -> Any:
    return types.SimpleNamespace(
        pid=pid, usedGpuMemory=used, gpuInstanceId=gi, computeInstanceId=ci
    )


# --------------------------------------------------------------------------- a host

WHOLE = "GPU-a3d8f2c6-1e7b-4d9a-8f0c-5b2e7d4a9c13"
PARENT = "GPU-b7e2c4d9-3f1a-4b6c-9e8d-2a5f7c1b3e64"
MIG_2G = "MIG-0d6a9c31-7e2f-5b84-a3c5-9f1e6b0d2a47"
MIG_1G = "MIG-3b7e1f58-a4c2-5d96-8e0b-1c5a7d3f9e62"
MIG_3G = "MIG-e5a1c7b4-2d9f-5a63-b8e4-7f3d1a9c5e08"


def host() -> list[FakeGpu]:
    """GPU 0 whole with one containerised process; GPU 1 in MIG mode with gaps between slots."""
    return [
        FakeGpu(uuid=WHOLE, procs=[(4242, 2566 * MIB)]),
        FakeGpu(
            uuid=PARENT,
            bus_id="00000000:2A:00.0",
            used=13 * MIB,
            mig_mode=[1, 1],
            slots=[
                FakeMig(MIG_3G, gi_id=2, profile_id=9, gi_slices=3, memory_mb=40448, start=4),
                None,
                FakeMig(MIG_1G, gi_id=9, profile_id=19, gi_slices=1, memory_mb=9984, start=2,
                        procs=[(5151, 1024 * MIB), (6000, None)]),
                None,
                FakeMig(MIG_2G, gi_id=3, profile_id=14, gi_slices=2, memory_mb=20096, start=0,
                        procs=[(7777, 300 * MIB)]),
            ],
        ),
    ]  # fmt: skip


def proc_tree(root: Path) -> Path:
    """/proc for the host's processes: v2 systemd docker, v1 docker, a host shell, one gone."""
    v1 = f"12:memory:/docker/{CID_B}\n11:cpu:/docker/{CID_B}\n0::/\n"
    files = {
        4242: (f"0::/system.slice/docker-{CID_A}.scope\n", "Name:\tpython3\nUid:\t1001\t0\t0\t0\n"),
        5151: (v1, "Uid:\t1002\t0\t0\t0\n"),
        6000: ("0::/user.slice/user-1003.slice/session-4.scope\n", "Uid:\t1003\t0\t0\t0\n"),
    }  # fmt: skip
    for pid, (cgroup, status) in files.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "cgroup").write_text(cgroup)
        (root / str(pid) / "status").write_text(status)
        (root / str(pid) / "comm").write_text(f"proc{pid}\n")
    (root / "6000" / "status").unlink()
    (root / "6000" / "status").mkdir()  # unreadable as a file: the uid stays unknown
    return root  # 7777 has no directory: it exited between NVML and /proc


def snapshot(nvml: FakeNvml, tmp_path: Path) -> GpuInventory:
    source = NvmlSource(nvml=nvml, proc_root=proc_tree(tmp_path / "proc"), clock=lambda: NOW)
    return source.snapshot()


# --------------------------------------------------------------------------- snapshots


def test_snapshot_of_a_mixed_host(tmp_path: Path) -> None:
    nvml = FakeNvml(host())
    inv = snapshot(nvml, tmp_path)
    assert (inv.source, inv.taken_at, inv.driver) == ("nvml", NOW, "580.159.04")
    whole, parent = inv.gpus
    assert (whole.uuid, whole.index, whole.pci_bus_id) == (WHOLE, 0, "00000000:19:00.0")
    assert (whole.memory_total_mib, whole.memory_used_mib) == (81559, 1024)  # v2: no reserved
    assert (whole.mig_enabled, whole.mig_pending, whole.total_compute_slices) == (False, False, 7)
    assert (whole.architecture, whole.util_pct, whole.healthy) == ("hopper", 37, True)
    assert parent.mig_enabled and parent.mig_pending and parent.util_pct is None
    assert [(m.uuid, m.profile, m.compute_slices, m.memory_mib) for m in parent.migs] == [
        (MIG_2G, "2g.20gb", 2, 20096),
        (MIG_1G, "1g.10gb", 1, 9984),
        (MIG_3G, "3g.40gb", 3, 40448),
    ]
    assert [(m.gi_id, m.ci_id, m.placement_start, m.memory_used_mib) for m in parent.migs] == [
        (3, 0, 0, 7),
        (9, 0, 2, 7),
        (2, 0, 4, 7),
    ]
    assert [(d.uuid, d.units) for d in inv.devices()] == [
        (WHOLE, 1),
        (MIG_2G, Fraction(2, 7)),
        (MIG_1G, Fraction(1, 7)),
        (MIG_3G, Fraction(3, 7)),
    ]
    assert nvml.calls[0] == "init" and nvml.calls[-1] == "shutdown"
    assert "procs:('gpu', 1)" not in nvml.calls  # under MIG, ask each slice, not the parent


def test_processes_are_attributed_from_proc(tmp_path: Path) -> None:
    inv = snapshot(FakeNvml(host()), tmp_path)
    got = [(p.device_uuid, p.pid, p.used_mib, p.uid, p.container_id, p.name) for p in inv.processes]
    assert got == [  # sorted by (device uuid, pid)
        (WHOLE, 4242, 2566, 1001, CID_A, "/usr/bin/python3"),  # NVML knows the name
        (MIG_2G, 7777, 300, None, None, ""),  # gone before /proc was read
        (MIG_1G, 5151, 1024, 1002, CID_B, "proc5151"),  # else /proc/<pid>/comm
        (MIG_1G, 6000, None, None, None, "proc6000"),  # a host process; status unreadable
    ]
    assert inv.processes_on(MIG_1G) == inv.processes[2:]


def test_a_snapshot_dumps_as_a_fixture_that_reads_back(tmp_path: Path) -> None:
    inv = snapshot(FakeNvml(host()), tmp_path)
    back = parse_inventory(inventory_yaml(inv), "snap.yaml")
    assert back == dataclasses.replace(inv, source="fixture:snap.yaml")


def test_older_drivers_fall_back(tmp_path: Path) -> None:
    gpus = host()
    gpus[1].profile_names = "none"  # no names in the profile table: derive them
    inv = snapshot(FakeNvml(gpus, no_v2=True, no_arch=True), tmp_path)
    assert inv.gpus[0].memory_used_mib == 1024 + 480  # v1 counts reserved memory as used
    assert inv.gpus[0].architecture == "hopper"  # from the name
    assert [m.profile for m in inv.gpus[1].migs] == ["2g.20gb", "1g.10gb", "3g.40gb"]


def test_profile_names_as_bytes_are_decoded(tmp_path: Path) -> None:
    gpus = host()
    gpus[1].profile_names = "bytes"
    inv = snapshot(FakeNvml(gpus), tmp_path)
    assert inv.gpus[1].migs[1].profile == "1g.10gb"


def test_a_compute_instance_smaller_than_its_gpu_instance(tmp_path: Path) -> None:
    gpus = host()
    split = FakeMig(MIG_3G, gi_id=2, profile_id=9, gi_slices=3, memory_mb=40448, start=4)
    split.ci_slices = 1
    gpus[1].slots[0] = split
    inv = snapshot(FakeNvml(gpus), tmp_path)
    mig = inv.gpus[1].migs[2]
    assert (mig.profile, mig.compute_slices) == ("1c.3g.40gb", 1)
    assert inv.units_of(MIG_3G) == Fraction(1, 7)


def test_gpus_without_mig_and_with_a_pending_switch(tmp_path: Path) -> None:
    gpus = [
        FakeGpu(uuid=WHOLE, name="NVIDIA L40S", mig_mode=None, arch=pynvml.NVML_DEVICE_ARCH_ADA),
        FakeGpu(uuid=PARENT, mig_mode=[0, 1]),
    ]
    inv = snapshot(FakeNvml(gpus), tmp_path)
    l40, h100 = inv.gpus
    assert (l40.mig_enabled, l40.mig_pending, l40.total_compute_slices) == (False, None, None)
    assert l40.architecture == "ada" and not l40.mig_reset_pending
    assert h100.mig_reset_pending and h100.total_compute_slices == 7
    assert [d.uuid for d in inv.devices()] == [WHOLE, PARENT]  # MIG is on only after a reset


def test_a_gpu_lost_after_it_is_identified_is_unhealthy(tmp_path: Path) -> None:
    gpus = host()
    gpus[1].lost_at = "memory"
    inv = snapshot(FakeNvml(gpus), tmp_path)
    lost = inv.gpus[1]
    assert (lost.uuid, lost.healthy, lost.migs) == (PARENT, False, ())
    assert [d.uuid for d in inv.devices()] == [WHOLE]  # the rest of the snapshot stays
    assert inv.device(PARENT) is not None


def test_a_mig_enabled_gpu_with_no_instances(tmp_path: Path) -> None:
    gpus = host()
    gpus[1].slots = [None] * 7
    nvml = FakeNvml(gpus)
    inv = snapshot(nvml, tmp_path)
    assert inv.gpus[1].migs == () and [d.uuid for d in inv.devices()] == [WHOLE]
    assert "procs:('gpu', 1)" not in nvml.calls


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("faults", "message", "hint"),
    [
        ({"init": pynvml.NVML_ERROR_LIBRARY_NOT_FOUND},
         "NVML: NVML's library (libnvidia-ml.so.1) was not found", "no NVIDIA driver here"),
        ({"init": pynvml.NVML_ERROR_DRIVER_NOT_LOADED},
         "NVML: the NVIDIA kernel driver is not loaded", "modprobe nvidia"),
        ({"init": pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH},
         "NVML: the NVIDIA driver library and kernel module differ in version", "reboot"),
        ({"count": pynvml.NVML_ERROR_TIMEOUT}, "NVML: NVML error 10: Timeout", "nvidia-smi"),
        ({"gi_by_id": pynvml.NVML_ERROR_NO_PERMISSION},
         "GPU 1: NVML refused: insufficient permissions", "as root"),
    ],
)  # fmt: skip
def test_failures_are_one_clear_line(
    faults: dict[str, int], message: str, hint: str, tmp_path: Path
) -> None:
    nvml = FakeNvml(host(), **faults)
    with pytest.raises(InventoryError) as info:
        snapshot(nvml, tmp_path)
    err = info.value
    assert err.message.startswith(message) and "\n" not in err.message
    assert err.hint is not None and hint in err.hint
    assert err.__cause__ is None and err.__suppress_context__  # no NVML traceback chained
    assert nvml.calls.count("shutdown") == (0 if "init" in faults else 1)


def test_the_no_driver_hint_points_at_a_fixture(tmp_path: Path) -> None:
    nvml = FakeNvml(host(), init=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    with pytest.raises(InventoryError) as info:
        snapshot(nvml, tmp_path)
    assert info.value.hint is not None and "gpus.fixture" in info.value.hint


def test_a_gpu_lost_before_it_is_identified_stops_the_snapshot(tmp_path: Path) -> None:
    gpus = host()
    gpus[1].lost_at = "handle"
    with pytest.raises(InventoryError) as info:
        snapshot(FakeNvml(gpus), tmp_path)
    assert info.value.message == "GPU 1: the GPU is lost (it fell off the bus)"
    assert info.value.hint is not None and "Xid" in info.value.hint


def test_a_missing_wrapper_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` now raises ImportError
    with pytest.raises(InventoryError, match="nvidia-ml-py"):
        NvmlSource().snapshot()


def test_the_real_wrapper_gives_an_inventory_or_one_clear_line() -> None:
    try:
        inv = NvmlSource().snapshot()
    except InventoryError as exc:  # no driver here: the usual case off a GPU host
        assert exc.message.startswith("NVML: ") and "\n" not in exc.message
    else:
        assert inv.source == "nvml" and all(g.uuid.startswith("GPU-") for g in inv.gpus)


def test_pynvml_is_imported_only_when_a_snapshot_is_taken() -> None:
    code = "import sys, ds01ctl.live.nvml; assert 'pynvml' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- cgroups

ID = "4f2a" * 16


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"12:memory:/docker/{ID}\n11:cpu,cpuacct:/docker/{ID}\n", ID, id="v1"),
        pytest.param(f"1:name=systemd:/system.slice/docker-{ID}.scope\n", ID, id="v1 systemd"),
        pytest.param(f"0::/system.slice/docker-{ID}.scope\n", ID, id="v2 systemd"),
        pytest.param(f"0::/docker/{ID}\n", ID, id="v2 cgroupfs"),
        pytest.param(f"0::/system.slice/docker-{ID}.scope/init\n", ID, id="v2 nested"),
        pytest.param(
            f"0::/user.slice/user-1000.slice/user@1000.service/user.slice/docker-{ID}.scope\n",
            ID,
            id="rootless",
        ),
        pytest.param("0::/user.slice/user-1001.slice/session-3.scope\n", None, id="host"),
        pytest.param("0::/system.slice/docker.service\n", None, id="dockerd itself"),
        pytest.param(f"0::/machine.slice/libpod-{ID}.scope\n", None, id="podman"),
        pytest.param(f"0::/kubepods.slice/cri-containerd-{ID}.scope\n", None, id="k8s"),
        pytest.param(f"0::/docker/{ID[:12]}\n", None, id="short id"),
        pytest.param(f"0::/docker/{ID.upper()}\n", None, id="upper case"),
        pytest.param(f"0::/docker/{ID}0\n", None, id="65 digits"),
        pytest.param(f"0::/notdocker/{ID}\n", None, id="other prefix"),
        pytest.param("", None, id="empty"),
        pytest.param("\x00\xff garbage :: ::\n:::\n", None, id="garbage"),
    ],
)
def test_container_id_from_cgroup(text: str, expected: str | None) -> None:
    assert container_id_from_cgroup(text) == expected


# --- a container's processes from its cgroup (the live-session count) ----------------------

CID = "ab" * 32


@pytest.mark.parametrize(
    ("layout", "init_cgroup"),
    [
        (f"pids/docker/{CID}", f"8:pids:/docker/{CID}\n1:name=systemd:/docker/{CID}\n"),
        (f"pids/system.slice/docker-{CID}.scope", None),  # v1, systemd driver, /proc hidden
        (f"system.slice/docker-{CID}.scope", f"0::/system.slice/docker-{CID}.scope\n"),
        (f"lab.slice/docker-{CID}.scope", f"0::/lab.slice/docker-{CID}.scope\n"),  # a parent
    ],
)
def test_container_processes_read_from_cgroup_v1_and_v2(
    tmp_path: Path, layout: str, init_cgroup: str | None
) -> None:
    (tmp_path / "cg" / layout).mkdir(parents=True)
    (tmp_path / "cg" / layout / "cgroup.procs").write_text("1\n57\n58\n")
    if init_cgroup is not None:
        (tmp_path / "proc" / "4242").mkdir(parents=True)
        (tmp_path / "proc" / "4242" / "cgroup").write_text(init_cgroup)
    found = container_processes(CID, 4242, root=tmp_path / "cg", proc=tmp_path / "proc")
    assert found == 3


def test_container_processes_unknown_without_a_cgroup_here(tmp_path: Path) -> None:
    assert container_processes(CID, 4242, root=tmp_path, proc=tmp_path) is None


class GpmNvml(FakeNvml):
    """A Hopper driver with GPM: SM utilisation per GPU instance from two samples."""

    NVML_GPM_METRICS_GET_VERSION = pynvml.NVML_GPM_METRICS_GET_VERSION
    NVML_GPM_METRIC_SM_UTIL = pynvml.NVML_GPM_METRIC_SM_UTIL
    c_nvmlGpmMetricsGet_t = pynvml.c_nvmlGpmMetricsGet_t
    busy: ClassVar[dict[int, float]] = {2: 87.4, 9: 0.0}  # gi 3 cannot be sampled
    freed: int = 0

    def nvmlGpmQueryDeviceSupport(self, handle: tuple[Any, ...]) -> Any:
        return types.SimpleNamespace(isSupportedDevice=1)

    def nvmlGpmSampleAlloc(self) -> Any:
        return pynvml.c_nvmlGpmSample_t()

    def nvmlGpmSampleFree(self, sample: Any) -> None:
        self.freed += 1

    def nvmlGpmMigSampleGet(self, handle: tuple[Any, ...], gi_id: int, sample: Any) -> Any:
        if gi_id not in self.busy:
            raise fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        self.calls.append(f"gpm {gi_id}")
        return sample

    def nvmlGpmMetricsGet(self, query: Any) -> Any:
        gi_id = int(self.calls[-1].split()[1])  # the instance sampled last
        query.metrics[0].value = self.busy[gi_id]
        return query


def test_mig_utilisation_from_gpm_where_the_gpu_has_it(tmp_path: Path) -> None:
    nvml = GpmNvml(host())
    inventory = snapshot(nvml, tmp_path)
    utils = {m.gi_id: m.util_pct for g in inventory.gpus for m in g.migs}
    assert utils == {2: 87, 9: 0, 3: None}  # measured, measured, not measurable
    assert nvml.freed == 2 * 2 + 1  # two samples of each measured instance, and gi 3's first
    assert all(g.util_pct is None for g in inventory.gpus if g.mig_enabled)  # none per GPU


def test_mig_without_gpm_has_no_utilisation(tmp_path: Path) -> None:
    inventory = snapshot(FakeNvml(host()), tmp_path)
    assert {m.util_pct for g in inventory.gpus for m in g.migs} == {None}
