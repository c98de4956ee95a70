"""The lifecycle policy: per managed container, from observed activity and its timers, what
to do now (warn, final warning, stop, notice, release a GPU) and why. Pure: the caller reads
the world (`ds01ctl.live.activity`) and acts on the decisions.

States: active → idle_suspected → warned → final_warned → (stop) → stopped → release_due.

What counts as activity, between two passes: CPU time above `cpu_active_cores` of a core (a
busy silent job is active, an open idle shell is not), GPU use (utilisation of a whole GPU;
under MIG, where NVML has no utilisation per instance, any compute process of the container
on its instance), a `docker exec` session started since the last pass, a container (re)start,
and a `.keep-alive` file in /workspace younger than `keep_alive_max_age` (a keep-alive dated
in the future is ignored: its owner sets its mtime). A container whose CPU time cannot be read
is taken as active: what we cannot see we do not stop.

Scope, decided here:
- Idle stop applies only to running workspaces that hold GPUs (as DS01: the point is freeing
  GPUs; a CPU-only workspace is never idle-stopped). `max_runtime` applies to every running
  workspace, counted from its last start, and stops it regardless of activity, after warnings.
- Endpoints are neither idle-stopped nor runtime-stopped: their manifest declares them
  running, so the loop would restart what it stopped, and a server waiting for requests is
  idle by design.
- A workspace pinned `power: running` is stopped like any other (else writing it would lift
  every timeout); the stop is recorded (`lifecycle/stops.py`) and the plan does not start it
  again until its owner does, so the loop never stops then restarts the same container.
  `power: stopped` is the plan's business.
- `ds01.protected=true` and exemptions (quota exemptions that loosen idle_timeout or
  max_runtime) give notices on the unexempted schedule; an exemption acts on its own value,
  and once it expires the normal clocks apply, warnings first.
- High-demand mode (someone is pending for a GPU) multiplies idle timeouts by
  `high_demand_factor`, only while it lasts; a stop already announced is never brought
  forward, and one no longer due is cleared.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from ds01ctl.lifecycle.clock import Clock, Leads, Step, advance, cleared, leads, notice
from ds01ctl.resolve.allocate import Pending


class Cause(StrEnum):
    IDLE = "idle"
    MAX_RUNTIME = "max_runtime"
    GPU_HOLD = "gpu_hold"


class State(StrEnum):
    ACTIVE = "active"
    IDLE_SUSPECTED = "idle_suspected"
    WARNED = "warned"
    FINAL_WARNED = "final_warned"
    STOPPING = "stopping"  # a stop was decided this pass
    STOPPED = "stopped"  # holding its GPUs
    RELEASE_DUE = "release_due"  # its GPU hold expired: free for whoever waits
    UNWATCHED = "unwatched"  # endpoints, power: stopped, stopped without GPUs


@dataclass(frozen=True, slots=True)
class Settings:
    """The policy's knobs, with DS01's values as defaults."""

    cpu_active_cores: float = 0.02  # DS01 cpu_idle_threshold: 2 % (of one core here)
    gpu_active_pct: int = 5  # DS01 gpu_idle_threshold
    keep_alive_max_age: dt.timedelta = dt.timedelta(hours=24)  # DS01 keepalive_max_duration_h
    warn_at: float = 0.80  # DS01: first warning at 80 % of the timeout
    final_at: float = 0.95  # DS01: final warning at 95 %
    high_demand_factor: float = 0.5  # DS01 high_demand_idle_reduction
    clock_skew: dt.timedelta = dt.timedelta(minutes=1)  # a keep-alive this far ahead still counts


@dataclass(frozen=True, slots=True)
class Limits:
    """One container's lifecycle limits, in seconds (None: never).

    `idle_timeout` and `max_runtime` are what the policy acts on; `notice_*` the schedule
    without exemptions, for notices where an exemption loosened it."""

    idle_timeout: int | None
    max_runtime: int | None
    gpu_hold: int | None
    notice_idle_timeout: int | None = None
    notice_max_runtime: int | None = None
    exemption: str | None = None  # "until 2026-05-01 (thesis deadline)"


@dataclass(frozen=True, slots=True)
class Observation:
    """One container as a pass saw it (built by `ds01ctl.live.activity`)."""

    container_id: str
    key: str  # workspace/<owner>/<name>
    owner: str
    kind: str = "workspace"  # workspace | endpoint
    running: bool = True
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    gpu_ids: tuple[str, ...] = ()
    power: str = "any"  # the manifest's power: any | running | stopped
    protected: bool = False
    cpu_seconds: float | None = None  # cumulative, from the cgroup; None: unreadable
    gpu_active: bool | None = None  # None: no GPU, or unknown
    sessions: int = 0  # live `docker exec` sessions
    newest_session: dt.datetime | None = None
    keep_alive: dt.datetime | None = None  # mtime of /workspace/.keep-alive


@dataclass(frozen=True, slots=True)
class Timers:
    """What the policy remembers of one container between passes (the timers file)."""

    key: str
    observed_at: dt.datetime
    last_active: dt.datetime
    started_at: dt.datetime | None = None
    cpu_seconds: float | None = None
    idle: Clock = field(default_factory=Clock)
    runtime: Clock = field(default_factory=Clock)
    release_noted_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    key: str
    container_id: str
    step: Step
    cause: Cause
    reason: str  # one line for people: events, warnings, status
    deadline: dt.datetime | None = None  # when it stops (warnings) or stopped

    def time_left(self, now: dt.datetime) -> dt.timedelta | None:
        return None if self.deadline is None else max(self.deadline - now, dt.timedelta(0))


@dataclass(frozen=True, slots=True)
class Outcome:
    timers: Timers | None  # None: nothing to remember (gone, unwatched)
    state: State
    decisions: tuple[Decision, ...]
    activity: str  # why it counts as active, or since when it is idle


@dataclass(frozen=True, slots=True)
class Demand:
    """High demand: someone waits for a GPU (the plan's pending GPU requests)."""

    pending_gpu_requests: int = 0

    @property
    def high(self) -> bool:
        return self.pending_gpu_requests > 0


def gpu_demand(pending: Iterable[Pending]) -> Demand:
    """High demand from a plan's unplaced GPU requests: those that wait for a device (`no
    room …`), not those over their owner's own budget (freeing others' GPUs helps them not)."""
    return Demand(sum(1 for p in pending if p.reason.startswith("no room")))


def demand_note(demand: Demand, settings: Settings = Settings()) -> str | None:
    """What the plan says while high-demand mode lasts."""
    if not demand.high:
        return None
    return (
        f"high demand: {demand.pending_gpu_requests} request(s) wait for a GPU, so idle "
        f"timeouts of GPU workspaces are ×{settings.high_demand_factor:g} until none waits"
    )


def decide(
    obs: Observation,
    previous: Timers | None,
    limits: Limits,
    now: dt.datetime,
    settings: Settings = Settings(),
    demand: Demand = Demand(),
) -> Outcome:
    """What to do about one container now."""
    if not obs.running:
        return _stopped(obs, previous, limits, now)
    if obs.kind != "workspace" or obs.power == "stopped":
        why = "an endpoint" if obs.kind != "workspace" else "pinned power: stopped"
        return Outcome(None, State.UNWATCHED, (), f"{why}: not watched")
    if previous is not None and obs.started_at != previous.started_at:
        previous = None  # restarted since: a new run, new clocks
    active_why = _activity(obs, previous, now, settings)
    last_active = now if active_why else previous.last_active if previous else now
    if obs.keep_alive is not None and not active_why:
        expiry = obs.keep_alive + settings.keep_alive_max_age
        if expiry <= now + settings.clock_skew:  # an expired keep-alive counts until it expired
            last_active = max(last_active, min(expiry, now))
    timers = Timers(
        obs.key,
        now,
        last_active,
        obs.started_at,
        obs.cpu_seconds,
        previous.idle if previous else Clock(),
        previous.runtime if previous else Clock(),
    )
    decisions: list[Decision] = []
    timers = _idle(obs, timers, limits, now, settings, demand, decisions)
    timers = _runtime(obs, timers, limits, now, settings, decisions)
    activity = active_why or f"idle since {last_active.isoformat(timespec='seconds')}"
    return Outcome(timers, _state(timers, decisions, active_why), tuple(decisions), activity)


def _activity(
    obs: Observation, prev: Timers | None, now: dt.datetime, settings: Settings
) -> str | None:
    """Why the container counts as active since the last pass, or None when idle."""
    if prev is None:
        return "first seen since its start"
    if obs.cpu_seconds is None or prev.cpu_seconds is None:
        return "CPU time unreadable: taken as active"
    elapsed = (now - prev.observed_at).total_seconds()
    used = obs.cpu_seconds - prev.cpu_seconds
    if used < 0:
        return "CPU counter went back: restarted"
    if elapsed > 0 and used / elapsed >= settings.cpu_active_cores:
        return f"busy on CPU ({100 * used / elapsed:.0f}% of a core)"
    if obs.gpu_active:
        return "busy on its GPU"
    if obs.newest_session is not None and obs.newest_session > prev.observed_at:
        return "a new docker exec session"
    if obs.keep_alive is not None and _fresh(obs.keep_alive, now, settings):
        return f"keep-alive touched {obs.keep_alive.isoformat(timespec='seconds')}"
    return None


def _fresh(keep_alive: dt.datetime, now: dt.datetime, settings: Settings) -> bool:
    """A keep-alive counts until its max age; one dated in the future (its owner sets the
    mtime: `touch -d 2099-01-01`) does not count at all, or it would never expire."""
    if keep_alive > now + settings.clock_skew:
        return False
    return now - keep_alive < settings.keep_alive_max_age


def _idle(
    obs: Observation,
    timers: Timers,
    limits: Limits,
    now: dt.datetime,
    settings: Settings,
    demand: Demand,
    out: list[Decision],
) -> Timers:
    if not obs.gpu_ids:
        return replace(timers, idle=Clock())  # CPU-only: never idle-stopped
    factor = settings.high_demand_factor if demand.high else 1.0
    acting, why_not = _acting(obs, limits.idle_timeout, limits.exemption)
    timeout = limits.idle_timeout if acting else limits.notice_idle_timeout or limits.idle_timeout
    if timeout is None:
        return replace(timers, idle=Clock())
    timeout = int(timeout * factor)
    nominal = timers.last_active + dt.timedelta(seconds=timeout)
    idle_for = _minutes(now - timers.last_active)
    demand_note = (
        f"; high demand ({demand.pending_gpu_requests} waiting for a GPU): timeout halved"
        if demand.high and factor == 0.5
        else f"; high demand: timeout ×{factor}"
        if demand.high
        else ""
    )
    reason = f"idle for {idle_for} (timeout {_minutes(dt.timedelta(seconds=timeout))}){demand_note}"
    clock = _run_clock(
        timers.idle, nominal, timeout, acting, why_not, now, settings, reason, obs, Cause.IDLE, out
    )
    return replace(timers, idle=clock)


def _runtime(
    obs: Observation,
    timers: Timers,
    limits: Limits,
    now: dt.datetime,
    settings: Settings,
    out: list[Decision],
) -> Timers:
    acting, why_not = _acting(obs, limits.max_runtime, limits.exemption)
    limit = limits.max_runtime if acting else limits.notice_max_runtime or limits.max_runtime
    if limit is None or obs.started_at is None:
        return replace(timers, runtime=Clock())
    nominal = obs.started_at + dt.timedelta(seconds=limit)
    reason = (
        f"running for {_minutes(now - obs.started_at)} "
        f"(max_runtime {_minutes(dt.timedelta(seconds=limit))}), active or not"
    )
    clock = _run_clock(
        timers.runtime, nominal, limit, acting, why_not, now, settings, reason, obs,
        Cause.MAX_RUNTIME, out,
    )  # fmt: skip
    return replace(timers, runtime=clock)


def _acting(obs: Observation, value: int | None, exemption: str | None) -> tuple[bool, str]:
    """Whether a clock may stop the container, and if not, why (for the notice)."""
    if obs.protected:
        return False, "labelled ds01.protected"
    if exemption is not None and value is None:
        return False, f"exempt {exemption}"
    return True, ""


def _run_clock(
    clock: Clock,
    nominal: dt.datetime,
    timeout: int,
    acting: bool,
    why_not: str,
    now: dt.datetime,
    settings: Settings,
    reason: str,
    obs: Observation,
    cause: Cause,
    out: list[Decision],
) -> Clock:
    lead: Leads | None = leads(timeout, settings.warn_at, settings.final_at) if acting else None
    if cleared(clock, nominal, lead, now):
        if clock.warned_at is not None:
            out.append(Decision(obs.key, obs.container_id, Step.CLEARED, cause, "active again"))
        clock = Clock()
    if lead is None:
        clock, step = notice(clock, nominal, now)
        if step is not None:
            text = f"{reason}; not stopped: {why_not}"
            out.append(Decision(obs.key, obs.container_id, step, cause, text))
        return clock
    clock, step, due = advance(clock, nominal, lead, now)
    if step is not None:
        if step is Step.STOP:
            text = f"stopped: {reason}"
        else:
            text = f"{reason}; stops in {_minutes(due - now)}"
        out.append(Decision(obs.key, obs.container_id, step, cause, text, due))
    return clock


def _stopped(
    obs: Observation, previous: Timers | None, limits: Limits, now: dt.datetime
) -> Outcome:
    if not obs.gpu_ids or obs.kind != "workspace":
        return Outcome(None, State.UNWATCHED, (), "stopped, no GPU held")
    if obs.finished_at is None or limits.gpu_hold is None:
        return Outcome(None, State.STOPPED, (), "stopped; keeps its GPUs (no hold limit)")
    expires = obs.finished_at + dt.timedelta(seconds=limits.gpu_hold)
    if now < expires:
        return Outcome(None, State.STOPPED, (), f"stopped; holds its GPUs until {expires:%H:%M}")
    noted = previous.release_noted_at if previous else None
    timers = Timers(obs.key, now, obs.finished_at, obs.started_at, release_noted_at=noted or now)
    decisions: tuple[Decision, ...] = ()
    if noted is None:
        reason = (
            f"stopped since {obs.finished_at.isoformat(timespec='seconds')}: GPU hold "
            f"{_minutes(dt.timedelta(seconds=limits.gpu_hold))} over; released to whoever waits"
        )
        decisions = (
            Decision(obs.key, obs.container_id, Step.RELEASE_GPU, Cause.GPU_HOLD, reason, expires),
        )
    return Outcome(timers, State.RELEASE_DUE, decisions, "stopped")


def _state(timers: Timers, decisions: list[Decision], active_why: str | None) -> State:
    if any(d.step is Step.STOP for d in decisions):
        return State.STOPPING
    clocks = (timers.idle, timers.runtime)
    if any(c.final_at is not None for c in clocks):
        return State.FINAL_WARNED
    if any(c.warned_at is not None for c in clocks):
        return State.WARNED
    return State.ACTIVE if active_why else State.IDLE_SUSPECTED


def _minutes(delta: dt.timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds % 60:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 60} min"


def run_pass(
    observations: Mapping[str, Observation],
    previous: Mapping[str, Timers],
    limits_of: Mapping[str, Limits],
    now: dt.datetime,
    settings: Settings = Settings(),
    demand: Demand = Demand(),
) -> dict[str, Outcome]:
    """`decide` for every observed container (by container id, sorted); containers no longer
    observed are forgotten. `limits_of` maps a workspace key to its limits; one missing there
    has no limits (never stopped)."""
    none = Limits(None, None, None)
    return {
        cid: decide(
            observations[cid],
            previous.get(cid),
            limits_of.get(observations[cid].key, none),
            now,
            settings,
            demand,
        )
        for cid in sorted(observations)
    }
