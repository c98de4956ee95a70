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
from dataclasses import dataclass
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


def parse_time(text: str) -> dt.datetime | None:
    """An event's timestamp (DS01 writes `…Z`, with or without fractions); None if not one."""
    try:
        found = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=dt.UTC)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """`--since`: an age (`90s`, `30m`, `2h`, `7d`, `1w`) or an ISO date or time (UTC unless
    it says otherwise)."""
    value = text.strip()
    if value[:-1].isdigit() and value[-1:] in _UNITS:
        return now - dt.timedelta(seconds=int(value[:-1]) * _UNITS[value[-1]])
    found = parse_time(value)
    if found is None:
        raise Ds01Error(
            f"--since {text!r} is neither an age nor a time",
            hint="write an age such as 30m, 2h, 7d, or a time such as 2026-03-02T09:00",
            code="bad_argument",
        )
    return found


@dataclass(frozen=True)
class EventsRead:
    records: list[dict[str, Any]]
    skipped: int  # lines that are not events (torn, or not JSON objects of schema v1's shape)


def read_events(
    path: Path,
    *,
    user: str | None = None,
    since: dt.datetime | None = None,
    event_type: str | None = None,
) -> EventsRead:
    """The events of `path`, oldest first, filtered; lines that are not events are counted."""
    records: list[dict[str, Any]] = []
    skipped = 0
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return EventsRead([], 0)
    except OSError as exc:
        raise Ds01Error(
            f"cannot read the event log {path}: {exc.strerror}",
            hint="run as a user who can read it, or name another with --events-log",
            code="event_log",
        ) from None
    with handle:
        for raw in handle:
            record = _record(raw)
            if record is None:
                skipped += 1
                continue
            if user is not None and record.get("user") != user:
                continue
            if event_type is not None and not _type_matches(record["event_type"], event_type):
                continue
            when = parse_time(record["timestamp"])
            if since is not None and (when is None or when < since):
                continue
            records.append(record)
    return EventsRead(records, skipped)


def _record(raw: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    if not isinstance(record.get("timestamp"), str) or not isinstance(
        record.get("event_type"), str
    ):
        return None
    return record


def _type_matches(found: str, wanted: str) -> bool:
    """`maintenance` matches its whole category, `maintenance.idle_kill` only itself."""
    return found == wanted or found.startswith(wanted.rstrip(".") + ".")


def render_line(record: Mapping[str, Any]) -> str:
    """One event for people: time, type, user, then what it was about."""
    details = record.get("details")
    if isinstance(details, Mapping) and ("object" in details or "reason" in details):
        about = ": ".join(str(details[k]) for k in ("object", "reason") if k in details)
    else:
        about = json.dumps(details, sort_keys=True, ensure_ascii=False, default=str)
    return f"{record['timestamp']}  {record['event_type']}  {record.get('user') or '-'}  {about}"
