"""Loading a config repo: files → YAML documents with positions → typed manifests.

The path given is the config repo's root, or a file or directory inside it: the root is found
from it (`repofiles.find_config_root`) and always walked whole (`*.yaml`, `*.yml`; dot-files
and dot-directories skipped, so `.github/` can sit beside the manifests), because a file is
only valid in its repo's context: the Site, the QuotaPolicy, the Images it names. What was
named is the *scope*: validation reports on the files in it, and a plan acts only on the
objects declared there. A path in no config repo is refused before anything is walked.

Owners come from the first component below the root's own `users/`; a `users/` directory
inside `users/<login>/` is refused, so no path can name a second owner. Symbolic links,
FIFOs, sockets and devices are refused, never followed or read (see `repofiles`). Every
problem becomes a `Diagnostic` naming `file:line:col`; nothing here raises for bad input.
"""

from __future__ import annotations

import errno
import gc
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ds01ctl.diagnostics import Diagnostic, error
from ds01ctl.manifests import KINDS, Manifest
from ds01ctl.manifests.common import API_VERSION
from ds01ctl.manifests.repofiles import (
    MAX_FILE_BYTES,
    SUFFIXES,
    NotRegularFile,
    file_type,
    find_config_root,
    read_regular,
)
from ds01ctl.manifests.schema_errors import pydantic_diagnostics, suggest
from ds01ctl.yamlpos import YamlDoc, YamlError, end_mark, load_documents

USERS = "users"


@dataclass(frozen=True, slots=True)
class Loaded:
    """A manifest and where it was declared."""

    manifest: Manifest
    file: str
    doc: YamlDoc
    path_owner: str | None  # <login> when the file lies under users/<login>/

    def at(self, *path: str | int, key: bool = False) -> dict[str, Any]:
        """`file`, `line`, `col` of a place in the document, for a Diagnostic."""
        mark = self.doc.mark_of(path, key=key)
        return {"file": self.file, "line": mark.line, "col": mark.col}


@dataclass(frozen=True, slots=True)
class Document:
    """Where a document starts and the object it names, if it names one (loaded or not):
    what a diagnostic about it is about."""

    file: str
    line: int
    target: str | None  # kind/owner/name, as plans name objects


@dataclass
class LoadResult:
    loaded: list[Loaded]
    diagnostics: list[Diagnostic]
    root: Path
    files: list[str] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    display_root: str = ""  # how file names start: "" for `.`, else the root as given
    scope: tuple[str, ...] | None = None  # what was named, relative to the root; None: all

    def in_scope(self, display: str | None) -> bool:
        """Whether a file (as shown in diagnostics) lies in what was named."""
        if self.scope is None:
            return True
        if display is None:
            return False
        parts = _relative_parts(display, self.display_root)
        return parts is not None and parts[: len(self.scope)] == self.scope


def load_path(path: Path) -> LoadResult:
    """Every manifest of the config repo around `path`, with diagnostics for everything that
    could not be read; `scope` says what `path` named inside it."""
    # Loading makes many small objects and no garbage cycles worth collecting (a recursive
    # alias, at most, refused and freed afterwards): the cyclic GC would only rescan them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _load_path(path)
    finally:
        if collecting:
            gc.enable()


def _load_path(path: Path) -> LoadResult:
    refused = _refuse_path(path)
    if refused is not None:
        return LoadResult([], [refused], path)
    root = find_config_root(path)
    if root is None:
        problem = error(
            "path.no_config_repo",
            f"{path} is not in a config repo: no directory from it up to the git root holds "
            "a Site manifest",
            file=str(path),
            hint="point ds01ctl at a config repo, where its Site manifest is, or a file in it",
        )
        return LoadResult([], [problem], path)
    display_root = _display_root(path, root)
    result = LoadResult([], [], root, display_root=display_root)
    named = Path(os.path.abspath(path)).relative_to(root).parts
    result.scope = named or None
    files = list(_walk(root, display_root, result.diagnostics))
    result.files = [display for display, _ in files if result.in_scope(display)]
    for display, file_path in files:
        parts = _relative_parts(display, display_root) or ()
        nested = _nested_users(display, parts)
        if nested is not None:
            result.diagnostics.append(nested)
            continue
        _load_file(display, file_path, _path_owner(parts), result)
    if not result.files and not any(result.in_scope(d.file) for d in result.diagnostics):
        what = "holds no" if os.path.isdir(path) else "is not a"
        result.diagnostics.append(
            error(
                "path.no_manifests",
                f"{path} {what} *.yaml or *.yml file ds01ctl reads",
                file=str(path),
                hint="point ds01ctl at the config repo's root, or a manifest in it",
            )
        )
    return result


