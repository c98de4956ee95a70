"""Telling a workspace's user what the lifecycle is about to do: on the terminals they have
open in the container, and in `/workspace/.ds01-alerts`, both written as the user.

Everything is written by a forked child that has dropped to the container's own uid:gid (no
supplementary groups) before it opens anything (`asuser.run_as`, as `mountdirs` makes
directories): the kernel then judges every open with the user's rights, so nothing a user
planted (a symlink, a FIFO, a file descriptor pointing at a file of root's) can make root
write anywhere.

- The alerts file: the workspace's host directory is the real path `live/paths.walk` found
  (admin symlinks resolved, none of the user's followed), opened one component at a time with
  `O_NOFOLLOW`; `.ds01-alerts` is opened with `O_NOFOLLOW | O_NONBLOCK` (a symlink fails, a
  FIFO cannot block us) and written only if it is a regular file. It is the user's own file.
- Terminals: for each process of the container (its cgroup's `cgroup.procs`, host pids),
  `/proc/<pid>/fd/{0,1,2}` is opened (only the user's own processes can be; the kernel
  reopens the very file, so the container's own devpts, never the host's `/dev/pts/N` of the
  same number), kept only if it is a pseudo-terminal slave (character device, majors
  136-143), and written once per terminal, without blocking.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from ds01ctl.apply.asuser import run_as

ALERTS = ".ds01-alerts"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_TTY_FLAGS = os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
_PTS_MAJORS = range(136, 144)  # Unix98 pty slaves


@dataclass(frozen=True, slots=True)
class Delivery:
    terminals: int  # terminals written to
    alerts_file: bool  # whether the line went into .ds01-alerts
    problem: str | None = None  # why the alerts file was not written, when it was wanted


def notify_as(
    uid: int,
    gid: int,
    message: str,
    *,
    workspace_real: str | None,
    pids: Sequence[int],
    stamp: str,
    proc_root: str = "/proc",
) -> Delivery:
    """Write `message` to the user's terminals among `pids` and append `stamp message` to
    `<workspace_real>/.ds01-alerts`, in a child running as uid:gid. Never as root."""
    if uid == 0 or gid == 0:
        return Delivery(0, False, "the container runs as root: nothing is written as root")

    def work() -> str:
        terminals = _terminals(pids, message, proc_root)
        problem = "" if workspace_real is None else _alert(workspace_real, f"{stamp} {message}\n")
        return f"{terminals}\n{problem}"

    done, answer = run_as(uid, gid, work)
    if not done or "\n" not in answer:
        return Delivery(0, False, "the helper writing as the user failed")
    count, _, problem = answer.partition("\n")
    written = workspace_real is not None and not problem
    return Delivery(int(count), written, problem or None)


def _terminals(pids: Sequence[int], message: str, proc_root: str) -> int:
    seen: set[tuple[int, int]] = set()
    data = f"\r\n*** ds01: {message} ***\r\n".encode()
    for pid in pids:
        for fd_number in (0, 1, 2):
            try:
                fd = os.open(f"{proc_root}/{pid}/fd/{fd_number}", _TTY_FLAGS)
            except OSError:
                continue  # not the user's process, gone, or no such descriptor
            try:
                info = os.fstat(fd)
                which = (info.st_dev, info.st_rdev)
                if (
                    stat.S_ISCHR(info.st_mode)
                    and os.major(info.st_rdev) in _PTS_MAJORS
                    and which not in seen
                ):
                    seen.add(which)
                    os.write(fd, data)
            except OSError:
                pass  # a full terminal buffer (nobody reads it): skipped, never waited on
            finally:
                os.close(fd)
    return len(seen)


def _alert(real: str, line: str) -> str:
    """Append `line` to `real/.ds01-alerts`: '' when done, else why not."""
    try:
        fd = os.open("/", _DIR_FLAGS)
    except OSError as exc:
        return f"cannot open /: {exc.strerror}"
    path = ""
    try:
        for name in real.strip("/").split("/"):
            if not name:
                continue
            path += "/" + name
            try:
                opened = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                return f"{path}: {exc.strerror}"
            os.close(fd)
            fd = opened
        try:
            alerts = os.open(ALERTS, _FILE_FLAGS, 0o600, dir_fd=fd)
        except OSError as exc:
            return f"{path}/{ALERTS}: {exc.strerror}"
        try:
            if not stat.S_ISREG(os.fstat(alerts).st_mode):
                return f"{path}/{ALERTS}: not a regular file"
            os.write(alerts, line.encode())
        finally:
            os.close(alerts)
        return ""
    finally:
        os.close(fd)
