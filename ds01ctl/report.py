"""Printing diagnostics for people (grouped by file), for programs (JSON) and for CI annotations.

Colour only on a terminal; the plain text is the same words. Nothing here decides anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from ds01ctl.diagnostics import Diagnostic

DIAGNOSTICS_FORMAT_VERSION = 1
_COLOURS = {"error": "\033[31m", "warning": "\033[33m"}
_BOLD, _DIM, _RESET = "\033[1m", "\033[2m", "\033[0m"


def summary(diagnostics: Sequence[Diagnostic], objects: int, files: int) -> str:
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    counts = f"{objects} object(s) in {files} file(s)"
    if not diagnostics:
        return f"ok: {counts}, no problems"
    return f"{errors} error(s), {warnings} warning(s); {counts}"


def human(diagnostics: Sequence[Diagnostic], out: TextIO, *, colour: bool) -> None:
    """One block per file, one line per problem: `line:col  severity  message  [code]`."""

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    current: str | None = None
    for diag in diagnostics:
        file = diag.file or "(config repo)"
        if file != current:
            current = file
            out.write(paint(file, _BOLD) + "\n")
        place = f"{diag.line}:{diag.col or 1}" if diag.line is not None else "-"
        severity = paint(f"{diag.severity.value:<7}", _COLOURS[diag.severity.value])
        line = f"  {place:>7}  {severity}  {diag.message}"
        if diag.hint:
            line += f" ({diag.hint})"
        out.write(line + "  " + paint(f"[{diag.code}]", _DIM) + "\n")


def as_json(diagnostics: Sequence[Diagnostic], **extra: Any) -> str:
    document = {
        "format_version": DIAGNOSTICS_FORMAT_VERSION,
        **extra,
        "diagnostics": [d.to_json() for d in diagnostics],
    }
    return json.dumps(document, indent=2, sort_keys=True)


def _escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def github(diagnostics: Sequence[Diagnostic], out: TextIO) -> None:
    """GitHub Actions workflow commands, one annotation per problem."""
    for diag in diagnostics:
        props = []
        if diag.file:
            props.append(f"file={_escape(diag.file, prop=True)}")
        if diag.line is not None:
            props += [f"line={diag.line}", f"col={diag.col or 1}"]
        props.append(f"title={_escape(diag.code, prop=True)}")
        message = diag.message + (f" ({diag.hint})" if diag.hint else "")
        out.write(f"::{diag.severity.value} {','.join(props)}::{_escape(message)}\n")
