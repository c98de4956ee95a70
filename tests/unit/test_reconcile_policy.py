"""The reconcile loop's pure parts: the auto-apply table, when a tick plans, held plan ids,
and the deployment preflight."""

from __future__ import annotations

import pytest

from ds01ctl.manifests.autoapply import AutoApplyRule
from ds01ctl.plan.actions import Action, ActionKind, Plan, Reason, Step, StepKind
from ds01ctl.reconcile.enginewatch import relevant
from ds01ctl.reconcile.held import plan_id
from ds01ctl.reconcile.policy import Verdict, rules_of, split, verdict
from ds01ctl.reconcile.preflight import Seen, problems
from ds01ctl.reconcile.schedule import full_pass_reason


def _action(
    ident: int,
    kind: ActionKind,
    reason: Reason,
    target: str = "workspace/alice/a",
    depends: tuple[int, ...] = (),
    note: str | None = None,
) -> Action:
    step = Step(id=ident * 10, kind=StepKind.CREATE, depends_on=depends)
    return Action(id=ident, kind=kind, target=target, reason=reason, steps=(step,), note=note)


@pytest.mark.parametrize(
    ("kind", "reason", "expected"),
    [
        (ActionKind.CREATE, Reason.NEW, Verdict.AUTO),
        (ActionKind.UPDATE, Reason.LIMITS_CHANGED, Verdict.AUTO),
        (ActionKind.START, Reason.POWER, Verdict.AUTO),
        (ActionKind.STOP, Reason.POWER, Verdict.AUTO),
        (ActionKind.DELETE, Reason.GPU_RELEASED, Verdict.AUTO),
        (ActionKind.DELETE, Reason.CONTAINER_HOLD_EXPIRED, Verdict.AUTO),
        (ActionKind.CLEANUP, Reason.LEFTOVER_HELPER, Verdict.AUTO),
        (ActionKind.REPLACE, Reason.SPEC_CHANGED, Verdict.APPROVE),
        (ActionKind.REPLACE, Reason.SECURITY_DEFAULTS, Verdict.APPROVE),
        (ActionKind.REPLACE, Reason.CHANGED_OUTSIDE, Verdict.APPROVE),
        (ActionKind.DELETE, Reason.NO_MANIFEST, Verdict.APPROVE),  # a prune
        (ActionKind.DELETE, Reason.DUPLICATE, Verdict.APPROVE),
    ],
)
def test_the_built_in_table(kind: ActionKind, reason: Reason, expected: Verdict) -> None:
    assert verdict(_action(1, kind, reason), ()) is expected


def test_site_rules_come_first_and_match_by_kind_action_reason() -> None:
    rules = rules_of(
        [
            AutoApplyRule(action="replace", reason="security_defaults", apply="auto"),
            AutoApplyRule(kind="workspace", action="create", apply="approve"),
        ]
    )
    assert verdict(_action(1, ActionKind.REPLACE, Reason.SECURITY_DEFAULTS), rules) is Verdict.AUTO
    assert verdict(_action(1, ActionKind.REPLACE, Reason.SPEC_CHANGED), rules) is Verdict.APPROVE
    assert verdict(_action(1, ActionKind.CREATE, Reason.NEW), rules) is Verdict.APPROVE
    endpoint = _action(1, ActionKind.CREATE, Reason.NEW, target="endpoint/alice/e")
    assert verdict(endpoint, rules) is Verdict.AUTO


def test_drift_is_only_reported_when_the_site_says_so() -> None:
    update = _action(1, ActionKind.UPDATE, Reason.CHANGED_OUTSIDE)
    assert verdict(update, ()) is Verdict.AUTO
    assert verdict(update, (), drift="report") is Verdict.REPORT
    cut = split(Plan(actions=(update,)), drift="report")
    assert cut.auto == () and cut.held == () and cut.reported == (update,)


def test_an_automatic_action_waiting_on_a_held_step_is_held_with_it() -> None:
    # A create that takes the GPU a held replace frees must not run alone.
    replace = _action(1, ActionKind.REPLACE, Reason.SPEC_CHANGED, target="workspace/bob/old")
    create = _action(2, ActionKind.CREATE, Reason.NEW, depends=(10,))
    later = _action(3, ActionKind.START, Reason.POWER, target="workspace/c/x", depends=(20,))
    free = _action(4, ActionKind.CREATE, Reason.NEW, target="workspace/d/y")
    cut = split(Plan(actions=(replace, create, later, free)))
    assert cut.auto == (free,)
    assert cut.held == (replace, create, later)
    assert cut.held_targets == ("workspace/bob/old", "workspace/alice/a", "workspace/c/x")
    assert "waits for an admin's approval" in cut.why["workspace/bob/old"]


