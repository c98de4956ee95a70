"""One lifecycle pass, the shell around the pure policy: observe managed containers, read
their activity, let `policy.run_pass` decide, then act: warn, stop, record.

Per pass: one `Driver.observe` (or the caller's), the cgroup files of each running managed
container (`live/activity.py`: CPU time, `docker exec` sessions, `.keep-alive`), GPU use
from the inventory (NVML: a whole GPU's utilisation; on MIG, where NVML has no utilisation
per instance, a compute process of the container on its instance), and the timers kept in
the state dir (`lifecycle.json`). No `docker stats`, no `docker top`.

Acting, in this order, so that nothing is ever stopped unannounced:

1. every warning, final warning, notice and stop is told to the user (their terminals in the
   container and `/workspace/.ds01-alerts`, written as the user: `apply/notify.py`) and
   logged as an event (`events.jsonl`, DS01's schema v1), with the time left;
2. the timers and the stop records (`lifecycle-stops.json`) are written;
3. the stops are made (`Driver.stop`, with the container's own stop grace). A stop that fails
   is retried by the next pass (its timers still say it is due).

A crash between 1 and 2 only repeats warnings; the policy never acts sooner than a warning it
gave promised. GPUs are not released here: a stopped workspace keeps them for its GPU hold
(`gpu_hold_after_stop`), then the next plan snapshots and deletes it when someone waits for
its GPU (`resolve/holds.py`); this pass logs when a hold runs out (`gpu.hold_expired`).

`--dry-run` decides and reports, and changes nothing: no notice, event, timer or stop.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ds01ctl import labels as L
from ds01ctl.apply.notify import Delivery, notify_as
from ds01ctl.errors import Ds01Error
from ds01ctl.events import EventLog, lifecycle_event
from ds01ctl.lifecycle.clock import Step
from ds01ctl.lifecycle.limits import lifecycle_limits
from ds01ctl.lifecycle.policy import (
    Decision,
    Demand,
    Limits,
    Observation,
    Outcome,
    Settings,
)
from ds01ctl.lifecycle.policy import run_pass as decide_all
from ds01ctl.lifecycle.stops import LifecycleStop, kept, read_stops, write_stops
from ds01ctl.lifecycle.timers import read_timers, write_timers
from ds01ctl.live.activity import ActivityReader, detect_layout, gpu_active
from ds01ctl.live.paths import walk
from ds01ctl.manifests import Workspace
from ds01ctl.manifests.validate import ConfigRepo
from ds01ctl.model.driver import Driver
from ds01ctl.model.inventory import GpuInventory
from ds01ctl.model.observed import Observed, ObservedContainer

WORKSPACE_TARGET = "/workspace"
# The steps a user is told about, and how the message starts.
_TOLD = {
    Step.WARN: "warning",
    Step.FINAL_WARN: "final warning",
    Step.STOP: "stopping now",
    Step.NOTICE: "notice",
    Step.CLEARED: "all clear",
}

Notifier = Callable[..., Delivery]
NO_DEMAND = Demand()
DEFAULTS = Settings()


@dataclass(frozen=True)
class PassResult:
    """What one pass decided and did; `lines` are for people (one per decision)."""

    at: dt.datetime
    outcomes: Mapping[str, Outcome]  # container id → the policy's outcome
    lines: tuple[str, ...]
    problems: tuple[str, ...]
    duration_s: float
    dry_run: bool
    stopped: tuple[str, ...] = ()  # keys of the workspaces stopped by this pass

    @property
    def decisions(self) -> tuple[Decision, ...]:
        return tuple(d for o in self.outcomes.values() for d in o.decisions)


@dataclass
class _Acts:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stops: dict[str, LifecycleStop] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)


def run_pass(
    driver: Driver,
    repo: ConfigRepo,
    state_dir: Path,
    *,
    now: dt.datetime | None = None,
    observed: Observed | None = None,
    inventory: GpuInventory | None = None,
    demand: Demand = NO_DEMAND,
    events: EventLog | None = None,
    dry_run: bool = False,
    reader: ActivityReader | None = None,
    settings: Settings = DEFAULTS,
    notify: Notifier = notify_as,
) -> PassResult:
    """One lifecycle pass over the site's managed containers.

    The reconcile loop calls it once per tick with what it already has: its observation and
    GPU inventory (else they are read here), `demand` from its plan
    (`policy.gpu_demand(desired.allocation.pending)`), its event log, and one `reader` kept
    across ticks (it remembers where each container's cgroup is). `now` is injectable (tests
    run the clock forward). Raises `Ds01Error` only when the timers cannot be written."""
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    assert repo.site is not None
    site = repo.site.metadata.name
    problems: list[str] = []
    observed = observed or driver.observe(site)
    if inventory is None:
        inventory = _inventory(repo, problems)
    if reader is None:
        layout = detect_layout()
        if layout is None:
            problems.append("no cgroup hierarchy with CPU accounting: every container is active")
        reader = ActivityReader(layout) if layout is not None else None
    manifests = _workspaces(repo)
    containers = {c.id: c for c in observed.ours() if c.config is not None}
    observations = {
        cid: _observe(c, manifests, reader, inventory, settings) for cid, c in containers.items()
    }
    previous = read_timers(state_dir)
    problems.extend(filter(None, [previous.problem]))
    limits_of = {key: limits for key, (limits, _power) in _limits(repo, manifests, now).items()}
    outcomes = decide_all(observations, previous.timers, limits_of, now, settings, demand)
    acts = _Acts(problems=problems)
    for cid, outcome in outcomes.items():
        for decision in outcome.decisions:
            acts.lines.append(_line(decision, now, dry_run))
            if not dry_run:
                _tell(decision, containers[cid], repo, events, notify, reader, now, acts)
    if not dry_run:
        _record(state_dir, outcomes, observed, now, acts)
        for cid, outcome in outcomes.items():
            for decision in outcome.decisions:
                if decision.step is Step.STOP:
                    _stop(driver, containers[cid], decision, acts)
    return PassResult(
        now,
        outcomes,
        tuple(acts.lines),
        tuple(acts.problems),
        time.perf_counter() - started,
        dry_run,
        tuple(acts.stopped),
    )


def _inventory(repo: ConfigRepo, problems: list[str]) -> GpuInventory | None:
    from ds01ctl.workflow import gpu_inventory

    try:
        return gpu_inventory(repo)
    except Ds01Error as exc:
        problems.append(f"GPU use unknown ({exc.message}): only CPU time and sessions count")
        return None


def _workspaces(repo: ConfigRepo) -> dict[str, Workspace]:
    return {f"workspace/{w.metadata.owner}/{w.metadata.name}": w for w, _ in repo.of(Workspace)}


def _limits(
    repo: ConfigRepo, manifests: Mapping[str, Workspace], now: dt.datetime
) -> dict[str, tuple[Limits, str]]:
    policy = repo.policy.spec if repo.policy is not None else None
    found: dict[tuple[str, int | None, int | None, int | None], Limits] = {}
    result: dict[str, tuple[Limits, str]] = {}
    for key, w in manifests.items():
        own = w.spec.lifecycle
        asked = (w.metadata.owner or "", own.idle_timeout, own.max_runtime, own.gpu_hold_after_stop)
        if asked not in found:  # once per owner and lifecycle block: quotas are layered
            found[asked] = lifecycle_limits(policy, asked[0], now.date(), own)
        result[key] = (found[asked], w.spec.power)
    return result


def _observe(
    c: ObservedContainer,
    manifests: Mapping[str, Workspace],
    reader: ActivityReader | None,
    inventory: GpuInventory | None,
    settings: Settings,
) -> Observation:
    config = c.config
    assert config is not None
    manifest = manifests.get(c.key)
    obs = Observation(
        container_id=c.id,
        key=c.key,
        owner=c.owner or "",
        kind=c.kind,
        running=c.running,
        started_at=config.started,
        finished_at=config.finished,
        gpu_ids=c.gpu_ids,
        power=manifest.spec.power if manifest is not None else "any",
        protected=L.get(c.labels, L.DS01_PROTECTED) == "true",
    )
    if not c.running or c.kind != "workspace":
        return obs
    found = workspace_source(config.binds)
    activity = (
        reader.read(c.id, config.pid or None, Path(found) if found else None)
        if reader is not None
        else None
    )
    busy_gpu = (
        gpu_active(inventory, c.id, c.gpu_ids, settings.gpu_active_pct)
        if inventory is not None
        else None
    )
    if activity is None:
        return replace(obs, gpu_active=busy_gpu)
    return replace(
        obs,
        cpu_seconds=activity.cpu_seconds,
        sessions=activity.sessions,
        newest_session=activity.newest_session,
        keep_alive=activity.keep_alive,
        gpu_active=busy_gpu,
    )


def workspace_source(binds: tuple[str, ...]) -> str | None:
    """The host directory mounted at /workspace, from the container's binds."""
    for bind in binds:
        parts = bind.split(":")
        if len(parts) >= 2 and parts[1] == WORKSPACE_TARGET:
            return parts[0]
    return None


