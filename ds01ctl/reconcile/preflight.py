"""Whether a containerised reconcile daemon sees the host as the engine does.

The engine resolves every bind source, mount directory and GPU device on the host, while a
daemon in a container reads its own filesystem: the state dir, the lock dir, the event log,
users' directories (made as their owner before a create) must be the host's, at the same
paths; users' uids come from the host's passwd and group; the lifecycle pass reads
containers' cgroups and processes, so it needs `/sys/fs/cgroup` and the host's PID
namespace. `problems` is pure over what the process sees (`Seen`); `refuse_unless_ready`
gathers it (the daemon's own container, inspected on the engine) and refuses to start
with one line naming everything missing. Outside a container there is nothing to check.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ds01ctl.errors import Ds01Error

if TYPE_CHECKING:
    from ds01ctl.reconcile.loop import LoopSettings

ACCOUNT_FILES = ("/etc/passwd", "/etc/group")
CGROUP = "/sys/fs/cgroup"
_CONTAINER_ID = re.compile(r"/containers/([0-9a-f]{64})/")


@dataclass(frozen=True)
class Seen:
    in_container: bool
    found_self: bool = True  # the engine knows the container the daemon runs in
    host_pid: bool = False  # its PID namespace is the host's (`--pid host`)
    mounts: tuple[tuple[str, str], ...] = ()  # (host source, path inside) of each bind
    needed: tuple[tuple[str, str], ...] = ()  # (what, path) that must be the host's, same path


def _covered(path: str, mounts: Iterable[tuple[str, str]]) -> bool:
    """Whether `path` lies in a bind whose host source is mounted at the same path."""
    for source, dest in mounts:
        if source != dest:
            continue
        if path == dest or path.startswith(dest.rstrip("/") + "/"):
            return True
    return False


def problems(seen: Seen) -> list[str]:
    """What is missing for the daemon to act on the host correctly (pure)."""
    if not seen.in_container:
        return []
    if not seen.found_self:
        return [
            "its own container is unknown to the engine (mount the host's Docker socket and "
            "keep the container's default hostname)"
        ]
    found = []
    for what, path in seen.needed:
        if not _covered(path, seen.mounts):
            found.append(f"{what} {path} is not the host's at the same path (-v {path}:{path})")
    missing_accounts = [f for f in ACCOUNT_FILES if not _covered(f, seen.mounts)]
    if missing_accounts:
        found.append(
            "the host's accounts (-v /etc/passwd:/etc/passwd:ro -v /etc/group:/etc/group:ro)"
        )
    if not _covered(CGROUP, seen.mounts):
        found.append(f"the host's cgroups (-v {CGROUP}:{CGROUP}:ro)")
    if not seen.host_pid:
        found.append("the host's PID namespace (--pid host)")
    return found


def needed_paths(settings: LoopSettings) -> tuple[tuple[str, str], ...]:
    from ds01ctl.apply.lock import lock_dir_default

    return (
        ("the state dir", str(settings.state_dir)),
        ("the event log's directory", str(settings.events_path.parent)),
        ("the lock dir", str(settings.lock_dir or lock_dir_default())),
    )


def own_container_id() -> str | None:
    """The id of the container this process runs in, from where Docker's own files for it
    (hostname, resolv.conf) are mounted; None outside a container."""
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return None
    match = _CONTAINER_ID.search(text)
    return match.group(1) if match else None


def seen_here(settings: LoopSettings, client: Any) -> Seen:
    """What this process sees (the shell part)."""
    in_container = os.path.exists("/.dockerenv")
    if not in_container:
        return Seen(in_container=False)
    ident = own_container_id() or socket.gethostname()
    try:
        info = client.inspect_container(ident)
    except Exception:  # no socket, or not a container this engine runs
        return Seen(in_container=True, found_self=False)
    mounts = tuple(
        (str(m.get("Source", "")), str(m.get("Destination", "")))
        for m in info.get("Mounts") or []
        if m.get("Type") == "bind"
    )
    host_pid = (info.get("HostConfig") or {}).get("PidMode") == "host"
    return Seen(
        in_container=True,
        host_pid=host_pid,
        mounts=mounts,
        needed=needed_paths(settings),
    )


def refuse_unless_ready(settings: LoopSettings) -> None:
    from ds01ctl.live.docker import connect

    if not os.path.exists("/.dockerenv"):
        return
    missing = problems(seen_here(settings, connect()))
    if missing:
        raise Ds01Error(
            f"the reconcile daemon cannot run in this container: missing {'; '.join(missing)}",
            hint="see examples/deploy/README.md for the docker run line",
            code="deploy_preflight",
        )
