"""Where a bind source really leads: the filesystem side of the mount policy.

The policy (`manifests/mounts.py`) judges a path as written, offline. The engine runs as root
and follows symlinks in a bind source, so a user who owns a directory the policy allows could
point it anywhere (`/home/mal/x -> /etc`, `-> /var/run/docker.sock`, `-> /home/vic`). Here the
path is walked one component at a time with lstat, never following what a user controls:

- below the policy's fixed prefix (the wildcard-free part of the rule that allows the path,
  `/home/alice` for `/home/{owner}/**`) no component may be a symlink at all: those
  directories belong to users, whoever owns them today;
- at or above it, a symlink is the admin's layout (`/home -> /srv/home`) and is followed only
  when the directory holding it is owned by root and writable by no one else, so that only
  root can have made it; the components of its target are judged the same way;
- the real path is never the Docker socket or the engine's state, and a source that exists is
  a directory (mlc's mounts are directories).

A missing tail is never left to the engine, which would create it as root: apply creates a
read-write source as its owner (`apply/mountdirs.py`, from the real directory found here), and
a missing read-only source makes the workspace pending. Plan time and apply time (right before
a create) run the same check; what remains between
that and each start is the engine's own guarantee: the container runs as the owner's uid, so
whatever a swapped symlink brings in is reachable only with the owner's rights.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections import deque
from dataclasses import dataclass

from ds01ctl.manifests import Workspace
from ds01ctl.manifests.mounts import fixed_prefix, is_engine_path
from ds01ctl.manifests.site import MountRule
from ds01ctl.manifests.validate import ConfigRepo
from ds01ctl.model.spec import Bind

_MAX_LINKS = 40  # as the kernel's own limit on symlinks in one lookup


@dataclass(frozen=True, slots=True)
class Walk:
    """Where a source leads: a problem, or its real path and the part of it still missing."""

    problem: str | None
    real: str = "/"  # the deepest existing directory, every symlink resolved
    missing: tuple[str, ...] = ()  # the names below `real` that do not exist yet

    @property
    def path(self) -> str:
        return posixpath.join(self.real, *self.missing)


def source_problem(source: str, owner: str, policy: list[MountRule]) -> str | None:
    """Why the engine must not mount `source` for `owner` as things stand on disk, or None."""
    return walk(source, owner, policy).problem


def walk(source: str, owner: str, policy: list[MountRule]) -> Walk:
    """`source` walked one lstat at a time, as the module docstring says."""
    prefix = fixed_prefix(source, owner, policy)
    strict_from = 0 if prefix == "/" else len(prefix.strip("/").split("/"))
    # Each pending component carries its index in `source`, or None when it came from the
    # target of an admin's symlink.
    pending: deque[tuple[str, int | None]] = deque(
        (name, index) for index, name in enumerate(source.strip("/").split("/")) if name
    )
    real, links = "/", 0
    while pending:
        name, index = pending.popleft()
        if name in ("", "."):
            continue
        if name == "..":
            real = posixpath.dirname(real)
            continue
        candidate = posixpath.join(real, name)
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            return _missing(source, real, [name, *(n for n, _ in pending)])
        except OSError as exc:
            return Walk(f"{candidate} cannot be checked ({exc.strerror})")
        if not stat.S_ISLNK(info.st_mode):
            real = candidate
            continue
        target = os.readlink(candidate)
        if index is not None and index >= strict_from:
            return Walk(
                f"{candidate} is a symlink (to {target}) below {prefix}, where its owner can "
                "change it; mount the real directory instead"
            )
        holder = os.stat(real)
        if holder.st_uid != 0 or holder.st_mode & 0o022:
            return Walk(
                f"{candidate} is a symlink (to {target}) in {real}, a directory someone other "
                "than root can write; mount the real directory instead"
            )
        links += 1
        if links > _MAX_LINKS:
            return Walk(f"{source} has more than {_MAX_LINKS} symlinks on its way")
        if target.startswith("/"):
            real = "/"
        pending.extendleft(reversed([(part, None) for part in target.split("/")]))
    problem = _engine_problem(source, real)
    if problem is None and not stat.S_ISDIR(os.lstat(real).st_mode):
        problem = f"{source} is not a directory; mounts are directories"
    return Walk(problem, real)


def _missing(source: str, real: str, rest: list[str]) -> Walk:
    full = posixpath.normpath(posixpath.join(real, *rest))
    problem = _engine_problem(source, full)
    if problem is None and any(n in ("", ".", "..") for n in rest):
        # Only the target of an admin's symlink can bring these in below a missing name.
        problem = f"{source} leads to {full} through a missing directory; mount {full}"
    return Walk(problem, real, tuple(rest))


def _engine_problem(source: str, real: str) -> str | None:
    if is_engine_path(real):
        return f"{source} leads to {real}, the Docker socket or the engine's state"
    return None


def bind_problem(bind: Bind, owner: str, policy: list[MountRule]) -> str | None:
    """`source_problem` worded for one of a container's mounts; a missing read-only source is
    one too (nobody may write there, so nothing would ever fill it)."""
    found = walk(bind.source, owner, policy)
    if found.problem is None and found.missing and bind.read_only:
        return (
            f"its {bind.target} mount: {bind.source} does not exist and is mounted read-only; "
            f"create {bind.source} first or ask an admin"
        )
    return None if found.problem is None else f"its {bind.target} mount: {found.problem}"


def missing_source(bind: Bind, owner: str, policy: list[MountRule]) -> str | None:
    """The real path apply will create for a read-write mount whose source is missing, or None."""
    found = walk(bind.source, owner, policy)
    if found.problem is not None or not found.missing or bind.read_only:
        return None
    return found.path


def mount_problems(repo: ConfigRepo) -> dict[str, str]:
    """Declared workspaces whose mount sources the engine must not follow now: key → reason."""
    from ds01ctl.resolve.workspaces import binds_of

    assert repo.site is not None
    site = repo.site.spec
    found = {}
    for ws, _ in repo.of(Workspace):
        owner = ws.metadata.owner or ""
        for bind in binds_of(ws, site):
            problem = bind_problem(bind, owner, site.mount_policy)
            if problem is not None:
                found[f"workspace/{owner}/{ws.metadata.name}"] = f"refused: {problem}"
                break
    return found
