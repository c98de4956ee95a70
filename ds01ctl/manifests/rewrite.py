"""Rewriting a manifest file in place, keeping its comments and layout (ruamel round-trip).

Used where ds01ctl proposes a change to the config repo itself (restoring a snapshot sets a
workspace's image to it), so that the change is reviewed and committed like any other.

Files under `users/` are their users' (a symlink can be committed to git, or swapped on disk
between load and write), and this may run as root: the file is reached from the repo root one
directory at a time without following any symlink, read and replaced through that directory's
descriptor (a new file renamed over the old one, with its owner and mode), never written
through a link.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
from pathlib import Path

from ruamel.yaml import YAML

from ds01ctl.errors import Ds01Error


def set_workspace_image(
    path: Path, owner: str, name: str, reference: str, *, root: Path | None = None
) -> None:
    """In the file at `path` (below `root`, the config repo), make workspace `owner/name` use
    `image_ref: reference`."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    dir_fd = _open_directory(path, root)
    try:
        text, info = _read(dir_fd, path)
        documents = list(yaml.load_all(text))
        found = False
        for doc in documents:
            if not isinstance(doc, dict) or doc.get("kind") != "Workspace":
                continue
            meta = doc.get("metadata") or {}
            if meta.get("name") == name and meta.get("owner", owner) == owner:
                spec = doc.setdefault("spec", {})
                for key in ("framework", "image"):
                    spec.pop(key, None)
                spec["image_ref"] = reference
                found = True
        if not found:
            raise Ds01Error(f"{path} declares no workspace {owner}/{name}", code="restore")
        out = io.StringIO()
        yaml.dump_all(documents, out)
        _replace(dir_fd, path, out.getvalue(), info)
    finally:
        os.close(dir_fd)


def _link_error(path: Path, what: str) -> Ds01Error:
    return Ds01Error(
        f"{what} is a symbolic link; {path} is not rewritten through it",
        hint=f"set image_ref in {path} by hand",
        code="restore",
    )


def _open_directory(path: Path, root: Path | None) -> int:
    """The directory holding `path`, walked down from `root` without following symlinks."""
    parent = os.path.abspath(path.parent)
    start = os.path.abspath(root) if root is not None else parent
    below = os.path.relpath(parent, start)
    if below == "." or below.startswith(".."):
        start, below = parent, "."
    fd = os.open(start, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the admin's path
    walked = start
    try:
        for part in Path(below).parts if below != "." else ():
            walked = os.path.join(walked, part)
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                inner = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(walked):
                    raise _link_error(path, walked) from None
                raise Ds01Error(f"cannot open {walked}: {exc.strerror}", code="restore") from None
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read(dir_fd: int, path: Path) -> tuple[str, os.stat_result]:
    try:
        fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _link_error(path, str(path)) from None
        raise Ds01Error(f"cannot read {path}: {exc.strerror}", code="restore") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Ds01Error(f"{path} is not a regular file", code="restore")
        return handle.read().decode("utf-8"), info


def _replace(dir_fd: int, path: Path, text: str, info: os.stat_result) -> None:
    """A new file beside the old one, with its owner and mode, renamed over it."""
    temp = f".{path.name}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temp, flags, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8"))
            out.flush()
            if os.geteuid() == 0:
                os.fchown(out.fileno(), info.st_uid, info.st_gid)
            os.fchmod(out.fileno(), stat.S_IMODE(info.st_mode))
            os.fsync(out.fileno())
        os.replace(temp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=dir_fd)
        raise
