"""The journal: `journal.jsonl` in the state dir, one JSON record per line, append-only.

Before each action an `intent` record (the action, its object, the spec hash, the previous
container's shape, the plan's digest); after it a `result` record (ok / failed / skipped, the
error, the duration). A crash or kill -9 leaves an intent without a result: evidence of what
was in flight. Records carry a version; a reader refuses records newer than it understands.

A line is never the only copy of anything (labels are the state of record), so the journal
must not stop the tool: a reader skips a torn or malformed line and says which, and a writer
never appends onto a torn line, it starts a new one.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ds01ctl.errors import Ds01Error

JOURNAL_VERSION = 1
FILE_NAME = "journal.jsonl"


class Journal:
    """Appends records, each one whole line in one write() on an O_APPEND descriptor.

    Every record is fsynced before `record` returns: `apply_started` and `intent` so that a
    power loss during an action still leaves the evidence that it was running (the intent
    is on disk before the action touches the engine); `result` so that a finished action is
    never reported as in flight afterwards; `apply_finished` so that a complete apply reads
    as one. Records are a few hundred bytes and actions take seconds: the cost is noise.
    """

    def __init__(self, state_dir: Path, apply_id: str):
        self.path = state_dir / FILE_NAME
        self.apply_id = apply_id
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            # Never through a symlink: root appends here, and the state dir may lie in a
            # directory others can write.
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            self._fd = os.open(self.path, flags, 0o640)
        except OSError as exc:
            why = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
            raise Ds01Error(
                f"cannot open the journal {self.path}: {why}",
                hint="check the Site's state_dir, or pass --state-dir",
                code="journal",
            ) from None
        try:
            info = os.fstat(self._fd)
            if not stat.S_ISREG(info.st_mode):
                raise Ds01Error(
                    f"cannot open the journal {self.path}: it is not a regular file",
                    hint="move it away; the next apply starts a new journal",
                    code="journal",
                )
            # A crash or a full disk mid-record leaves a last line without its newline: the
            # next record starts a line of its own instead of being glued to the torn one.
            self._torn = info.st_size > 0 and os.pread(self._fd, 1, info.st_size - 1) != b"\n"
            _fsync_directory(state_dir)  # a journal made just now: its name must last too
        except OSError as exc:
            os.close(self._fd)
            raise self._failure(exc) from None
        except Ds01Error:
            os.close(self._fd)
            raise

    def record(self, event: str, **fields: Any) -> None:
        record = {
            "v": JOURNAL_VERSION,
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "apply": self.apply_id,
            "event": event,
            **fields,
        }
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        data = memoryview((b"\n" if self._torn else b"") + line.encode())
        try:
            while data:
                written = os.write(self._fd, data)
                if written <= 0:
                    raise OSError(errno.EIO, "nothing was written")
                # A short write (a disk filling up) is retried with the rest; if the retry
                # fails, the line is torn and the next record must start a new one.
                self._torn = True
                data = data[written:]
            self._torn = False
            os.fsync(self._fd)
        except OSError as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: OSError) -> Ds01Error:
        return Ds01Error(
            f"cannot write the journal {self.path}: {exc.strerror or exc}",
            hint="free space or fix the state dir; actions already started ran to their end "
            "and nothing more was started: `ds01ctl plan` shows what is left",
            code="journal",
        )

    def close(self) -> None:
        os.close(self._fd)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # a filesystem that cannot sync directories
            raise
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ApplyRecord:
    """One apply, read back: what it meant to do and what became of it."""

    apply_id: str
    started: str
    finished: str | None
    plan_digest: str | None
    actions: dict[int, dict[str, Any]]  # id → intent fields + "result" when one was written
    user: str | None = None  # user@host that ran it (journals from before it was recorded: None)
    command: str | None = None
    targets: tuple[str, ...] = ()  # what its plan acted on

    @property
    def in_flight(self) -> list[dict[str, Any]]:
        return [a for a in self.actions.values() if "result" not in a]


@dataclass(frozen=True)
class JournalRead:
    """The records of a journal, and the numbers of the lines that were not records."""

    path: Path
    records: list[dict[str, Any]]
    unreadable: list[int]

    def skipped_note(self, shown: int = 10) -> str | None:
        """One line saying which lines were skipped, or None when none were."""
        if not self.unreadable:
            return None
        numbers = ", ".join(str(n) for n in self.unreadable[:shown])
        more = len(self.unreadable) - shown
        where = f"line(s) {numbers}" + (f" and {more} more" if more > 0 else "")
        return (
            f"{self.path}: {len(self.unreadable)} unreadable journal line(s) skipped ({where}); "
            "a torn last line is what a crash or a full disk leaves"
        )


# What a record must carry, by event; other events are read but not interpreted.
_COMMON: dict[str, type] = {"v": int, "ts": str, "apply": str, "event": str}
_BY_EVENT: dict[str, dict[str, type]] = {
    "intent": {"action": int},
    "result": {"action": int, "result": str},
}


def _parse(line: bytes) -> dict[str, Any] | None:
    """The record on one line, or None for a line that is not one (torn, garbage, wrong shape)."""
    try:
        record = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested absurdly deep
        return None
    if not isinstance(record, dict) or not _has(record, _COMMON):
        return None
    return record if _has(record, _BY_EVENT.get(record["event"], {})) else None


def _has(record: dict[str, Any], fields: dict[str, type]) -> bool:
    return all(
        isinstance(record.get(key), kind) and not isinstance(record.get(key), bool)
        for key, kind in fields.items()
    )


def read_journal(state_dir: Path) -> JournalRead:
    path = state_dir / FILE_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return JournalRead(path, [], [])
    except OSError as exc:
        raise Ds01Error(
            f"cannot read the journal {path}: {exc.strerror}",
            hint="check the Site's state_dir, or pass --state-dir",
            code="journal",
        ) from None
    records, unreadable = [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        record = _parse(line)
        if record is None:
            unreadable.append(number)
            continue
        if record["v"] > JOURNAL_VERSION:
            raise Ds01Error(
                f"{path}:{number}: written by a newer ds01ctl (journal v{record['v']})",
                hint="upgrade ds01ctl",
                code="journal",
            )
        records.append(record)
    return JournalRead(path, records, unreadable)


def read_records(state_dir: Path) -> Iterator[dict[str, Any]]:
    """The journal's records; lines that are not records are skipped."""
    yield from read_journal(state_dir).records


def history(journal: JournalRead) -> list[ApplyRecord]:
    applies: dict[str, dict[str, Any]] = {}
    for record in journal.records:
        entry = applies.setdefault(
            record["apply"],
            {"started": record["ts"], "finished": None, "digest": None, "actions": {}},
        )
        event = record["event"]
        if event == "apply_started":
            entry["digest"] = record.get("plan_digest")
            for key in ("user", "command"):
                if isinstance(record.get(key), str):
                    entry[key] = record[key]
            targets = record.get("targets")
            if isinstance(targets, list):
                entry["targets"] = tuple(str(t) for t in targets)
        elif event == "apply_finished":
            entry["finished"] = record["ts"]
        elif event == "intent":
            entry["actions"][record["action"]] = dict(record)
        elif event == "result":
            entry["actions"].setdefault(record["action"], {}).update(
                result=record["result"], error=record.get("error"), seconds=record.get("seconds")
            )
    return [
        ApplyRecord(
            key,
            e["started"],
            e["finished"],
            e["digest"],
            e["actions"],
            e.get("user"),
            e.get("command"),
            e.get("targets", ()),
        )
        for key, e in applies.items()
    ]
