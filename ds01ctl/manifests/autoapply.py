"""The Site's `reconcile` settings: what the reconcile loop applies on its own, what waits for
an admin's `ds01ctl approve`, and what it only reports.

Rules are matched in order against each planned action's object kind, action and reason
(`*` matches anything); the first match decides, and the loop's built-in table
(`ds01ctl.reconcile.policy.DEFAULT_RULES`) decides what no rule matches.
"""

from typing import Literal

from pydantic import Field

from ds01ctl.manifests.common import Model
from ds01ctl.units import Seconds


class AutoApplyRule(Model):
    """One row of the auto-apply table."""

    kind: str = Field(
        "*",
        pattern=r"^(\*|[a-z][a-z0-9]*)$",
        description="The object kind in lower case as plans name it (workspace, endpoint, "
        "image), or * for any.",
    )
    action: str = Field(
        "*",
        pattern=r"^(\*|[a-z][a-z_]*)$",
        description="The plan's action (create, update, replace, delete, start, stop, build, "
        "cleanup, …), or * for any.",
    )
    reason: str = Field(
        "*",
        pattern=r"^(\*|[a-z][a-z_]*)$",
        description="The plan's reason (new, spec_changed, changed_outside, gpu_released, "
        "no_manifest, …), or * for any.",
    )
    apply: Literal["auto", "approve", "report"] = Field(
        description="auto: the loop applies it; approve: it waits for `ds01ctl approve "
        "PLAN-ID`; report: it is only shown (status, events)."
    )


class ReconcileSettings(Model):
    """How `ds01ctl reconcile` treats what it plans."""

    auto_apply: list[AutoApplyRule] = Field(
        default_factory=list,
        description="Overrides of the built-in table, first match wins. Built in: creates, "
        "in-place updates, starts, stops, builds, helper cleanups and GPU-release deletes "
        "are automatic; replaces, prunes and anything the table does not name (adoption, "
        "rollouts, rollbacks) wait for approval.",
    )
    drift: Literal["correct", "report"] = Field(
        "correct",
        description="Containers changed outside ds01ctl (reason changed_outside): correct "
        "them as the table says (an update is automatic, a replace waits for approval), or "
        "only report them.",
    )
    full_pass_every: Seconds = Field(
        600,
        ge=30,
        description="Between full passes the loop plans only when the config commit "
        "changed or the engine reported an event; this bounds how long drift that the "
        "engine reports no event for (GPU state, host accounts, expiring holds) waits.",
    )
