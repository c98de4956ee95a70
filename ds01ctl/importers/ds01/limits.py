"""DS01's limit keys mapped onto ours, one `Layer` per mapping of limits.

`KEYS` pairs each of our limit keys with the DS01 names (current, then legacy) that feed it; a
layer is read key by key, then settled on the layers below it, where DS01's two GPU numbers and
its `aggregate:` section fold into our keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from pydantic import ValidationError

from ds01ctl.importers.ds01.sources import (
    NEVER_READ,
    NOT_MODELLED,
    UNKNOWN,
    Notes,
    Source,
    mapping_of,
)
from ds01ctl.importers.ds01.values import (
    Convert,
    cores,
    cpu_quota,
    flag,
    gpu_units,
    hours,
    legacy_duration,
    memory_max,
    plain,
    shown,
    size,
    whole,
)
from ds01ctl.manifests.quota import Limits
from ds01ctl.resolve.quota import BUILTIN
from ds01ctl.yamlpos import YamlPath

# --- limits ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One of our limit keys and the DS01 keys that feed it: the current name, then aliases."""

    ours: str
    names: tuple[tuple[str, Convert], ...]


KEYS = (
    Key(
        "gpu_budget",
        (
            ("max_gpu_equivalents", gpu_units),
            ("max_mig_instances", gpu_units),
            ("max_gpu_slots", gpu_units),
            ("max_gpus_per_user", gpu_units),
        ),
    ),
    Key(
        "max_gpus_per_container",
        (
            ("max_gpu_slots_per_container", whole),
            ("max_mig_per_container", whole),
            ("max_gpus_per_container", whole),
        ),
    ),
    Key("allow_whole_gpus", (("allow_full_gpu", flag),)),
    Key("cpus", (("max_cpus", cores), ("cpus", cores))),
    Key("memory", (("memory", size),)),
    Key("memory_swap", (("memory_swap", size),)),
    Key("shm_size", (("shm_size", size),)),
    Key("pids", (("pids_limit", whole),)),
    Key("max_workspaces", (("max_containers_per_user", whole),)),
    Key("idle_timeout", (("idle_timeout_h", hours), ("idle_timeout", legacy_duration))),
    Key("max_runtime", (("max_runtime_h", hours), ("max_runtime", legacy_duration))),
    Key(
        "gpu_hold_after_stop",
        (("gpu_hold_after_stop_h", hours), ("gpu_hold_after_stop", legacy_duration)),
    ),
    Key(
        "container_hold_after_stop",
        (
            ("container_hold_after_stop_h", hours),
            ("container_hold_after_stop", legacy_duration),
        ),
    ),
)
AGGREGATE_KEYS: dict[str, tuple[str, Convert]] = {
    "cpu_quota": ("aggregate_cpus", cpu_quota),
    "memory_max": ("aggregate_memory", memory_max),
}
_TODO = f"{NEVER_READ} (TODO-NOT-IMPLEMENTED)"
LIMIT_DROPS = {
    "max_tasks": f"{NEVER_READ} (the slice's TasksMax comes from aggregate.tasks_max)",
    "priority": f"{NEVER_READ} for allocation (only written to a label)",
    "gpu_memory": _TODO,
    "io_read_bps": _TODO,
    "io_write_bps": _TODO,
    "ulimit_nofile": _TODO,
    "storage_workspace": _TODO,
    "storage_data": _TODO,
    "storage_tmp": _TODO,
    "policies": f"{NOT_MODELLED} (idle-detection thresholds)",
    "max_concurrent_jobs": f"read by ds01-jobs only; {NOT_MODELLED}",
    "max_daily_submissions": f"read by ds01-jobs only; {NOT_MODELLED}",
    "max_result_size_mb": f"read by ds01-jobs only; {NOT_MODELLED}",
}
AGGREGATE_DROPS = {
    "memory_high": f"{NOT_MODELLED} (a soft memory limit)",
    "tasks_max": f"{NOT_MODELLED} (a per-user task limit)",
}


@dataclass
class Layer:
    """One DS01 mapping of limits (defaults, a group, a user override) in our keys."""

    source: Source
    path: YamlPath
    values: dict[str, Any] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    origins: dict[str, YamlPath] = field(default_factory=dict)  # our key -> the DS01 value
    has_aggregate: bool = False
    gpu_limit: Decimal | None = None  # aggregate.gpu_limit; None: none set

    def set(self, key: str, value: Any, origin: YamlPath, comment: str | None = None) -> None:
        self.values[key] = value
        self.origins[key] = origin
        if comment is not None:
            self.comments[key] = comment


def read_layer(
    source: Source, path: YamlPath, raw: Any, notes: Notes, *, skip: Iterable[str] = ()
) -> Layer:
    """Convert one mapping of DS01 limit keys; report the keys that have no equivalent."""
    body = mapping_of(source, path, raw, "limits")
    layer = Layer(source, path)
    used = set(skip)
    for key in KEYS:
        used |= take(layer, key, body, notes)
    if "aggregate" in body:
        read_aggregate(layer, body["aggregate"], notes)
        used.add("aggregate")
    for name, value in body.items():
        if name in used:
            continue
        why = LIMIT_DROPS.get(name, UNKNOWN)
        if isinstance(value, dict):
            notes.drop_section(source, (*path, name), value, why)
        else:
            notes.drop(source, (*path, name), why)
    return layer


