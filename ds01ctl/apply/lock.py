"""One apply at a time per Docker engine: an flock'd file keyed by the engine's ID.

Two clones of a config repo, or two admins, must not apply to one engine at once. The lock
lives in a host-wide directory (so every clone sees it), names its holder (pid, user@host,
command, since) and is released by the kernel when the holding process dies, kill -9 included.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import getpass
import hashlib
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from ds01ctl import __version__
from ds01ctl.errors import Ds01Error, LockHeld

DEFAULT_LOCK_DIR = Path("/run/lock/ds01ctl")


@dataclass(frozen=True)
class LockInfo:
    engine_id: str
    pid: int
    user: str
    command: str
    version: str
    since: str  # ISO 8601, UTC

    def describe(self) -> str:
        return f"pid {self.pid}, {self.user}, `{self.command}`, since {self.since}"


def lock_dir_default() -> Path:
    return Path(os.environ.get("DS01CTL_LOCK_DIR") or DEFAULT_LOCK_DIR)


def lock_path(lock_dir: Path, engine_id: str) -> Path:
    return lock_dir / f"engine-{hashlib.sha256(engine_id.encode()).hexdigest()[:16]}.lock"


def invoker() -> tuple[str, str]:
    """Who runs this process (user@host) and its command line, for the lock and the journal."""
    return f"{getpass.getuser()}@{socket.gethostname()}", " ".join(["ds01ctl", *sys.argv[1:]])[:200]


def _me(engine_id: str) -> LockInfo:
    user, command = invoker()
    return LockInfo(
        engine_id=engine_id,
        pid=os.getpid(),
        user=user,
        command=command,
        version=__version__,
        since=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def _holder(fd: int) -> LockInfo | None:
    try:
        return LockInfo(**json.loads(os.pread(fd, 4096, 0)))
    except (OSError, ValueError, TypeError):
        return None


# Told, at each try while the lock is held by another, who holds it (None when unreadable)
# and how many seconds have been waited: the caller shows it; this module never prints.
OnWait = Callable[[LockInfo | None, float], None]


@contextmanager
def engine_lock(
    lock_dir: Path, engine_id: str, *, timeout: float = 0.0, on_wait: OnWait | None = None
) -> Iterator[LockInfo]:
    """Hold the engine's lock for the `with` block; wait up to `timeout` s, doubling the delay
    (`on_wait` hears of each try that found it held, while there is time left to wait)."""
    path = lock_path(lock_dir, engine_id)
    dir_fd = _open_lock_dir(lock_dir)
    try:
        fd = _open_lock_file(path, dir_fd)
    finally:
        os.close(dir_fd)
    try:
        _acquire(fd, timeout, on_wait)
        info = _me(engine_id)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(info)).encode(), 0)
        try:
            yield info
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _lock_error(message: str, hint: str) -> Ds01Error:
    return Ds01Error(message, hint=hint, code="lock_dir")


def _open_lock_dir(lock_dir: Path) -> int:
    """The lock directory, made 0755 and the invoker's when missing, as an open descriptor.

    Root writes here and the default lives in /run/lock, which anyone can write: a directory
    or file another user planted first (a symlink to /etc/shadow, say) must never be followed.
    The checks are made on the open descriptor, so the path cannot be swapped after them.
    """
    try:
        lock_dir.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(lock_dir, 0o755)
    except FileExistsError:
        pass
    except OSError as exc:
        raise _lock_error(
            f"cannot create the lock directory {lock_dir}: {exc.strerror}",
            "run as root, or set DS01CTL_LOCK_DIR / --lock-dir to a directory you own",
        ) from None
    remove = f"remove {lock_dir} (as root) and apply again: ds01ctl makes it itself"
    if os.path.islink(lock_dir):
        raise _lock_error(f"the lock directory {lock_dir} is a symlink; it is not followed", remove)
    try:
        fd = os.open(lock_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise _lock_error(
            f"cannot open the lock directory {lock_dir}: {exc.strerror}", remove
        ) from None
    info = os.fstat(fd)
    problem = None
    if info.st_uid not in (0, os.geteuid()):
        problem = f"is owned by uid {info.st_uid}, neither root nor you"
    elif info.st_mode & 0o022:
        problem = f"is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})"
    if problem is not None:
        os.close(fd)
        raise _lock_error(f"the lock directory {lock_dir} {problem}", remove)
    return fd


def _open_lock_file(path: Path, dir_fd: int) -> int:
    """The lock file in the open lock directory: never through a symlink, only a plain file."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    remove = f"remove {path} (as root) and apply again"
    try:
        fd = os.open(path.name, flags, 0o644, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _lock_error(
                f"the lock file {path} is a symlink; it is not followed", remove
            ) from None
        raise _lock_error(
            f"cannot open the lock file {path}: {exc.strerror}",
            "run as root, or set DS01CTL_LOCK_DIR / --lock-dir to a directory you own",
        ) from None
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "is not a regular file"
    elif info.st_uid not in (0, os.geteuid()):
        problem = f"is owned by uid {info.st_uid}, neither root nor you"
    elif info.st_nlink != 1:
        problem = f"has {info.st_nlink} hard links"
    if problem is not None:
        os.close(fd)
        raise _lock_error(f"the lock file {path} {problem}", remove)
    return fd


def _acquire(fd: int, timeout: float, on_wait: OnWait | None = None) -> None:
    started = time.monotonic()
    deadline = started + timeout
    delay = 0.05
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # flock: released when we die
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _holder(fd)
                who = holder.describe() if holder else "another process"
                raise LockHeld(
                    f"another apply holds the lock of this Docker engine ({who})",
                    hint="wait for it to finish, or pass --lock-timeout to wait for it; "
                    "the lock goes when that process exits",
                ) from None
            if on_wait is not None:
                on_wait(_holder(fd), time.monotonic() - started)
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.01)))
            delay = min(delay * 2, 2.0)
