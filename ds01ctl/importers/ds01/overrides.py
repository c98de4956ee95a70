"""Per-user exceptions: DS01's user overrides and its lifecycle exemptions.

Overrides (inline and from their own file) become user layers of limits; exemptions become our
time-limited `exemptions` entries, with no limit on what they exempt from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from ds01ctl.importers.ds01.emit import comment
from ds01ctl.importers.ds01.limits import Layer, read_layer
from ds01ctl.importers.ds01.sources import UNKNOWN, Notes, Source, login_at, mapping_of, read_yaml
from ds01ctl.importers.ds01.values import shown
from ds01ctl.yamlpos import YamlPath


def read_user_overrides(
    main: Source, config: Mapping[Any, Any], file: Path | None, notes: Notes
) -> dict[str, Layer]:
    """Inline `user_overrides` and the overrides file; the file's entry replaces an inline one."""
    entries: dict[Any, tuple[Source, YamlPath]] = {}
    inline = mapping_of(main, ("user_overrides",), config.get("user_overrides"), "logins")
    for login in inline:
        entries[login] = (main, ("user_overrides", login))
    values: dict[Any, Any] = dict(inline)
    if file is not None:
        source = read_yaml(file, "user overrides file")
        from_file = mapping_of(source, (), source.value, "login: limits")
        for login in from_file:
            if login in entries:
                notes.warn(main, entries[login][1], f"replaced by the entry in {file.name}")
            entries[login] = (source, (login,))
        values.update(from_file)
    layers = {}
    for login, (source, path) in entries.items():
        checked = login_at(source, path, login, key=True)
        if not isinstance(values[login], dict):
            raise source.refuse(path, f"is {shown(values[login])}, not a mapping of limits")
        layers[checked] = read_layer(source, path, values[login], notes)
    return layers


EXEMPTABLE = {"idle_timeout_h": "idle_timeout", "max_runtime_h": "max_runtime"}
EXEMPTION_KEYS = ("username", "exempt_from", "expires_on", "reason")


def read_exemptions(file: Path, notes: Notes, today: dt.date | None) -> list[CommentedMap]:
    """`exemptions: [{username, exempt_from, expires_on, reason}]` -> our exemptions."""
    source = read_yaml(file, "exemptions file")
    body = mapping_of(source, (), source.value, "settings with an exemptions: list")
    for key, value in body.items():
        if key != "exemptions":
            notes.drop_section(source, (key,), value, UNKNOWN)
    entries = body.get("exemptions")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise source.refuse(("exemptions",), f"is {shown(entries)}, not a list")
    return [
        read_exemption(source, ("exemptions", index), entry, notes, today)
        for index, entry in enumerate(entries)
    ]


def read_exemption(
    source: Source, path: YamlPath, raw: Any, notes: Notes, today: dt.date | None
) -> CommentedMap:
    entry = mapping_of(source, path, raw, ", ".join(EXEMPTION_KEYS))
    if "username" not in entry:
        raise source.refuse(path, "has no username")
    login = login_at(source, (*path, "username"), entry["username"])
    limits = exempt_limits(source, (*path, "exempt_from"), entry.get("exempt_from"))
    expires = expiry(source, (*path, "expires_on"), entry.get("expires_on"))
    reason = entry.get("reason")
    if reason is None or not str(reason).strip():
        reason = "imported from DS01, which gave no reason"
        notes.warn(source, path, f"no reason given; imported with reason {reason!r}")
    for key, value in entry.items():
        if key not in EXEMPTION_KEYS:
            notes.drop_section(source, (*path, key), value, UNKNOWN)
    if today is not None and expires is not None and expires < today:
        notes.warn(
            source, path, f"{login}'s exemption expired on {expires}; ds01ctl will ignore it"
        )
    return CommentedMap(
        [("user", login), ("limits", limits), ("expires", expires), ("reason", str(reason))]
    )


def exempt_limits(source: Source, path: YamlPath, raw: Any) -> CommentedMap:
    """`exempt_from: [idle_timeout_h]` -> `idle_timeout: null`: no limit while it lasts."""
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names:
        expected = " or ".join(EXEMPTABLE)
        raise source.refuse(path, f"is {shown(raw)}; list what it exempts from: {expected}")
    limits = CommentedMap()
    comments = {}
    for index, name in enumerate(names):
        if name not in EXEMPTABLE:
            at = (*path, index) if isinstance(raw, list) else path
            raise source.refuse(at, f"{shown(name)} is not one of {', '.join(EXEMPTABLE)}")
        limits[EXEMPTABLE[name]] = None
        comments[EXEMPTABLE[name]] = f"exempt_from {name}"
    comment(limits, comments, 8)  # spec.exemptions[i].limits.<key>
    return limits


def expiry(source: Source, path: YamlPath, raw: Any) -> dt.date | None:
    """`expires_on`: an ISO date (YAML reads it as one), a date-time, or null for never."""
    if raw is None:
        return None
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if isinstance(raw, str):
        try:
            return dt.datetime.fromisoformat(raw.strip()).date()
        except ValueError:
            pass
    raise source.refuse(path, f"{shown(raw)} is not an ISO date such as 2026-03-31")
