"""Where a live `GpuInventory` comes from: NVML on the host, through `pynvml`.

`pynvml` is imported only when a snapshot is taken, so the CLI starts without it; every failure
a person can act on (no driver, a lost GPU, no permission) becomes one `InventoryError` line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from ds01ctl.errors import InventoryError
from ds01ctl.live.procs import container_id_from_cgroup, read_proc_file, uid_from_status
from ds01ctl.model.inventory import Gpu, GpuInventory, GpuProcess, MigInstance

MIB = 1024 * 1024
GPM_INTERVAL_S = 0.1  # between the two GPM samples of a MIG instance

_NO_DRIVER_HINT = (
    "set the Site's gpus.source to fixture and gpus.fixture to a fixture file "
    "(see examples/gpus/) to plan without GPUs"
)


# NVML return codes (the C ABI; stable across driver and wrapper versions).
_NOT_SUPPORTED = 3
_NO_PERMISSION = 4
_NOT_FOUND = 6
_DRIVER_NOT_LOADED = 9
_LIBRARY_NOT_FOUND = 12
_FUNCTION_NOT_FOUND = 13
_GPU_IS_LOST = 15
_LIB_RM_VERSION_MISMATCH = 18
_UNKNOWN = 999
_OPTIONAL = frozenset({_NOT_SUPPORTED, _NO_PERMISSION, _FUNCTION_NOT_FOUND})
_LOST = frozenset({_GPU_IS_LOST, _UNKNOWN})
_PROFILE_COUNT = 0x12  # NVML_GPU_INSTANCE_PROFILE_COUNT, for wrappers that lack the constant

_ARCH_BY_CODE = {
    2: "kepler",
    3: "maxwell",
    4: "pascal",
    5: "volta",
    6: "turing",
    7: "ampere",
    8: "ada",
    9: "hopper",
    10: "blackwell",
    13: "rubin",
}

_FAILURES: dict[int, tuple[str, str]] = {
    _LIBRARY_NOT_FOUND: (
        "NVML's library (libnvidia-ml.so.1) was not found",
        f"no NVIDIA driver here; {_NO_DRIVER_HINT}",
    ),
    _DRIVER_NOT_LOADED: (
        "the NVIDIA kernel driver is not loaded",
        f"check `dmesg` and load it (modprobe nvidia); or {_NO_DRIVER_HINT}",
    ),
    _LIB_RM_VERSION_MISMATCH: (
        "the NVIDIA driver library and kernel module differ in version "
        "(the driver was upgraded without a reboot)",
        "reboot the host, or reload the nvidia kernel modules, before applying",
    ),
    _GPU_IS_LOST: (
        "the GPU is lost (it fell off the bus)",
        "check `dmesg` for Xid errors; the GPU needs a reset or a reboot",
    ),
    _NO_PERMISSION: (
        "NVML refused: insufficient permissions",
        "run ds01ctl as root on the host: MIG layouts and other users' processes need it",
    ),
}


def _code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


def _failure(exc: BaseException, where: str) -> InventoryError:
    code = _code(exc)
    message, hint = _FAILURES.get(
        code if code is not None else -1,
        (f"NVML error {code}: {exc}", "compare with `nvidia-smi` on the host"),
    )
    return InventoryError(f"{where}: {message}", hint=hint)


def _text(value: Any) -> str:
    # Wrappers return str for most strings, but bytes from plain ctypes structures.
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _import_pynvml() -> ModuleType:
    try:
        return importlib.import_module("pynvml")  # lazily: the CLI must start without it
    except ImportError:
        raise InventoryError(
            "nvidia-ml-py (module pynvml) is not installed, so NVML cannot be read",
            hint=f"install ds01ctl with its dependencies; or {_NO_DRIVER_HINT}",
        ) from None


@dataclass(frozen=True)
class _Profile:
    name: str
    slices: int


class _Reader:
    """One snapshot's NVML calls; NVML errors escape it raw and `NvmlSource` words them."""

    def __init__(self, nvml: ModuleType) -> None:
        self.nvml = nvml

    def optional(self, call: Callable[..., Any], *args: Any) -> Any:
        """`call(*args)`, or None where the GPU or driver lacks the feature."""
        try:
            return call(*args)
        except self.nvml.NVMLError as exc:
            if _code(exc) in _OPTIONAL:
                return None
            raise

    def gpu(self, index: int) -> tuple[Gpu, list[tuple[str, Any]]]:
        """GPU `index` and the raw processes on it as (device uuid, NVML process) pairs."""
        handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
        uuid = _text(self.nvml.nvmlDeviceGetUUID(handle))
        try:
            return self._gpu(handle, index, uuid)
        except self.nvml.NVMLError as exc:
            if _code(exc) not in _LOST:
                raise
            # A GPU that fell off the bus is reported, not fatal: the rest stays usable.
            return self._lost_gpu(handle, index, uuid), []

    def _gpu(self, handle: Any, index: int, uuid: str) -> tuple[Gpu, list[tuple[str, Any]]]:
        nvml = self.nvml
        name = _text(nvml.nvmlDeviceGetName(handle))
        total_mib, used_mib = self.memory(handle)
        mode = self.optional(nvml.nvmlDeviceGetMigMode, handle)  # [current, pending]
        mig_on, pending = (bool(mode[0]), bool(mode[1])) if mode else (False, None)
        profiles = self.profiles(handle) if mode else {}
        mig_handles = self.mig_handles(handle) if mig_on else []
        migs = tuple(self.mig(handle, uuid, m, profiles) for m in mig_handles)
        if migs:
            busy = self.gpm_sm_util(handle, [m.gi_id for m in migs])
            migs = tuple(dataclasses.replace(m, util_pct=busy.get(m.gi_id)) for m in migs)
        util = None if mig_on else self.optional(nvml.nvmlDeviceGetUtilizationRates, handle)
        gpu = Gpu(
            uuid=uuid,
            index=index,
            name=name,
            pci_bus_id=_text(nvml.nvmlDeviceGetPciInfo(handle).busId),
            architecture=self.architecture(handle, name),
            memory_total_mib=total_mib,
            memory_used_mib=used_mib,
            mig_enabled=mig_on,
            mig_pending=pending,
            total_compute_slices=max((p.slices for p in profiles.values()), default=None),
            util_pct=None if util is None else int(util.gpu),
            migs=migs,
        )
        # Under MIG the parent's process list needs root and loses the slice, so ask each slice.
        sources = [(m.uuid, h) for m, h in zip(migs, mig_handles, strict=True)]
        if not mig_on:
            sources = [(uuid, handle)]
        return gpu, [(dev, p) for dev, h in sources for p in self.processes(h)]

    def _lost_gpu(self, handle: Any, index: int, uuid: str) -> Gpu:
        def best_effort(call: Callable[[Any], Any]) -> str:
            try:
                return _text(call(handle))
            except self.nvml.NVMLError:
                return "unknown"

        return Gpu(
            uuid=uuid,
            index=index,
            name=best_effort(self.nvml.nvmlDeviceGetName),
            pci_bus_id=best_effort(lambda h: self.nvml.nvmlDeviceGetPciInfo(h).busId),
            memory_total_mib=0,
            healthy=False,
        )

    def memory(self, handle: Any) -> tuple[int, int]:
        """(total, used) MiB; v2 where the driver has it, since v1's used counts reserved memory."""
        nvml = self.nvml
        version = getattr(nvml, "nvmlMemory_v2", None)
        try:
            info = nvml.nvmlDeviceGetMemoryInfo(handle, version)
        except nvml.NVMLError as exc:
            if _code(exc) != _FUNCTION_NOT_FOUND or version is None:
                raise
            info = nvml.nvmlDeviceGetMemoryInfo(handle)
        return int(info.total) // MIB, int(info.used) // MIB

    def architecture(self, handle: Any, name: str) -> str:
        code = self.optional(self.nvml.nvmlDeviceGetArchitecture, handle)
        return _ARCH_BY_CODE.get(code, "") if isinstance(code, int) else ""  # "": from the name

    def profiles(self, handle: Any) -> dict[int, _Profile]:
        """GPU instance profiles by profile id; readable even with MIG off."""
        nvml = self.nvml
        table: dict[int, _Profile] = {}
        for idx in range(getattr(nvml, "NVML_GPU_INSTANCE_PROFILE_COUNT", _PROFILE_COUNT)):
            try:
                info = nvml.nvmlDeviceGetGpuInstanceProfileInfo(handle, idx)
            except nvml.NVMLError as exc:
                if _code(exc) in _LOST:
                    raise
                continue  # this profile index does not exist on this GPU
            name = _text(getattr(info, "name", "")).removeprefix("MIG ")
            table[int(info.id)] = _Profile(name=name, slices=int(info.sliceCount))
        return table

    def mig_handles(self, handle: Any) -> list[Any]:
        nvml = self.nvml
        found = []
        for i in range(int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle))):
            try:
                found.append(nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, i))
            except nvml.NVMLError as exc:
                if _code(exc) != _NOT_FOUND:  # NotFound: an empty slot
                    raise
        return found

    def mig(
        self, parent: Any, parent_uuid: str, handle: Any, profiles: dict[int, _Profile]
    ) -> MigInstance:
        nvml = self.nvml
        gi_id = int(nvml.nvmlDeviceGetGpuInstanceId(handle))
        attrs = nvml.nvmlDeviceGetAttributes(handle)
        info = nvml.nvmlGpuInstanceGetInfo(nvml.nvmlDeviceGetGpuInstanceById(parent, gi_id))
        used = self.optional(self.memory, handle)
        return MigInstance(
            uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
            parent_uuid=parent_uuid,
            profile=_mig_profile(attrs, profiles.get(int(info.profileId))),
            compute_slices=int(attrs.computeInstanceSliceCount),
            memory_mib=int(attrs.memorySizeMB),
            memory_used_mib=used[1] if used else 0,
            gi_id=gi_id,
            ci_id=int(nvml.nvmlDeviceGetComputeInstanceId(handle)),
            placement_start=int(info.placement.start),
        )

    def gpm_sm_util(self, handle: Any, gi_ids: list[int]) -> dict[int, int]:
        """SM utilisation per GPU instance from GPM (GPU Performance Monitoring, Hopper and
        later): two samples of each instance `GPM_INTERVAL_S` apart. Empty where the GPU or
        the wrapper has no GPM. Best effort: an instance that cannot be sampled (gone since
        it was listed, not supported) is left unmeasured, never fails the snapshot. MIG is
        only read, never reconfigured."""
        nvml = self.nvml
        if not hasattr(nvml, "nvmlGpmQueryDeviceSupport"):
            return {}
        support = self.optional(nvml.nvmlGpmQueryDeviceSupport, handle)
        if support is None or not support.isSupportedDevice:
            return {}
        firsts = {gi: s for gi in gi_ids if (s := self._gpm_sample(handle, gi)) is not None}
        found: dict[int, int] = {}
        if not firsts:
            return found
        time.sleep(GPM_INTERVAL_S)
        for gi_id, first in firsts.items():
            second = self._gpm_sample(handle, gi_id)
            try:
                if second is None:
                    continue
                query = nvml.c_nvmlGpmMetricsGet_t()
                query.version = nvml.NVML_GPM_METRICS_GET_VERSION
                query.numMetrics = 1
                query.sample1, query.sample2 = first, second
                query.metrics[0].metricId = nvml.NVML_GPM_METRIC_SM_UTIL
                nvml.nvmlGpmMetricsGet(query)
                found[gi_id] = round(float(query.metrics[0].value))
            except nvml.NVMLError:
                continue
            finally:
                nvml.nvmlGpmSampleFree(first)
                if second is not None:
                    nvml.nvmlGpmSampleFree(second)
        return found

    def _gpm_sample(self, handle: Any, gi_id: int) -> Any:
        nvml = self.nvml
        sample = nvml.nvmlGpmSampleAlloc()
        try:
            return nvml.nvmlGpmMigSampleGet(handle, gi_id, sample)
        except nvml.NVMLError:
            nvml.nvmlGpmSampleFree(sample)
            return None

    def processes(self, handle: Any) -> list[Any]:
        return list(self.optional(self.nvml.nvmlDeviceGetComputeRunningProcesses, handle) or [])


