"""The lifecycle enforcement as the loop's hook: one `run_pass` per tick, its result reported.

The pass keeps one `ActivityReader` across ticks (it remembers where each container's cgroup
is, which the first pass of a process pays for) and takes the last plan's GPU demand, so
high-demand mode follows whoever waits for a GPU. What it decided goes to `ds01ctl status`
(one row per watched workspace) and to each owner's status file (their warnings).
"""

from __future__ import annotations

from collections import defaultdict

from ds01ctl.lifecycle.enforce import NO_DEMAND, PassResult, run_pass
from ds01ctl.lifecycle.policy import State
from ds01ctl.live.activity import ActivityReader, detect_layout
from ds01ctl.reconcile.hooks import LifecycleContext, LifecycleHook, LifecycleReport


def enforcement() -> LifecycleHook:
    layout = detect_layout()
    reader = ActivityReader(layout) if layout is not None else None

    def run(context: LifecycleContext) -> LifecycleReport:
        result = run_pass(
            context.driver,
            context.repo,
            context.state_dir,
            now=context.now,
            demand=context.demand or NO_DEMAND,
            events=context.events,
            reader=reader,
        )
        return report_of(result)

    return run


def report_of(result: PassResult) -> LifecycleReport:
    """What `status` shows of one pass: each watched workspace's state, and the warnings and
    stops per owner (a problem the pass met is the admin's, in the loop's log)."""
    timers = []
    warnings: defaultdict[str, list[str]] = defaultdict(list)
    for outcome in result.outcomes.values():
        if outcome.timers is None or outcome.state is State.UNWATCHED:
            continue
        deadline = next((d.deadline for d in outcome.decisions if d.deadline), None)
        timers.append(
            {
                "target": outcome.timers.key,
                "state": outcome.state.value,
                "activity": outcome.activity,
                "stop_at": None if deadline is None else deadline.isoformat(),
            }
        )
        for decision in outcome.decisions:
            owner = decision.key.split("/")[1] if decision.key.count("/") == 2 else ""
            if owner:
                warnings[owner].append(f"{decision.key}: {decision.reason}")
    return LifecycleReport(
        acted=bool(result.stopped),
        timers=tuple(sorted(timers, key=lambda row: str(row["target"]))),
        warnings={login: tuple(lines) for login, lines in sorted(warnings.items())},
    )
