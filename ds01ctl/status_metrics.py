"""`ds01ctl exporter`: the status snapshot the exporter serves, read from the world (the
shell around `exporter.py`), refreshed every `--interval` seconds in the main thread while
prometheus-client serves the latest one from its own thread. A scrape never touches the
engine: the cost is one observation per interval, whatever the scrape rate.

Sources: one `Driver.observe` (containers, their GPUs, owners), the GPU inventory (slots),
each running container's cgroup (CPU time; memory where the hierarchy has it), the lifecycle
timers (`lifecycle.json`: each watched container's state), the event log (counts by type),
and the reconcile loop's own numbers (`reconcile.json`, `loopstatus.py`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from pathlib import Path

from ds01ctl import labels as L
from ds01ctl.events import parse_time, read_events
from ds01ctl.exporter import ContainerStatus, Slot, StatusSnapshot, live_registry, serve
from ds01ctl.lifecycle.policy import State, Timers
from ds01ctl.lifecycle.timers import read_timers
from ds01ctl.live.activity import ActivityReader, detect_layout
from ds01ctl.loopstatus import read_loop_status
from ds01ctl.model.inventory import GpuInventory
from ds01ctl.model.observed import Observed, ObservedContainer

LIFECYCLE_EVENTS = ("maintenance.", "gpu.hold_expired")


def slots_of(inventory: GpuInventory | None) -> tuple[Slot, ...]:
    """DS01's gpu_slot: the GPU index, or `<index>.<n>` for its n-th MIG instance (by
    placement)."""
    if inventory is None:
        return ()
    found: list[Slot] = []
    for gpu in sorted(inventory.gpus, key=lambda g: g.index):
        if not gpu.mig_enabled:
            found.append(Slot(str(gpu.index), gpu.index, gpu.uuid))
            continue
        for n, mig in enumerate(sorted(gpu.migs, key=lambda m: (m.placement_start, m.gi_id))):
            found.append(Slot(f"{gpu.index}.{n}", gpu.index, mig.uuid, True, mig.gi_id))
    return tuple(found)


def lifecycle_state(timers: Timers | None) -> str | None:
    """The state the policy last left a watched container in (from its timers)."""
    if timers is None:
        return None
    if timers.release_noted_at is not None:
        return State.RELEASE_DUE.value
    clocks = (timers.idle, timers.runtime)
    if any(c.final_at is not None for c in clocks):
        return State.FINAL_WARNED.value
    if any(c.warned_at is not None for c in clocks):
        return State.WARNED.value
    return (
        State.ACTIVE if timers.last_active >= timers.observed_at else State.IDLE_SUSPECTED
    ).value


def snapshot(
    observed: Observed,
    inventory: GpuInventory | None,
    timers: Mapping[str, Timers],
    usage: Mapping[str, tuple[float | None, int | None]],
    events: Iterable[Mapping[str, object]],
    now: dt.datetime,
) -> StatusSnapshot:
    """The snapshot from what was read (pure). `usage`: container id → (CPU seconds, memory
    bytes); `events`: the event log's records."""
    slots = slots_of(inventory)
    slot_of = {s.uuid: s.slot for s in slots}
    containers = []
    cpu: dict[str, float] = {}
    memory: dict[str, int] = {}
    for c in observed.ours():
        owner = c.owner or "?"
        containers.append(
            ContainerStatus(
                c.name,
                owner,
                c.running,
                tuple(slot_of[u] for u in c.gpu_ids if u in slot_of),
                _units(c, inventory),
                lifecycle_state(timers.get(c.id)),
            )
        )
        seconds, used = usage.get(c.id, (None, None))
        if seconds is not None:
            cpu[owner] = cpu.get(owner, 0.0) + seconds
        if used is not None:
            memory[owner] = memory.get(owner, 0) + used
    unmanaged = [
        c for c in observed.containers if c.ownership is not L.Ownership.OURS and c.gpu_access.any
    ]
    day_ago = now - dt.timedelta(hours=24)
    last_day: dict[str, int] = {}
    lifecycle: dict[str, int] = {}
    for record in events:
        kind = str(record.get("event_type"))
        if kind.startswith(LIFECYCLE_EVENTS):
            lifecycle[kind] = lifecycle.get(kind, 0) + 1
        when = parse_time(str(record.get("timestamp")))
        if when is not None and when >= day_ago:
            last_day[kind] = last_day.get(kind, 0) + 1
    return StatusSnapshot(
        containers=tuple(containers),
        slots=slots,
        user_cpu_seconds=cpu,
        user_memory_bytes=memory,
        events_24h=last_day,
        lifecycle_events=lifecycle,
        unmanaged_gpu_containers=len(unmanaged),
        unmanaged_gpu_running=sum(1 for c in unmanaged if c.running),
    )


