"""Missing read-write mount sources are made by their owner, never by root.

The engine creates a missing bind source as root, so `/workspace` would not be writable by
the user it is for. Apply creates it first, in a forked child that has dropped to the owner's
uid and gid (no supplementary groups) before touching the filesystem: the kernel then judges
every step with the owner's own rights, so a symlink planted in the path can lead only where
the owner could go anyway, and root never follows a path a user controls.

The child also refuses to follow symlinks: it opens the real path `live/paths.walk` found (every
admin symlink already resolved) one component at a time with `O_NOFOLLOW`, then makes each
missing name with `mkdirat` and opens it the same way. A directory that exists is left as it is.
"""

from __future__ import annotations

import os

from ds01ctl.apply.asuser import run_as
from ds01ctl.live.paths import walk
from ds01ctl.manifests.site import MountRule
from ds01ctl.model.spec import Bind, UserAccount

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def ensure_source(
    bind: Bind, account: UserAccount, owner: str, policy: list[MountRule], mode: int
) -> str | None:
    """Check one mount source right before a create and make it, as `account`, if it is a
    missing read-write one: why the container must not be created, or None."""
    found = walk(bind.source, owner, policy)
    if found.problem is not None:
        return f"its {bind.target} mount: {found.problem}"
    if not found.missing:
        return None
    if bind.read_only:
        return (
            f"its {bind.target} mount: {bind.source} does not exist and is mounted read-only; "
            f"create {bind.source} first or ask an admin"
        )
    error = make_dirs_as(found.real, found.missing, account.uid, account.gid, mode)
    if error is None:
        return None
    return (
        f"its {bind.target} mount: {account.login} cannot create {found.path} ({error}); "
        f"create it first or ask an admin"
    )


def make_dirs_as(real: str, names: tuple[str, ...], uid: int, gid: int, mode: int) -> str | None:
    """Make `real/names…` in a child running as uid:gid: None, or what went wrong (one line)."""

    def work() -> str:
        os.umask(0)  # the Site's mode exactly, whatever root's umask
        _make(real, names, mode)
        return ""

    done, why = run_as(uid, gid, work)
    return None if done else (why or "the helper failed")


def _make(real: str, names: tuple[str, ...], mode: int) -> None:
    fd, path = os.open("/", _DIR_FLAGS), "/"
    try:
        for name in real.strip("/").split("/"):
            if name:
                path = os.path.join(path, name)
                fd = _step(fd, name, path)
        for name in names:
            path = os.path.join(path, name)
            # Made meanwhile (a parallel create, or the owner): then opened as any other.
            try:
                os.mkdir(name, mode, dir_fd=fd)
            except FileExistsError:
                pass
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, path) from None
            fd = _step(fd, name, path)
    finally:
        os.close(fd)


def _step(fd: int, name: str, path: str) -> int:
    """Open `name` in the directory `fd` without following a symlink, then close `fd`."""
    try:
        opened = os.open(name, _DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
    os.close(fd)
    return opened
