"""Where a `GpuInventory` comes from: NVML on the host, or a YAML fixture file.

This is the impure edge for GPUs: it reads the driver (through `pynvml`, imported only when a
snapshot is taken), `/proc` and fixture files, and turns every failure a person can act on into
one `InventoryError` line, with `file:line:col` for fixtures.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
)
from pydantic_core import ErrorDetails

from ds01ctl.errors import InventoryError
from ds01ctl.fsutil import write_atomically
from ds01ctl.live.inventory import (
    DEFAULT_COMPUTE_SLICES,
    Architecture,
    Gpu,
    GpuInventory,
    GpuProcess,
    MigInstance,
)
from ds01ctl.yamlpos import Mark, YamlDoc, YamlError, YamlPath, load_documents

MIB = 1024 * 1024

# --------------------------------------------------------------------------- fixture format

_HEX_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GPU_UUID_RE = re.compile(rf"^GPU-{_HEX_UUID}$")
_MIG_UUID_RE = re.compile(rf"^MIG-(?:{_HEX_UUID}|GPU-{_HEX_UUID}/\d+/\d+)$")  # R470+ or older form
_PROFILE_RE = re.compile(r"^(?:\d+c\.)?\d+g\.\d+gb(?:\+[a-z]+)?$")
_CONTAINER_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_SHAPE = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
_NO_DRIVER_HINT = (
    "set the Site's gpus.source to fixture and gpus.fixture to a fixture file "
    "(see examples/gpus/) to plan without GPUs"
)


def _gpu_uuid(value: str) -> str:
    if not _GPU_UUID_RE.match(value):
        raise ValueError(f"a GPU uuid looks like GPU-{_SHAPE} (got {value!r})")
    return value


def _mig_uuid(value: str) -> str:
    if not value.startswith("MIG-"):
        raise ValueError(f"a MIG uuid starts with `MIG-` (got {value!r})")
    if not _MIG_UUID_RE.match(value):
        raise ValueError(f"a MIG uuid looks like MIG-{_SHAPE} (got {value!r})")
    return value


def _profile(value: str) -> str:
    if not _PROFILE_RE.match(value):
        raise ValueError(f"a MIG profile looks like 3g.20gb or 1g.10gb+me (got {value!r})")
    return value


def _container_id(value: str) -> str:
    if not _CONTAINER_ID_RE.match(value):
        raise ValueError(f"a container id is 64 lower-case hex digits (got {value!r})")
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


class _Model(BaseModel):
    # Strict: YAML already types scalars, so `index: "0"` is a mistake worth reporting.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _MigFixture(_Model):
    uuid: Annotated[str, AfterValidator(_mig_uuid)]
    profile: Annotated[str, AfterValidator(_profile)]
    compute_slices: PositiveInt
    memory_mib: PositiveInt
    memory_used_mib: NonNegativeInt = 0
    gi_id: NonNegativeInt
    ci_id: NonNegativeInt
    placement_start: NonNegativeInt


class _GpuFixture(_Model):
    uuid: Annotated[str, AfterValidator(_gpu_uuid)]
    index: NonNegativeInt
    name: Annotated[str, AfterValidator(_non_empty)]
    pci_bus_id: Annotated[str, AfterValidator(_non_empty)]
    architecture: Architecture | None = None
    memory_total_mib: NonNegativeInt
    memory_used_mib: NonNegativeInt = 0
    mig: bool = False
    mig_pending: bool | None = None
    total_compute_slices: PositiveInt | None = None
    healthy: bool = True
    util_pct: Annotated[int, Field(ge=0, le=100)] | None = None
    migs: list[_MigFixture] = []


class _ProcessFixture(_Model):
    pid: PositiveInt
    device_uuid: str
    used_mib: NonNegativeInt | None = None
    uid: NonNegativeInt | None = None
    container_id: Annotated[str, AfterValidator(_container_id)] | None = None
    name: str = ""


class _InventoryFixture(_Model):
    host: Annotated[str, AfterValidator(_non_empty)]
    taken_at: Annotated[AwareDatetime, Field(strict=False)]  # YAML timestamp or ISO string
    driver: str | None = None
    gpus: list[_GpuFixture]
    processes: list[_ProcessFixture] = []


_KNOWN_KEYS = sorted(
    {
        key
        for model in (_MigFixture, _GpuFixture, _ProcessFixture, _InventoryFixture)
        for key in model.model_fields
    }
)


@dataclass(frozen=True)
class _Problem:
    path: YamlPath
    message: str
    hint: str | None = None
    key: bool = False  # point at the key rather than its value


def _dotted(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problem_from_pydantic(error: ErrorDetails, doc: YamlDoc) -> _Problem:
    loc = tuple(error["loc"])
    kind, msg = error["type"], error["msg"]
    if kind == "missing":
        return _Problem(loc[:-1], f"missing required key `{loc[-1]}`")
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _KNOWN_KEYS, n=1)
        hint = f"did you mean `{close[0]}`?" if close else None
        return _Problem(loc, f"unknown key `{loc[-1]}`", hint, key=True)
    path = _known_prefix(loc, doc)
    hint = None
    if kind == "string_type" and isinstance(error.get("input"), int | float):
        hint = "YAML read this as a number; quote it"  # e.g. a PCI bus id read as sexagesimal
    return _Problem(path, msg.removeprefix("Value error, "), hint)


def _pydantic_problems(exc: ValidationError, doc: YamlDoc) -> list[_Problem]:
    errors = exc.errors(include_url=False)
    # A misspelt key is also a missing one; the unknown key (with its hint) is the real news.
    misspelt = {tuple(e["loc"][:-1]) for e in errors if e["type"] == "extra_forbidden"}
    kept = [e for e in errors if e["type"] != "missing" or tuple(e["loc"][:-1]) not in misspelt]
    return [_problem_from_pydantic(e, doc) for e in kept]


def _known_prefix(loc: tuple[str | int, ...], doc: YamlDoc) -> YamlPath:
    # pydantic appends union/validator tags (e.g. 'function-after[...]') that name no YAML node.
    for end in range(len(loc), -1, -1):
        if loc[:end] in doc.values:
            return loc[:end]
    return ()


def _unique(seen: dict[Any, YamlPath], value: Any, path: YamlPath, what: str) -> Iterator[_Problem]:
    if value in seen:
        yield _Problem(path, f"duplicate {what} {value!r} (also at {_dotted(seen[value])})")
    else:
        seen[value] = path


def _mig_problems(gpu: _GpuFixture, at: YamlPath, uuids: dict[Any, YamlPath]) -> Iterator[_Problem]:
    total = gpu.total_compute_slices or DEFAULT_COMPUTE_SLICES
    used = 0
    ids: dict[Any, YamlPath] = {}
    start_of_gi: dict[int, int] = {}
    gi_at_start: dict[int, int] = {}
    for j, mig in enumerate(gpu.migs):
        here = (*at, "migs", j)
        yield from _unique(uuids, mig.uuid, (*here, "uuid"), "uuid")
        yield from _unique(ids, (mig.gi_id, mig.ci_id), (*here, "ci_id"), "(gi_id, ci_id)")
        used += mig.compute_slices
        if used > total:
            yield _Problem(
                (*here, "compute_slices"),
                f"MIG compute slices add up to {used}, over this GPU's {total}",
                "a GPU has total_compute_slices (7 on A100/H100) to share among its instances",
            )
        if mig.memory_mib > gpu.memory_total_mib:
            yield _Problem((*here, "memory_mib"), "more memory than the whole GPU has")
        # Compute instances of one GPU instance share its placement; different ones cannot.
        if start_of_gi.setdefault(mig.gi_id, mig.placement_start) != mig.placement_start:
            yield _Problem(
                (*here, "placement_start"), f"GPU instance {mig.gi_id} has two placements"
            )
        if gi_at_start.setdefault(mig.placement_start, mig.gi_id) != mig.gi_id:
            yield _Problem(
                (*here, "placement_start"),
                f"placement {mig.placement_start} is already taken by GPU instance "
                f"{gi_at_start[mig.placement_start]}",
            )


def _problems(fx: _InventoryFixture) -> Iterator[_Problem]:
    uuids: dict[Any, YamlPath] = {}
    indexes: dict[Any, YamlPath] = {}
    for i, gpu in enumerate(fx.gpus):
        at: YamlPath = ("gpus", i)
        yield from _unique(uuids, gpu.uuid, (*at, "uuid"), "uuid")
        yield from _unique(indexes, gpu.index, (*at, "index"), "GPU index")
        if gpu.memory_used_mib > gpu.memory_total_mib:
            yield _Problem((*at, "memory_used_mib"), "more memory used than the GPU has")
        if gpu.migs and not gpu.mig:
            yield _Problem(
                (*at, "migs"),
                f"GPU {gpu.index} has MIG disabled but lists MIG instances",
                "set `mig: true` on it, or remove its migs",
                key=True,
            )
        yield from _mig_problems(gpu, at, uuids)
    pairs: dict[Any, YamlPath] = {}
    for k, proc in enumerate(fx.processes):
        at = ("processes", k)
        if proc.device_uuid not in uuids:
            yield _Problem(
                (*at, "device_uuid"), f"{proc.device_uuid!r} is no GPU or MIG device listed here"
            )
        yield from _unique(pairs, (proc.pid, proc.device_uuid), (*at, "pid"), "process")


def _raise_first(problems: Iterable[_Problem], doc: YamlDoc, file: str) -> None:
    ranked = sorted(problems, key=lambda p: doc.mark_of(p.path, key=p.key))
    if not ranked:
        return
    first = ranked[0]
    mark = doc.mark_of(first.path, key=first.key)
    where = f"{_dotted(first.path)}: " if first.path else ""
    raise InventoryError(f"{file}:{mark.line}:{mark.col}: {where}{first.message}", hint=first.hint)


def _single_document(text: str, file: str) -> YamlDoc:
    try:
        docs = list(load_documents(text))
    except YamlError as exc:
        mark = exc.mark or Mark(1, 1)
        raise InventoryError(
            f"{file}:{mark.line}:{mark.col}: {exc.message}", hint=exc.hint
        ) from None
    if len(docs) != 1:
        mark = docs[1].start if docs else Mark(1, 1)
        raise InventoryError(
            f"{file}:{mark.line}:{mark.col}: a GPU fixture holds exactly one YAML document",
            hint="see examples/gpus/ for the format",
        )
    return docs[0]


def parse_inventory(text: str, file: str) -> GpuInventory:
    """The inventory a fixture text describes; `file` names it in errors and in `source`."""
    doc = _single_document(text, file)
    try:
        fixture = _InventoryFixture.model_validate(doc.value)
    except ValidationError as exc:
        _raise_first(_pydantic_problems(exc, doc), doc, file)
        raise  # unreachable: pydantic reports at least one error
    _raise_first(_problems(fixture), doc, file)
    return GpuInventory.from_dict({**fixture.model_dump(), "source": f"fixture:{file}"})


def load_inventory_file(path: Path) -> GpuInventory:
    """Read and check a fixture file; any problem is an `InventoryError` naming `file:line:col`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InventoryError(f"{path}: cannot read the GPU fixture: {reason}") from None
    return parse_inventory(text, str(path))


