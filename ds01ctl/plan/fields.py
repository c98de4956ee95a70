"""The container field table: one row per field ds01ctl sets, read from both sides.

Each row says how to read the field from `docker inspect` and from a `ContainerSpec`, how to
compare them (`strict`, or `superset` where the image may add entries, such as env and
labels) and whether a change is applied in place (`docker update`) or forces a replace.
The diff and the per-field tests are generated from this table, so a new row cannot go
untested or unhandled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ds01ctl import labels as L
from ds01ctl.plan.actions import FieldChange
from ds01ctl.resolve.spec import ContainerSpec

Inspect = Mapping[str, Any]


class Compare(StrEnum):
    STRICT = "strict"  # equal after canonicalisation
    SUPERSET = "superset"  # live may hold more entries (the image's env and labels)


class OnChange(StrEnum):
    UPDATE = "update"  # `docker update` on the live container
    REPLACE = "replace"  # only a new container can carry it


@dataclass(frozen=True, slots=True)
class ContainerField:
    name: str
    live: Callable[[Inspect], Any]
    desired: Callable[[ContainerSpec], Any]
    on_change: OnChange
    compare: Compare = Compare.STRICT
    update_key: str | None = None  # the raw update endpoint's key, for UPDATE rows

    def equal(self, live: Any, desired: Any) -> bool:
        if self.compare is Compare.SUPERSET:
            return all(live.get(k) == v for k, v in desired.items())
        return bool(live == desired)


def _config(key: str, default: Any = None) -> Callable[[Inspect], Any]:
    return lambda i: (i.get("Config") or {}).get(key) or default


def _host(key: str, default: Any = None) -> Callable[[Inspect], Any]:
    return lambda i: (i.get("HostConfig") or {}).get(key) or default


def _env(i: Inspect) -> dict[str, str]:
    pairs = (e.partition("=") for e in (i.get("Config") or {}).get("Env") or [])
    return {k: v for k, _, v in pairs}


def _ulimits(i: Inspect) -> tuple[tuple[str, int, int], ...]:
    found = (i.get("HostConfig") or {}).get("Ulimits") or []
    return tuple(sorted((u["Name"], int(u["Soft"]), int(u["Hard"])) for u in found))


def _gpus(i: Inspect) -> tuple[str, ...]:
    requests = (i.get("HostConfig") or {}).get("DeviceRequests") or []
    return tuple(sorted(d for r in requests for d in (r.get("DeviceIDs") or [])))


def _restart(i: Inspect) -> str:
    policy = (i.get("HostConfig") or {}).get("RestartPolicy") or {}
    return str(policy.get("Name") or "no")


FIELDS: tuple[ContainerField, ...] = (
    ContainerField(
        "container_name",
        lambda i: str(i.get("Name", "")).lstrip("/"),
        lambda s: s.container_name,
        OnChange.REPLACE,
    ),
    ContainerField(
        "image",
        lambda i: L.get(_config("Labels", {})(i), L.DS01_IMAGE),
        lambda s: s.image,
        OnChange.REPLACE,
    ),
    ContainerField("image_tag", _config("Image"), lambda s: s.image_tag, OnChange.REPLACE),
    ContainerField("user", _config("User", ""), lambda s: s.user, OnChange.REPLACE),
    ContainerField(
        "command", lambda i: tuple(_config("Cmd", [])(i)), lambda s: s.command, OnChange.REPLACE
    ),
    ContainerField("tty", _config("Tty", False), lambda s: s.tty, OnChange.REPLACE),
    ContainerField(
        "working_dir", _config("WorkingDir", ""), lambda s: s.working_dir, OnChange.REPLACE
    ),
    ContainerField("env", _env, lambda s: dict(s.env), OnChange.REPLACE, Compare.SUPERSET),
    ContainerField(
        "binds",
        lambda i: tuple(sorted(_host("Binds", [])(i))),
        lambda s: tuple(sorted(b.docker for b in s.binds)),
        OnChange.REPLACE,
    ),
    ContainerField("network", _host("NetworkMode", ""), lambda s: s.network, OnChange.REPLACE),
    ContainerField("shm_size", _host("ShmSize", 0), lambda s: s.shm_size, OnChange.REPLACE),
    ContainerField(
        "ulimits",
        _ulimits,
        lambda s: tuple(sorted((n, v, v) for n, v in s.ulimits)),
        OnChange.REPLACE,
    ),
    ContainerField(
        "stop_signal", _config("StopSignal", ""), lambda s: s.stop_signal, OnChange.REPLACE
    ),
    ContainerField("gpus", _gpus, lambda s: tuple(sorted(s.gpus)), OnChange.REPLACE),
    ContainerField(
        "labels",
        lambda i: dict(_config("Labels", {})(i)),
        lambda s: {k: v for k, v in s.labels if k != L.DS01_LIMITS},
        OnChange.REPLACE,
        Compare.SUPERSET,
    ),
    ContainerField(
        "nano_cpus",
        _host("NanoCpus", 0),
        lambda s: s.nano_cpus,
        OnChange.UPDATE,
        update_key="NanoCpus",
    ),
    ContainerField(
        "memory", _host("Memory", 0), lambda s: s.memory, OnChange.UPDATE, update_key="Memory"
    ),
    ContainerField(
        "memory_swap",
        _host("MemorySwap", 0),
        lambda s: s.memory_swap,
        OnChange.UPDATE,
        update_key="MemorySwap",
    ),
    ContainerField(
        "pids", _host("PidsLimit", 0), lambda s: s.pids, OnChange.UPDATE, update_key="PidsLimit"
    ),
    ContainerField(
        "restart_policy",
        _restart,
        lambda s: s.restart_policy,
        OnChange.UPDATE,
        update_key="RestartPolicy",
    ),
)
BY_NAME = {f.name: f for f in FIELDS}
LIMIT_FIELDS = tuple(f.name for f in FIELDS if f.on_change is OnChange.UPDATE)


def differences(inspect: Inspect, spec: ContainerSpec) -> list[FieldChange]:
    """Every field whose live value differs from the spec, in table order."""
    changes = []
    for row in FIELDS:
        live, desired = row.live(inspect), row.desired(spec)
        if not row.equal(live, desired):
            if row.compare is Compare.SUPERSET:  # show only the entries that differ
                live = {k: live.get(k) for k in sorted(desired) if live.get(k) != desired[k]}
                desired = {k: desired[k] for k in sorted(live)}
            changes.append(FieldChange(row.name, live, desired, row.on_change is OnChange.REPLACE))
    return changes


def recorded_limits(labels: Mapping[str, str]) -> dict[str, int | str]:
    """The live-updatable values the container was created with (label `ds01.limits`)."""
    raw = L.decode_pairs(L.get(labels, L.DS01_LIMITS))
    return {k: (int(v) if v.lstrip("-").isdigit() else v) for k, v in raw.items()}


def limits_label(spec: ContainerSpec) -> str:
    return L.encode_pairs({name: BY_NAME[name].desired(spec) for name in LIMIT_FIELDS})
