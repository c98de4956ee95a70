"""YAML with positions: documents as plain Python values plus a map from path to line/column.

Manifests are loaded on libyaml's C composer (fast) and turned into values by our own small
walker, which keeps where every key and value came from, refuses duplicate keys, and bounds
alias expansion and nesting so that no input (anchor bombs included) can exhaust the process.
ruamel.yaml's round-trip mode stays the tool for rewriting files with their comments.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

YamlPath = tuple[str | int, ...]

MAX_NODES = 200_000  # values built per document, aliases expanded; a billion-laughs stops here
MAX_DEPTH = 64  # nesting; manifests are a handful of levels deep

_MERGE_TAG = "tag:yaml.org,2002:merge"
_SCALAR_CONSTRUCTOR = yaml.constructor.SafeConstructor()


@dataclass(frozen=True, order=True)
class Mark:
    """A 1-based line and column in a text."""

    line: int
    col: int


class YamlError(Exception):
    """The text is not YAML we can read; `code` is one of the diagnostic codes `yaml.*`."""

    def __init__(self, code: str, message: str, mark: Mark | None, hint: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.mark = mark
        self.hint = hint


@dataclass
class YamlDoc:
    """One YAML document: its value, and where each value and mapping key of it starts."""

    value: Any
    start: Mark
    values: dict[YamlPath, Mark] = field(default_factory=dict)
    keys: dict[YamlPath, Mark] = field(default_factory=dict)

    def mark_of(self, path: YamlPath, *, key: bool = False) -> Mark:
        """The position of `path` (its key if `key`), or of its nearest ancestor that has one."""
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            mark = self.values.get(path[:end])
            if mark is not None:
                return mark
        return self.start


def _mark(node_mark: Any) -> Mark:
    return Mark(node_mark.line + 1, node_mark.column + 1)


class _Builder:
    """Turns one composed node graph into values, recording marks along the way."""

    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.count = 0

    def build(self, node: yaml.Node, path: YamlPath, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlError(
                "yaml.too_complex",
                f"document expands to more than {MAX_NODES} values (aliases or anchors nested too deep)",
                _mark(node.start_mark),
                "write the values out; manifests do not need deeply nested aliases",
            )
        if depth > MAX_DEPTH:
            raise YamlError(
                "yaml.too_complex",
                f"document nests deeper than {MAX_DEPTH} levels",
                _mark(node.start_mark),
            )
        self.doc.values.setdefault(path, _mark(node.start_mark))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return _scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: YamlPath, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        seen: dict[Any, Mark] = {}
        merged: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(_merge_sources(value_node))
                continue
            key_mark = _mark(key_node.start_mark)
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlError("yaml.syntax", "a mapping key must be a plain scalar", key_mark)
            key = _scalar(key_node)
            if key in seen:
                first = seen[key]
                raise YamlError(
                    "yaml.duplicate_key",
                    f"duplicate key {key!r} (first at line {first.line}, column {first.col})",
                    key_mark,
                    "remove one of them",
                )
            seen[key] = key_mark
            self.doc.keys.setdefault((*path, key), key_mark)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        for source in merged:  # `<<: *defaults`: explicit keys win over merged ones
            for key, value in self._mapping(source, path, depth + 1).items():
                result.setdefault(key, value)
        return result


def _scalar(node: yaml.Node) -> Any:
    try:
        return _SCALAR_CONSTRUCTOR.construct_object(node)
    except yaml.YAMLError as exc:
        raise YamlError("yaml.syntax", _problem(exc), _mark(node.start_mark)) from None


def _merge_sources(node: yaml.Node) -> list[yaml.MappingNode]:
    if isinstance(node, yaml.MappingNode):
        return [node]
    if isinstance(node, yaml.SequenceNode) and all(
        isinstance(n, yaml.MappingNode) for n in node.value
    ):
        return list(node.value)
    raise YamlError(
        "yaml.syntax", "a merge key `<<` takes a mapping or a list of mappings", _mark(node.start_mark)
    )


def _problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [p for p in (exc.context, exc.problem) if p]
        return "; ".join(parts) if parts else "invalid YAML"
    return str(exc) or "invalid YAML"


def _tab_hint(text: str, at: Mark | None) -> str | None:
    if at is None:
        return None
    lines = text.splitlines()
    line = lines[at.line - 1] if 0 < at.line <= len(lines) else ""
    if "\t" in line[: at.col]:
        return "indent with spaces: YAML does not allow tabs for indentation"
    return None


def load_documents(text: str) -> Iterator[YamlDoc]:
    """Yield each document of `text`; raise `YamlError` at the first one that cannot be read."""
    loader = yaml.CSafeLoader(text)
    try:
        while True:
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                at = _mark(mark) if mark else None
                raise YamlError("yaml.syntax", _problem(exc), at, _tab_hint(text, at)) from None
            except yaml.YAMLError as exc:
                raise YamlError("yaml.syntax", _problem(exc), None) from None
            doc = YamlDoc(value=None, start=_mark(node.start_mark))
            doc.value = _Builder(doc).build(node, (), 0)
            yield doc
    finally:
        loader.dispose()
