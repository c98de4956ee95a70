"""Turning pydantic's validation errors into diagnostics a person can act on.

Each error is placed at the YAML position of the key or value it concerns; unknown keys get a
"did you mean" from the fields the model really has at that place, and errors that pydantic
reports once per member of a union are folded into one line.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from ds01ctl.diagnostics import Diagnostic, error
from ds01ctl.manifests.common import Manifest

Where = Callable[..., dict[str, Any]]
DocPath = tuple[str | int, ...]


def suggest(value: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def pydantic_diagnostics(
    cls: type[Manifest], value: dict[Any, Any], at: Where
) -> Manifest | list[Diagnostic]:
    """The validated manifest, or one diagnostic per problem (folded per place)."""
    try:
        return cls.model_validate(value)
    except ValidationError as exc:
        grouped: dict[tuple[DocPath, str], list[str]] = {}
        for err in exc.errors(include_url=False):
            path = _doc_path(value, err["loc"])
            kind = err["type"]
            grouped.setdefault((path, kind), []).append(_message(err))
        return [
            _diagnostic(cls, value, path, kind, messages, at)
            for (path, kind), messages in grouped.items()
        ]


def _doc_path(value: Any, loc: tuple[int | str, ...]) -> DocPath:
    """The part of pydantic's `loc` that names places in the document (drops union tags)."""
    path: list[str | int] = []
    current = value
    for part in loc:
        inside_dict = isinstance(current, dict) and part in current
        inside_list = isinstance(current, list) and isinstance(part, int) and part < len(current)
        if inside_dict or inside_list:
            current = current[part]
            path.append(part)
        elif isinstance(current, dict) and isinstance(part, str) and not _is_union_tag(part):
            path.append(part)  # a missing or unknown key: one level below the last real one
            current = None
    return tuple(path)


def _is_union_tag(part: str) -> bool:
    return any(c in part for c in "[]()") or part in {"str", "int", "float", "bool", "none"}


def _message(err: Any) -> str:
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _dotted(path: DocPath) -> str:
    return ".".join(_part(p) for p in path).replace(".[", "[")


def _part(part: int | str) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    # A key is the user's text: one with a line break or other control character is shown
    # quoted, so a diagnostic stays one line.
    return part if part.isprintable() else repr(part)


def _diagnostic(
    cls: type[Manifest],
    value: dict[Any, Any],
    path: DocPath,
    kind: str,
    messages: list[str],
    at: Where,
) -> Diagnostic:
    place = _dotted(path) or cls.__name__
    if kind == "extra_forbidden":
        key = str(path[-1])
        if key == "privileged":
            return error(
                "security.privileged",
                f"{place}: privileged containers are never allowed",
                hint="remove it; GPUs are given by device request, not by privilege",
                **at(path, key=True),
            )
        choices = _field_names(cls, path[:-1])
        hint = suggest(key, choices) or (f"known keys: {', '.join(choices)}" if choices else None)
        return error(
            "schema.unknown_key", f"unknown key {place!r}", hint=hint, **at(path, key=True)
        )
    if kind == "missing":
        return error("schema.missing", f"{place} is required", **at(path[:-1]))
    unique = list(dict.fromkeys(messages))
    return error("schema.invalid", f"{place}: {'; or '.join(unique)}", **at(path))


def _field_names(cls: type[BaseModel], path: DocPath) -> list[str]:
    """The keys the model accepts at `path` (aliases where set), for "did you mean"."""
    model: Any = cls
    for part in path:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside Optional[...], list[...], dict[..., ...] or Annotated[...]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple, dict, typing.Annotated):
        for arg in reversed(typing.get_args(annotation)):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
