"""One escalation clock: warn, final warning, then act, each in its own pass (pure).

A clock has a nominal deadline (idle since + timeout, or started + max runtime). It warns when
the deadline is within `lead`, gives its final warning within `final_lead`, and acts at the
deadline, but never sooner than promised: each warning fixes a deadline at least its lead
after the moment it is given. So a daemon that was down and first sees a container long past
its timeout warns now and acts a full lead later, and no warning ever shares a pass with the
action it announces (DS01's cron gave all three in one run).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum


class Step(StrEnum):
    """What a pass does about one container (the JSON vocabulary of decisions)."""

    WARN = "warn"  # first warning, with the time left
    FINAL_WARN = "final_warn"
    STOP = "stop"
    NOTICE = "notice"  # would act, but may not (exempt, protected, pinned running): say so once
    CLEARED = "cleared"  # warned before, active again: the stop is off
    RELEASE_GPU = "release_gpu"  # a stopped container's GPU hold expired


@dataclass(frozen=True, slots=True)
class Clock:
    """What one clock has announced; persisted between passes."""

    warned_at: dt.datetime | None = None
    final_at: dt.datetime | None = None
    deadline: dt.datetime | None = None  # the earliest stop time a warning promised
    noticed_at: dt.datetime | None = None

    @property
    def announced(self) -> bool:
        return self.warned_at is not None or self.noticed_at is not None


IDLE_CLOCK = Clock()


@dataclass(frozen=True, slots=True)
class Leads:
    first: dt.timedelta  # the first warning comes at least this long before the action
    final: dt.timedelta  # the final warning at least this long before it


def leads(timeout: int, warn_at: float, final_at: float) -> Leads:
    """Warnings at `warn_at` and `final_at` of the timeout (DS01: 80 % and 95 %)."""
    return Leads(
        dt.timedelta(seconds=timeout * (1 - warn_at)),
        dt.timedelta(seconds=timeout * (1 - final_at)),
    )


def advance(
    clock: Clock, nominal: dt.datetime, lead: Leads, now: dt.datetime
) -> tuple[Clock, Step | None, dt.datetime]:
    """The clock after this pass, the step to take now (or None), and the stop time in force."""
    due = max(nominal, clock.deadline) if clock.deadline else nominal
    if clock.warned_at is None:
        if now < nominal - lead.first:
            return clock, None, nominal
        due = max(nominal, now + lead.first)
        return replace(clock, warned_at=now, deadline=due), Step.WARN, due
    if clock.final_at is None:
        if now < due - lead.final:
            return clock, None, due
        # Never less than the final lead after the final warning, even after a long gap.
        due = max(due, now + lead.final)
        return replace(clock, final_at=now, deadline=due), Step.FINAL_WARN, due
    if now < due or clock.final_at >= now:
        return clock, None, due
    return clock, Step.STOP, due


def notice(clock: Clock, nominal: dt.datetime, now: dt.datetime) -> tuple[Clock, Step | None]:
    """For a clock that may not act: one notice when its deadline passes."""
    if clock.noticed_at is not None or now < nominal:
        return clock, None
    return replace(clock, noticed_at=now), Step.NOTICE


def cleared(clock: Clock, nominal: dt.datetime, lead: Leads | None, now: dt.datetime) -> bool:
    """Whether what the clock announced no longer holds: the deadline moved out of warning
    range (activity, a longer timeout, high demand over)."""
    if not clock.announced:
        return False
    if clock.warned_at is not None and lead is not None:
        return now < nominal - lead.first
    return now < nominal
