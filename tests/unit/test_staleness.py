"""A saved plan is carried out only if it is exactly what a fresh plan of the repo would do."""

from __future__ import annotations

import dataclasses

from ds01ctl.model.spec import Bind, ContainerSpec
from ds01ctl.plan.actions import Action, ActionKind, BudgetRow, Plan, Reason
from ds01ctl.plan.staleness import differences, restrict
from tests.specs import workspace_spec

SPEC = workspace_spec("ann", "nb", uid=1000)


def _create(spec: ContainerSpec = SPEC, action_id: int = 0) -> Action:
    return Action(action_id, ActionKind.CREATE, spec.key, Reason.NEW, spec=spec)


def test_staleness_same_plan_agrees() -> None:
    fresh = Plan((_create(),))
    saved = Plan((dataclasses.replace(_create(), note="explained differently", id=7),))
    assert differences(saved, fresh) == []


def test_staleness_edited_spec_is_named() -> None:
    socket = Bind("/var/run/docker.sock", "/var/run/docker.sock")
    forged = dataclasses.replace(SPEC, binds=(*SPEC.binds, socket))
    assert differences(Plan((_create(forged),)), Plan((_create(),))) == [
        "workspace/ann/nb: spec.binds differs from a fresh plan"
    ]


def test_staleness_extra_and_missing_actions_are_named() -> None:
    other = dataclasses.replace(SPEC, owner="bob")
    assert differences(Plan((_create(), _create(other, 1))), Plan((_create(),))) == [
        "workspace/bob/nb: a fresh plan does nothing to it"
    ]
    assert differences(Plan(()), Plan((_create(),))) == [
        "workspace/ann/nb: a fresh plan has actions on it that the saved one lacks"
    ]


def test_staleness_other_kind_is_named() -> None:
    deleted = Action(0, ActionKind.DELETE, SPEC.key, Reason.NO_MANIFEST, container_id="c1")
    assert differences(Plan((deleted,)), Plan((_create(),))) == [
        "workspace/ann/nb: the action differs from a fresh plan"
    ]


def test_staleness_restrict_keeps_budgets_and_notes() -> None:
    other = dataclasses.replace(SPEC, name="other")
    plan = Plan(
        actions=(_create(SPEC, 1), _create(other, 2)),
        budgets=(BudgetRow("ann", "0", "1", "2"),),
        notes=("workspace/ann/x keeps its GPU",),
    )
    narrowed = restrict(plan, ["workspace/ann/nb"])
    assert [a.target for a in narrowed.actions] == ["workspace/ann/nb"]
    assert (narrowed.budgets, narrowed.notes) == (plan.budgets, plan.notes)
    assert narrowed.warnings == ("only part of the plan is applied (--target)",)
