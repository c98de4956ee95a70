"""Stops the lifecycle made: `lifecycle-stops.json` in the state dir, so that the plan does
not start again what the lifecycle stopped.

A workspace pinned `power: running` is stopped by the idle and max_runtime clocks like any
other (otherwise writing `power: running` would lift every timeout). The plan would then
start it again on the next apply; instead, while a record here is in force, the plan treats
the stop as deliberate: no start, a note saying why and how to start it again. A record is
in force while its workspace's container exists, is not running and has not been started
since the stop (its `StartedAt` is still that of the run the lifecycle stopped; the engine's
own times, so the daemon's clock does not matter): the owner's own start (`mlc open`,
`docker start`) ends it, and a later stop by hand is again the manifest's business. A
replaced container that was never started keeps the record in force.

`in_force` is pure; the file is read and written like the timers (atomic, 0600, and an
unreadable file only loses records: the plan then starts the workspace, as without them).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ds01ctl.fsutil import read_state_json, write_atomically
from ds01ctl.model.observed import ObservedContainer

FILE_NAME = "lifecycle-stops.json"
STOPS_VERSION = 1


@dataclass(frozen=True, slots=True)
class LifecycleStop:
    key: str  # workspace/<owner>/<name>
    container_id: str
    cause: str  # idle | max_runtime
    at: dt.datetime  # when the stop was made
    reason: str  # the decision's one line
    started_at: dt.datetime | None = None  # the start of the run it stopped (the engine's)


def in_force(
    stops: Mapping[str, LifecycleStop], containers: Iterable[ObservedContainer]
) -> dict[str, str]:
    """Workspace key → the note the plan shows instead of starting it."""
    found: dict[str, str] = {}
    for container in containers:
        stop = stops.get(container.key)
        if stop is None or container.running or container.config is None:
            continue
        started = container.config.started
        if started is not None and started != stop.started_at:
            continue  # started by its owner since: the record is spent
        found[container.key] = (
            f"{container.key} was stopped by the lifecycle at {stop.at:%Y-%m-%d %H:%M} UTC "
            f"({stop.cause}): not started again until its owner starts it (`mlc open`)"
        )
    return found


def kept(
    stops: Mapping[str, LifecycleStop], containers: Iterable[ObservedContainer]
) -> dict[str, LifecycleStop]:
    """The records still in force (the rest are dropped when the file is rewritten)."""
    live = in_force(stops, containers)
    return {key: stop for key, stop in stops.items() if key in live}


@dataclass(frozen=True)
class StopsRead:
    stops: dict[str, LifecycleStop]
    problem: str | None = None  # one line when the file could not be used

    def in_force(self, containers: Iterable[ObservedContainer]) -> dict[str, str]:
        return in_force(self.stops, containers)


def read_stops(state_dir: Path) -> StopsRead:
    path = state_dir / FILE_NAME
    raw = read_state_json(path, STOPS_VERSION, what="the lifecycle stops", code="lifecycle_stops")
    if raw is None:
        return StopsRead({})
    entries = raw.get("stops") if not isinstance(raw, str) else None
    if not isinstance(entries, dict):
        why = raw if isinstance(raw, str) else "have no stops object"
        return StopsRead(
            {},
            f"the lifecycle stops {path} {why}: workspaces the lifecycle stopped may be started "
            "again by this plan",
        )
    found = {}
    for key, entry in entries.items():
        stop = _stop(str(key), entry)
        if stop is not None:
            found[stop.key] = stop
    return StopsRead(found)


def write_stops(state_dir: Path, stops: Mapping[str, LifecycleStop]) -> None:
    body = {
        "version": STOPS_VERSION,
        "stops": {
            key: {
                "container_id": s.container_id,
                "cause": s.cause,
                "at": s.at.isoformat(),
                "reason": s.reason,
                "started_at": None if s.started_at is None else s.started_at.isoformat(),
            }
            for key, s in sorted(stops.items())
        },
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(
        state_dir / FILE_NAME, json.dumps(body, indent=1, sort_keys=True) + "\n", private=True
    )


def _stop(key: str, entry: Any) -> LifecycleStop | None:
    if not isinstance(entry, dict):
        return None
    cid, cause, at_text, reason = (entry.get(n) for n in ("container_id", "cause", "at", "reason"))
    if not (
        isinstance(cid, str)
        and isinstance(cause, str)
        and isinstance(at_text, str)
        and isinstance(reason, str)
    ):
        return None
    started = entry.get("started_at")
    try:
        at = _utc(dt.datetime.fromisoformat(at_text))
        started_at = _utc(dt.datetime.fromisoformat(started)) if isinstance(started, str) else None
    except ValueError:
        return None
    return LifecycleStop(key, cid, cause, at, reason, started_at)


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
