"""Reading DS01's files, and noting what the import leaves behind.

A `Source` is one YAML file as read, with the position of each value so that a refusal
(`ImportRefused`) points at `file:line:col`; `Notes` gathers the warning lines for what is not
carried over, in file order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ds01ctl.errors import ManifestError
from ds01ctl.importers.ds01.values import shown
from ds01ctl.names import check_login
from ds01ctl.yamlpos import YamlDoc, YamlError, YamlPath, load_documents

MAX_FILE_BYTES = 1024 * 1024  # DS01's files are a few KB; anything this large is a mistake

# Why a key is not imported; each warning line ends "...; not imported".
NEVER_READ = "declared but never read by DS01"
NOT_MODELLED = "ds01ctl has no equivalent"
UNKNOWN = "not a DS01 key ds01ctl knows"


class ImportRefused(ManifestError):
    """A DS01 file holds something a QuotaPolicy cannot express, or cannot be read at all."""

    code = "import_refused"


@dataclass(frozen=True)
class Ds01Files:
    """The DS01 files to import: resource-limits.yaml and its optional side files."""

    resource_limits: Path
    members_dir: Path | None = None
    user_overrides: Path | None = None
    exemptions: Path | None = None


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One DS01 YAML file as read: its value, and where each value of it starts."""

    name: str  # as the user gave it: messages point there
    doc: YamlDoc | None  # None for a file with no document at all

    @property
    def value(self) -> Any:
        return None if self.doc is None else self.doc.value

    def place(self, path: YamlPath, *, key: bool = False) -> tuple[int | None, int | None]:
        if self.doc is None:
            return None, None
        mark = self.doc.mark_of(path, key=key)
        return mark.line, mark.col

    def where(self, path: YamlPath, *, key: bool = False) -> str:
        line, col = self.place(path, key=key)
        return self.name if line is None else f"{self.name}:{line}:{col}"

    def refuse(
        self, path: YamlPath, problem: str, *, hint: str | None = None, key: bool = False
    ) -> ImportRefused:
        line, col = self.place(path, key=key)
        message = f"{dotted(path)}: {problem}" if path else problem
        return ImportRefused(message, file=self.name, line=line, col=col, hint=hint)


def dotted(path: Iterable[str | int]) -> str:
    """`groups.student.aggregate.cpu_quota`, `exemptions[0].expires_on`: a key path as people
    write it."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def read_text(path: Path, what: str) -> str:
    try:
        length = path.stat().st_size
        if length > MAX_FILE_BYTES:
            raise ImportRefused(f"is {length} bytes; a {what} is a few KB", file=str(path))
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImportRefused(f"no such {what}", file=str(path)) from None
    except IsADirectoryError:
        raise ImportRefused(f"is a directory, not a {what}", file=str(path)) from None
    except UnicodeDecodeError:
        raise ImportRefused(f"is not UTF-8 text, so not a {what}", file=str(path)) from None
    except OSError as exc:
        raise ImportRefused(f"cannot read it: {exc.strerror or exc}", file=str(path)) from None


def read_yaml(path: Path, what: str) -> Source:
    text = read_text(path, what)
    try:
        docs = list(load_documents(text))
    except YamlError as exc:
        line, col = exc.mark if exc.mark else (None, None)
        message = f"is not YAML: {exc.message}"
        raise ImportRefused(message, file=str(path), line=line, col=col, hint=exc.hint) from None
    if len(docs) > 1:
        start = docs[1].start
        raise ImportRefused(
            f"holds {len(docs)} YAML documents; a {what} holds one",
            file=str(path),
            line=start.line,
            col=start.col,
        )
    return Source(str(path), docs[0] if docs else None)


def mapping_of(source: Source, path: YamlPath, value: Any, what: str) -> dict[Any, Any]:
    """`value` if it is a mapping; `{}` for null (an empty section); refused otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise source.refuse(path, f"is {shown(value)}, not a mapping of {what}")
    return value


def login_at(source: Source, path: YamlPath, value: Any, *, key: bool = False) -> str:
    if not isinstance(value, str):
        # An unquoted numeric login (228755) reads as a number, which DS01 never matches.
        hint = "quote it" if isinstance(value, int | float) else None
        raise source.refuse(path, f"{shown(value)} is not a login", hint=hint, key=key)
    try:
        return check_login(value)
    except ValueError as exc:
        raise source.refuse(path, str(exc), key=key) from None


# --- warnings --------------------------------------------------------------------------------


@dataclass
class Notes:
    """What the import does not carry over, or carries over with a changed meaning."""

    entries: list[tuple[str, int, int, str]] = field(default_factory=list)  # file, line, col
    files: list[str] = field(default_factory=list)  # in the order first mentioned

    def register(self, file: str) -> None:
        if file not in self.files:
            self.files.append(file)

    def add(self, file: str, line: int | None, col: int | None, text: str) -> None:
        self.register(file)
        self.entries.append((file, line or 0, col or 0, text))

    def at(self, source: Source, path: YamlPath, text: str) -> None:
        line, col = source.place(path, key=True)
        self.add(source.name, line, col, f"{source.where(path, key=True)}: {text}")

    def warn(self, source: Source, path: YamlPath, message: str) -> None:
        self.at(source, path, f"{dotted(path)}: {message}")

    def drop(self, source: Source, path: YamlPath, why: str, keys: Iterable[Any] = ()) -> None:
        """One line for a key (or a section, with the keys it holds) that is not imported."""
        listed = ", ".join(str(k) for k in keys)
        subject = f"{dotted(path)} ({listed})" if listed else dotted(path)
        self.at(source, path, f"{subject}: {why}; not imported")

    def drop_section(self, source: Source, path: YamlPath, value: Any, why: str) -> None:
        keys = list(value) if isinstance(value, dict) else []
        if value is None or value == {}:
            keys = ["empty"]
        self.drop(source, path, why, keys)

    def lines(self) -> tuple[str, ...]:
        """File by file, in the order each file was read; top to bottom within a file."""
        ordered = sorted(self.entries, key=lambda e: (self.files.index(e[0]), e[1], e[2]))
        return tuple(text for *_, text in ordered)
