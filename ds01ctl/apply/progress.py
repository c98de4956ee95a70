"""Progress of an apply as people and programs see it: lines (coloured on a terminal), or
one JSON event per line with --json. The executor calls these hooks; it never prints."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from ds01ctl.plan.actions import Action, Step, StepKind

_DONE = {
    StepKind.SNAPSHOT: "snapshotted",
    StepKind.STOP: "stopped",
    StepKind.REMOVE: "removed",
    StepKind.CREATE: "created",
    StepKind.START: "started",
    StepKind.UPDATE: "updated",
    StepKind.REMOVE_IMAGE: "removed",
    StepKind.BUILD: "built",
    StepKind.WAIT_HEALTHY: "ready",
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

    def step_started(self, action: Action, step: Step) -> None:
        self._write(f"  {step.kind.value:<8} {_name(action)} …", _DIM)

    def step_done(self, action: Action, step: Step, seconds: float, note: str | None) -> None:
        extra = f"; {note}" if note else ""
        self._write(f"  {_DONE[step.kind]} {_name(action)} ({seconds:.1f}s{extra})", _GREEN)

    def step_progress(self, action: Action, step: Step, text: str) -> None:
        self._write(f"  waiting  {_name(action)}: {text}", _DIM)

    def step_failed(self, action: Action, step: Step, error: str) -> None:
        self._write(f"  failed   {_name(action)} ({step.kind.value}): {error}", _RED)

    def step_skipped(self, action: Action, step: Step, because: str) -> None:
        self._write(f"  skipped  {_name(action)} ({step.kind.value}): {because}", _YELLOW)


class JsonReporter:
    """`{"event": …, "step": id, "kind": …, "action": id, "target": …}` per line, for
    programs (`kind` is the step's)."""

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out
        self._lock = threading.Lock()

    def _emit(self, event: str, action: Action, step: Step, **extra: object) -> None:
        record = {
            "event": event,
            "step": step.id,
            "kind": step.kind.value,
            "action": action.id,
            "target": action.target,
            **extra,
        }
        with self._lock:
            self.out.write(json.dumps(record, sort_keys=True) + "\n")
            self.out.flush()

    def step_started(self, action: Action, step: Step) -> None:
        self._emit("started", action, step)

    def step_done(self, action: Action, step: Step, seconds: float, note: str | None) -> None:
        self._emit("done", action, step, seconds=seconds, note=note)

    def step_progress(self, action: Action, step: Step, text: str) -> None:
        self._emit("progress", action, step, text=text)

    def step_failed(self, action: Action, step: Step, error: str) -> None:
        self._emit("failed", action, step, error=error)

    def step_skipped(self, action: Action, step: Step, because: str) -> None:
        self._emit("skipped", action, step, because=because)


def build_progress(stream: TextIO) -> Callable[[str, str], None] | None:
    """On a terminal, a line per build step (`building TAG: Step 3/9 : RUN …`); else none."""
    if not stream.isatty():
        return None
    lock = threading.Lock()

    def show(tag: str, step: str) -> None:
        with lock:
            stream.write(f"  building {tag}: {step[:100]}\n")
            stream.flush()

    return show
