"""Prometheus metrics from a status snapshot: the `ds01_*` names DS01's dashboards query, plus
the reconcile loop's own. The registry is built from a snapshot (no global state, nothing
read at scrape time), and served on 127.0.0.1 unless told otherwise.

Metrics and labels (DS01's names keep DS01's labels):

    ds01_exporter_info{version,source}                        gauge 1
    ds01_gpu_allocated{gpu_slot,container,user,interface}     gauge 1 per device held
    ds01_gpu_slot_info{gpu,slot,gpu_uuid,mig_enabled}         gauge 1 per whole GPU
    ds01_mig_slot_info{gpu,gpu_i_id,slot,mig_uuid}            gauge 1 per MIG instance
    ds01_containers_total{status,interface}                   untyped (a gauge; see below)
    ds01_user_containers_count{user}                          untyped (a gauge; see below)
    ds01_user_gpus_allocated{user}                            gauge, devices
    ds01_user_gpu_equivalents{user}                           gauge, GPU units (MIG: slices/7)
    ds01_gpu_equivalents                                      gauge, GPU units held in all
    ds01_user_cpu_usage_seconds_total{user}                   counter, from the cgroups
    ds01_user_memory_current_bytes{user}                      gauge
    ds01_events_24h_total{event_type}                         untyped (a gauge; see below)
    ds01_lifecycle_events_total{event_type}                   counter, since the daemon started
    ds01_lifecycle_state{container,user,state}                gauge 1 per watched container
    ds01_unmanaged_gpu_count                                  untyped (a gauge; see below)
    ds01_unmanaged_gpu_running                                gauge
    ds01_reconcile_info{commit}                               gauge 1: the commit in force
    ds01_reconcile_last_success_timestamp_seconds             gauge
    ds01_reconcile_duration_seconds                           gauge, the last pass
    ds01_reconcile_pending_requests                           gauge
    ds01_reconcile_drift_objects                              gauge

`gpu_slot` is DS01's: the GPU index, or `<index>.<n>` for the n-th MIG instance on it.
DS01 exposes gauges whose names end in `_total` or `_count`; Prometheus' linter rejects those
suffixes on a gauge, so they are served untyped (queries see no difference).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ds01ctl import __version__

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 9101  # DS01's


@dataclass(frozen=True, slots=True)
class Slot:
    """A device: a whole GPU or a MIG instance."""

    slot: str  # DS01's gpu_slot
    gpu_index: int
    uuid: str
    mig: bool = False
    gpu_i_id: int | None = None


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    name: str
    owner: str
    running: bool
    slots: tuple[str, ...] = ()  # the gpu_slot of each device it holds
    units: Fraction = Fraction(0)
    lifecycle_state: str | None = None  # ds01ctl.lifecycle.policy.State, when watched
    interface: str = "ds01ctl"


@dataclass(frozen=True, slots=True)
class LoopStatus:
    commit: str | None = None
    last_success: dt.datetime | None = None
    duration_s: float | None = None
    pending_requests: int = 0
    drift_objects: int = 0


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    containers: tuple[ContainerStatus, ...] = ()
    slots: tuple[Slot, ...] = ()
    user_cpu_seconds: Mapping[str, float] = field(default_factory=dict)
    user_memory_bytes: Mapping[str, int] = field(default_factory=dict)
    events_24h: Mapping[str, int] = field(default_factory=dict)
    lifecycle_events: Mapping[str, int] = field(default_factory=dict)
    unmanaged_gpu_containers: int = 0
    unmanaged_gpu_running: int = 0
    loop: LoopStatus = field(default_factory=LoopStatus)


class _Snapshot(Collector):
    def __init__(self, snapshot: StatusSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        yield _gauge(
            "ds01_exporter_info",
            "ds01ctl exporter",
            {(__version__, "ds01ctl"): 1},
            ("version", "source"),
        )
        yield from _allocation(s)
        yield from _users(s)
        yield from _events(s)
        yield from _loop(s.loop)


def _gauge(
    name: str, doc: str, values: Mapping[tuple[str, ...], float], labels: tuple[str, ...] = ()
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key in sorted(values):
        family.add_metric(list(key), values[key])
    return family


def _untyped(
    name: str, doc: str, values: Mapping[tuple[str, ...], float], labels: tuple[str, ...]
) -> Metric:
    family = Metric(name, doc, "unknown")
    for key in sorted(values):
        family.add_sample(name, dict(zip(labels, key, strict=True)), values[key])
    return family


def _allocation(s: StatusSnapshot) -> Iterator[Metric]:
    held: dict[tuple[str, ...], float] = {
        (slot, c.name, c.owner, c.interface): 1.0 for c in s.containers for slot in c.slots
    }
    yield _gauge(
        "ds01_gpu_allocated",
        "GPU/MIG slot allocation status (1=allocated)",
        held,
        ("gpu_slot", "container", "user", "interface"),
    )
    whole: dict[tuple[str, ...], float] = {
        (str(d.gpu_index), d.slot, d.uuid, "false"): 1.0 for d in s.slots if not d.mig
    }
    yield _gauge(
        "ds01_gpu_slot_info",
        "Full GPU slot mapping",
        whole,
        ("gpu", "slot", "gpu_uuid", "mig_enabled"),
    )
    migs: dict[tuple[str, ...], float] = {
        (str(d.gpu_index), "" if d.gpu_i_id is None else str(d.gpu_i_id), d.slot, d.uuid): 1.0
        for d in s.slots
        if d.mig
    }
    yield _gauge(
        "ds01_mig_slot_info",
        "MIG slot mapping for DCGM metric joins",
        migs,
        ("gpu", "gpu_i_id", "slot", "mig_uuid"),
    )
    counts: dict[tuple[str, ...], float] = {}
    for c in s.containers:
        key = ("running" if c.running else "stopped", c.interface)
        counts[key] = counts.get(key, 0) + 1
    yield _untyped(
        "ds01_containers_total",
        "DS01 containers by status and interface",
        counts,
        ("status", "interface"),
    )
    total = sum((c.units for c in s.containers), Fraction(0))
    yield _gauge("ds01_gpu_equivalents", "GPU units held by all containers", {(): float(total)})
    yield _untyped(
        "ds01_unmanaged_gpu_count", "Unmanaged GPU containers", {(): s.unmanaged_gpu_containers}, ()
    )
    yield _gauge(
        "ds01_unmanaged_gpu_running",
        "Running unmanaged GPU containers",
        {(): s.unmanaged_gpu_running},
    )


def _users(s: StatusSnapshot) -> Iterator[Metric]:
    count: dict[tuple[str, ...], float] = {}
    devices: dict[tuple[str, ...], float] = {}
    units: dict[tuple[str, ...], Fraction] = {}
    states: dict[tuple[str, ...], float] = {}
    for c in s.containers:
        key = (c.owner,)
        count[key] = count.get(key, 0) + 1
        devices[key] = devices.get(key, 0) + len(c.slots)
        units[key] = units.get(key, Fraction(0)) + c.units
        if c.lifecycle_state is not None:
            states[(c.name, c.owner, c.lifecycle_state)] = 1
    yield _untyped("ds01_user_containers_count", "Containers of a user", count, ("user",))
    yield _gauge("ds01_user_gpus_allocated", "GPU devices a user holds", devices, ("user",))
    yield _gauge(
        "ds01_user_gpu_equivalents",
        "GPU units a user holds",
        {k: float(v) for k, v in units.items()},
        ("user",),
    )
    cpu = CounterMetricFamily(
        "ds01_user_cpu_usage_seconds", "CPU time of a user's containers", labels=("user",)
    )
    for user in sorted(s.user_cpu_seconds):
        cpu.add_metric([user], s.user_cpu_seconds[user])
    yield cpu
    yield _gauge(
        "ds01_user_memory_current_bytes",
        "Memory in use by a user's containers",
        {(u,): float(b) for u, b in s.user_memory_bytes.items()},
        ("user",),
    )
    yield _gauge(
        "ds01_lifecycle_state",
        "Lifecycle state of a watched container",
        states,
        ("container", "user", "state"),
    )


def _events(s: StatusSnapshot) -> Iterator[Metric]:
    yield _untyped(
        "ds01_events_24h_total",
        "Events in the last 24 hours by type",
        {(k,): float(v) for k, v in s.events_24h.items()},
        ("event_type",),
    )
    counter = CounterMetricFamily(
        "ds01_lifecycle_events", "Lifecycle events by type", labels=("event_type",)
    )
    for kind in sorted(s.lifecycle_events):
        counter.add_metric([kind], s.lifecycle_events[kind])
    yield counter


def _loop(loop: LoopStatus) -> Iterator[Metric]:
    if loop.commit is not None:
        yield _gauge(
            "ds01_reconcile_info",
            "The config repo commit in force",
            {(loop.commit,): 1},
            ("commit",),
        )
    if loop.last_success is not None:
        yield _gauge(
            "ds01_reconcile_last_success_timestamp_seconds",
            "When the last reconcile pass succeeded",
            {(): loop.last_success.timestamp()},
        )
    if loop.duration_s is not None:
        yield _gauge(
            "ds01_reconcile_duration_seconds",
            "How long the last reconcile pass took",
            {(): loop.duration_s},
        )
    yield _gauge(
        "ds01_reconcile_pending_requests",
        "Objects pending (no GPU, over quota, invalid)",
        {(): loop.pending_requests},
    )
    yield _gauge(
        "ds01_reconcile_drift_objects",
        "Managed objects that differ from their manifest",
        {(): loop.drift_objects},
    )


def build_registry(snapshot: StatusSnapshot) -> CollectorRegistry:
    return live_registry(snapshot)[0]


def live_registry(
    snapshot: StatusSnapshot,
) -> tuple[CollectorRegistry, Callable[[StatusSnapshot], None]]:
    """A registry and the function that swaps in a newer snapshot (one assignment: a scrape
    sees the old one or the new one, never a mix)."""
    registry = CollectorRegistry(auto_describe=False)
    collector = _Snapshot(snapshot)
    registry.register(collector)

    def update(newer: StatusSnapshot) -> None:
        collector.snapshot = newer

    return registry, update


def serve(
    registry: CollectorRegistry, port: int = DEFAULT_PORT, address: str = DEFAULT_ADDRESS
) -> Any:
    """Serve /metrics in a daemon thread; returns the server (its `server_port` is the port
    actually bound, for port 0) to shut down."""
    server, _thread = start_http_server(port, addr=address, registry=registry)
    return server
