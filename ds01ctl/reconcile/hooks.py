"""The lifecycle pass's place in the loop: what it is given each tick and what it reports.

The loop calls a `LifecycleHook` once per tick, after the plan-and-apply part, with the
config in force; what it returns goes into `ds01ctl status` and the users' status files,
and a pass that acted (stopped a container, released a GPU) makes the next tick plan in full.
`ds01ctl reconcile` passes the lifecycle enforcement as this hook; a loop given none runs no
lifecycle policy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ds01ctl.events import EventLog
    from ds01ctl.lifecycle.policy import Demand
    from ds01ctl.manifests.validate import ConfigRepo
    from ds01ctl.model.driver import Driver


@dataclass(frozen=True)
class LifecycleContext:
    repo: ConfigRepo  # the config in force
    state_dir: Path
    driver: Driver
    now: dt.datetime
    events: EventLog
    stopping: Callable[[], bool]  # SIGTERM came: finish what is under way, start nothing
    demand: Demand | None = None  # from the last plan: someone waits for a GPU (high demand)


@dataclass(frozen=True)
class LifecycleReport:
    acted: bool = False  # it stopped or released something: the next tick plans in full
    # One row per watched object for `status`: {"target": …, "state": …, "stop_at": …, …}
    timers: tuple[Mapping[str, Any], ...] = ()
    warnings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # login → lines


LifecycleHook = Callable[[LifecycleContext], LifecycleReport]
