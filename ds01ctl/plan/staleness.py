"""Whether a saved plan still fits what is live, and narrowing a plan to some targets (pure).

A saved plan records a fingerprint of every container it acts on; apply re-observes and
refuses the whole plan if any of them changed, if something now exists where it planned a
create, or if a GPU it would take is held by someone else now.
"""

from __future__ import annotations

from collections.abc import Iterable

from ds01ctl.plan.actions import ActionKind, Plan


def stale_reasons(saved: Plan, fresh: Plan) -> list[str]:
    """Why `saved` can no longer be applied, judged against a `fresh` plan of the same repo."""
    reasons = []
    if saved.meta.get("engine_id") != fresh.meta.get("engine_id"):
        return ["it was made for another Docker engine"]
    fresh_prints = {
        a.container_id: a.fingerprint for a in fresh.actions if a.fingerprint is not None
    }
    fresh_creates = {a.target for a in fresh.actions if a.kind is ActionKind.CREATE}
    holders = {row.uuid: row.before for row in fresh.gpus}
    for action in saved.actions:
        if action.fingerprint is not None:
            now = fresh_prints.get(action.container_id)
            if now != action.fingerprint:
                reasons.append(f"{action.target}: its container changed or is gone")
        elif action.kind is ActionKind.CREATE:
            if action.target not in fresh_creates:
                reasons.append(f"{action.target}: it exists now")
            assert action.spec is not None
            taken = [u for u in action.spec.gpus if holders.get(u) not in (None, action.target)]
            if taken:
                reasons.append(f"{action.target}: GPU {', '.join(taken)} is taken now")
    return reasons


def restrict(plan: Plan, targets: Iterable[str]) -> Plan:
    """Only the actions on `targets`, plus what they depend on (GPU-freeing steps)."""
    by_id = {a.id: a for a in plan.actions}
    keep = {a.id for a in plan.actions if a.target in set(targets)}
    frontier = list(keep)
    while frontier:
        for dep in by_id[frontier.pop()].depends_on:
            if dep not in keep:
                keep.add(dep)
                frontier.append(dep)
    return Plan(
        actions=tuple(a for a in plan.actions if a.id in keep),
        drift=plan.drift,
        orphans=plan.orphans,
        unmanaged=plan.unmanaged,
        pending=plan.pending,
        gpus=plan.gpus,
        warnings=(*plan.warnings, "only part of the plan is applied (--target)"),
        meta=plan.meta,
    )
