"""The lifecycle policy over synthetic activity timelines: one pass every 30 s, as the loop
would run, and the steps each pass decides (pure: no engine, no clock). A timeline ends at the
pass that decides a stop."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from ds01ctl.lifecycle.clock import Step
from ds01ctl.lifecycle.policy import (
    Demand,
    Limits,
    Observation,
    Settings,
    State,
    Timers,
    decide,
    demand_note,
    gpu_demand,
)
from ds01ctl.resolve.allocate import Pending

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
GPU = ("GPU-11111111-2222-3333-4444-555555555555",)
LIMITS = Limits(idle_timeout=30 * 60, max_runtime=24 * 3600, gpu_hold=15 * 60)
DEFAULTS = Settings()


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def base(**changes: object) -> Observation:
    obs = Observation(
        container_id="c" * 64,
        key="workspace/alice/train",
        owner="alice",
        started_at=T0,
        gpu_ids=GPU,
        cpu_seconds=10.0,
    )
    return replace(obs, **changes)  # type: ignore[arg-type]


@dataclass
class Run:
    steps: dict[float, list[Step]]
    reasons: dict[float, list[str]]
    states: dict[float, State]
    timers: Timers | None


def run(
    observe: Callable[[float], Observation],
    until: float,
    *,
    start: float = 0.0,
    every: float = 0.5,
    limits: Limits = LIMITS,
    settings: Settings = DEFAULTS,
    demand: Callable[[float], Demand] = lambda m: Demand(),
    timers: Timers | None = None,
    skip: tuple[float, float] | None = None,  # the daemon is down in [a, b)
) -> Run:
    result = Run({}, {}, {}, timers)
    minute = start
    while minute <= until + 1e-9:
        if skip is None or not skip[0] <= minute < skip[1]:
            out = decide(
                observe(minute), result.timers, limits, at(minute), settings, demand(minute)
            )
            result.timers = out.timers
            result.states[minute] = out.state
            if out.decisions:
                result.steps[minute] = [d.step for d in out.decisions]
                result.reasons[minute] = [d.reason for d in out.decisions]
            if out.state is State.STOPPING:
                break  # the container is stopped: this timeline ends
        minute = round(minute + every, 6)
    return result


def idle(minute: float) -> Observation:
    return base()


# The timeline: a GPU workspace idle since its start, timeout 30 min.
def test_lifecycle_idle_timeline_warns_then_final_then_stops() -> None:
    result = run(idle, 31)
    assert result.steps == {24: [Step.WARN], 28.5: [Step.FINAL_WARN], 30: [Step.STOP]}
    assert 29 not in result.steps  # idle 29 min: no action
    assert result.reasons[24] == ["idle for 24 min (timeout 30 min); stops in 6 min"]
    assert result.reasons[28.5] == ["idle for 28 min 30 s (timeout 30 min); stops in 1 min 30 s"]
    assert result.states[23.5] is State.IDLE_SUSPECTED
    assert result.states[26] is State.WARNED
    assert result.states[29] is State.FINAL_WARNED
    assert result.states[30] is State.STOPPING


@pytest.mark.parametrize(
    ("minute", "expected"),
    [(23.5, None), (24, Step.WARN), (28.5, Step.FINAL_WARN), (29, None), (30, Step.STOP)],
)
def test_lifecycle_idle_table(minute: float, expected: Step | None) -> None:
    steps = run(idle, 31).steps
    assert steps.get(minute, [None]) == [expected]


def test_lifecycle_keep_alive_resets_but_not_past_its_max_age() -> None:
    settings = Settings(keep_alive_max_age=dt.timedelta(hours=1))
    # Touched at minute 20: active while it is younger than an hour (until minute 80), then
    # the idle clock counts from its expiry: warning at 80 + 24, stop at 80 + 30.
    result = run(lambda m: base(keep_alive=at(20) if m >= 20 else None), 120, settings=settings)
    assert result.steps == {104: [Step.WARN], 108.5: [Step.FINAL_WARN], 110: [Step.STOP]}


def test_lifecycle_keep_alive_touched_after_a_warning_clears_it() -> None:
    result = run(lambda m: base(keep_alive=at(25) if m >= 25 else None), 40)
    assert result.steps == {24: [Step.WARN], 25: [Step.CLEARED]}


def test_lifecycle_keep_alive_in_the_future_does_not_count() -> None:
    # Its owner set the mtime (`touch -d 2099-01-01`): honoured, it would never expire.
    result = run(lambda m: base(keep_alive=at(60 * 24 * 365 * 70)), 31)
    assert result.steps == {24: [Step.WARN], 28.5: [Step.FINAL_WARN], 30: [Step.STOP]}


@pytest.mark.parametrize(
    ("name", "observe"),
    [
        # A silent job using a core: no output, no session, busy all the same.
        ("busy silent CPU", lambda m: base(cpu_seconds=10.0 + 60 * m)),
        ("busy GPU, no CPU", lambda m: base(gpu_active=True)),
        # 3 % of a core, above DS01's 2 % threshold.
        ("light CPU", lambda m: base(cpu_seconds=10.0 + 0.03 * 60 * m)),
        ("CPU unreadable", lambda m: base(cpu_seconds=None)),
    ],
)
def test_lifecycle_busy_is_active(name: str, observe: Callable[[float], Observation]) -> None:
    result = run(observe, 90)
    assert result.steps == {}, name
    assert result.states[90] is State.ACTIVE


def test_lifecycle_open_idle_shell_is_not_activity() -> None:
    # A shell opened at minute 1 and left: the new session counts once, not while it sits.
    result = run(lambda m: base(sessions=1 if m >= 1 else 0, newest_session=at(1)), 40)
    assert result.steps == {25: [Step.WARN], 29.5: [Step.FINAL_WARN], 31: [Step.STOP]}


def test_lifecycle_background_noise_is_idle() -> None:
    # An idle Jupyter server: 0.5 % of a core.
    result = run(lambda m: base(cpu_seconds=10.0 + 0.005 * 60 * m), 31)
    assert result.steps == {24: [Step.WARN], 28.5: [Step.FINAL_WARN], 30: [Step.STOP]}


def test_lifecycle_exempt_user_only_gets_a_notice() -> None:
    exempt = Limits(None, None, 15 * 60, notice_idle_timeout=30 * 60, exemption="until 2026-06-30")
    result = run(idle, 600, limits=exempt)
    assert result.steps == {30: [Step.NOTICE]}
    assert result.reasons[30] == [
        "idle for 30 min (timeout 30 min); not stopped: exempt until 2026-06-30"
    ]


def test_lifecycle_never_stops_protected() -> None:
    limits = replace(LIMITS, max_runtime=60 * 60)
    result = run(lambda m: base(protected=True), 120, limits=limits)
    assert result.steps == {30: [Step.NOTICE], 60: [Step.NOTICE]}
    assert result.reasons[30][0].endswith("not stopped: labelled ds01.protected")


def test_lifecycle_pinned_running_is_stopped_like_any_other() -> None:
    # `power: running` lifts no timeout: the plan keeps it stopped afterwards (stops.py).
    result = run(lambda m: base(power="running"), 31)
    assert result.steps == {24: [Step.WARN], 28.5: [Step.FINAL_WARN], 30: [Step.STOP]}


def test_lifecycle_gpu_demand_counts_only_requests_waiting_for_a_device() -> None:
    pending = [
        Pending(
            "workspace/bob/a", "bob", "no room for one 1g.10gb MIG instance; free now: nothing"
        ),
        Pending("workspace/eve/b", "eve", "eve's GPU budget is full: holds 1 of 1 GPU units"),
    ]
    demand = gpu_demand(pending)
    assert demand == Demand(1)
    assert demand_note(demand) == (
        "high demand: 1 request(s) wait for a GPU, so idle timeouts of GPU workspaces are ×0.5 "
        "until none waits"
    )
    assert demand_note(gpu_demand(pending[1:])) is None


def test_lifecycle_daemon_down_past_the_timeout_warns_before_it_stops() -> None:
    # Seen idle at minutes 0-5, then down until minute 120: warn at once, stop a lead later.
    result = run(idle, 130, skip=(5.5, 120))
    assert result.steps == {120: [Step.WARN], 124.5: [Step.FINAL_WARN], 126: [Step.STOP]}
    assert result.reasons[120] == ["idle for 2 h 00 min (timeout 30 min); stops in 6 min"]


def test_lifecycle_daemon_down_between_warnings_still_gives_the_final_one() -> None:
    result = run(idle, 45, skip=(25, 40))
    assert result.steps == {24: [Step.WARN], 40: [Step.FINAL_WARN], 41.5: [Step.STOP]}


def test_lifecycle_max_runtime_stops_a_busy_container_after_warnings() -> None:
    limits = replace(LIMITS, max_runtime=60 * 60)
    result = run(lambda m: base(cpu_seconds=10.0 + 60 * m), 61, limits=limits)
    assert result.steps == {48: [Step.WARN], 57: [Step.FINAL_WARN], 60: [Step.STOP]}
    assert result.reasons[48] == [
        "running for 48 min (max_runtime 1 h 00 min), active or not; stops in 12 min"
    ]


def test_lifecycle_cpu_only_workspace_is_never_idle_stopped() -> None:
    limits = replace(LIMITS, max_runtime=60 * 60)
    result = run(lambda m: base(gpu_ids=()), 61, limits=limits)
    assert result.steps == {48: [Step.WARN], 57: [Step.FINAL_WARN], 60: [Step.STOP]}  # runtime
    assert all("max_runtime" in r for rs in result.reasons.values() for r in rs)


def test_lifecycle_endpoints_are_not_watched() -> None:
    result = run(lambda m: base(kind="endpoint"), 120)
    assert result.steps == {}
    assert result.states[120] is State.UNWATCHED


def test_lifecycle_high_demand_halves_the_idle_timeout_only_while_it_lasts() -> None:
    # Someone waits for a GPU from minute 10 to 13: warned at 12 (timeout 15), then cleared.
    waiting = lambda m: Demand(pending_gpu_requests=1 if 10 <= m < 13 else 0)  # noqa: E731
    result = run(idle, 31, demand=waiting)
    assert result.steps == {
        12: [Step.WARN],
        13: [Step.CLEARED],
        24: [Step.WARN],
        28.5: [Step.FINAL_WARN],
        30: [Step.STOP],
    }
    assert "high demand (1 waiting for a GPU)" in result.reasons[12][0]


def test_lifecycle_restart_resets_the_clocks() -> None:
    result = run(lambda m: base(started_at=at(20) if m >= 20 else T0), 60)
    assert result.steps == {44: [Step.WARN], 48.5: [Step.FINAL_WARN], 50: [Step.STOP]}


def test_lifecycle_stopped_workspace_releases_its_gpu_once_after_the_hold() -> None:
    stopped = lambda m: base(running=False, finished_at=at(5))  # noqa: E731
    result = run(stopped, 40)
    assert result.steps == {20: [Step.RELEASE_GPU]}
    assert result.states[19.5] is State.STOPPED
    assert result.states[40] is State.RELEASE_DUE


def test_lifecycle_no_idle_timeout_means_never() -> None:
    limits = Limits(None, None, None)
    assert run(idle, 600, limits=limits, every=5).steps == {}


def test_lifecycle_first_sight_past_max_runtime_warns_before_it_stops() -> None:
    # No timers at all (a new daemon, a lost state dir): a workspace started 2 h ago with a
    # 1 h max_runtime is warned now and stopped a full lead (12 min) later; its idle clock
    # starts now, since nothing was measured before.
    limits = replace(LIMITS, max_runtime=60 * 60)
    result = run(idle, 133, start=120, limits=limits)
    assert result.steps == {120: [Step.WARN], 129: [Step.FINAL_WARN], 132: [Step.STOP]}
    assert result.reasons[120] == [
        "running for 2 h 00 min (max_runtime 1 h 00 min), active or not; stops in 12 min"
    ]
