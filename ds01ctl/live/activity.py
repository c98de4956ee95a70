"""Reading what a container does, cheaply: a few small files per container, no Docker call.

- CPU time from the container's cgroup: cgroup v1 `cpuacct.usage` (nanoseconds) under the
  cpuacct hierarchy, v2 `cpu.stat` `usage_usec`. The directory is the one the kernel names in
  `/proc/<init pid>/cgroup` (any cgroup driver or parent), else Docker's usual places.
  `docker stats` costs a second or two per container; this costs two reads.
- `docker exec` sessions from the cgroup's `cgroup.procs`: a session is a process in the
  container whose parent is outside it (the runtime's shim starts each exec), other than the
  container's init; its children are part of it. Each one's start time comes from
  `/proc/<pid>/stat`, so a session opened since the last pass can count as activity while one
  left open does not (to about a second: the kernel gives the boot time in whole seconds).
- `/workspace/.keep-alive`: the `lstat` mtime of the file in the workspace's host directory,
  never following a symlink there (its owner controls that directory).
- GPU activity from a `GpuInventory` (NVML): a whole GPU's utilisation; under MIG NVML has no
  utilisation per instance, so the instance's SM utilisation from GPM counts where the GPU
  has GPM (Hopper and later), and else a compute process of this container on its instance.
  A process cannot tell a running kernel from one that only holds GPU memory (an idle
  notebook kernel keeps a pre-Hopper MIG workspace active; its CPU time and max_runtime
  still apply).

This module reads host paths: a daemon run in a container needs the host's PID namespace and
`/sys/fs/cgroup` mounted read-only.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ds01ctl.live.procs import read_proc_file
from ds01ctl.model.inventory import GpuInventory

_USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
KEEP_ALIVE = ".keep-alive"
WORKSPACE_TARGET = "/workspace"


@dataclass(frozen=True, slots=True)
class CgroupLayout:
    """Where CPU accounting lives on this host."""

    version: int  # 1 or 2
    root: Path  # the cpuacct (v1) or unified (v2) hierarchy's mount point
    mount_root: str = "/"  # the part of the hierarchy mounted there (not / inside a cgroupns)


@dataclass(frozen=True, slots=True)
class Activity:
    """What one read of one container found."""

    cpu_seconds: float | None  # cumulative; None: its cgroup could not be read
    sessions: int = 0
    newest_session: dt.datetime | None = None
    keep_alive: dt.datetime | None = None


def detect_layout(proc_root: Path = Path("/proc")) -> CgroupLayout | None:
    """The cgroup hierarchy that accounts CPU time, from `/proc/self/mountinfo`.

    A v1 cpuacct hierarchy wins over a cgroup2 mount: hybrid hosts mount an empty cgroup2 at
    /sys/fs/cgroup/unified, which has no CPU accounting."""
    text = read_proc_file(proc_root / "self" / "mountinfo") or ""
    unified = None
    for line in text.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        mount_root, point, fstype, options = fields[3], fields[4], tail[0], tail[2]
        if fstype == "cgroup" and "cpuacct" in options.split(","):
            return CgroupLayout(1, Path(_unescape(point)), mount_root)
        if fstype == "cgroup2" and unified is None:
            unified = CgroupLayout(2, Path(_unescape(point)), mount_root)
    return unified


def _unescape(path: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path


class ActivityReader:
    """Reads `Activity` for containers; tests point it at recorded files."""

    def __init__(
        self,
        layout: CgroupLayout,
        proc_root: Path = Path("/proc"),
    ) -> None:
        self.layout = layout
        self.proc_root = proc_root
        self._boot = _boot_time(proc_root)
        self._dirs: dict[str, Path] = {}  # container id → its cgroup dir, found once

    def read(
        self, container_id: str, init_pid: int | None, workspace_dir: Path | None = None
    ) -> Activity:
        directory = self.cgroup_dir(container_id, init_pid)
        if directory is None:
            return Activity(None, keep_alive=keep_alive_of(workspace_dir))
        sessions, newest = self.sessions(directory, init_pid)
        return Activity(self.cpu_seconds(directory), sessions, newest, keep_alive_of(workspace_dir))

    def cgroup_dir(self, container_id: str, init_pid: int | None) -> Path | None:
        known = self._dirs.get(container_id)
        if known is not None and known.is_dir():
            return known
        candidates = []
        if init_pid:
            relative = self._from_proc(init_pid)
            if relative is not None:
                candidates.append(relative)
        candidates += [f"docker/{container_id}", f"system.slice/docker-{container_id}.scope"]
        for relative in candidates:
            directory = self.layout.root / relative
            if directory.is_dir():
                self._dirs[container_id] = directory
                return directory
        return None

    def _from_proc(self, pid: int) -> str | None:
        text = read_proc_file(self.proc_root / str(pid) / "cgroup")
        if text is None:
            return None
        for line in text.splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            controllers, path = parts[1].split(","), parts[2]
            wanted = controllers == [""] if self.layout.version == 2 else "cpuacct" in controllers
            if wanted and path.startswith("/"):
                root = self.layout.mount_root.rstrip("/")
                if root and not path.startswith(root + "/"):
                    return None  # outside what is mounted here
                return path[len(root) :].lstrip("/")
        return None

    def cpu_seconds(self, directory: Path) -> float | None:
        if self.layout.version == 1:
            text = _read(directory / "cpuacct.usage")
            if text is None or not text.strip().isdigit():
                return None
            return int(text) / 1e9
        for line in (_read(directory / "cpu.stat") or "").splitlines():
            name, _, value = line.partition(" ")
            if name == "usage_usec" and value.strip().isdigit():
                return int(value) / 1e6
        return None

    def sessions(self, directory: Path, init_pid: int | None) -> tuple[int, dt.datetime | None]:
        """Live `docker exec` sessions: processes whose parent is outside the container."""
        pids = {int(p) for p in (_read(directory / "cgroup.procs") or "").split() if p.isdigit()}
        roots = []
        for pid in pids:
            if pid == init_pid:
                continue
            parsed = _stat(read_proc_file(self.proc_root / str(pid) / "stat"))
            if parsed is not None and parsed[0] not in pids:
                roots.append(parsed[1])
        if not roots or self._boot is None:
            return len(roots), None
        newest = self._boot + dt.timedelta(seconds=max(roots) / _USER_HZ)
        return len(roots), newest


def _stat(text: str | None) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) from `/proc/<pid>/stat`; the command name may
    hold spaces and parentheses, so fields are counted from its last `)`."""
    if not text:
        return None
    fields = text[text.rfind(")") + 1 :].split()
    try:
        return int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _boot_time(proc_root: Path) -> dt.datetime | None:
    for line in (read_proc_file(proc_root / "stat") or "").splitlines():
        if line.startswith("btime "):
            return dt.datetime.fromtimestamp(int(line.split()[1]), dt.UTC)
    return None


