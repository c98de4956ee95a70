"""Writing the imported QuotaPolicy: the manifest as commented YAML, and the file itself.

Keys keep our model's order, each derived value says in a comment which DS01 value it came from,
and the file is replaced in one rename.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.representer import RoundTripRepresenter

from ds01ctl import fsutil
from ds01ctl.errors import Ds01Error
from ds01ctl.importers.ds01.groups import Group
from ds01ctl.importers.ds01.limits import Layer
from ds01ctl.importers.ds01.sources import Ds01Files
from ds01ctl.importers.ds01.values import shown
from ds01ctl.manifests.quota import Limits

LIMIT_ORDER = tuple(Limits.model_fields)


class _Representer(RoundTripRepresenter):
    """Round-trip output with `null` spelled out: a bare `key:` reads as a mistake."""


_Representer.add_representer(
    type(None),
    lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"),
)


def limits_map(layer: Layer, indent: int) -> CommentedMap:
    values = CommentedMap((k, layer.values[k]) for k in LIMIT_ORDER if k in layer.values)
    comment(values, layer.comments, indent)
    return values


def comment(node: CommentedMap, comments: Mapping[str, str], indent: int) -> None:
    """End-of-line comments, aligned two spaces after the longest commented line."""
    keys = [k for k in node if k in comments]
    if not keys:
        return
    widths = [indent + len(k) + 1 + _width(node[k]) for k in keys]
    column = max(widths) + 2
    for key in keys:
        node.yaml_add_eol_comment(comments[key], key, column=column)


def _width(value: Any) -> int:
    """How wide a value prints after `key:` (0 for a collection, which starts below)."""
    if isinstance(value, dict | list):
        return 0
    return 1 + len(shown(value).strip('"'))


def group_map(group: Group) -> CommentedMap:
    node = CommentedMap()
    if group.members:
        node["members"] = CommentedSeq(sorted(group.members))
        if group.member_file is not None:
            origin = f"inline + {group.member_file}" if group.inline else group.member_file
            comment(node, {"members": f"from {origin}"}, 6)
    if group.layer.values:
        node["limits"] = limits_map(group.layer, 8)
    return node


def build_manifest(
    name: str,
    defaults: Layer,
    groups: Mapping[str, Group],
    default_group: str | None,
    users: Mapping[str, Layer],
    exemptions: list[CommentedMap],
) -> CommentedMap:
    spec = CommentedMap()
    if default_group is not None:
        spec["default_group"] = default_group
    spec["defaults"] = limits_map(defaults, 4)
    spec["groups"] = CommentedMap((g, group_map(group)) for g, group in groups.items())
    if users:
        spec["users"] = CommentedMap((u, limits_map(layer, 6)) for u, layer in users.items())
    if exemptions:
        spec["exemptions"] = CommentedSeq(exemptions)
    return CommentedMap(
        [
            ("apiVersion", "ds01/v1"),
            ("kind", "QuotaPolicy"),
            ("metadata", CommentedMap(name=name)),
            ("spec", spec),
        ]
    )


def header(files: Ds01Files, groups: Mapping[str, Group]) -> str:
    read = [files.resource_limits.name]
    read += [g.member_file for g in groups.values() if g.member_file is not None]
    read += [f.name for f in (files.user_overrides, files.exemptions) if f is not None]
    listed = ", ".join(read[:-1]) + f" and {read[-1]}" if len(read) > 1 else read[0]
    text = f"QuotaPolicy imported by `ds01ctl import ds01` from {listed}."
    lines = textwrap.wrap(text, width=96, break_on_hyphens=False, break_long_words=False)
    return "\n".join(
        [
            *lines,
            "Layers, lowest first: defaults <- group <- user <- exemption. A key left out",
            "inherits; null means unlimited. A user's override is layered on their group (DS01's",
            "parser used the defaults). DS01 keys with no equivalent were listed on stderr.",
        ]
    )


def dump(document: CommentedMap, top_comment: str) -> str:
    yaml = YAML()  # round-trip: keeps the comments attached above
    yaml.Representer = _Representer
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    document.yaml_set_start_comment(top_comment)
    out = StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` in one rename, so that no reader sees half a policy."""
    try:
        fsutil.write_atomically(path, text)  # readable: it is meant for a git repo
    except OSError as exc:
        raise Ds01Error(f"cannot write {path}: {exc.strerror or exc}") from None
