"""Whether a saved plan still fits what is live, and narrowing a plan to some targets (pure).

A saved plan records a fingerprint of every container it acts on; apply re-observes and
refuses the whole plan if any of them changed, if something now exists where it planned a
create (its object, or any container by the name it would give), or if a GPU it would take is
held by anyone else now (any container, managed or not, or a process).

A saved plan is also untrusted input: its digest only catches accidents, since anyone can
recompute it. So apply re-plans from the config repo named on the command line and carries out
the saved plan only if it is exactly that fresh plan (`differences`): every saved action equal
to the fresh action on its target in kind, container and full spec, and no fresh action missing
from it. The saved file thus decides nothing a fresh plan would not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ds01ctl.plan.actions import Action, ActionKind, Plan


def stale_reasons(saved: Plan, fresh: Plan) -> list[str]:
    """Why `saved` can no longer be applied, judged against a `fresh` plan of the same repo."""
    reasons = []
    if saved.meta.engine_id != fresh.meta.engine_id:
        return ["it was made for another Docker engine"]
    fresh_prints = {
        a.container_id: a.fingerprint for a in fresh.actions if a.fingerprint is not None
    }
    fresh_creates = {a.target for a in fresh.actions if a.kind is ActionKind.CREATE}
    holders = {row.uuid: row.before for row in fresh.gpus}
    waiting = {p.target: p.reason for p in fresh.pending}
    for action in saved.actions:
        if action.fingerprint is not None:
            now = fresh_prints.get(action.container_id)
            if now != action.fingerprint:
                reasons.append(f"{action.target}: its container changed or is gone")
        elif action.kind is ActionKind.CREATE:
            if action.target in waiting:  # e.g. its container name is in use now
                reasons.append(
                    f"{action.target}: it cannot be created now: {waiting[action.target]}"
                )
            elif action.target not in fresh_creates:
                reasons.append(f"{action.target}: it exists now")
            gpus = action.container.gpus if action.container is not None else ()
            taken = [u for u in gpus if holders.get(u) not in (None, action.target)]
            if taken:
                reasons.append(f"{action.target}: GPU {', '.join(taken)} is taken now")
    return reasons


def differences(saved: Plan, fresh: Plan) -> list[str]:
    """How `saved` differs from `fresh` in what apply would do; empty when they agree."""
    saved_by, fresh_by = _by_target(saved.actions), _by_target(fresh.actions)
    found = []
    for target in sorted(saved_by.keys() | fresh_by.keys()):
        mine, theirs = saved_by.get(target, []), fresh_by.get(target, [])
        if not theirs:
            found.append(f"{target}: a fresh plan does nothing to it")
        elif not mine:
            found.append(f"{target}: a fresh plan has actions on it that the saved one lacks")
        elif [_payload(a) for a in mine] != [_payload(a) for a in theirs]:
            found.append(f"{target}: {_what_differs(mine, theirs)} differs from a fresh plan")
    return found


def _by_target(actions: Iterable[Action]) -> dict[str, list[Action]]:
    grouped: dict[str, list[Action]] = {}
    for action in actions:
        grouped.setdefault(action.target, []).append(action)
    return grouped


def _payload(action: Action) -> tuple[object, ...]:
    """What the executor acts on; ids, reasons, notes and change lists only explain it."""
    steps = tuple(dataclasses.replace(s, id=0, depends_on=(), of_step=None) for s in action.steps)
    return (action.kind, action.container_id, action.fingerprint, action.spec, steps)


def _what_differs(mine: list[Action], theirs: list[Action]) -> str:
    if [a.kind for a in mine] != [a.kind for a in theirs]:
        return "the action"
    if [_payload(a)[4] for a in mine] != [_payload(a)[4] for a in theirs]:
        return "its steps"
    fields: set[str] = set()
    for a, b in zip(mine, theirs, strict=True):
        if a.container_id != b.container_id or a.fingerprint != b.fingerprint:
            fields.add("the container")
        if a.spec is None or b.spec is None:
            if a.spec != b.spec:
                fields.add("spec")
            continue
        for f in dataclasses.fields(a.spec):
            if getattr(a.spec, f.name) != getattr(b.spec, f.name):
                fields.add(f"spec.{f.name}")
    return ", ".join(sorted(fields)) or "the action"


def restrict(plan: Plan, targets: Iterable[str], *, why: str = "--target") -> Plan:
    """Only the actions on `targets`, plus the actions whose steps theirs depend on (the
    steps freeing GPUs they take)."""
    owner = {s.id: a for a in plan.actions for s in a.steps}
    keep = {a.id for a in plan.actions if a.target in set(targets)}
    frontier = [a for a in plan.actions if a.id in keep]
    while frontier:
        for dep in frontier.pop().depends_on:
            needed = owner[dep]
            if needed.id not in keep:
                keep.add(needed.id)
                frontier.append(needed)
    # Everything but the actions is kept as it was (budgets and notes included).
    return dataclasses.replace(
        plan,
        actions=tuple(a for a in plan.actions if a.id in keep),
        warnings=(*plan.warnings, f"only part of the plan is applied ({why})"),
    )
