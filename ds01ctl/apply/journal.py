"""The journal: `journal.jsonl` in the state dir, one JSON record per line, append-only.

Before each action an `intent` record (the action, its object, the spec hash, the previous
container's shape, the plan's digest); after it a `result` record (ok / failed / skipped, the
error, the duration). A crash or kill -9 leaves an intent without a result: evidence of what
was in flight. Records carry a version; a reader skips a torn last line and refuses records
newer than it understands.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ds01ctl.errors import Ds01Error

JOURNAL_VERSION = 1
FILE_NAME = "journal.jsonl"


class Journal:
    """Appends records; each is one write() on an O_APPEND descriptor, then fsync."""

    def __init__(self, state_dir: Path, apply_id: str):
        self.path = state_dir / FILE_NAME
        self.apply_id = apply_id
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            # Never through a symlink: root appends here, and a relative state_dir is taken
            # from the working directory, which may be someone else's.
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            self._fd = os.open(self.path, flags, 0o640)
        except OSError as exc:
            why = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
            raise Ds01Error(
                f"cannot open the journal {self.path}: {why}",
                hint="check the Site's state_dir, or pass --state-dir",
                code="journal",
            ) from None

    def record(self, event: str, **fields: Any) -> None:
        record = {
            "v": JOURNAL_VERSION,
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "apply": self.apply_id,
            "event": event,
            **fields,
        }
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        os.write(self._fd, line.encode())
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


@dataclass(frozen=True)
class ApplyRecord:
    """One apply, read back: what it meant to do and what became of it."""

    apply_id: str
    started: str
    finished: str | None
    plan_digest: str | None
    actions: dict[int, dict[str, Any]]  # id → intent fields + "result" when one was written

    @property
    def in_flight(self) -> list[dict[str, Any]]:
        return [a for a in self.actions.values() if "result" not in a]


def read_records(state_dir: Path) -> Iterator[dict[str, Any]]:
    path = state_dir / FILE_NAME
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise Ds01Error(f"cannot read the journal {path}: {exc.strerror}", code="journal") from None
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):
                return  # a torn last line: the writer died mid-record
            raise Ds01Error(f"{path}:{number}: not a journal record", code="journal") from None
        if record.get("v", 0) > JOURNAL_VERSION:
            raise Ds01Error(
                f"{path}:{number}: written by a newer ds01ctl (journal v{record['v']})",
                hint="upgrade ds01ctl",
                code="journal",
            )
        yield record


def history(state_dir: Path) -> list[ApplyRecord]:
    applies: dict[str, dict[str, Any]] = {}
    for record in read_records(state_dir):
        entry = applies.setdefault(
            record["apply"],
            {"started": record["ts"], "finished": None, "digest": None, "actions": {}},
        )
        event = record["event"]
        if event == "apply_started":
            entry["digest"] = record.get("plan_digest")
        elif event == "apply_finished":
            entry["finished"] = record["ts"]
        elif event == "intent":
            entry["actions"][record["action"]] = dict(record)
        elif event == "result":
            entry["actions"].setdefault(record["action"], {}).update(
                result=record["result"], error=record.get("error"), seconds=record.get("seconds")
            )
    return [
        ApplyRecord(key, e["started"], e["finished"], e["digest"], e["actions"])
        for key, e in applies.items()
    ]