def _mig_profile(attrs: Any, profile: _Profile | None) -> str:
    """`3g.20gb`: NVML's own name where it gives one, else derived from slices and memory."""
    gi_slices, ci_slices = int(attrs.gpuInstanceSliceCount), int(attrs.computeInstanceSliceCount)
    if profile is not None and profile.name:
        name = profile.name
    else:
        # NVML names round the instance's memory up to whole GB (4864 MiB → 5gb on A100-40GB).
        name = f"{gi_slices}g.{-(-int(attrs.memorySizeMB) // 1024)}gb"
    # A compute instance smaller than its GPU instance is named like `1c.3g.20gb`.
    return name if ci_slices == gi_slices else f"{ci_slices}c.{name}"


class NvmlSource:
    """Takes a `GpuInventory` snapshot from NVML; tests inject a fake module and /proc."""

    def __init__(
        self,
        nvml: ModuleType | None = None,
        proc_root: Path = Path("/proc"),
        clock: Callable[[], datetime] = _utc_now,
        host: str | None = None,
    ) -> None:
        self._nvml = nvml
        self._proc_root = proc_root
        self._clock = clock
        self._host = host

    def snapshot(self) -> GpuInventory:
        """Read every GPU, MIG device and GPU process now; NVML failures are `InventoryError`s."""
        nvml = self._nvml if self._nvml is not None else _import_pynvml()
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            raise _failure(exc, "NVML") from None
        try:
            return self._read(nvml)
        finally:
            # The snapshot is taken; a failing shutdown changes nothing about it.
            with contextlib.suppress(nvml.NVMLError):
                nvml.nvmlShutdown()

    def _read(self, nvml: ModuleType) -> GpuInventory:
        reader = _Reader(nvml)
        taken_at = self._clock()
        try:
            driver = reader.optional(nvml.nvmlSystemGetDriverVersion)
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as exc:
            raise _failure(exc, "NVML") from None
        gpus: list[Gpu] = []
        raw: dict[tuple[int, str], Any] = {}
        for index in range(count):
            try:
                gpu, found = reader.gpu(index)
            except nvml.NVMLError as exc:
                raise _failure(exc, f"GPU {index}") from None
            gpus.append(gpu)
            raw.update({(int(p.pid), dev): p for dev, p in found})
        return GpuInventory(
            source="nvml",
            host=self._host or socket.gethostname(),
            taken_at=taken_at,
            driver=None if driver is None else _text(driver),
            gpus=tuple(gpus),
            processes=tuple(self._process(reader, dev, p) for (_, dev), p in raw.items()),
        )

    def _process(self, reader: _Reader, device_uuid: str, raw: Any) -> GpuProcess:
        pid = int(raw.pid)
        proc_dir = self._proc_root / str(pid)
        used = getattr(raw, "usedGpuMemory", None)  # None: not reported (WDDM)
        cgroup = read_proc_file(proc_dir / "cgroup")
        status = read_proc_file(proc_dir / "status")
        return GpuProcess(
            pid=pid,
            device_uuid=device_uuid,
            used_mib=None if used is None else int(used) // MIB,
            uid=None if status is None else uid_from_status(status),
            container_id=None if cgroup is None else container_id_from_cgroup(cgroup),
            name=self._process_name(reader, pid, proc_dir),
        )

    def _process_name(self, reader: _Reader, pid: int, proc_dir: Path) -> str:
        try:
            name = reader.nvml.nvmlSystemGetProcessName(pid)
        except reader.nvml.NVMLError:
            name = None  # it may have exited, or be hidden from us: try /proc
        if name:
            return _text(name)
        return (read_proc_file(proc_dir / "comm") or "").strip()