def _refuse_path(path: Path) -> Diagnostic | None:
    try:
        os.stat(path)
    except FileNotFoundError:
        return error("path.not_found", f"{path} does not exist", file=str(path))
    except OSError as exc:
        return _os_problem(str(path), exc)
    return None


def _display_root(path: Path, root: Path) -> str:
    """The root as file names start: `validate .` and `validate users/x.yaml` show
    repo-relative names when run at the root; an absolute path gives absolute names."""
    if path.is_absolute():
        return str(root)
    relative = os.path.relpath(root)
    return "" if relative == "." else relative


def _relative_parts(display: str, display_root: str) -> tuple[str, ...] | None:
    relative = os.path.relpath(display, display_root or ".")
    parts = Path(relative).parts
    return None if parts[:1] == ("..",) else parts


def _walk(
    directory: Path, display: str, diagnostics: list[Diagnostic]
) -> Iterator[tuple[str, Path]]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        diagnostics.append(_os_problem(display or ".", exc))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        shown = os.path.join(display, entry.name)
        try:
            mode = entry.stat(follow_symlinks=False).st_mode  # lstat: links are not followed
        except OSError as exc:
            diagnostics.append(_os_problem(shown, exc))
            continue
        if stat.S_ISDIR(mode):
            yield from _walk(Path(entry.path), shown, diagnostics)
        elif stat.S_ISREG(mode):
            if entry.name.endswith(SUFFIXES):
                yield shown, Path(entry.path)
        else:
            diagnostics.append(_not_regular(shown, file_type(mode), entry.path))


def _not_regular(display: str, what: str, path: str | None = None) -> Diagnostic:
    if what == "symbolic link":
        try:
            target = f" to {os.readlink(path)}" if path is not None else ""
        except OSError:
            target = ""
        return error(
            "path.symlink",
            f"{display} is a symbolic link{target}; a config repo holds no symbolic links",
            file=display,
            hint="commit the file or directory itself instead of a link to it",
        )
    return error(
        "path.not_regular",
        f"{display} is a {what}, not a regular file or directory",
        file=display,
        hint="remove it from the config repo",
    )


def _os_problem(display: str, exc: OSError) -> Diagnostic:
    if exc.errno == errno.ELOOP:
        return _not_regular(display, "symbolic link")
    reason = exc.strerror or str(exc)
    return error("file.unreadable", f"cannot read {display}: {reason}", file=display)


def _path_owner(parts: tuple[str, ...]) -> str | None:
    """`<login>` for a file under the root's `users/<login>/` (`parts` relative to the root)."""
    return parts[1] if len(parts) >= 3 and parts[0] == USERS else None


def _nested_users(display: str, parts: tuple[str, ...]) -> Diagnostic | None:
    """A `users/` directory inside `users/<login>/` would look like a second owner: refused."""
    if _path_owner(parts) is None or USERS not in parts[2:-1]:
        return None
    login = parts[1]
    return error(
        "owner.path_mismatch",
        f"{display} lies in a {USERS}/ directory inside {USERS}/{login}/; only the config "
        f"repo's own {USERS}/ says who owns a file",
        file=display,
        hint=f"move it out of that {USERS}/ directory, into {USERS}/{login}/",
    )


def _read_text(display: str, file_path: Path, diagnostics: list[Diagnostic]) -> str | None:
    try:
        data = read_regular(file_path, MAX_FILE_BYTES)
    except NotRegularFile as exc:
        diagnostics.append(_not_regular(display, exc.what, str(file_path)))
        return None
    except OSError as exc:
        diagnostics.append(_os_problem(display, exc))
        return None
    if len(data) > MAX_FILE_BYTES:
        diagnostics.append(
            error(
                "file.too_large",
                f"file is larger than {MAX_FILE_BYTES // 1024} KiB; manifests are a few KiB",
                file=display,
                hint="split it, or move data that is not a manifest out of the config repo",
            )
        )
        return None
    if b"\0" in data:
        diagnostics.append(error("file.binary", "file is binary, not YAML text", file=display))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = end_mark(data[: exc.start].decode("utf-8-sig", errors="replace"))
        diagnostics.append(
            error(
                "file.binary",
                f"file is not UTF-8 text (byte 0x{data[exc.start]:02x})",
                file=display,
                line=line,
                col=col,
                hint="save it as UTF-8",
            )
        )
        return None


