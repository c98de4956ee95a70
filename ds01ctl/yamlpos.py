"""YAML with positions: documents as plain Python values plus a map from path to line/column.

Manifests are loaded on libyaml's C composer (fast) and turned into values by our own small
walker, which keeps where every key and value came from, refuses duplicate keys, and bounds
alias expansion and nesting so that no input (anchor bombs included) can exhaust the process.
ruamel.yaml's round-trip mode stays the tool for rewriting files with their comments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml

YamlPath = tuple[str | int, ...]

MAX_NODES = 200_000  # values built per document, aliases expanded; a billion-laughs stops here
MAX_DEPTH = 64  # nesting; manifests are a handful of levels deep

_YAML_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = _YAML_TAG + "merge"
_SCALAR_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_LINE_BREAK_RE = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what libyaml counts as one
_STR_TAG = _YAML_TAG + "str"
# The safe loader's scalar constructors, called directly: `construct_object` would cache every
# node it ever saw, and on a scalar it would accept collection tags (`!!set foo`) half-built.
_SCALAR_CONSTRUCTORS = {
    _YAML_TAG + name: yaml.constructor.SafeConstructor.yaml_constructors[_YAML_TAG + name]
    for name in ("null", "bool", "int", "float", "binary", "timestamp", "str")
}


class Mark(NamedTuple):
    """A 1-based line and column in a text (a tuple: made for every node, so it must be cheap)."""

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


_new_tuple = tuple.__new__
_MappingNode, _SequenceNode, _ScalarNode = yaml.MappingNode, yaml.SequenceNode, yaml.ScalarNode


def _mark(node_mark: Any) -> Mark:
    return _new_tuple(Mark, (node_mark.line + 1, node_mark.column + 1))


class _Builder:
    """Turns one composed node graph into values, recording marks along the way.

    This runs once per node of every manifest, so it is written for speed: no helper calls on
    the common path, and plain strings (most values and every key) skip the constructor.
    """

    def __init__(self, doc: YamlDoc) -> None:
        self.values = doc.values
        self.keys = doc.keys
        self.count = 0

    def build(self, node: yaml.Node, path: YamlPath, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES or depth > MAX_DEPTH:
            self._too_complex(node, depth)
        values = self.values
        if path not in values:
            mark = node.start_mark
            values[path] = _new_tuple(Mark, (mark.line + 1, mark.column + 1))
        if isinstance(node, _ScalarNode):
            return node.value if node.tag == _STR_TAG else _scalar(node)
        if isinstance(node, _MappingNode):
            return self._mapping(node, path, depth)
        depth += 1
        return [self.build(item, (*path, i), depth) for i, item in enumerate(node.value)]

    def _too_complex(self, node: yaml.Node, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise YamlError(
                "yaml.too_complex",
                f"document nests deeper than {MAX_DEPTH} levels",
                _mark(node.start_mark),
            )
        raise YamlError(
            "yaml.too_complex",
            f"document expands to more than {MAX_NODES} values "
            "(aliases or anchors nested too deep)",
            _mark(node.start_mark),
            "write the values out; manifests do not need deeply nested aliases",
        )

    def _mapping(self, node: yaml.MappingNode, path: YamlPath, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        seen: dict[Any, Mark] = {}
        merged: list[yaml.MappingNode] = []
        keys = self.keys
        depth += 1
        for key_node, value_node in node.value:
            tag = key_node.tag
            if tag == _STR_TAG and key_node.__class__ is _ScalarNode:
                key = key_node.value
            elif tag == _MERGE_TAG:
                merged.extend(_merge_sources(value_node))
                continue
            elif key_node.__class__ is _ScalarNode:
                key = _scalar(key_node)
            else:
                raise YamlError(
                    "yaml.syntax",
                    "a mapping key must be a plain scalar",
                    _mark(key_node.start_mark),
                )
            mark = key_node.start_mark
            key_mark = _new_tuple(Mark, (mark.line + 1, mark.column + 1))
            if key in seen:
                first = seen[key]
                raise YamlError(
                    "yaml.duplicate_key",
                    f"duplicate key {key!r} (first at line {first.line}, column {first.col})",
                    key_mark,
                    "remove one of them",
                )
            seen[key] = key_mark
            key_path = (*path, key)
            if key_path not in keys:
                keys[key_path] = key_mark
            result[key] = self.build(value_node, key_path, depth)
        for source in merged:  # `<<: *defaults`: explicit keys win over merged ones
            self.count += 1  # a mapping merging itself, or empty merges nested, stop too
            if self.count > MAX_NODES or depth > MAX_DEPTH:
                self._too_complex(source, depth)
            for key, value in self._mapping(source, path, depth).items():
                result.setdefault(key, value)
        return result


def _scalar(node: yaml.Node) -> Any:
    tag = str(node.tag)
    if tag == _STR_TAG:  # most values and every key: skip the constructor
        return node.value
    short = "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag
    constructor = _SCALAR_CONSTRUCTORS.get(tag)
    if constructor is None:
        raise YamlError(
            "yaml.syntax",
            f"the tag {short} is not supported here",
            _mark(node.start_mark),
            "remove the tag; manifests hold plain strings, numbers, lists and mappings",
        )
    try:
        return constructor(_SCALAR_CONSTRUCTOR, node)
    except Exception as exc:  # the constructors assume well-formed text; any failure is the text's
        # e.g. `!!int abc`, `!!float` (empty), `2020-02-30` (read as a date), 5,000 digits
        value = str(node.value)
        shown = value if len(value) <= 40 else value[:37] + "..."
        what = {"!!timestamp": "date", "!!bool": "boolean", "!!int": "integer"}.get(short, short)
        message = f"{shown!r} is not a valid {what.removeprefix('!!')}"
        if isinstance(exc, yaml.YAMLError):
            message += f": {_problem(exc)}"
        elif isinstance(exc, ValueError | OverflowError) and str(exc):
            message += f": {str(exc).split(';')[0]}"
        raise YamlError(
            "yaml.syntax",
            message,
            _mark(node.start_mark),
            "quote it to make it a string" if not tag.endswith(":str") else None,
        ) from None


def _merge_sources(node: yaml.Node) -> list[yaml.MappingNode]:
    if isinstance(node, yaml.MappingNode):
        return [node]
    if isinstance(node, yaml.SequenceNode) and all(
        isinstance(n, yaml.MappingNode) for n in node.value
    ):
        return list(node.value)
    raise YamlError(
        "yaml.syntax",
        "a merge key `<<` takes a mapping or a list of mappings",
        _mark(node.start_mark),
    )


def _problem(exc: yaml.YAMLError) -> str:
    """libyaml's problem, then its context; the context's start when that is elsewhere."""
    if isinstance(exc, yaml.MarkedYAMLError):
        message = exc.problem or "invalid YAML"
        if exc.context:
            message += f" {exc.context}"
            start, at = exc.context_mark, exc.problem_mark
            elsewhere = at is None or (start and (start.line, start.column) != (at.line, at.column))
            if start is not None and elsewhere:
                message += f" that starts at line {start.line + 1}, column {start.column + 1}"
        return message
    return str(exc).replace("\n", " ") or "invalid YAML"


def end_mark(text: str) -> Mark:
    """The place just after `text`, counting line breaks as libyaml does."""
    lines = _LINE_BREAK_RE.split(text)
    return Mark(len(lines), len(lines[-1]) + 1)


def _byte_mark(text: str, offset: int) -> Mark:
    """The line and column of a UTF-8 byte offset into `text` (libyaml's reader counts bytes)."""
    return end_mark(text.encode("utf-8")[:offset].decode("utf-8", errors="ignore"))


def _tab_hint(text: str, at: Mark | None) -> str | None:
    if at is None:
        return None
    lines = text.splitlines()
    line = lines[at.line - 1] if 0 < at.line <= len(lines) else ""
    if "\t" in line[: at.col]:
        return "indent with spaces: YAML does not allow tabs for indentation"
    return None


_RESOLVED: dict[tuple[str, bool, bool], str] = {}  # plain scalar → implicit tag, e.g. int
_RESOLVED_MAX = 50_000
_resolve: Callable[..., str] = yaml.CSafeLoader.resolve


class _Loader(yaml.CSafeLoader):
    """libyaml's safe loader with the implicit-tag resolution of scalars memoized.

    The resolver tries a handful of regular expressions on every scalar (keys included); with
    no path resolvers its answer depends only on the value, and manifests repeat their values.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not yaml.ScalarNode or len(value) > 64:  # long text is rarely repeated
            return _resolve(self, kind, value, implicit)
        key = (value, implicit[0], implicit[1])
        tag = _RESOLVED.get(key)
        if tag is None:
            tag = _resolve(self, kind, value, implicit)
            if len(_RESOLVED) >= _RESOLVED_MAX:
                _RESOLVED.clear()
            _RESOLVED[key] = tag
        return tag


def load_documents(text: str) -> Iterator[YamlDoc]:
    """Yield each document of `text`; raise `YamlError` at the first one that cannot be read."""
    loader = _Loader(text)
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
            except yaml.reader.ReaderError as exc:
                at = _byte_mark(text, exc.position)
                char = exc.character
                shown = f"#x{char:04x}" if isinstance(char, int) else repr(char)
                raise YamlError("yaml.syntax", f"{exc.reason} (character {shown})", at) from None
            except yaml.YAMLError as exc:
                raise YamlError("yaml.syntax", _problem(exc), None) from None
            if node is None:  # check_node said there is one; the stubs allow None
                return
            doc = YamlDoc(value=None, start=_mark(node.start_mark))
            doc.value = _Builder(doc).build(node, (), 0)
            yield doc
    finally:
        loader.dispose()
