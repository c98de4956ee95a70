"""Importing DS01's quota configuration as one `QuotaPolicy` manifest.

DS01 keeps its limits in `resource-limits.yaml`, with group members, per-user overrides and
lifecycle exemptions in side files. This package maps every key of those files that has an
equivalent in ds01ctl, names each one it drops (on stderr, one line each), and refuses with one
`Ds01Error` what it cannot express, so that nothing changes meaning silently on the way over;
this module runs the import, step by step, and the steps live in modules of their own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from ds01ctl.errors import Ds01Error, InternalError
from ds01ctl.importers.ds01.emit import build_manifest, dump, header, write_atomically
from ds01ctl.importers.ds01.groups import (
    Group,
    add_member_files,
    membership,
    read_default_group,
    read_groups,
)
from ds01ctl.importers.ds01.limits import BASE_GPU, Layer, read_layer, settle
from ds01ctl.importers.ds01.overrides import read_exemptions, read_user_overrides
from ds01ctl.importers.ds01.sources import Ds01Files, ImportRefused, Notes, mapping_of, read_yaml
from ds01ctl.importers.ds01.unmapped import report_side_files, report_unmapped
from ds01ctl.importers.ds01.values import format_seconds
from ds01ctl.manifests.quota import QuotaPolicy
from ds01ctl.names import check_name

__all__ = [
    "Ds01Files",
    "ImportRefused",
    "ImportResult",
    "format_seconds",
    "import_ds01",
    "write_atomically",
]


@dataclass(frozen=True)
class ImportResult:
    """The manifest as text and as a model, and what was not carried over (one line each)."""

    text: str
    policy: QuotaPolicy
    warnings: tuple[str, ...]


def import_ds01(
    files: Ds01Files, *, name: str = "ds01", today: dt.date | None = None
) -> ImportResult:
    """The QuotaPolicy equivalent to DS01's files, and a line for each thing not carried over.

    `today`, where given, adds a warning for each exemption that has already expired.
    """
    try:
        check_name(name)
    except ValueError as exc:
        raise Ds01Error(f"--name: {exc}") from None
    notes = Notes()
    notes.register(str(files.resource_limits))
    main = read_yaml(files.resource_limits, "DS01 resource-limits file")
    config = mapping_of(main, (), main.value, "DS01 settings")
    report_unmapped(main, config, notes)
    report_side_files(files, notes)
    defaults = read_layer(main, ("defaults",), config.get("defaults"), notes)
    groups = read_groups(main, config, notes)
    if files.members_dir is not None:
        add_member_files(groups, files.members_dir, notes)
    for side_file in (files.user_overrides, files.exemptions):
        if side_file is not None:
            notes.register(str(side_file))
    group_of = membership(groups)
    default_group = read_default_group(main, config, groups, notes)
    users = read_user_overrides(main, config, files.user_overrides, notes)
    exemptions = [] if files.exemptions is None else read_exemptions(files.exemptions, notes, today)
    settle_all(defaults, groups, users, lambda u: group_of.get(u, default_group), notes)
    document = build_manifest(name, defaults, groups, default_group, users, exemptions)
    try:
        policy = QuotaPolicy.model_validate(document)
    except ValidationError as exc:  # every value was checked on the way in
        raise InternalError(f"the imported QuotaPolicy does not validate: {exc}") from None
    return ImportResult(dump(document, header(files, groups)), policy, notes.lines())


def settle_all(
    defaults: Layer,
    groups: Mapping[str, Group],
    users: Mapping[str, Layer],
    group_of: Callable[[str], str | None],
    notes: Notes,
) -> None:
    """Settle each layer on the ones below it: defaults, then groups, then user overrides."""
    base = settle(defaults, BASE_GPU, {}, notes)
    states = {name: settle(g.layer, base, defaults.values, notes) for name, g in groups.items()}
    for login, layer in users.items():
        group = group_of(login)
        if group is None:
            settle(layer, base, defaults.values, notes)
            continue
        below = groups[group].layer
        settle(layer, states[group], {**defaults.values, **below.values}, notes)
        kept = [k for k in below.values if k not in layer.values]
        if kept:
            notes.warn(
                layer.source,
                layer.path,
                f"now layered on group {group}, so the group's other {len(kept)} limit(s) still "
                "apply (DS01's parser layered overrides on the defaults instead)",
            )