def _load_file(display: str, file_path: Path, owner: str | None, result: LoadResult) -> None:
    text = _read_text(display, file_path, result.diagnostics)
    if text is None:
        return
    found = 0
    try:
        for doc in load_documents(text):
            if doc.value is None:
                continue  # an empty document, e.g. a trailing `---`
            found += 1
            result.documents.append(Document(display, doc.start.line, _target(doc.value, owner)))
            loaded = _load_document(display, doc, owner, result.diagnostics)
            if loaded is not None:
                result.loaded.append(loaded)
    except YamlError as exc:
        where = {"line": exc.mark.line, "col": exc.mark.col} if exc.mark else {}
        result.diagnostics.append(
            error(exc.code, exc.message, file=display, hint=exc.hint, **where)
        )
        return
    if found == 0:
        result.diagnostics.append(
            error("file.empty", "file holds no manifest", file=display, hint="add one or delete it")
        )


def _target(value: Any, owner: str | None) -> str | None:
    """The object a document names, read leniently from what it says (it may not validate)."""
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
        return None
    metadata = value.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if value["kind"] not in KINDS or not isinstance(name, str) or not name:
        return None
    declared = metadata.get("owner") if isinstance(metadata, dict) else None
    who = owner or (declared if isinstance(declared, str) else "")
    return f"{value['kind'].lower()}/{who}/{name}"


def _load_document(
    display: str, doc: YamlDoc, owner: str | None, diagnostics: list[Diagnostic]
) -> Loaded | None:
    def at(path: tuple[str | int, ...], *, key: bool = False) -> dict[str, Any]:
        mark = doc.mark_of(path, key=key)
        return {"file": display, "line": mark.line, "col": mark.col}

    value = doc.value
    if not isinstance(value, dict):
        diagnostics.append(
            error(
                "manifest.not_mapping",
                "a manifest is a mapping with apiVersion, kind, metadata and spec",
                **at(()),
            )
        )
        return None
    if value.get("apiVersion") != API_VERSION:
        got = value.get("apiVersion")
        message = "apiVersion is missing" if got is None else f"apiVersion {got!r} is unknown"
        diagnostics.append(
            error(
                "manifest.api_version",
                message,
                hint=f"use apiVersion: {API_VERSION}",
                **at(("apiVersion",) if got is not None else ()),
            )
        )
        return None
    kind = value.get("kind")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        message = "kind is missing" if kind is None else f"kind {kind!r} is unknown"
        hint = suggest(str(kind), list(KINDS)) if kind is not None else None
        diagnostics.append(
            error(
                "manifest.kind",
                message,
                hint=hint or f"one of {', '.join(KINDS)}",
                **at(("kind",) if kind is not None else ()),
            )
        )
        return None
    if not _apply_path_owner(cls, value, owner, at, diagnostics):
        return None
    problems = pydantic_diagnostics(cls, value, at)
    if isinstance(problems, list):
        diagnostics.extend(problems)
        return None
    return Loaded(problems, display, doc, owner)


def _apply_path_owner(
    cls: type[Manifest],
    value: dict[Any, Any],
    owner: str | None,
    at: Any,
    diagnostics: list[Diagnostic],
) -> bool:
    """Infer or check the owner from users/<login>/; False when the document must be dropped."""
    if owner is None:
        return True
    metadata = value.get("metadata")
    if not cls.OWNED:
        diagnostics.append(
            error(
                "owner.path_mismatch",
                f"a {cls.__name__} is site-wide and cannot live under users/{owner}/",
                hint="move it outside users/",
                **at(("kind",)),
            )
        )
        return False
    if not isinstance(metadata, dict):
        return True  # the schema check reports it
    declared = metadata.get("owner")
    if declared is None:
        value["metadata"] = {**metadata, "owner": owner}
        return True
    if declared != owner:
        diagnostics.append(
            error(
                "owner.path_mismatch",
                f"files under users/{owner}/ may only declare objects owned by {owner}, "
                f"not by {declared}",
                hint=f"move the file to users/{declared}/ or set owner: {owner}",
                **at(("metadata", "owner")),
            )
        )
        return False
    return True
