"""Mount paths and the site's mount policy: which host paths an owner may mount, and how.

Checks are lexical, so `validate` runs offline: a declared path must already be clean and
absolute (no `..`, `.`, `//`, `~`, and no `:` or `,`, which Docker's bind syntax would split).
The Docker socket and the engine's own state are refused whatever the policy says.
"""

from __future__ import annotations

import functools
import posixpath
import re
from dataclasses import dataclass

from ds01ctl.manifests.site import MountRule

# Mounting any of these hands the container the Docker socket (root on the host).
_SOCKET_PATHS = ("/var/run/docker.sock", "/run/docker.sock")
_ENGINE_TREES = ("/var/lib/docker", "/var/lib/containerd", "/run/containerd", "/var/run/docker")


@dataclass(frozen=True, slots=True)
class MountProblem:
    code: str  # mount.invalid | mount.not_allowed | mount.read_only | security.docker_socket
    message: str
    hint: str | None = None


def expand_owner(path: str, owner: str) -> str:
    return path.replace("{owner}", owner)


def clean_path_problem(path: str) -> str | None:
    """Why `path` is not a clean absolute host path, or None."""
    if not path.startswith("/"):
        return "is not absolute"
    if any(c in path for c in ":,\0\n") or "~" in path:
        return "contains ':', ',', '~' or a control character"
    parts = path.split("/")[1:]
    if path != "/" and ("" in parts or "." in parts or ".." in parts):
        return "is not normalized (no '..', '.', '//' or trailing '/')"
    if posixpath.normpath(path) != path:
        return "is not normalized"
    return None


def is_engine_path(path: str) -> bool:
    """True when mounting `path` would expose the Docker socket or the engine's state."""
    for socket in _SOCKET_PATHS:
        if socket == path or socket.startswith(path.rstrip("/") + "/"):
            return True
    return any(path == tree or path.startswith(tree + "/") for tree in _ENGINE_TREES)


@functools.lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern[str]:
    """A mount pattern as a regex: `*` and `?` stay within one path component, and a trailing
    `/**` also matches the directory itself and everything below it."""
    parts = pattern.strip("/").split("/")
    tail = ""
    if parts[-1] == "**":
        if len(parts) == 1:
            return re.compile("/.*")
        parts, tail = parts[:-1], "(?:/.*)?"
    glob = {"*": "[^/]*", "?": "[^/]"}
    body = "/".join("".join(glob.get(c) or re.escape(c) for c in part) for part in parts)
    return re.compile(f"/{body}{tail}")


def _matches(pattern: str, path: str) -> bool:
    return _pattern(pattern).fullmatch(path) is not None


def fixed_prefix(path: str, owner: str, policy: list[MountRule]) -> str:
    """The longest wildcard-free leading part of a policy rule that allows `path` (`/home/alice`
    for `/home/{owner}/**`): what the admin named. Below it, directories belong to users.
    `/` when no rule allows it."""
    best = "/"
    for rule in policy:
        pattern = expand_owner(rule.path, owner)
        if not _matches(pattern, path):
            continue
        fixed = []
        for part in pattern.strip("/").split("/"):
            if "*" in part or "?" in part:
                break
            fixed.append(part)
        prefix = "/" + "/".join(fixed)
        if len(prefix) > len(best):
            best = prefix
    return best


def check_mount(
    path: str, read_only: bool, owner: str, policy: list[MountRule]
) -> MountProblem | None:
    """Whether `owner` may mount `path` (already expanded), read-only or not."""
    problem = clean_path_problem(path)
    if problem is not None:
        return MountProblem(
            "mount.invalid", f"mount path {path!r} {problem}", "write a clean absolute path"
        )
    if is_engine_path(path):
        return MountProblem(
            "security.docker_socket",
            f"mounting {path} would expose the Docker socket or the engine's state",
            "user containers never get the Docker socket",
        )
    rules = [r for r in policy if _matches(expand_owner(r.path, owner), path)]
    if not rules:
        allowed = ", ".join(expand_owner(r.path, owner) for r in policy) or "nothing"
        return MountProblem(
            "mount.not_allowed",
            f"{owner} may not mount {path}",
            f"the site's mount policy allows {allowed}",
        )
    if not read_only and all(r.read_only for r in rules):
        return MountProblem(
            "mount.read_only",
            f"{path} may only be mounted read-only",
            "set read_only: true on this mount",
        )
    return None
