"""Lifecycle limits from the quota layers, a workspace's own stricter values and exemptions."""

from __future__ import annotations

import datetime as dt

from ds01ctl.lifecycle.limits import lifecycle_limits
from ds01ctl.lifecycle.policy import Limits
from ds01ctl.manifests.quota import QuotaPolicySpec
from ds01ctl.manifests.workspace import Lifecycle

POLICY = QuotaPolicySpec.model_validate(
    {
        "default_group": "students",
        "defaults": {"idle_timeout": "30m", "max_runtime": "24h", "gpu_hold_after_stop": "15m"},
        "groups": {"students": {"members": ["alice", "bob"]}},
        "exemptions": [
            {
                "user": "bob",
                "limits": {"idle_timeout": None},
                "expires": "2026-06-30",
                "reason": "thesis",
            }
        ],
    }
)


def test_lifecycle_limits_from_the_quota() -> None:
    assert lifecycle_limits(POLICY, "alice", dt.date(2026, 3, 1)) == Limits(
        1800, 86400, 900, notice_idle_timeout=1800, notice_max_runtime=86400
    )


def test_lifecycle_limits_workspace_may_only_be_stricter() -> None:
    own = Lifecycle.model_validate({"idle_timeout": "10m", "max_runtime": "48h"})
    limits = lifecycle_limits(POLICY, "alice", dt.date(2026, 3, 1), own)
    assert (limits.idle_timeout, limits.max_runtime) == (600, 86400)


def test_lifecycle_limits_exemption_gives_notices_until_it_expires() -> None:
    during = lifecycle_limits(POLICY, "bob", dt.date(2026, 6, 30))
    assert during.idle_timeout is None
    assert during.notice_idle_timeout == 1800
    assert during.exemption == "until 2026-06-30"
    after = lifecycle_limits(POLICY, "bob", dt.date(2026, 7, 1))
    assert (after.idle_timeout, after.exemption) == (1800, None)
