"""DS01's groups: their limits, their members, and the default group.

Members come inline and from `<group>.members` files, united. A user belongs to at most one
group here, so a login listed in two is refused rather than silently given the first, as DS01 did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ds01ctl.importers.ds01.limits import Layer, read_layer
from ds01ctl.importers.ds01.sources import (
    ImportRefused,
    Notes,
    Source,
    login_at,
    mapping_of,
    read_text,
)
from ds01ctl.importers.ds01.values import shown
from ds01ctl.names import check_login, check_name
from ds01ctl.yamlpos import YamlPath

Place = tuple[str, int | None, int | None]  # file, line, column


@dataclass
class Group:
    """A DS01 group: its limits, and its members with where each was listed."""

    layer: Layer
    members: dict[str, Place] = field(default_factory=dict)
    member_file: str | None = None  # the <group>.members file read, if any
    inline: bool = False  # whether the limits file lists members too


def read_groups(main: Source, config: Mapping[Any, Any], notes: Notes) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    body = mapping_of(main, ("groups",), config.get("groups"), "groups")
    for name, raw in body.items():
        path = ("groups", name)
        if not isinstance(name, str):
            raise main.refuse(path, f"{shown(name)} is not a group name", key=True)
        try:
            check_name(name)
        except ValueError as exc:
            raise main.refuse(path, str(exc), key=True) from None
        spec = mapping_of(main, path, raw, "group settings")
        group = Group(read_layer(main, path, spec, notes, skip=("members",)))
        group.inline = bool(spec.get("members"))
        for index, login in enumerate(inline_members(main, path, spec.get("members"))):
            group.members.setdefault(login, (main.name, *main.place((*path, "members", index))))
        groups[name] = group
    return groups


def inline_members(main: Source, path: YamlPath, raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise main.refuse((*path, "members"), f"is {shown(raw)}, not a list of logins")
    return [login_at(main, (*path, "members", i), login) for i, login in enumerate(raw)]


def add_member_files(groups: dict[str, Group], members_dir: Path, notes: Notes) -> None:
    """`<group>.members` files: one login per line, `#` comments; united with inline members."""
    if not members_dir.is_dir():
        raise ImportRefused("is not a directory of <group>.members files", file=str(members_dir))
    try:
        files = sorted(members_dir.glob("*.members"))
    except OSError as exc:
        raise ImportRefused(f"cannot list it: {exc.strerror}", file=str(members_dir)) from None
    for file in files:
        name = file.name.removesuffix(".members")
        logins = read_members(file)
        if name not in groups:
            # DS01 reads the file of each group it defines, so these never applied there either.
            notes.add(
                str(file),
                None,
                None,
                f"{file}: {len(logins)} login(s) of group {name}, which the limits file does "
                "not define; not imported",
            )
            continue
        groups[name].member_file = file.name
        for login, place in logins:
            groups[name].members.setdefault(login, place)


def read_members(file: Path) -> list[tuple[str, Place]]:
    logins: list[tuple[str, Place]] = []
    for number, line in enumerate(read_text(file, "members file").splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if len(entry.split()) > 1:
            problem = f"{entry!r} holds more than one login"
            raise ImportRefused(problem, file=str(file), line=number, hint="one login per line")
        try:
            check_login(entry)
        except ValueError as exc:
            raise ImportRefused(str(exc), file=str(file), line=number) from None
        logins.append((entry, (str(file), number, 1)))
    return logins


def membership(groups: Mapping[str, Group]) -> dict[str, str]:
    """login -> group; a login listed in two groups is refused (DS01 took the first)."""
    group_of: dict[str, str] = {}
    for name, group in groups.items():
        for login, (file, line, col) in group.members.items():
            first = group_of.setdefault(login, name)
            if first != name:
                at = groups[first].members[login]
                listed = f"{at[0]}:{at[1]}" if at[1] else at[0]
                raise ImportRefused(
                    f"{login} is in groups {first} ({listed}) and {name}",
                    file=file,
                    line=line,
                    col=col,
                    hint="ds01ctl puts a user in one group; remove one of the memberships",
                )
    return group_of


def read_default_group(
    main: Source, config: Mapping[Any, Any], groups: Mapping[str, Group], notes: Notes
) -> str | None:
    value = config.get("default_group")
    if value is None:
        # DS01's parser falls back to `student`; with no such group, it gave the defaults.
        fallback = "student" if "student" in groups else None
        notes.warn(
            main,
            ("default_group",),
            f"not set; DS01 falls back to student, imported as default_group: {fallback}"
            if fallback
            else "not set; users in no group get the defaults in DS01, an error in ds01ctl",
        )
        return fallback
    if not isinstance(value, str) or value not in groups:
        raise main.refuse(
            ("default_group",),
            f"names {shown(value)}, which is not a group of this file",
            hint=f"groups: {', '.join(groups) or 'none'}",
        )
    return value
