"""The lifecycle timers: `lifecycle.json` in the state dir, what the policy remembers between
passes (last activity, CPU time seen, warnings given and the stop times they promised).

Like the ledger, every fact has a safe default: a lost or unreadable file restarts the idle
clocks from now, which only postpones stops and re-sends warnings; it never brings a stop
forward. So a file that cannot be read never stops the loop: what can be used is used and
the reader gets one line saying what was dropped. The file carries a version (a newer one is
refused, not overwritten) and is written atomically, 0600.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ds01ctl.errors import Ds01Error
from ds01ctl.fsutil import read_state_json, write_atomically
from ds01ctl.lifecycle.clock import Clock
from ds01ctl.lifecycle.policy import Timers

TIMERS_VERSION = 1
FILE_NAME = "lifecycle.json"
_CLOCK_FIELDS = ("warned_at", "final_at", "deadline", "noticed_at")


@dataclass(frozen=True)
class TimersRead:
    timers: dict[str, Timers]  # by container id
    problem: str | None = None


def read_timers(state_dir: Path) -> TimersRead:
    path = state_dir / FILE_NAME
    raw = read_state_json(
        path, TIMERS_VERSION, what="the lifecycle timers", code="lifecycle_timers"
    )
    if raw is None:
        return TimersRead({})
    if isinstance(raw, str):
        return _unusable(path, raw)
    entries = raw.get("containers")
    if not isinstance(entries, dict):
        return _unusable(path, "has no containers object")
    found: dict[str, Timers] = {}
    bad: list[str] = []
    for cid, entry in entries.items():
        timers = _timers(entry)
        if timers is None:
            bad.append(str(cid)[:12])
        else:
            found[str(cid)] = timers
    if not bad:
        return TimersRead(found)
    shown = ", ".join(bad[:3]) + (", …" if len(bad) > 3 else "")
    return TimersRead(
        found,
        f"the lifecycle timers {path} have {len(bad)} unreadable entry(ies) ({shown}): "
        "their idle clocks restart now; the next pass rewrites the file",
    )


def write_timers(state_dir: Path, timers: Mapping[str, Timers]) -> None:
    body = {
        "version": TIMERS_VERSION,
        "containers": {cid: _encode(timers[cid]) for cid in sorted(timers)},
    }
    path = state_dir / FILE_NAME
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(body, indent=1, sort_keys=True) + "\n", private=True)
    except OSError as exc:
        raise Ds01Error(
            f"cannot write the lifecycle timers {path}: {exc.strerror or exc}",
            hint="free space or fix the state dir; no container was stopped by this pass",
            code="lifecycle_timers",
        ) from None


def _encode(t: Timers) -> dict[str, Any]:
    return {
        "key": t.key,
        "observed_at": _iso(t.observed_at),
        "last_active": _iso(t.last_active),
        "started_at": _iso(t.started_at),
        "cpu_seconds": t.cpu_seconds,
        "idle": {name: _iso(getattr(t.idle, name)) for name in _CLOCK_FIELDS},
        "runtime": {name: _iso(getattr(t.runtime, name)) for name in _CLOCK_FIELDS},
        "release_noted_at": _iso(t.release_noted_at),
    }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class _Bad(ValueError):
    pass


def _timers(entry: Any) -> Timers | None:
    if not isinstance(entry, dict):
        return None
    try:
        key = entry.get("key")
        cpu = entry.get("cpu_seconds")
        if not isinstance(key, str) or not key:
            raise _Bad
        if cpu is not None and (isinstance(cpu, bool) or not isinstance(cpu, int | float)):
            raise _Bad
        return Timers(
            key=key,
            observed_at=_required(entry.get("observed_at")),
            last_active=_required(entry.get("last_active")),
            started_at=_time(entry.get("started_at")),
            cpu_seconds=None if cpu is None else float(cpu),
            idle=_clock(entry.get("idle")),
            runtime=_clock(entry.get("runtime")),
            release_noted_at=_time(entry.get("release_noted_at")),
        )
    except _Bad:
        return None


def _clock(value: Any) -> Clock:
    if value is None:
        return Clock()
    if not isinstance(value, dict):
        raise _Bad
    return Clock(**{name: _time(value.get(name)) for name in _CLOCK_FIELDS})


def _required(value: Any) -> dt.datetime:
    found = _time(value)
    if found is None:
        raise _Bad
    return found


def _time(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad
    try:
        found = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Bad from None
    return found if found.tzinfo else found.replace(tzinfo=dt.UTC)


def _unusable(path: Path, why: str) -> TimersRead:
    return TimersRead(
        {}, f"the lifecycle timers {path} {why}: idle clocks restart now; the next pass rewrites it"
    )
