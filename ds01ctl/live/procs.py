"""Reading `/proc` for a GPU process: the container it runs in and the user it runs as.

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
