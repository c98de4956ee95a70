"""One apply at a time per Docker engine: an flock'd file keyed by the engine's ID.

Two clones of a config repo, or two admins, must not apply to one engine at once. The lock
lives in a host-wide directory (so every clone sees it), names its holder (pid, user@host,
command, since) and is released by the kernel when the holding process dies, kill -9 included.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
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


def _me(engine_id: str) -> LockInfo:
    return LockInfo(
        engine_id=engine_id,
        pid=os.getpid(),
        user=f"{getpass.getuser()}@{socket.gethostname()}",
        command=" ".join(["ds01ctl", *sys.argv[1:]])[:200],
        version=__version__,
        since=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def _holder(path: Path) -> LockInfo | None:
    try:
        return LockInfo(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


@contextmanager
def engine_lock(lock_dir: Path, engine_id: str, *, timeout: float = 0.0) -> Iterator[LockInfo]:
    """Hold the engine's lock for the `with` block; wait up to `timeout` s, doubling the delay."""
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Ds01Error(
            f"cannot create the lock directory {lock_dir}: {exc.strerror}",
            hint="run as root, or set DS01CTL_LOCK_DIR / --lock-dir to a shared writable directory",
            code="lock_dir",
        ) from None
    path = lock_path(lock_dir, engine_id)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, timeout)
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


def _acquire(fd: int, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # flock: released when we die
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _holder(path)
                who = holder.describe() if holder else "another process"
                raise LockHeld(
                    f"another apply holds the lock of this Docker engine ({who})",
                    hint="wait for it to finish, or pass --lock-timeout to wait for it; "
                    "the lock goes when that process exits",
                ) from None
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.01)))
            delay = min(delay * 2, 2.0)
