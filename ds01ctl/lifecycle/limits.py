"""A workspace's lifecycle limits from its owner's quota (`effective_limits`) and its own
`lifecycle` block (which may only be stricter), with exemptions told apart (pure).

An exemption that lifts idle_timeout or max_runtime (sets it to null) makes the policy give
notices on the schedule the user would have without it; one that only lengthens a value is
simply the value acted on, warnings included.
"""

from __future__ import annotations

import datetime as dt

from ds01ctl.lifecycle.policy import Limits
from ds01ctl.manifests.quota import QuotaPolicySpec
from ds01ctl.manifests.workspace import Lifecycle
from ds01ctl.resolve.quota import effective_limits


def lifecycle_limits(
    policy: QuotaPolicySpec | None,
    login: str,
    today: dt.date,
    own: Lifecycle | None = None,
) -> Limits:
    limits = effective_limits(policy, login, today)
    unexempt = (
        effective_limits(policy.model_copy(update={"exemptions": []}), login, today)
        if policy is not None and policy.exemptions
        else limits
    )
    exemptions = [
        limits.sources[key]
        for key in ("idle_timeout", "max_runtime")
        if limits.sources[key].startswith("exemption")
    ]
    return Limits(
        idle_timeout=_stricter(limits["idle_timeout"], own.idle_timeout if own else None),
        max_runtime=_stricter(limits["max_runtime"], own.max_runtime if own else None),
        gpu_hold=_stricter(limits["gpu_hold_after_stop"], own.gpu_hold_after_stop if own else None),
        notice_idle_timeout=unexempt["idle_timeout"],
        notice_max_runtime=unexempt["max_runtime"],
        exemption=exemptions[0].removeprefix("exemption").strip() or "without expiry"
        if exemptions
        else None,
    )


def _stricter(quota: int | None, own: int | None) -> int | None:
    if own is None:
        return quota
    return own if quota is None else min(quota, own)
