"""What each user may read about their own objects, without root or the Docker socket.

The loop writes `<state>/users/<login>.json` after every full pass: their objects (state,
GPUs), pending requests with the reason (an invalid file of theirs says file:line:col),
changes waiting for an admin's approval, failures with the error and the container's last
log lines, warnings, and the commit in force. The file is theirs alone: owned by their uid,
mode 0600, in a root-owned directory (0711: nobody can list who has a file) that nobody
else can write, and written by a temp file and a rename inside that directory's open
descriptor, never through a symlink. `documents` is pure; `write_user_files` is the shell.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ds01ctl.errors import Ds01Error

VERSION = 1
USERS_DIR = "users"


def owner_of(target: str) -> str | None:
    parts = target.split("/")
    return parts[1] if len(parts) >= 3 and parts[1] not in ("", "?") else None


def documents(status: Mapping[str, Any], logins: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The per-user documents cut from the loop's full status document (pure)."""
    docs: dict[str, dict[str, Any]] = {}
    for login in sorted(set(logins)):
        docs[login] = for_user(status, login)
    return docs


def for_user(status: Mapping[str, Any], login: str) -> dict[str, Any]:
    """The parts of the full status that concern `login`'s objects."""

    def mine(rows: Sequence[Mapping[str, Any]], key: str = "target") -> list[dict[str, Any]]:
        return [dict(r) for r in rows if owner_of(str(r.get(key, ""))) == login]

    held = [
        {**dict(a), "plan": plan["id"]}
        for plan in status.get("held", [])
        for a in plan.get("actions", [])
        if owner_of(str(a.get("target", ""))) == login
    ]
    config = dict(status.get("config", {}))
    rejected = config.get("rejected")
    if rejected:
        # The reason names admins' files; users learn only that their change is not live yet.
        config["rejected"] = {
            "commit": rejected.get("commit"),
            "why": "the Site or QuotaPolicy of that commit did not validate; admins are told",
        }
    return {
        "version": VERSION,
        "user": login,
        "updated_at": status.get("updated_at"),
        "config": config,
        "objects": mine(status.get("objects", [])),
        "pending": mine(status.get("pending", [])),
        "waiting_for_approval": held,
        "reported": mine(status.get("reported", [])),
        "failures": mine(status.get("failures", [])),
        "warnings": [w for w in status.get("user_warnings", {}).get(login, [])],
        "lifecycle": mine(status.get("lifecycle", [])),
        "budget": [dict(b) for b in status.get("budgets", []) if b.get("owner") == login],
    }


# --- writing ------------------------------------------------------------------------------


def users_dir_fd(state_dir: Path) -> int:
    """`<state>/users` as an open descriptor: made 0711 when missing, refused when it is a
    symlink, not ours or writable by anyone else."""
    path = state_dir / USERS_DIR
    try:
        os.mkdir(path, 0o711)
    except FileExistsError:
        pass
    except OSError as exc:
        raise _error(path, f"cannot create it: {exc.strerror}") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        why = "it is a symbolic link" if exc.errno in (errno.ELOOP, errno.ENOTDIR) else exc.strerror
        raise _error(path, f"cannot open it: {why}") from None
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        os.close(fd)
        raise _error(path, "it belongs to someone else or others can write it")
    if stat.S_IMODE(info.st_mode) != 0o711:
        os.fchmod(fd, 0o711)
    return fd


def write_user_files(
    state_dir: Path,
    docs: Mapping[str, Mapping[str, Any]],
    ids: Mapping[str, tuple[int, int]],
) -> list[str]:
    """Write each user's document as theirs (uid, gid), 0600; remove files of users gone.
    Returns the logins skipped because no uid is known for them."""
    fd = users_dir_fd(state_dir)
    skipped = []
    try:
        for login, doc in sorted(docs.items()):
            if login not in ids or "/" in login or login.startswith("."):
                skipped.append(login)
                continue
            uid, gid = ids[login]
            _write_one(
                fd, f"{login}.json", json.dumps(doc, indent=2, sort_keys=True) + "\n", uid, gid
            )
        wanted = {f"{login}.json" for login in docs if login in ids}
        for name in os.listdir(fd):
            if name.endswith(".json") and name not in wanted:
                os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)
    return skipped


def _write_one(dir_fd: int, name: str, text: str, uid: int, gid: int) -> None:
    tmp = f".{name}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dir_fd)
    fd = os.open(tmp, flags, 0o600, dir_fd=dir_fd)
    try:
        os.fchmod(fd, 0o600)
        if os.geteuid() == 0:
            os.fchown(fd, uid, gid)
        os.write(fd, text.encode())
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(fd)
    # rename replaces whatever is at `name` (a planted symlink included) without following it
    os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def read_own(state_dir: Path, login: str) -> dict[str, Any]:
    """The caller's own status file (any user; the file's mode is the guard)."""
    path = state_dir / USERS_DIR / f"{login}.json"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Ds01Error(
            f"no status for {login} yet ({path})",
            hint="the reconcile loop writes it after its next full pass for every user with "
            "objects in the config repo",
            code="no_status",
        ) from None
    except OSError as exc:
        raise Ds01Error(
            f"cannot read {path}: {exc.strerror}",
            hint="each user can read only their own status; admins run `ds01ctl status` as root",
            code="no_status",
        ) from None
    with os.fdopen(fd, encoding="utf-8") as handle:
        try:
            doc = json.load(handle)
        except ValueError:
            raise Ds01Error(
                f"{path} is not JSON",
                hint="it is rewritten at the loop's next full pass",
                code="no_status",
            ) from None
    if not isinstance(doc, dict):
        raise Ds01Error(f"{path} is not a status document", hint="", code="no_status")
    return doc


def _error(path: Path, why: str) -> Ds01Error:
    return Ds01Error(
        f"the users' status directory {path}: {why}",
        hint="remove it (the loop makes it again), or fix the state dir's ownership",
        code="user_status",
    )
