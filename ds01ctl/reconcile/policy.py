"""Which planned actions the loop applies on its own (pure).

A table by object kind, action and reason. Safe defaults: what makes, starts, stops or
resizes a container in place, and a delete that frees a GPU someone waits for, is automatic
(otherwise waiting users never get a GPU), and so is the removal of an orphan stopped past its
owner's container hold (the quota says it goes; snapshot first); what removes a container's
identity (a replace, a prune, a duplicate's removal) waits for an admin's approval, and so
does anything the table does not know (adoption, image rollouts, endpoint rollbacks as those
arrive), so a new kind of action is never automatic by accident. The Site's rules come
first; drift (reason `changed_outside`) is corrected as the table says or only reported, per
the Site.

An automatic action whose steps wait for a step of a held action is held with it: applying
it alone would run without what it depends on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ds01ctl.plan.actions import Action, Plan


class Verdict(StrEnum):
    AUTO = "auto"
    APPROVE = "approve"
    REPORT = "report"


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str = "*"
    action: str = "*"
    reason: str = "*"
    apply: Verdict = Verdict.APPROVE

    def matches(self, kind: str, action: str, reason: str) -> bool:
        return all(
            mine in ("*", theirs)
            for mine, theirs in ((self.kind, kind), (self.action, action), (self.reason, reason))
        )


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(action="create", apply=Verdict.AUTO),
    Rule(action="update", apply=Verdict.AUTO),
    Rule(action="start", apply=Verdict.AUTO),
    Rule(action="stop", apply=Verdict.AUTO),
    Rule(action="build", apply=Verdict.AUTO),
    Rule(action="cleanup", apply=Verdict.AUTO),
    Rule(action="delete", reason="gpu_released", apply=Verdict.AUTO),
    # An orphan past its container hold: the quota says it goes (snapshot first).
    Rule(action="delete", reason="container_hold_expired", apply=Verdict.AUTO),
    # Everything else, replaces and prunes included: an admin approves it.
    Rule(apply=Verdict.APPROVE),
)

DRIFT_REASON = "changed_outside"


@dataclass(frozen=True)
class Split:
    """A plan cut by the policy: what runs now, what waits for approval, what is shown only."""

    auto: tuple[Action, ...]
    held: tuple[Action, ...]
    reported: tuple[Action, ...]
    why: dict[str, str]  # target → the rule that held or reported it, for people

    @property
    def auto_targets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.target for a in self.auto))

    @property
    def held_targets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.target for a in self.held))


def object_kind(target: str) -> str:
    return target.split("/", 1)[0].lower()


def verdict(action: Action, rules: Sequence[Rule], *, drift: str = "correct") -> Verdict:
    """The first rule (the Site's, then the built-in table) matching the action."""
    reason = action.reason.value
    if reason == DRIFT_REASON and drift == "report":
        return Verdict.REPORT
    kind = object_kind(action.target)
    for rule in (*rules, *DEFAULT_RULES):
        if rule.matches(kind, action.kind.value, reason):
            return rule.apply
    return Verdict.APPROVE  # unreachable: the table ends with a catch-all


def split(plan: Plan, rules: Sequence[Rule] = (), *, drift: str = "correct") -> Split:
    """Sort the plan's actions by the policy, holding what depends on a held step."""
    verdicts = {a.id: verdict(a, rules, drift=drift) for a in plan.actions}
    owner = {s.id: a.id for a in plan.actions for s in a.steps}
    changed = True
    while changed:  # an auto action waiting on a held or reported step is held with it
        changed = False
        for action in plan.actions:
            if verdicts[action.id] is not Verdict.AUTO:
                continue
            deps = {verdicts[owner[d]] for d in action.depends_on if d in owner}
            if deps - {Verdict.AUTO}:
                verdicts[action.id] = Verdict.APPROVE
                changed = True
    why = {}
    for action in plan.actions:
        v = verdicts[action.id]
        if v is not Verdict.AUTO:
            why[action.target] = _why(action, v)
    return Split(
        auto=_of(plan.actions, verdicts, Verdict.AUTO),
        held=_of(plan.actions, verdicts, Verdict.APPROVE),
        reported=_of(plan.actions, verdicts, Verdict.REPORT),
        why=why,
    )


def _of(actions: Iterable[Action], verdicts: dict[int, Verdict], v: Verdict) -> tuple[Action, ...]:
    return tuple(a for a in actions if verdicts[a.id] is v)


def _why(action: Action, v: Verdict) -> str:
    what = f"{action.kind.value} ({action.reason.value})"
    if v is Verdict.REPORT:
        return f"{what}: reported only (the Site's reconcile policy)"
    return f"{what}: waits for an admin's approval"


def rules_of(settings: Iterable[object]) -> tuple[Rule, ...]:
    """The Site's rules (`AutoApplyRule` models, or anything with the same fields)."""
    return tuple(
        Rule(
            kind=getattr(r, "kind", "*"),
            action=getattr(r, "action", "*"),
            reason=getattr(r, "reason", "*"),
            apply=Verdict(getattr(r, "apply", "approve")),
        )
        for r in settings
    )
