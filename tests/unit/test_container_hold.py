"""Container holds: an orphan (a managed container whose manifest is gone) stopped longer than
its owner's `container_hold_after_stop` is snapshotted and deleted without --prune; a declared
workspace's container never is (the next plan would only make it again)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from ds01ctl.catalog.frameworks import FrameworkCatalog
from ds01ctl.model.observed import ObservedContainer
from ds01ctl.plan.actions import ActionKind, Plan, Reason, StepKind
from ds01ctl.plan.diff import diff
from ds01ctl.reconcile.policy import Verdict, verdict
from ds01ctl.resolve.desired import resolve
from ds01ctl.resolve.holds import container_holds
from tests.configrepo import NOW, world
from tests.unit.test_diff import _as_docker_reports, _spec
from tests.unit.test_resolve import _policy, _repo, _stopped, _workspace

HOUR = dt.timedelta(hours=1)


def _plan(repo: Any, tmp_path: Path, *containers: ObservedContainer, prune: bool = False) -> Plan:
    seen = world(tmp_path, containers)
    desired = resolve(repo, seen, FrameworkCatalog.load())
    return diff(desired, seen.observed, seen.inventory, prune=prune)


def _orphan(stopped: dt.datetime | None, *, running: bool = False) -> ObservedContainer:
    live = _stopped("dave", "old", (), NOW)  # dave has no manifest
    assert live.config is not None
    return dataclasses.replace(
        live,
        state="running" if running else "exited",
        config=dataclasses.replace(live.config, finished=stopped),
    )


def test_container_holds_count_only_stopped_containers_with_a_stop_time() -> None:
    expired = _stopped("dave", "a", (), NOW - 12 * HOUR)  # exactly at its hold: over
    kept = _stopped("dave", "b", (), NOW - 11 * HOUR)
    running = dataclasses.replace(_stopped("dave", "c", (), NOW - 48 * HOUR), state="running")
    never = _orphan(None)  # made, never started: no stop time
    unlimited = _stopped("erin", "d", (), NOW - 48 * HOUR)
    holds = container_holds(
        (expired, kept, running, never, unlimited), {"dave": 12 * 3600, "erin": None}, NOW
    )
    assert {cid: h.expired for cid, h in holds.items()} == {"dave-a": True, "dave-b": False}
    assert holds["dave-b"].expires_at == NOW + HOUR


def test_orphan_stopped_past_its_hold_is_deleted_without_prune_snapshot_first(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path, policy=_policy(container_hold_after_stop="12h"))
    plan = _plan(repo, tmp_path, _orphan(NOW - 13 * HOUR))
    assert [(a.kind, a.target, a.reason) for a in plan.actions] == [
        (ActionKind.DELETE, "workspace/dave/old", Reason.CONTAINER_HOLD_EXPIRED)
    ]
    action = plan.actions[0]
    assert [s.kind for s in action.steps] == [StepKind.SNAPSHOT, StepKind.REMOVE]
    assert action.steps[0].reason == "container_hold_expired"
    assert action.note == (
        "stopped since 2026-11-23 23:00 UTC, past its container hold of 12h; removed, its "
        "writable layer kept as a snapshot"
    )
    assert plan.orphans == ()
    assert verdict(action, ()) is Verdict.AUTO  # the loop applies it as it does GPU releases


def test_orphan_within_its_hold_stays_an_orphan_and_the_plan_says_until_when(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path, policy=_policy(container_hold_after_stop="12h"))
    plan = _plan(repo, tmp_path, _orphan(NOW - 11 * HOUR))
    assert plan.actions == ()
    assert plan.orphans == ("workspace/dave/old",)
    assert plan.notes == (
        "workspace/dave/old has no manifest and is stopped since 2026-11-24 01:00 UTC; at "
        "2026-11-24 13:00 UTC, past its container hold of 12h, it is removed (its writable "
        "layer kept as a snapshot)",
    )


def test_running_never_started_or_unlimited_orphans_are_only_reported(tmp_path: Path) -> None:
    repo = _repo(tmp_path, policy=_policy(container_hold_after_stop="12h"))
    for orphan in (_orphan(None, running=True), _orphan(None)):
        plan = _plan(repo, tmp_path, orphan)
        assert (plan.actions, plan.orphans, plan.notes) == ((), ("workspace/dave/old",), ())
    (tmp_path / "u").mkdir()
    unlimited = _repo(tmp_path / "u", policy=_policy(container_hold_after_stop=None))
    plan = _plan(unlimited, tmp_path / "u", _orphan(NOW - 1000 * HOUR))
    assert (plan.actions, plan.orphans) == ((), ("workspace/dave/old",))


def test_prune_takes_an_expired_orphan_as_a_hold_expiry_and_a_young_one_as_a_prune(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path, policy=_policy(container_hold_after_stop="12h"))
    old = _plan(repo, tmp_path, _orphan(NOW - 13 * HOUR), prune=True)
    young = _plan(repo, tmp_path, _orphan(NOW - HOUR), prune=True)
    assert [a.reason for a in old.actions] == [Reason.CONTAINER_HOLD_EXPIRED]
    assert [a.reason for a in young.actions] == [Reason.NO_MANIFEST]


# A declared workspace is never removed by its hold: the next plan would create it again (from
# its image, without its user's changes), and again after the next hold: a loop.
def test_declared_workspace_stopped_past_its_hold_is_kept(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path, _workspace("alice", "w"), policy=_policy(container_hold_after_stop="30m")
    )
    live = _as_docker_reports(_spec(tmp_path, repo))
    assert live.config is not None
    stopped = dataclasses.replace(
        live, state="exited", config=dataclasses.replace(live.config, finished=NOW - 48 * HOUR)
    )
    plan = _plan(repo, tmp_path, stopped)
    assert (plan.actions, plan.orphans, plan.notes) == ((), (), ())


def test_an_owner_with_no_manifest_left_gets_the_hold_of_their_quota(tmp_path: Path) -> None:
    policy = _policy(container_hold_after_stop="12h")
    policy["spec"]["users"] = {"dave": {"container_hold_after_stop": "2d"}}
    repo = _repo(tmp_path, policy=policy)
    plan = _plan(repo, tmp_path, _orphan(NOW - 13 * HOUR))
    assert plan.actions == () and plan.orphans == ("workspace/dave/old",)
    assert "past its container hold of 48h" in plan.notes[0]