_HEADER = (
    "# GPU inventory fixture for ds01ctl: what NVML would report (MiB, UUIDs, MIG instances).\n"
    "# Load it with the Site's gpus.source: fixture; `source` is implied by the file's path.\n"
)


def inventory_yaml(inv: GpuInventory) -> str:
    """The fixture text of `inv` (its `source` is left out: a file's source is its path)."""
    data = inv.to_dict()
    del data["source"]
    body = yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=False, width=100)
    return _HEADER + body


def dump_inventory(inv: GpuInventory, path: Path) -> None:
    """Write `inv` as a fixture file that `load_inventory_file` reads back unchanged."""
    write_atomically(path, inventory_yaml(inv))


# --------------------------------------------------------------------------- /proc

_DOCKER_CGROUP_RE = re.compile(r"(?:^|/)docker[-/]([0-9a-f]{64})(?:\.scope)?(?:/|$)")


def container_id_from_cgroup(text: str) -> str | None:
    """The Docker container id in a `/proc/<pid>/cgroup` text (v1, v2 systemd or cgroupfs)."""
    for line in text.splitlines():
        fields = line.split(":", 2)  # hierarchy-id:controllers:path
        if len(fields) == 3:
            match = _DOCKER_CGROUP_RE.search(fields[2].strip())
            if match:
                return match.group(1)
    return None


def _uid_from_status(text: str) -> int | None:
    for line in text.splitlines():
        if line.startswith("Uid:"):
            fields = line.split()
            return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
    return None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:  # the process exited, or it is not ours to read
        return None


# --------------------------------------------------------------------------- NVML

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
        cgroup = _read_text(proc_dir / "cgroup")
        status = _read_text(proc_dir / "status")
        return GpuProcess(
            pid=pid,
            device_uuid=device_uuid,
            used_mib=None if used is None else int(used) // MIB,
            uid=None if status is None else _uid_from_status(status),
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
        return (_read_text(proc_dir / "comm") or "").strip()
