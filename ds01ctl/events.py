"""The event log: DS01's `events.jsonl` schema v1, so its tooling (`ds01-events`, the
exporter's event counts, dashboards) keeps working on what ds01ctl writes.

One JSON object per line: `timestamp` (UTC, `Z`), `event_type` (`category.action`), `user`,
`source`, `details{}`, `schema_version: "1"`. A line is at most 4 KB, written whole in one
write() on an O_APPEND descriptor, so lines of concurrent writers never interleave (details
that would not fit are cut and say so). Unlike DS01's (mode 664: any group member could
append forged events) the file is the writer's own and written by nobody else: it is opened
without following a symlink, must be a regular file owned by the writer, and loses any
group or other write bit. Lifecycle decisions map onto DS01's event types here.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ds01ctl.errors import Ds01Error
from ds01ctl.lifecycle.clock import Step
from ds01ctl.lifecycle.policy import Cause, Decision

SCHEMA_VERSION = "1"
SOURCE = "ds01ctl"
MAX_LINE = 4096  # DS01's limit: appends up to this size are atomic
DEFAULT_PATH = Path("/var/log/ds01/events.jsonl")

# (step, cause) → DS01 event type. DS01 logs maintenance.idle_kill, runtime_kill and
# runtime_exempt; the warnings are new types in the same family.
_TYPES: dict[tuple[Step, Cause], str] = {
    (Step.WARN, Cause.IDLE): "maintenance.idle_warning",
    (Step.FINAL_WARN, Cause.IDLE): "maintenance.idle_final_warning",
    (Step.STOP, Cause.IDLE): "maintenance.idle_kill",
    (Step.NOTICE, Cause.IDLE): "maintenance.idle_exempt",
    (Step.CLEARED, Cause.IDLE): "maintenance.idle_cleared",
    (Step.WARN, Cause.MAX_RUNTIME): "maintenance.runtime_warning",
    (Step.FINAL_WARN, Cause.MAX_RUNTIME): "maintenance.runtime_final_warning",
    (Step.STOP, Cause.MAX_RUNTIME): "maintenance.runtime_kill",
    (Step.NOTICE, Cause.MAX_RUNTIME): "maintenance.runtime_exempt",
    (Step.CLEARED, Cause.MAX_RUNTIME): "maintenance.runtime_cleared",
    (Step.RELEASE_GPU, Cause.GPU_HOLD): "gpu.hold_expired",
}


def event(
    event_type: str, user: str | None, details: Mapping[str, Any], now: dt.datetime
) -> dict[str, Any]:
    return {
        "timestamp": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "event_type": event_type,
        "user": user,
        "source": SOURCE,
        "details": dict(details),
        "schema_version": SCHEMA_VERSION,
    }


def lifecycle_event(decision: Decision, owner: str, now: dt.datetime) -> dict[str, Any]:
    details: dict[str, Any] = {
        "container": decision.container_id[:12],
        "object": decision.key,
        "reason": decision.reason,
    }
    if decision.deadline is not None and decision.step is not Step.RELEASE_GPU:
        details["stop_at"] = decision.deadline.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        left = decision.time_left(now)
        details["seconds_left"] = 0 if left is None else int(left.total_seconds())
    event_type = _TYPES.get((decision.step, decision.cause), f"lifecycle.{decision.step}")
    return event(event_type, owner, details, now)


def encode(record: Mapping[str, Any]) -> bytes:
    """One line of at most MAX_LINE bytes; details that do not fit are replaced by a note."""
    line = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    data = line.encode()
    if len(data) <= MAX_LINE:
        return data
    cut = dict(record, details={"truncated": True, "bytes": len(data)})
    return (json.dumps(cut, sort_keys=True, default=str) + "\n").encode()


class EventLog:
    """Appends events; one `open` per log, one write() per event."""

    def __init__(self, path: Path = DEFAULT_PATH) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            self._fd = os.open(path, flags, 0o644)
        except OSError as exc:
            why = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
            raise self._error(f"cannot open it: {why}") from None
        try:
            info = os.fstat(self._fd)
            if not stat.S_ISREG(info.st_mode):
                raise self._error("it is not a regular file")
            if info.st_uid != os.geteuid():
                raise self._error(f"it belongs to uid {info.st_uid}, not to us")
            if info.st_mode & 0o022:  # DS01's was 664: anyone in its group could forge events
                os.fchmod(self._fd, stat.S_IMODE(info.st_mode) & ~0o022)
        except BaseException:
            os.close(self._fd)
            raise

    def _error(self, why: str) -> Ds01Error:
        return Ds01Error(
            f"the event log {self.path}: {why}",
            hint="move it away (a new one is made), or point the event log elsewhere",
            code="event_log",
        )

    def append(self, record: Mapping[str, Any]) -> None:
        data = encode(record)
        try:
            written = os.write(self._fd, data)
        except OSError as exc:
            raise self._error(f"cannot write: {exc.strerror}") from None
        if written != len(data):  # a full disk: the torn line is the reader's to skip
            raise self._error("cannot write: a short write (is the disk full?)")

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
