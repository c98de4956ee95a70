"""The container field table: one row per field ds01ctl sets, read from both sides.

Each row says how to read the field from the observed container and from a `ContainerSpec`,
how to compare them (`strict`, or `over_image` for env and labels, which a container also
inherits from its image) and whether a change is applied in place (`docker update`) or forces
a replace.
The diff and the per-field tests are generated from this table, so a new row cannot go
untested or unhandled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ds01ctl import labels as L
from ds01ctl.live.docker import LiveContainer
from ds01ctl.plan.actions import FieldChange
from ds01ctl.resolve.spec import ContainerSpec


class Compare(StrEnum):
    STRICT = "strict"  # equal after canonicalisation
    # Live is (everything, what the image hands down): equal when every desired entry is
    # there and every entry the image did not hand down was desired.
    OVER_IMAGE = "over_image"


class OnChange(StrEnum):
    UPDATE = "update"  # `docker update` on the live container
    REPLACE = "replace"  # only a new container can carry it


@dataclass(frozen=True, slots=True)
class ContainerField:
    name: str
    live: Callable[[LiveContainer], Any]
    desired: Callable[[ContainerSpec], Any]
    on_change: OnChange
    compare: Compare = Compare.STRICT
    update_key: str | None = None  # the raw update endpoint's key, for UPDATE rows

    def equal(self, live: Any, desired: Any) -> bool:
        if self.compare is Compare.OVER_IMAGE:
            everything = live[0]
            return all(everything.get(k) == v for k, v in desired.items()) and all(
                desired.get(k) == v for k, v in own(live).items()
            )
        return bool(live == desired)


def own(live: tuple[dict[str, str], dict[str, str]]) -> dict[str, str]:
    """The entries of an OVER_IMAGE value that the image did not hand down."""
    everything, inherited = live
    return {k: v for k, v in everything.items() if inherited.get(k) != v}


def _section(c: LiveContainer, name: str) -> Mapping[str, Any]:
    return (c.inspect or {}).get(name) or {}


def _config(key: str, default: Any = None) -> Callable[[LiveContainer], Any]:
    return lambda c: _section(c, "Config").get(key) or default


def _host(key: str, default: Any = None) -> Callable[[LiveContainer], Any]:
    return lambda c: _section(c, "HostConfig").get(key) or default


def _pairs(entries: list[str] | None) -> dict[str, str]:
    return {k: v for k, _, v in (e.partition("=") for e in entries or [])}


def _env(c: LiveContainer) -> tuple[dict[str, str], dict[str, str]]:
    return _pairs(_section(c, "Config").get("Env")), _pairs(c.image_config.get("Env"))


# Labels that record how ds01ctl compares (not what the container is): the hash and the
# limits as created are compared on their own, so they never show up as label changes.
_BOOKKEEPING = (L.DS01_LIMITS, L.DS01_SPEC_HASH, L.DS01_HASH_VERSION)


def _labels(c: LiveContainer) -> tuple[dict[str, str], dict[str, str]]:
    everything = dict(_section(c, "Config").get("Labels") or {})
    for key in _BOOKKEEPING:
        everything.pop(key, None)
    return everything, dict(c.image_config.get("Labels") or {})


def _sorted_host(key: str) -> Callable[[LiveContainer], tuple[str, ...]]:
    return lambda c: tuple(sorted(_section(c, "HostConfig").get(key) or ()))


def _ulimits(c: LiveContainer) -> tuple[tuple[str, int, int], ...]:
    found = _section(c, "HostConfig").get("Ulimits") or []
    return tuple(sorted((u["Name"], int(u["Soft"]), int(u["Hard"])) for u in found))


def _restart(c: LiveContainer) -> str:
    return str((_section(c, "HostConfig").get("RestartPolicy") or {}).get("Name") or "no")


FIELDS: tuple[ContainerField, ...] = (
    ContainerField(
        "container_name",
        lambda c: str((c.inspect or {}).get("Name", "")).lstrip("/"),
        lambda s: s.container_name,
        OnChange.REPLACE,
    ),
    ContainerField(
        "image",
        lambda c: L.get(c.labels, L.DS01_IMAGE),
        lambda s: s.image,
        OnChange.REPLACE,
    ),
    ContainerField("image_tag", _config("Image"), lambda s: s.image_tag, OnChange.REPLACE),
    ContainerField("user", _config("User", ""), lambda s: s.user, OnChange.REPLACE),
    ContainerField(
        "command", lambda c: tuple(_config("Cmd", [])(c)), lambda s: s.command, OnChange.REPLACE
    ),
    ContainerField("tty", _config("Tty", False), lambda s: s.tty, OnChange.REPLACE),
    ContainerField(
        "working_dir", _config("WorkingDir", ""), lambda s: s.working_dir, OnChange.REPLACE
    ),
    ContainerField(
        "env", _env, lambda s: dict(s.environment), OnChange.REPLACE, Compare.OVER_IMAGE
    ),
    ContainerField(
        "binds",
        lambda c: tuple(sorted(_host("Binds", [])(c))),
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
    ContainerField(
        "stop_grace", _config("StopTimeout", 10), lambda s: s.stop_grace, OnChange.REPLACE
    ),
    ContainerField("gpus", lambda c: c.gpu_ids, lambda s: tuple(sorted(s.gpus)), OnChange.REPLACE),
    # Confinement: a container whose capabilities or security options differ (run with
    # seccomp=unconfined, say) is replaced; a privileged one drops no capability, so it is too.
    ContainerField(
        "cap_drop", _sorted_host("CapDrop"), lambda s: tuple(sorted(s.cap_drop)), OnChange.REPLACE
    ),
    ContainerField(
        "cap_add", _sorted_host("CapAdd"), lambda s: tuple(sorted(s.cap_add)), OnChange.REPLACE
    ),
    ContainerField(
        "security_opt",
        _sorted_host("SecurityOpt"),
        lambda s: tuple(sorted(s.security_opt)),
        OnChange.REPLACE,
    ),
    ContainerField(
        "labels",
        _labels,
        lambda s: {k: v for k, v in s.labels if k not in _BOOKKEEPING},
        OnChange.REPLACE,
        Compare.OVER_IMAGE,
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


def differences(container: LiveContainer, spec: ContainerSpec) -> list[FieldChange]:
    """Every field whose live value differs from the spec, in table order."""
    changes = []
    for row in FIELDS:
        live, desired = row.live(container), row.desired(spec)
        if not row.equal(live, desired):
            if row.compare is Compare.OVER_IMAGE:  # show only the entries that differ
                everything, mine = live[0], own(live)
                keys = sorted(set(desired) | set(mine))
                live = {k: everything.get(k) for k in keys if everything.get(k) != desired.get(k)}
                desired = {k: desired.get(k) for k in sorted(live)}
            changes.append(FieldChange(row.name, live, desired, row.on_change is OnChange.REPLACE))
    return changes


def recorded_limits(labels: Mapping[str, str]) -> dict[str, int | str]:
    """The live-updatable values the container was created with (label `ds01.limits`)."""
    raw = L.decode_pairs(L.get(labels, L.DS01_LIMITS))
    return {k: (int(v) if v.lstrip("-").isdigit() else v) for k, v in raw.items()}


def limits_label(spec: ContainerSpec) -> str:
    return L.encode_pairs({name: BY_NAME[name].desired(spec) for name in LIMIT_FIELDS})
