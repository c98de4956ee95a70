"""Loading a config repo: files → YAML documents with positions → typed manifests.

A path is a file or a directory walked recursively (`*.yaml`, `*.yml`; dot-files and
dot-directories skipped, so `.github/` can sit beside the manifests). Every problem becomes a
`Diagnostic` naming `file:line:col`; nothing here raises for bad input.
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
from ds01ctl.manifests.schema_errors import pydantic_diagnostics, suggest
from ds01ctl.yamlpos import YamlDoc, YamlError, end_mark, load_documents

MAX_FILE_BYTES = 1024 * 1024  # a manifest file is a few KB; anything this large is a mistake
SUFFIXES = (".yaml", ".yml")


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


@dataclass
class LoadResult:
    loaded: list[Loaded]
    diagnostics: list[Diagnostic]
    root: Path
    files: list[str] = field(default_factory=list)


def load_path(path: Path) -> LoadResult:
    """Every manifest under `path`, with diagnostics for everything that could not be read."""
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
    is_dir = path.is_dir()
    result = LoadResult([], [], path if is_dir else path.parent)
    files = list(_discover(path, result.diagnostics))
    result.files = [display for display, _ in files]
    given_parts = len(path.parts) if is_dir else 0
    for display, file_path in files:
        _load_file(display, file_path, _path_owner(display, given_parts), result)
    if is_dir and not files and not result.diagnostics:
        result.diagnostics.append(
            error(
                "path.no_manifests",
                f"{path} holds no *.yaml or *.yml file",
                file=str(path),
                hint="point ds01ctl at the config repo's root",
            )
        )
    return result


def _discover(path: Path, diagnostics: list[Diagnostic]) -> Iterator[tuple[str, Path]]:
    try:
        info = path.stat()
    except FileNotFoundError:
        diagnostics.append(error("path.not_found", f"{path} does not exist", file=str(path)))
        return
    except OSError as exc:
        diagnostics.append(_os_problem(str(path), exc))
        return
    if not stat.S_ISDIR(info.st_mode):
        yield str(path), path
        return
    display = "" if path == Path(".") else str(path)  # `validate .` shows repo-relative paths
    yield from _walk(path, display, {(info.st_dev, info.st_ino)}, diagnostics)


def _walk(
    directory: Path, display: str, seen: set[tuple[int, int]], diagnostics: list[Diagnostic]
) -> Iterator[tuple[str, Path]]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        diagnostics.append(_os_problem(display, exc))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        shown = os.path.join(display, entry.name)
        try:
            is_dir = entry.is_dir()  # follows symlinks
            info = entry.stat() if is_dir else None
        except OSError as exc:
            diagnostics.append(_os_problem(shown, exc))
            continue
        if info is not None:
            identity = (info.st_dev, info.st_ino)
            if identity in seen:
                diagnostics.append(
                    error(
                        "path.symlink_loop",
                        f"{shown} leads back to a directory already read",
                        file=shown,
                        hint="remove the symbolic link",
                    )
                )
                continue
            yield from _walk(Path(entry.path), shown, seen | {identity}, diagnostics)
        elif entry.name.endswith(SUFFIXES):
            yield shown, Path(entry.path)


def _os_problem(display: str, exc: OSError) -> Diagnostic:
    if exc.errno == errno.ELOOP:
        return error(
            "path.symlink_loop",
            f"{display} is a symbolic link loop",
            file=display,
            hint="remove the symbolic link",
        )
    if exc.errno == errno.ENOENT and isinstance(exc.filename, str):
        try:
            target = os.readlink(exc.filename)
        except OSError:
            target = None
        if target is not None:  # listed by the walk, yet absent: a dangling link
            return error(
                "file.unreadable",
                f"cannot read {display}: it is a symbolic link to {target}, which does not exist",
                file=display,
                hint="fix or remove the link",
            )
    reason = exc.strerror or str(exc)
    return error("file.unreadable", f"cannot read {display}: {reason}", file=display)


def _path_owner(display: str, given_parts: int) -> str | None:
    """`<login>` for a file under `users/<login>/`, relative to the path the user gave (a
    directory of `given_parts` components, or 0 for a file)."""
    relative = Path(display).parts[given_parts:]
    for i in range(len(relative) - 2, -1, -1):
        if relative[i] == "users" and i + 1 < len(relative) - 1:
            return relative[i + 1]
    return None


def _read_text(display: str, file_path: Path, diagnostics: list[Diagnostic]) -> str | None:
    try:
        with open(file_path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
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
