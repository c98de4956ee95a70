"""When a tick plans in full (pure).

Planning costs an observation of every container (about 1.7 % of a core every 30 s with 300
workspaces); most ticks have nothing new. A tick plans when something may have changed:
the commit in force, the engine (its event stream; the lifecycle pass stopping something),
an admin's approval; and at least every `full_every` seconds, which catches what no
event reports (GPU state, host accounts, a hold running out, an exemption expiring) and
retries what failed.
"""

from __future__ import annotations


def full_pass_reason(
    *,
    commit_changed: bool,
    engine_changed: bool,
    approvals: bool,
    since_full: float | None,
    full_every: float,
) -> str | None:
    """Why this tick plans in full; None: it only fetches."""
    if since_full is None:
        return "first pass"
    if commit_changed:
        return "new commit"
    if approvals:
        return "approved plan"
    if engine_changed:
        return "engine event"
    if since_full >= full_every:
        return "periodic full pass"
    return None
