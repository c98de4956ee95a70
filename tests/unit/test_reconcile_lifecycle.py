"""The lifecycle pass as the loop reports it: rows for `status`, warnings per owner."""

from __future__ import annotations

import datetime as dt

from ds01ctl.lifecycle.clock import Step
from ds01ctl.lifecycle.enforce import PassResult
from ds01ctl.lifecycle.policy import Cause, Decision, Outcome, State, Timers
from ds01ctl.reconcile.lifecycle import report_of

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def _outcome(key: str, state: State, *decisions: Decision) -> Outcome:
    return Outcome(Timers(key, NOW, NOW), state, decisions, "idle since 08:36")


def test_report_of_a_pass_lists_watched_workspaces_and_each_owners_warnings() -> None:
    stop_at = NOW + dt.timedelta(minutes=6)
    warn = Decision(
        "workspace/ann/nb", "c1", Step.WARN, Cause.IDLE, "idle for 24m: stops in 6m", stop_at
    )
    stop = Decision("workspace/bob/big", "c2", Step.STOP, Cause.MAX_RUNTIME, "ran 7d: stopped")
    result = PassResult(
        NOW,
        {
            "c1": _outcome("workspace/ann/nb", State.WARNED, warn),
            "c2": _outcome("workspace/bob/big", State.STOPPING, stop),
            "c3": Outcome(None, State.UNWATCHED, (), "an endpoint"),
        },
        lines=(),
        problems=(),
        duration_s=0.1,
        dry_run=False,
        stopped=("workspace/bob/big",),
    )
    report = report_of(result)
    assert report.acted
    assert [(r["target"], r["state"], r["stop_at"]) for r in report.timers] == [
        ("workspace/ann/nb", "warned", stop_at.isoformat()),
        ("workspace/bob/big", "stopping", None),
    ]
    assert report.warnings == {
        "ann": ("workspace/ann/nb: idle for 24m: stops in 6m",),
        "bob": ("workspace/bob/big: ran 7d: stopped",),
    }
    assert not report_of(
        PassResult(NOW, {}, lines=(), problems=(), duration_s=0.0, dry_run=False)
    ).acted
