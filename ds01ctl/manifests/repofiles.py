"""A config repo on disk: where its root is, and reading its files without trusting them.

Files under `users/<login>/` come from students, and ds01ctl runs as root: a committed symbolic
link, FIFO or device must not make it read outside the repo or hang. So a config repo holds
only directories and regular files (checked with `lstat`, never followed), and every file is
opened with `O_NOFOLLOW | O_NONBLOCK` and checked again with `fstat`, which closes the race
between the check and the open for the file itself.

The root is the nearest directory, from the path given up to the git root, holding a Site
manifest at its top level; who owns a file follows from its place under that root's `users/`.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

MAX_FILE_BYTES = 1024 * 1024  # a manifest file is a few KB; anything this large is a mistake
SUFFIXES = (".yaml", ".yml")
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
# A top-level `kind: Site` line; flow-style documents fall back to parsing the file.
_SITE_LINE = re.compile(r"^kind:[ \t]*([\"']?)Site\1[ \t]*(#.*)?$", re.MULTILINE)


class NotRegularFile(OSError):
    """The path is a symbolic link, FIFO, socket or device, not a regular file."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def file_type(mode: int) -> str:
    """What an `lstat` mode is, in words, for a message."""
    for test, name in (
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISFIFO, "named pipe (FIFO)"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISDIR, "directory"),
    ):
        if test(mode):
            return name
    return "special file"


def read_regular(path: Path | str, limit: int = MAX_FILE_BYTES) -> bytes:
    """At most `limit + 1` bytes of the regular file at `path` (so callers can tell "too large").

    Raises `NotRegularFile` for anything else and `OSError` when it cannot be read; a symbolic
    link is refused (ELOOP from O_NOFOLLOW) and a FIFO or device never blocks (O_NONBLOCK).
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the last component is a symbolic link
            raise NotRegularFile("symbolic link") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(file_type(mode))
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def find_config_root(path: Path) -> Path | None:
    """The nearest directory at or above `path` (a file's own directory for a file) holding a
    Site manifest at its top level; None when there is none up to the git root (the nearest
    directory holding `.git`) or, outside git, the file system's root.

    A candidate that lies under `users/` of another config root above it is not a root: a
    student's `users/<login>/site.yaml` must not make their directory a repo of its own.
    """
    start = Path(os.path.abspath(path))
    if not start.is_dir():
        start = start.parent
    found: Path | None = None
    for directory in (start, *start.parents):
        if _declares_site(directory):
            if found is None:
                found = directory
            elif found.relative_to(directory).parts[:1] == ("users",):
                return None
        if os.path.lexists(directory / ".git"):
            break
    return found


def _declares_site(directory: Path) -> bool:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return False
    for entry in entries:
        if entry.name.startswith(".") or not entry.name.endswith(SUFFIXES):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            data = read_regular(entry.path)
        except OSError:
            continue
        if len(data) <= MAX_FILE_BYTES and _is_site_text(data):
            return True
    return False


def _is_site_text(data: bytes) -> bool:
    text = data.decode("utf-8-sig", errors="replace")
    if _SITE_LINE.search(text):
        return True
    if "Site" not in text:
        return False
    from ds01ctl.yamlpos import YamlError, load_documents

    try:
        return any(
            isinstance(doc.value, dict) and doc.value.get("kind") == "Site"
            for doc in load_documents(text)
        )
    except YamlError:
        return False