def take(layer: Layer, key: Key, body: Mapping[Any, Any], notes: Notes) -> set[str]:
    """Set `key.ours` from the first of its DS01 names present in `body`; the names used."""
    present = [(name, convert) for name, convert in key.names if name in body]
    if not present:
        return set()
    (name, convert), *others = present
    for other, _ in others:
        notes.drop(layer.source, (*layer.path, other), f"legacy alias of {name}, which is set too")
    path = (*layer.path, name)
    raw = body[name]
    try:
        value, derived = convert(raw)
    except ValueError as exc:
        raise layer.source.refuse(path, str(exc)) from None
    legacy = name != key.names[0][0]
    comment = (
        f"from {'legacy ' if legacy else ''}{name} {shown(raw)}" if derived or legacy else None
    )
    layer.set(key.ours, value, path, comment)
    return {name for name, _ in present}


def read_aggregate(layer: Layer, raw: Any, notes: Notes) -> None:
    """`aggregate:` holds a user's totals across containers (a systemd slice in DS01)."""
    path = (*layer.path, "aggregate")
    body = mapping_of(layer.source, path, raw, "aggregate limits")
    layer.has_aggregate = True
    for name, value in body.items():
        sub = (*path, name)
        try:
            if name in AGGREGATE_KEYS:
                ours, convert = AGGREGATE_KEYS[name]
                layer.set(ours, convert(value)[0], sub, f"from aggregate.{name} {shown(value)}")
            elif name == "gpu_limit":
                units = gpu_units(value)[0]
                layer.gpu_limit = None if units is None else Decimal(str(units))
            elif name in AGGREGATE_DROPS:
                notes.drop(layer.source, sub, AGGREGATE_DROPS[name])
            else:
                notes.drop(layer.source, sub, UNKNOWN)
        except ValueError as exc:
            raise layer.source.refuse(sub, str(exc)) from None


def check_layer(layer: Layer) -> None:
    """Our own model must accept every value, or the import refuses at the DS01 key."""
    try:
        Limits.model_validate(layer.values)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else ""
        problem = str(error["msg"]).removeprefix("Value error, ")
        raise layer.source.refuse(layer.origins.get(key, layer.path), problem) from None


# --- layering: GPU budgets and aggregate sections ----------------------------------------------


@dataclass(frozen=True)
class GpuState:
    """The GPU quota in force at one layer: DS01 checks both numbers, so the smaller binds."""

    equivalents: Decimal | None  # max_gpu_equivalents; None: unlimited
    limit: Decimal | None  # aggregate.gpu_limit; None: none

    @property
    def budget(self) -> Decimal | None:
        given = [n for n in (self.equivalents, self.limit) if n is not None]
        return min(given) if given else None


def settle(layer: Layer, below: GpuState, inherited: Mapping[str, Any], notes: Notes) -> GpuState:
    """Fold this layer's aggregate section into its keys, given the layers below it."""
    state = settle_gpu(layer, below, notes)
    if layer.has_aggregate:
        # DS01 merges layers key by key, so an `aggregate:` section replaces the one below
        # whole: a total it leaves out is no longer limited.
        for name, (key, _) in AGGREGATE_KEYS.items():
            if key not in layer.values and inherited.get(key) is not None:
                layer.set(key, None, (*layer.path, "aggregate"), f"this aggregate: has no {name}")
    check_layer(layer)
    return state


def settle_gpu(layer: Layer, below: GpuState, notes: Notes) -> GpuState:
    own = "gpu_budget" in layer.values
    own_value = layer.values.get("gpu_budget")
    equivalents = below.equivalents if not own else _decimal(own_value)
    limit = layer.gpu_limit if layer.has_aggregate else below.limit
    state = GpuState(equivalents, limit)
    budget = state.budget
    # Worth a warning where this layer's own number loses, not where it merely undercuts a
    # limit it inherits.
    sets_limit = layer.gpu_limit is not None
    if limit is not None and equivalents != limit and (sets_limit or budget != equivalents):
        eq, lim = shown(_number(equivalents)), shown(_number(limit))
        where = (*layer.path, "aggregate", "gpu_limit") if sets_limit else None
        origin = where or layer.origins["gpu_budget"]
        notes.warn(
            layer.source,
            origin,
            f"aggregate.gpu_limit {lim} and max_gpu_equivalents {eq} differ; "
            f"the smaller, {shown(_number(budget))}, is the GPU budget",
        )
        layer.set(
            "gpu_budget",
            _number(budget),
            origin,
            f"smaller of max_gpu_equivalents {eq} and aggregate.gpu_limit {lim}",
        )
    elif not own and budget != below.budget:  # e.g. an aggregate section with no gpu_limit
        layer.set("gpu_budget", _number(budget), (*layer.path, "aggregate"))
    return state


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _fraction_decimal(value: Fraction | None) -> Decimal | None:
    return None if value is None else Decimal(value.numerator) / Decimal(value.denominator)


# Below DS01's `defaults`: our built-in budget, and no aggregate limit.
BASE_GPU = GpuState(_fraction_decimal(BUILTIN.gpu_budget), None)


def _number(value: Decimal | None) -> int | float | None:
    return None if value is None else plain(value)
