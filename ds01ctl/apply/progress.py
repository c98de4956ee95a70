"""Progress of an apply as people and programs see it: lines (coloured on a terminal), or
one JSON event per line with --json. The executor calls these hooks; it never prints."""

from __future__ import annotations

import json
import sys
import threading
from typing import TextIO

from ds01ctl.plan.actions import Action, ActionKind

_DONE = {
    ActionKind.CREATE: "created",
    ActionKind.UPDATE: "updated",
    ActionKind.REPLACE: "replaced",
    ActionKind.DELETE: "destroyed",
    ActionKind.START: "started",
    ActionKind.STOP: "stopped",
    ActionKind.BUILD: "built",
    ActionKind.SNAPSHOT: "snapshotted",
}
_GREEN, _RED, _YELLOW, _DIM, _RESET = "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[0m"


def _name(action: Action) -> str:
    kind, owner, name = action.target.split("/", 2)
    return f"{kind} {owner}/{name}"


class LineReporter:
    """One line per event; thread-safe, since actions finish on worker threads."""

    def __init__(self, out: TextIO = sys.stdout, *, colour: bool = False):
        self.out = out
        self.colour = colour
        self._lock = threading.Lock()

    def _write(self, text: str, code: str = "") -> None:
        with self._lock:
            self.out.write((f"{code}{text}{_RESET}" if self.colour and code else text) + "\n")
            self.out.flush()

    def action_started(self, action: Action) -> None:
        self._write(f"  {action.kind.value:<7} {_name(action)} …", _DIM)

    def action_done(self, action: Action, seconds: float, note: str | None) -> None:
        extra = f"; {note}" if note else ""
        self._write(f"  {_DONE[action.kind]} {_name(action)} ({seconds:.1f}s{extra})", _GREEN)

    def action_failed(self, action: Action, error: str) -> None:
        self._write(f"  failed  {_name(action)}: {error}", _RED)

    def action_skipped(self, action: Action, because: str) -> None:
        self._write(f"  skipped {_name(action)}: {because}", _YELLOW)


class JsonReporter:
    """`{"event": …, "action": id, "kind": …, "target": …}` per line, for programs."""

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out
        self._lock = threading.Lock()

    def _emit(self, event: str, action: Action, **extra: object) -> None:
        record = {
            "event": event,
            "action": action.id,
            "kind": action.kind.value,
            "target": action.target,
            **extra,
        }
        with self._lock:
            self.out.write(json.dumps(record, sort_keys=True) + "\n")
            self.out.flush()

    def action_started(self, action: Action) -> None:
        self._emit("started", action)

    def action_done(self, action: Action, seconds: float, note: str | None) -> None:
        self._emit("done", action, seconds=seconds, note=note)

    def action_failed(self, action: Action, error: str) -> None:
        self._emit("failed", action, error=error)

    def action_skipped(self, action: Action, because: str) -> None:
        self._emit("skipped", action, because=because)