def _read(path: Path) -> str | None:
    """A small kernel file, with plain os calls: a pass reads hundreds of them, and pathlib's
    text layer costs more than the read itself."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # the container stopped since it was listed
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", errors="replace")


def keep_alive_of(workspace_dir: Path | None) -> dt.datetime | None:
    """The mtime of `.keep-alive` in the workspace's host dir (lstat: a symlink is never
    followed, it counts by its own mtime); None when there is none."""
    if workspace_dir is None:
        return None
    try:
        info = os.lstat(workspace_dir / KEEP_ALIVE)
    except OSError:
        return None
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
        return None
    return dt.datetime.fromtimestamp(info.st_mtime, dt.UTC)


def workspace_dir(inspect: Mapping[str, Any] | None) -> Path | None:
    """The host directory mounted at /workspace, from `inspect`."""
    for mount in (inspect or {}).get("Mounts") or []:
        if mount.get("Destination") == WORKSPACE_TARGET and mount.get("Type") == "bind":
            return Path(str(mount.get("Source")))
    return None


def gpu_active(
    inventory: GpuInventory, container_id: str, devices: tuple[str, ...], threshold_pct: int
) -> bool | None:
    """Whether the container uses its GPUs now; None when it holds none this snapshot knows."""
    if not devices:
        return None
    known = False
    for uuid in devices:
        device = inventory.device(uuid)
        if device is None:
            continue
        known = True
        if device.is_mig:
            busy = _mig_util(inventory, uuid)
            if busy is not None:  # measured (GPM): a process holding memory alone is idle
                if busy >= threshold_pct:
                    return True
                continue
            if any(
                p.device_uuid == uuid and p.container_id == container_id
                for p in inventory.processes
            ):
                return True
            continue
        gpu = next(g for g in inventory.gpus if g.uuid == uuid)
        if gpu.util_pct is not None and gpu.util_pct >= threshold_pct:
            return True
    return False if known else None


def _mig_util(inventory: GpuInventory, uuid: str) -> int | None:
    for gpu in inventory.gpus:
        for mig in gpu.migs:
            if mig.uuid == uuid:
                return mig.util_pct
    return None