def _units(c: ObservedContainer, inventory: GpuInventory | None) -> Fraction:
    if inventory is None:
        return Fraction(0)
    found = (inventory.device(u) for u in c.gpu_ids)
    return sum((d.units for d in found if d is not None), Fraction(0))


def read_usage(
    observed: Observed, reader: ActivityReader | None
) -> dict[str, tuple[float | None, int | None]]:
    """CPU seconds and memory bytes of each running managed container, from its cgroup."""
    found: dict[str, tuple[float | None, int | None]] = {}
    if reader is None:
        return found
    for c in observed.ours():
        if not c.running or c.config is None:
            continue
        directory = reader.cgroup_dir(c.id, c.config.pid or None)
        if directory is None:
            continue
        found[c.id] = (reader.cpu_seconds(directory), _memory(reader, directory))
    return found


def _memory(reader: ActivityReader, directory: Path) -> int | None:
    """v2: `memory.current` beside `cpu.stat`; v1: the memory hierarchy's `usage_in_bytes` at
    the same relative path (where it is mounted beside cpuacct, as usual)."""
    if reader.layout.version == 2:
        candidates = [directory / "memory.current"]
    else:
        relative = directory.relative_to(reader.layout.root)
        candidates = [reader.layout.root.parent / "memory" / relative / "memory.usage_in_bytes"]
    for path in candidates:
        try:
            text = path.read_text(encoding="ascii").strip()
        except OSError:
            continue
        if text.isdigit():
            return int(text)
    return None


def run_exporter(
    read_world: Callable[[], tuple[Observed, GpuInventory | None]],
    *,
    state_dir: Path,
    events_path: Path,
    address: str,
    port: int,
    interval: float,
    once: bool,
    echo: Callable[[str], None],
    warn: Callable[[str], None],
) -> int:
    """Serve (or, with `once`, print) the metrics, refreshing every `interval` seconds."""
    from prometheus_client import generate_latest

    layout = detect_layout()
    reader = ActivityReader(layout) if layout is not None else None

    def refresh() -> StatusSnapshot:
        now = dt.datetime.now(dt.UTC)
        observed, inventory = read_world()
        timers = read_timers(state_dir)
        loop, problem = read_loop_status(state_dir)
        for line in filter(None, [timers.problem, problem]):
            warn(line)
        events = read_events(events_path).records
        found = snapshot(
            observed, inventory, timers.timers, read_usage(observed, reader), events, now
        )
        return dataclasses.replace(found, loop=loop)

    registry, update = live_registry(refresh())
    if once:
        echo(generate_latest(registry).decode().rstrip("\n"))
        return 0
    server = serve(registry, port=port, address=address)
    echo(f"serving /metrics on {address}:{server.server_port}, refreshed every {interval:g} s")
    try:
        while True:
            time.sleep(interval)
            try:
                update(refresh())
            except Exception as exc:  # the engine away for a moment: keep serving the last
                warn(f"refresh failed ({exc}); serving the previous snapshot")
    finally:
        server.shutdown()
