"""The GPU inventory: one frozen, canonically ordered snapshot of a host's GPUs and MIG slices.

It is pure data (no I/O, no clock): NVML (`live.nvml`) or a fixture file (`live.gpus`) builds
it, and the allocator and planner only read it. GPU units are exact `Fraction`s, never floats: a MIG
instance is worth its compute slices over its GPU's total, a whole GPU is worth 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, Literal, get_args

DEFAULT_COMPUTE_SLICES = 7  # A100 and H100: a MIG-capable GPU splits into 7 compute slices

Architecture = Literal[
    "kepler",
    "maxwell",
    "pascal",
    "volta",
    "turing",
    "ampere",
    "ada",
    "hopper",
    "blackwell",
    "rubin",
    "unknown",
]
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)

# Checked in order: the first family whose pattern is in the marketing name wins.
_ARCH_BY_NAME: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), arch)
    for pattern, arch in (
        (r"\bG?B(100|200|300)\b|Blackwell|RTX 50\d0", "blackwell"),
        (r"\bG?H(100|200|800|20)\b", "hopper"),
        (r"\bL(4|20|40S?)\b|\bAda\b|RTX 40\d0", "ada"),
        (r"\bA(100|800|40|30|16|10|2)\b|RTX A\d{4}|RTX 30\d0", "ampere"),
        (r"\bV100\b|TITAN V\b", "volta"),
        (r"\bT4\b|RTX 20\d0|Quadro RTX", "turing"),
        (r"\bP(100|40|4)\b", "pascal"),
    )
)


def architecture_of(name: str) -> str:
    """The architecture family named by an NVML GPU name: `NVIDIA A100-SXM4-40GB` → ampere."""
    for pattern, arch in _ARCH_BY_NAME:
        if pattern.search(name):
            return arch
    return "unknown"


def _set(obj: object, name: str, value: object) -> None:
    # The records are frozen; __post_init__ still needs to store their canonical form once.
    object.__setattr__(obj, name, value)


@dataclass(frozen=True, slots=True, kw_only=True)
class MigInstance:
    """One MIG device (a compute instance inside a GPU instance) that a container can be given."""

    uuid: str
    parent_uuid: str
    profile: str
    compute_slices: int
    memory_mib: int
    gi_id: int
    ci_id: int
    placement_start: int
    memory_used_mib: int = 0
    # SM utilisation of the instance from GPM (Hopper and later); None: not measured (NVML has
    # no per-instance utilisation, and GPM is missing before Hopper)
    util_pct: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Gpu:
    """One physical GPU; its MIG instances are in `migs` when MIG mode is on."""

    uuid: str
    index: int
    name: str
    pci_bus_id: str
    memory_total_mib: int
    memory_used_mib: int = 0
    architecture: str = ""  # empty: derived from `name`
    mig_enabled: bool = False
    mig_pending: bool | None = None  # the mode after the next reset; None: MIG unsupported/unknown
    total_compute_slices: int | None = None  # None: not MIG-capable (or unknown) and MIG off
    healthy: bool = True
    util_pct: int | None = None  # None under MIG, where NVML cannot measure it
    migs: tuple[MigInstance, ...] = ()
    vendor: str = "nvidia"  # nvidia | amd
    render_node: str | None = None  # AMD: its /dev/dri/renderD* node (a container is given it)

    def __post_init__(self) -> None:
        if not self.architecture:
            _set(self, "architecture", architecture_of(self.name))
        if self.mig_enabled and self.total_compute_slices is None:
            _set(self, "total_compute_slices", DEFAULT_COMPUTE_SLICES)
        for mig in self.migs:
            if mig.parent_uuid != self.uuid:
                raise ValueError(f"MIG {mig.uuid} has parent {mig.parent_uuid}, not {self.uuid}")
        _set(self, "migs", tuple(sorted(self.migs, key=lambda m: (m.placement_start, m.uuid))))

    @property
    def mig_reset_pending(self) -> bool:
        """True when a MIG mode change waits for a GPU reset (pending ≠ current)."""
        return self.mig_pending is not None and self.mig_pending != self.mig_enabled


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuProcess:
    """A process NVML sees on a device, attributed to its owner and container where possible."""

    pid: int  # a host PID: the NVIDIA driver does not know PID namespaces
    device_uuid: str  # the MIG uuid under MIG, the GPU uuid otherwise
    used_mib: int | None = None
    uid: int | None = None
    container_id: str | None = None
    name: str = ""


@dataclass(frozen=True, slots=True, order=True, kw_only=True)
class Device:
    """An allocatable unit: a MIG instance, or a whole GPU with MIG off.

    Devices compare in placement order (GPU index, placement start, uuid), a total order.
    """

    gpu_index: int
    placement_start: int
    uuid: str
    gpu_uuid: str
    profile: str | None  # None: the whole GPU
    units: Fraction
    memory_mib: int
    healthy: bool
    model: str = ""  # its GPU's name as the driver reports it (`NVIDIA H100 80GB HBM3`)

    @property
    def is_mig(self) -> bool:
        """True for a MIG instance, False for a whole GPU."""
        return self.profile is not None


def _devices_of(gpu: Gpu) -> Iterable[Device]:
    if not gpu.mig_enabled:
        # A MIG-enabled GPU with no instances is invisible to CUDA, so it offers nothing.
        yield Device(
            gpu_index=gpu.index,
            placement_start=0,
            uuid=gpu.uuid,
            gpu_uuid=gpu.uuid,
            profile=None,
            units=Fraction(1),
            memory_mib=gpu.memory_total_mib,
            healthy=gpu.healthy,
            model=gpu.name,
        )
        return
    total = gpu.total_compute_slices or DEFAULT_COMPUTE_SLICES
    for mig in gpu.migs:
        yield Device(
            gpu_index=gpu.index,
            placement_start=mig.placement_start,
            uuid=mig.uuid,
            gpu_uuid=gpu.uuid,
            profile=mig.profile,
            units=Fraction(mig.compute_slices, total),
            memory_mib=mig.memory_mib,
            healthy=gpu.healthy,
            model=gpu.name,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuInventory:
    """What one host's GPUs looked like at `taken_at` (UTC); `source` says who looked."""

    source: str  # "nvml" or "fixture:<path>"
    host: str
    taken_at: datetime
    driver: str | None = None
    gpus: tuple[Gpu, ...] = ()
    processes: tuple[GpuProcess, ...] = ()

    def __post_init__(self) -> None:
        if self.taken_at.tzinfo is None:
            raise ValueError("taken_at must carry a time zone")
        _set(self, "taken_at", self.taken_at.astimezone(UTC))
        _set(self, "gpus", tuple(sorted(self.gpus, key=lambda g: (g.index, g.uuid))))
        procs = sorted(self.processes, key=lambda p: (p.device_uuid, p.pid, p.name))
        _set(self, "processes", tuple(procs))

    def devices(self, *, include_unhealthy: bool = False) -> tuple[Device, ...]:
        """The allocatable devices in placement order; those of unhealthy GPUs only on request."""
        found = (d for g in self.gpus for d in _devices_of(g) if include_unhealthy or d.healthy)
        return tuple(sorted(found))

    def device(self, uuid: str) -> Device | None:
        """The device named `uuid` (healthy or not), or None when this snapshot has no such one."""
        return next((d for d in self.devices(include_unhealthy=True) if d.uuid == uuid), None)

    def gpu(self, uuid: str) -> Gpu | None:
        """The physical GPU named `uuid`, or None."""
        return next((g for g in self.gpus if g.uuid == uuid), None)

    def units_of(self, uuid: str) -> Fraction:
        """GPU units of device `uuid`; KeyError when the snapshot has no such device."""
        found = self.device(uuid)
        if found is None:
            raise KeyError(uuid)
        return found.units

    def mig_profiles(self) -> frozenset[str]:
        """The MIG profiles that healthy GPUs offer right now, e.g. {'1g.5gb', '3g.20gb'}."""
        return frozenset(d.profile for d in self.devices() if d.profile is not None)

    def processes_on(self, uuid: str) -> tuple[GpuProcess, ...]:
        """The processes NVML saw on device `uuid`."""
        return tuple(p for p in self.processes if p.device_uuid == uuid)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str, int, bool, None, lists, dicts): the fixture's shape, plus source."""
        return {
            "source": self.source,
            "host": self.host,
            "taken_at": self.taken_at.isoformat().replace("+00:00", "Z"),
            "driver": self.driver,
            "gpus": [_gpu_to_dict(g) for g in self.gpus],
            "processes": [_process_to_dict(p) for p in self.processes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GpuInventory:
        """The inverse of `to_dict`; optional keys take the fixture format's defaults.

        It trusts its input: text a person wrote goes through `live.gpus.parse_inventory`.
        """
        taken_at = data["taken_at"]
        return cls(
            source=data.get("source", "dict"),
            host=data["host"],
            taken_at=taken_at
            if isinstance(taken_at, datetime)
            else datetime.fromisoformat(taken_at),
            driver=data.get("driver"),
            gpus=tuple(_gpu_from_dict(g) for g in data.get("gpus", ())),
            processes=tuple(GpuProcess(**p) for p in data.get("processes", ())),
        )


def _gpu_to_dict(gpu: Gpu) -> dict[str, Any]:
    return {
        "uuid": gpu.uuid,
        "index": gpu.index,
        "name": gpu.name,
        "pci_bus_id": gpu.pci_bus_id,
        "architecture": gpu.architecture,
        "memory_total_mib": gpu.memory_total_mib,
        "memory_used_mib": gpu.memory_used_mib,
        "mig": gpu.mig_enabled,
        "mig_pending": gpu.mig_pending,
        "total_compute_slices": gpu.total_compute_slices,
        "healthy": gpu.healthy,
        "util_pct": gpu.util_pct,
        "migs": [_mig_to_dict(m) for m in gpu.migs],
        # Only for another vendor's GPU: an NVIDIA inventory reads as it always did.
        **(
            {"vendor": gpu.vendor, "render_node": gpu.render_node} if gpu.vendor != "nvidia" else {}
        ),
    }


def _mig_to_dict(mig: MigInstance) -> dict[str, Any]:
    return {
        "uuid": mig.uuid,
        "profile": mig.profile,
        "compute_slices": mig.compute_slices,
        "memory_mib": mig.memory_mib,
        "memory_used_mib": mig.memory_used_mib,
        "gi_id": mig.gi_id,
        "ci_id": mig.ci_id,
        "placement_start": mig.placement_start,
    }


def _process_to_dict(proc: GpuProcess) -> dict[str, Any]:
    return {
        "pid": proc.pid,
        "device_uuid": proc.device_uuid,
        "used_mib": proc.used_mib,
        "uid": proc.uid,
        "container_id": proc.container_id,
        "name": proc.name,
    }


def _gpu_from_dict(data: Mapping[str, Any]) -> Gpu:
    uuid = data["uuid"]
    return Gpu(
        uuid=uuid,
        index=data["index"],
        name=data["name"],
        pci_bus_id=data["pci_bus_id"],
        architecture=data.get("architecture") or "",
        memory_total_mib=data["memory_total_mib"],
        memory_used_mib=data.get("memory_used_mib", 0),
        mig_enabled=data.get("mig", False),
        mig_pending=data.get("mig_pending"),
        total_compute_slices=data.get("total_compute_slices"),
        healthy=data.get("healthy", True),
        util_pct=data.get("util_pct"),
        migs=tuple(MigInstance(parent_uuid=uuid, **m) for m in data.get("migs", ())),
        vendor=data.get("vendor", "nvidia"),
        render_node=data.get("render_node"),
    )
