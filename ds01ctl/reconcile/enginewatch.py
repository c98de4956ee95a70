"""Following the engine's event stream between full passes, so an idle loop plans nothing.

A thread blocks on the engine's `/events` stream (no CPU while nothing happens) and marks
the engine changed on an event that can change this site's plan (`relevant`): any event of
this site's containers (created, started, died, updated, renamed, destroyed: drift, a power
change, a crash), of mlc's or DS01's containers (adoption, duplicates), of containers of no
site while someone waits (a container outside ds01ctl that stops may free a GPU), and of the
site network. Containers of other sites are theirs: on a shared engine their churn does not wake
the loop, nor do `docker exec` sessions and other events that change nothing a plan reads.
While the stream is down every tick plans in full until it is back; what no event
reports (GPU state from NVML, host accounts, a hold running out, a container outside
ds01ctl taking a GPU) is caught by the periodic full pass.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

_SITE = "ds01.site"
_FOREIGN_ACTIONS = frozenset({"die", "destroy", "stop", "kill", "oom"})
# What happens inside or to a container without changing what a plan reads of it.
_QUIET_ACTIONS = (
    "exec_",
    "top",
    "commit",
    "attach",
    "detach",
    "resize",
    "copy",
    "archive-path",
    "extract-to-dir",
    "export",
    "health_status",
)


def relevant(
    event: Mapping[str, Any], site: str | None, network: str | None, *, waiting: bool
) -> bool:
    """Whether an engine event may change this site's plan (pure). `site` and `network` are
    None until a commit is in force: then everything counts."""
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    if event.get("Type") == "network":
        return network is None or attributes.get("name") == network
    if event.get("Type") != "container":
        return True
    action = str(event.get("Action") or "")
    if action.startswith(_QUIET_ACTIONS):
        return False
    owner_site = attributes.get(_SITE)
    if owner_site is not None:
        return site is None or owner_site == site
    if any(key.startswith(("aime.mlc", "ds01.")) for key in attributes):
        return True  # mlc's or DS01's own: adoption, duplicates, unmanaged
    return waiting and action in _FOREIGN_ACTIONS


class EngineWatch:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._changed = threading.Event()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._changed.set()  # nothing seen yet: the first tick plans in full
        self._thread = threading.Thread(target=self._run, name="engine-events", daemon=True)
        self.site: str | None = None  # set by the loop once a commit is in force
        self.network: str | None = None  # the site network's name
        self.waiting = True  # someone is pending: foreign containers stopping may free a GPU

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
                for item in stream:
                    if relevant(item, self.site, self.network, waiting=self.waiting):
                        self._changed.set()
                    if self._stop.is_set():
                        break
            except Exception:  # the engine went away: plan in full until it is back
                pass
            self._connected.clear()
            self._changed.set()
            self._stop.wait(delay)
            delay = min(delay * 2, 30.0)
