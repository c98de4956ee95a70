"""Following the engine's event stream between full passes, so an idle loop plans nothing.

A thread blocks on the engine's `/events` stream (no CPU while nothing happens) and marks
the engine changed on any container or network event (create, start, die, update,
rename, destroy, …): the next tick then plans in full. While the stream is down it says so,
and every tick plans in full until it is back; what the engine reports no event for (GPU
state from NVML, host accounts, hold timers running out) waits for the periodic full pass.
"""

from __future__ import annotations

import threading
from typing import Any


class EngineWatch:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._changed = threading.Event()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._changed.set()  # nothing seen yet: the first tick plans in full
        self._thread = threading.Thread(target=self._run, name="engine-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def watching(self) -> bool:
        return self._connected.is_set()

    def take_changed(self) -> bool:
        """Whether the engine changed since the last call (or the stream is down)."""
        changed = self._changed.is_set() or not self._connected.is_set()
        self._changed.clear()
        return changed

    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                stream = self._client.events(
                    decode=True, filters={"type": ["container", "network"]}
                )
                self._connected.set()
                self._changed.set()  # events may have been missed while it was down
                delay = 1.0
                for _event in stream:
                    self._changed.set()
                    if self._stop.is_set():
                        break
            except Exception:  # the engine went away: plan in full until it is back
                pass
            self._connected.clear()
            self._changed.set()
            self._stop.wait(delay)
            delay = min(delay * 2, 30.0)