def test_a_held_plan_id_depends_on_what_it_does_not_on_ids_or_notes() -> None:
    a = _action(1, ActionKind.REPLACE, Reason.SPEC_CHANGED, note="snapshot first: 1 MB")
    b = _action(7, ActionKind.REPLACE, Reason.SPEC_CHANGED, note="snapshot first: 9 MB")
    other = _action(1, ActionKind.DELETE, Reason.NO_MANIFEST)
    assert plan_id((a,)) == plan_id((b,))
    assert plan_id((a,)) != plan_id((other,))
    assert len(plan_id((a,))) == 12


def test_a_tick_plans_only_when_something_may_have_changed() -> None:
    quiet = {
        "commit_changed": False,
        "engine_changed": False,
        "approvals": False,
        "since_full": 30.0,
        "full_every": 600.0,
    }
    assert full_pass_reason(**quiet) is None  # type: ignore[arg-type]
    assert full_pass_reason(**{**quiet, "since_full": None}) == "first pass"  # type: ignore[arg-type]
    assert full_pass_reason(**{**quiet, "commit_changed": True}) == "new commit"  # type: ignore[arg-type]
    assert full_pass_reason(**{**quiet, "engine_changed": True}) == "engine event"  # type: ignore[arg-type]
    assert full_pass_reason(**{**quiet, "approvals": True}) == "approved plan"  # type: ignore[arg-type]
    assert full_pass_reason(**{**quiet, "since_full": 600.0}) == "periodic full pass"  # type: ignore[arg-type]


_ALL = (
    ("/var/lib/ds01ctl", "/var/lib/ds01ctl"),
    ("/var/log/ds01", "/var/log/ds01"),
    ("/run/lock/ds01ctl", "/run/lock/ds01ctl"),
    ("/etc/passwd", "/etc/passwd"),
    ("/etc/group", "/etc/group"),
    ("/sys/fs/cgroup", "/sys/fs/cgroup"),
)
_NEEDED = (
    ("the state dir", "/var/lib/ds01ctl"),
    ("the event log's directory", "/var/log/ds01"),
    ("the lock dir", "/run/lock/ds01ctl"),
)


def test_preflight_outside_a_container_checks_nothing() -> None:
    assert problems(Seen(in_container=False)) == []


def test_preflight_passes_with_everything_mounted_at_the_same_paths() -> None:
    assert problems(Seen(True, host_pid=True, mounts=_ALL, needed=_NEEDED)) == []


@pytest.mark.parametrize(
    ("mounts", "host_pid", "missing"),
    [
        (_ALL[1:], True, "the state dir /var/lib/ds01ctl"),
        (
            (("/srv/state", "/var/lib/ds01ctl"), *_ALL[1:]),  # mounted, at another host path
            True,
            "the state dir /var/lib/ds01ctl is not the host's at the same path",
        ),
        (tuple(m for m in _ALL if m[0] != "/etc/passwd"), True, "the host's accounts"),
        (tuple(m for m in _ALL if m[0] != "/sys/fs/cgroup"), True, "the host's cgroups"),
        (_ALL, False, "the host's PID namespace (--pid host)"),
    ],
)
def test_preflight_names_what_is_missing(
    mounts: tuple[tuple[str, str], ...], host_pid: bool, missing: str
) -> None:
    found = problems(Seen(True, host_pid=host_pid, mounts=mounts, needed=_NEEDED))
    assert len(found) == 1 and missing in found[0]


def test_preflight_a_subdirectory_of_a_same_path_mount_is_covered() -> None:
    mounts = (("/var", "/var"), *_ALL[3:])
    assert problems(Seen(True, host_pid=True, mounts=mounts, needed=_NEEDED[:2])) == []
    assert problems(Seen(True, found_self=False))[0].startswith("its own container")


def _event(kind: str, action: str, **attributes: str) -> dict[str, object]:
    return {"Type": kind, "Action": action, "Actor": {"ID": "x", "Attributes": attributes}}


@pytest.mark.parametrize(
    ("event", "waiting", "wakes"),
    [
        (_event("container", "update", **{"ds01.site": "lab"}), False, True),  # drift
        (_event("container", "die", **{"ds01.site": "lab"}), False, True),
        (_event("container", "exec_start", **{"ds01.site": "lab"}), False, False),
        (_event("container", "start", **{"ds01.site": "other"}), True, False),  # not ours
        (_event("container", "create", **{"aime.mlc": "bob"}), False, True),  # plain mlc
        (_event("container", "die", name="job"), True, True),  # may free a GPU someone waits for
        (_event("container", "die", name="job"), False, False),
        (_event("container", "create", name="job"), True, False),
        (_event("network", "connect", name="ds01-lab"), False, True),
        (_event("network", "connect", name="none"), False, False),
    ],
)
def test_which_engine_events_wake_the_loop(
    event: dict[str, object], waiting: bool, wakes: bool
) -> None:
    assert relevant(event, "lab", "ds01-lab", waiting=waiting) is wakes


def test_before_a_commit_is_in_force_every_site_and_network_counts() -> None:
    assert relevant(_event("container", "start", **{"ds01.site": "x"}), None, None, waiting=False)
    assert relevant(_event("network", "connect", name="none"), None, None, waiting=False)
