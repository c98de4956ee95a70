"""The reconcile loop's own numbers, handed to the exporter through a file in the state dir.

The loop (another process) writes `<state_dir>/reconcile.json` after every tick with
`write_loop_status`; `ds01ctl exporter` reads it at each refresh. The shape, version 1:

    {
      "version": 1,
      "commit": "0123abcd…" | null,          # the config repo commit in force
      "last_success": "2026-03-02T09:00:00+00:00" | null,   # end of the last good tick
      "duration_s": 0.42 | null,             # how long the last tick took
      "pending_requests": 1,                 # objects pending (no GPU, quota, invalid)
      "drift_objects": 2                     # managed objects that differ from their manifest
    }

`encode` and `decode` are pure; a missing file is "no loop yet" (only the zero gauges), an
unreadable one is one line and the same.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from ds01ctl.exporter import LoopStatus
from ds01ctl.fsutil import write_atomically

FILE_NAME = "reconcile.json"
VERSION = 1


def encode(status: LoopStatus) -> str:
    body = {
        "version": VERSION,
        "commit": status.commit,
        "last_success": None if status.last_success is None else status.last_success.isoformat(),
        "duration_s": status.duration_s,
        "pending_requests": status.pending_requests,
        "drift_objects": status.drift_objects,
    }
    return json.dumps(body, indent=1, sort_keys=True) + "\n"


def decode(text: str) -> LoopStatus | str:
    """The status, or what is wrong with the text (one line)."""
    try:
        raw: Any = json.loads(text)
    except (ValueError, RecursionError):
        return "is not JSON"
    if not isinstance(raw, dict) or raw.get("version") != VERSION:
        return f"is not version {VERSION} of the loop status"
    commit, last, duration = raw.get("commit"), raw.get("last_success"), raw.get("duration_s")
    pending, drift = raw.get("pending_requests", 0), raw.get("drift_objects", 0)
    if commit is not None and not isinstance(commit, str):
        return "has a commit that is not a string"
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float)
    ):
        return "has a duration_s that is not a number"
    for name, value in (("pending_requests", pending), ("drift_objects", drift)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"has a {name} that is not a count"
    when = None
    if last is not None:
        try:
            when = dt.datetime.fromisoformat(str(last))
        except ValueError:
            return "has a last_success that is not an ISO time"
        when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return LoopStatus(commit, when, None if duration is None else float(duration), pending, drift)


def write_loop_status(state_dir: Path, status: LoopStatus) -> None:
    """For the reconcile loop: after each tick (atomic; readable by the exporter's user)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(state_dir / FILE_NAME, encode(status))


def read_loop_status(state_dir: Path) -> tuple[LoopStatus, str | None]:
    path = state_dir / FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LoopStatus(), None
    except OSError as exc:
        return LoopStatus(), f"the loop status {path} cannot be read ({exc.strerror})"
    found = decode(text)
    if isinstance(found, str):
        return LoopStatus(), f"the loop status {path} {found}"
    return found, None
