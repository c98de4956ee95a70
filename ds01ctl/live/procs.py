"""Reading `/proc` and `/sys/fs/cgroup`: the container a GPU process runs in, the user it runs
as, and the processes a container holds.

The parsers take the text of `/proc/<pid>/cgroup` and `/proc/<pid>/status`, so they are pure;
reading a file of a process that is gone or not ours gives None rather than an error.
"""

from __future__ import annotations

import re
from pathlib import Path

_DOCKER_CGROUP_RE = re.compile(r"(?:^|/)docker[-/]([0-9a-f]{64})(?:\.scope)?(?:/|$)")


def container_id_from_cgroup(text: str) -> str | None:
    """The Docker container id in a `/proc/<pid>/cgroup` text (v1, v2 systemd or cgroupfs)."""
    for line in text.splitlines():
        fields = line.split(":", 2)  # hierarchy-id:controllers:path
        if len(fields) == 3:
            match = _DOCKER_CGROUP_RE.search(fields[2].strip())
            if match:
                return match.group(1)
    return None


def uid_from_status(text: str) -> int | None:
    for line in text.splitlines():
        if line.startswith("Uid:"):
            fields = line.split()
            return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
    return None


def read_proc_file(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:  # the process exited, or it is not ours to read
        return None


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_dirs(container_id: str, init_cgroup: str | None) -> list[str]:
    """Where a container's cgroup may lie below the cgroup root, most likely first.

    From its init process's `/proc/<pid>/cgroup` when readable (the `pids` controller of
    cgroup v1, or the unified `0::` line of v2), then the usual layouts of the cgroupfs
    and systemd drivers under v1 (`pids/…`) and v2 (the root itself)."""
    found = []
    for line in (init_cgroup or "").splitlines():
        fields = line.split(":", 2)
        if len(fields) == 3 and container_id in fields[2]:
            path = fields[2].strip().lstrip("/")
            if "pids" in fields[1].split(","):
                found.append(f"pids/{path}")
            elif fields[0] == "0" and not fields[1]:
                found.append(path)
    for layout in (f"docker/{container_id}", f"system.slice/docker-{container_id}.scope"):
        found += [f"pids/{layout}", layout]
    return list(dict.fromkeys(found))


def container_processes(
    container_id: str, init_pid: int, root: Path = CGROUP_ROOT, proc: Path = Path("/proc")
) -> int | None:
    """How many processes a running container holds, from its cgroup's `cgroup.procs` (one
    file read instead of a `docker top` the engine answers by running `ps`); None when no
    cgroup of it is found here (a remote or rootless engine): ask the engine then."""
    init_cgroup = read_proc_file(proc / str(init_pid) / "cgroup") if init_pid > 0 else None
    for relative in cgroup_dirs(container_id, init_cgroup):
        text = read_proc_file(root / relative / "cgroup.procs")
        if text is not None:
            return len([line for line in text.split() if line.isdigit()])
    return None