def _line(decision: Decision, now: dt.datetime, dry_run: bool) -> str:
    verb = "would " if dry_run else ""
    return f"{decision.key}: {verb}{decision.step.value}: {decision.reason}"


def _tell(
    decision: Decision,
    container: ObservedContainer,
    repo: ConfigRepo,
    events: EventLog | None,
    notify: Notifier,
    reader: ActivityReader | None,
    now: dt.datetime,
    acts: _Acts,
) -> None:
    owner = container.owner or ""
    if events is not None:
        try:
            events.append(lifecycle_event(decision, owner, now))
        except Ds01Error as exc:
            acts.problems.append(exc.message)
    heading = _TOLD.get(decision.step)
    if heading is None or not container.running:
        return
    ids = _uid_gid(container)
    if ids is None:
        acts.problems.append(f"{decision.key}: runs as no numeric uid:gid; its user was not told")
        return
    real, why = _alerts_dir(container, repo)
    message = f"{heading}: {container.object_name}: {decision.reason}"
    delivery = notify(
        ids[0],
        ids[1],
        message,
        workspace_real=real,
        pids=_pids(container, reader),
        stamp=now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    problem = why or delivery.problem
    if problem:
        acts.problems.append(f"{decision.key}: /workspace/.ds01-alerts not written: {problem}")


def _uid_gid(container: ObservedContainer) -> tuple[int, int] | None:
    assert container.config is not None
    uid, _, gid = container.config.user.partition(":")
    if not uid.isdigit() or not gid.isdigit():
        return None
    return int(uid), int(gid)


def _alerts_dir(container: ObservedContainer, repo: ConfigRepo) -> tuple[str | None, str | None]:
    """The real path of the workspace's host directory (admin symlinks resolved, the
    owner's refused), or why there is none."""
    assert container.config is not None and repo.site is not None
    source = workspace_source(container.config.binds)
    if source is None:
        return None, None  # no /workspace mount: terminals only
    found = walk(source, container.owner or "", repo.site.spec.mount_policy)
    if found.problem is not None:
        return None, found.problem
    if found.missing:
        return None, f"{found.path} does not exist"
    return found.real, None


def _pids(container: ObservedContainer, reader: ActivityReader | None) -> list[int]:
    """The container's processes (host pids), from its cgroup's `cgroup.procs`."""
    assert container.config is not None
    pid = container.config.pid
    if not pid:
        return []
    directory = reader.cgroup_dir(container.id, pid) if reader is not None else None
    if directory is None:
        return [pid]
    try:
        text = (directory / "cgroup.procs").read_text(encoding="ascii")
    except OSError:
        return [pid]
    return [int(p) for p in text.split() if p.isdigit()]


def _record(
    state_dir: Path,
    outcomes: Mapping[str, Outcome],
    observed: Observed,
    now: dt.datetime,
    acts: _Acts,
) -> None:
    write_timers(state_dir, {cid: o.timers for cid, o in outcomes.items() if o.timers})
    found = read_stops(state_dir)
    if found.problem:
        acts.problems.append(found.problem)
    records = kept(found.stops, observed.ours())
    for outcome in outcomes.values():
        for d in outcome.decisions:
            if d.step is Step.STOP:
                started = outcome.timers.started_at if outcome.timers else None
                records[d.key] = LifecycleStop(
                    d.key, d.container_id, d.cause.value, now, d.reason, started
                )
    try:
        write_stops(state_dir, records)
    except OSError as exc:
        raise Ds01Error(
            f"cannot write the lifecycle stops in {state_dir}: {exc.strerror or exc}",
            hint="free space or fix the state dir; no container was stopped by this pass",
            code="lifecycle_timers",
        ) from None


def _stop(driver: Driver, container: ObservedContainer, decision: Decision, acts: _Acts) -> None:
    assert container.config is not None
    try:
        driver.stop(container.id, container.config.stop_grace)
    except Exception as exc:  # the engine's error, whatever its type: retried next pass
        acts.problems.append(f"{decision.key}: the stop failed ({exc}); the next pass retries")
        return
    acts.stopped.append(decision.key)


def run_command(
    config: Path,
    *,
    once: bool,
    dry_run: bool,
    interval: float,
    events_path: Path,
    state_dir: Path | None,
    echo: Callable[[str], None],
    warn: Callable[[str], None],
) -> int:
    """`ds01ctl lifecycle run`: passes every `interval` seconds (one with `once`), without
    the reconcile loop. Each pass plans first (nothing is applied) for what it needs from a
    plan: who waits for a GPU (high-demand mode) and the observation."""
    from ds01ctl.drivers.docker import DockerDriver
    from ds01ctl.lifecycle.policy import gpu_demand
    from ds01ctl.statedir import existing_state_dir
    from ds01ctl.workflow import load_repo, make_plan, state_dir_of

    driver = DockerDriver.connect()
    layout = detect_layout()
    reader = ActivityReader(layout) if layout is not None else None
    events = None if dry_run else EventLog(events_path)
    try:
        while True:
            now = dt.datetime.now(dt.UTC)
            repo = load_repo(config, now.date())
            directory = existing_state_dir(state_dir_of(repo, state_dir))
            observed, demand = None, NO_DEMAND
            try:
                planned = make_plan(config, driver=driver, now=now, repo=repo, state_dir=directory)
                observed, demand = planned.observed, gpu_demand(planned.desired.allocation.pending)
            except Ds01Error as exc:
                warn(f"no plan ({exc.message}): high-demand mode is off for this pass")
            result = run_pass(
                driver,
                repo,
                directory,
                now=now,
                observed=observed,
                demand=demand,
                events=events,
                dry_run=dry_run,
                reader=reader,
            )
            for line in result.lines:
                echo(line)
            for problem in result.problems:
                warn(problem)
            if once:
                return 0
            time.sleep(max(interval - result.duration_s, 1.0))
    finally:
        if events is not None:
            events.close()
