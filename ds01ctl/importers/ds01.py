"""Importing DS01's quota configuration as one `QuotaPolicy` manifest.

DS01 keeps its limits in `resource-limits.yaml`, with group members, per-user overrides and
lifecycle exemptions in side files. This module maps every key of those files that has an
equivalent in ds01ctl, names each one it drops (on stderr, one line each), and refuses with one
`Ds01Error` what it cannot express, so that nothing changes meaning silently on the way over.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from io import StringIO
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.representer import RoundTripRepresenter

from ds01ctl import fsutil
from ds01ctl.errors import Ds01Error, InternalError, ManifestError
from ds01ctl.manifests.quota import Limits, QuotaPolicy
from ds01ctl.names import check_login, check_name
from ds01ctl.resolve.quota import BUILTIN
from ds01ctl.units import format_size, parse_duration, parse_size
from ds01ctl.yamlpos import YamlDoc, YamlError, YamlPath, load_documents

MAX_FILE_BYTES = 1024 * 1024  # DS01's files are a few KB; anything this large is a mistake
HOUR = 3600

# Why a key is not imported; each warning line ends "...; not imported".
NEVER_READ = "declared but never read by DS01"
NOT_MODELLED = "ds01ctl has no equivalent"
UNKNOWN = "not a DS01 key ds01ctl knows"

Convert = Callable[[Any], tuple[Any, bool]]  # DS01 value -> (our value, whether it was derived)


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


@dataclass(frozen=True)
class ImportResult:
    """The manifest as text and as a model, and what was not carried over (one line each)."""

    text: str
    policy: QuotaPolicy
    warnings: tuple[str, ...]


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


# --- values ----------------------------------------------------------------------------------


def shown(value: Any) -> str:
    """A DS01 value as it reads in YAML, for messages and comments."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    return str(value)


def plain(number: Decimal) -> int | float:
    """A number as YAML should show it: `4`, not `4.0`."""
    return int(number) if number == number.to_integral_value() else float(number)


def number_of(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{shown(value)} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{shown(value)} is not a finite number (write null for no limit)")
    number = Decimal(str(value))
    if number < 0:
        raise ValueError(f"{shown(value)} is negative (write null for no limit)")
    return number


def gpu_units(value: Any) -> tuple[Any, bool]:
    return (None if value is None else plain(number_of(value))), False


def whole(value: Any) -> tuple[Any, bool]:
    if value is None:
        return None, False
    number = number_of(value)
    if number != number.to_integral_value():
        raise ValueError(f"{shown(value)} is not a whole number")
    return int(number), False


def cores(value: Any) -> tuple[Any, bool]:
    return (None if value is None else plain(number_of(value))), False


def size(value: Any) -> tuple[Any, bool]:
    if value is None:
        return None, False
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise ValueError(f"{shown(value)} is negative (write null for no limit)")
    if isinstance(value, float):
        raise ValueError(f"{shown(value)} is not a size such as 32g")
    return format_size(parse_size(value)), False


def format_seconds(seconds: int) -> str:
    """Hours where whole (`24h`, as DS01 counts), else minutes or seconds (`30m`, `90s`)."""
    if seconds % HOUR == 0:
        return f"{seconds // HOUR}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def hours(value: Any) -> tuple[Any, bool]:
    if value is None:
        return None, False
    exact = number_of(value) * HOUR
    seconds = int(exact.to_integral_value())  # a fraction of a second is below any timer's grain
    return format_seconds(seconds), seconds % HOUR != 0 or seconds != exact


def legacy_duration(value: Any) -> tuple[Any, bool]:
    """The keys before units moved into their names took `30m`-style strings."""
    if value is None:
        return None, False
    if not isinstance(value, str):
        raise ValueError(f"{shown(value)} has no unit; write it like 30m or 1.5h")
    return format_seconds(parse_duration(value)), True


def flag(value: Any) -> tuple[Any, bool]:
    if not isinstance(value, bool):
        raise ValueError(f"{shown(value)} is not true or false")
    return value, False


_CPU_QUOTA_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def cpu_quota(value: Any) -> tuple[Any, bool]:
    """systemd's CPUQuota: 100% is one CPU."""
    if value is None:
        return None, False
    match = _CPU_QUOTA_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'{shown(value)} is not a CPU quota such as "9600%" (100% = 1 CPU)')
    return plain(Decimal(match.group(1)) / 100), True


def memory_max(value: Any) -> tuple[Any, bool]:
    """systemd's MemoryMax: a size (binary suffixes, as ours), `infinity`, or a percentage."""
    if value is None or (isinstance(value, str) and value.strip() == "infinity"):
        return None, True
    if isinstance(value, str) and value.strip().endswith("%"):
        raise ValueError(f"{shown(value)} is a share of the host's memory; write a size like 96G")
    return size(value)[0], True


# --- limits ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One of our limit keys and the DS01 keys that feed it: the current name, then aliases."""

    ours: str
    names: tuple[tuple[str, Convert], ...]


KEYS = (
    Key(
        "gpu_budget",
        (
            ("max_gpu_equivalents", gpu_units),
            ("max_mig_instances", gpu_units),
            ("max_gpu_slots", gpu_units),
            ("max_gpus_per_user", gpu_units),
        ),
    ),
    Key(
        "max_gpus_per_container",
        (
            ("max_gpu_slots_per_container", whole),
            ("max_mig_per_container", whole),
            ("max_gpus_per_container", whole),
        ),
    ),
    Key("allow_whole_gpus", (("allow_full_gpu", flag),)),
    Key("cpus", (("max_cpus", cores), ("cpus", cores))),
    Key("memory", (("memory", size),)),
    Key("memory_swap", (("memory_swap", size),)),
    Key("shm_size", (("shm_size", size),)),
    Key("pids", (("pids_limit", whole),)),
    Key("max_workspaces", (("max_containers_per_user", whole),)),
    Key("idle_timeout", (("idle_timeout_h", hours), ("idle_timeout", legacy_duration))),
    Key("max_runtime", (("max_runtime_h", hours), ("max_runtime", legacy_duration))),
    Key(
        "gpu_hold_after_stop",
        (("gpu_hold_after_stop_h", hours), ("gpu_hold_after_stop", legacy_duration)),
    ),
    Key(
        "container_hold_after_stop",
        (
            ("container_hold_after_stop_h", hours),
            ("container_hold_after_stop", legacy_duration),
        ),
    ),
)
AGGREGATE_KEYS: dict[str, tuple[str, Convert]] = {
    "cpu_quota": ("aggregate_cpus", cpu_quota),
    "memory_max": ("aggregate_memory", memory_max),
}
_TODO = f"{NEVER_READ} (TODO-NOT-IMPLEMENTED)"
LIMIT_DROPS = {
    "max_tasks": f"{NEVER_READ} (the slice's TasksMax comes from aggregate.tasks_max)",
    "priority": f"{NEVER_READ} for allocation (only written to a label)",
    "gpu_memory": _TODO,
    "io_read_bps": _TODO,
    "io_write_bps": _TODO,
    "ulimit_nofile": _TODO,
    "storage_workspace": _TODO,
    "storage_data": _TODO,
    "storage_tmp": _TODO,
    "policies": f"{NOT_MODELLED} (idle-detection thresholds)",
    "max_concurrent_jobs": f"read by ds01-jobs only; {NOT_MODELLED}",
    "max_daily_submissions": f"read by ds01-jobs only; {NOT_MODELLED}",
    "max_result_size_mb": f"read by ds01-jobs only; {NOT_MODELLED}",
}
AGGREGATE_DROPS = {
    "memory_high": f"{NOT_MODELLED} (a soft memory limit)",
    "tasks_max": f"{NOT_MODELLED} (a per-user task limit)",
}


@dataclass
class Layer:
    """One DS01 mapping of limits (defaults, a group, a user override) in our keys."""

    source: Source
    path: YamlPath
    values: dict[str, Any] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    origins: dict[str, YamlPath] = field(default_factory=dict)  # our key -> the DS01 value
    has_aggregate: bool = False
    gpu_limit: Decimal | None = None  # aggregate.gpu_limit; None: none set

    def set(self, key: str, value: Any, origin: YamlPath, comment: str | None = None) -> None:
        self.values[key] = value
        self.origins[key] = origin
        if comment is not None:
            self.comments[key] = comment


def read_layer(
    source: Source, path: YamlPath, raw: Any, notes: Notes, *, skip: Iterable[str] = ()
) -> Layer:
    """Convert one mapping of DS01 limit keys; report the keys that have no equivalent."""
    body = mapping_of(source, path, raw, "limits")
    layer = Layer(source, path)
    used = set(skip)
    for key in KEYS:
        used |= take(layer, key, body, notes)
    if "aggregate" in body:
        read_aggregate(layer, body["aggregate"], notes)
        used.add("aggregate")
    for name, value in body.items():
        if name in used:
            continue
        why = LIMIT_DROPS.get(name, UNKNOWN)
        if isinstance(value, dict):
            notes.drop_section(source, (*path, name), value, why)
        else:
            notes.drop(source, (*path, name), why)
    return layer


def take(layer: Layer, key: Key, body: Mapping[Any, Any], notes: Notes) -> set[str]:
    """Set `key.ours` from the first of its DS01 names present in `body`; the names used."""
    present = [(name, convert) for name, convert in key.names if name in body]
    if not present:
        return set()
    (name, convert), *others = present
    for other, _ in others:
        notes.drop(layer.source, (*layer.path, other), f"legacy alias of {name}, which is set too")
    path = (*layer.path, name)
    raw = body[name]
    try:
        value, derived = convert(raw)
    except ValueError as exc:
        raise layer.source.refuse(path, str(exc)) from None
    legacy = name != key.names[0][0]
    comment = (
        f"from {'legacy ' if legacy else ''}{name} {shown(raw)}" if derived or legacy else None
    )
    layer.set(key.ours, value, path, comment)
    return {name for name, _ in present}


def read_aggregate(layer: Layer, raw: Any, notes: Notes) -> None:
    """`aggregate:` holds a user's totals across containers (a systemd slice in DS01)."""
    path = (*layer.path, "aggregate")
    body = mapping_of(layer.source, path, raw, "aggregate limits")
    layer.has_aggregate = True
    for name, value in body.items():
        sub = (*path, name)
        try:
            if name in AGGREGATE_KEYS:
                ours, convert = AGGREGATE_KEYS[name]
                layer.set(ours, convert(value)[0], sub, f"from aggregate.{name} {shown(value)}")
            elif name == "gpu_limit":
                units = gpu_units(value)[0]
                layer.gpu_limit = None if units is None else Decimal(str(units))
            elif name in AGGREGATE_DROPS:
                notes.drop(layer.source, sub, AGGREGATE_DROPS[name])
            else:
                notes.drop(layer.source, sub, UNKNOWN)
        except ValueError as exc:
            raise layer.source.refuse(sub, str(exc)) from None


def check_layer(layer: Layer) -> None:
    """Our own model must accept every value, or the import refuses at the DS01 key."""
    try:
        Limits.model_validate(layer.values)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else ""
        problem = str(error["msg"]).removeprefix("Value error, ")
        raise layer.source.refuse(layer.origins.get(key, layer.path), problem) from None


# --- layering: GPU budgets and aggregate sections ----------------------------------------------


@dataclass(frozen=True)
class GpuState:
    """The GPU quota in force at one layer: DS01 checks both numbers, so the smaller binds."""

    equivalents: Decimal | None  # max_gpu_equivalents; None: unlimited
    limit: Decimal | None  # aggregate.gpu_limit; None: none

    @property
    def budget(self) -> Decimal | None:
        given = [n for n in (self.equivalents, self.limit) if n is not None]
        return min(given) if given else None


def settle(layer: Layer, below: GpuState, inherited: Mapping[str, Any], notes: Notes) -> GpuState:
    """Fold this layer's aggregate section into its keys, given the layers below it."""
    state = settle_gpu(layer, below, notes)
    if layer.has_aggregate:
        # DS01 merges layers key by key, so an `aggregate:` section replaces the one below
        # whole: a total it leaves out is no longer limited.
        for name, (key, _) in AGGREGATE_KEYS.items():
            if key not in layer.values and inherited.get(key) is not None:
                layer.set(key, None, (*layer.path, "aggregate"), f"this aggregate: has no {name}")
    check_layer(layer)
    return state


def settle_gpu(layer: Layer, below: GpuState, notes: Notes) -> GpuState:
    own = "gpu_budget" in layer.values
    own_value = layer.values.get("gpu_budget")
    equivalents = below.equivalents if not own else _decimal(own_value)
    limit = layer.gpu_limit if layer.has_aggregate else below.limit
    state = GpuState(equivalents, limit)
    budget = state.budget
    # Worth a warning where this layer's own number loses, not where it merely undercuts a
    # limit it inherits.
    sets_limit = layer.gpu_limit is not None
    if limit is not None and equivalents != limit and (sets_limit or budget != equivalents):
        eq, lim = shown(_number(equivalents)), shown(_number(limit))
        where = (*layer.path, "aggregate", "gpu_limit") if sets_limit else None
        origin = where or layer.origins["gpu_budget"]
        notes.warn(
            layer.source,
            origin,
            f"aggregate.gpu_limit {lim} and max_gpu_equivalents {eq} differ; "
            f"the smaller, {shown(_number(budget))}, is the GPU budget",
        )
        layer.set(
            "gpu_budget",
            _number(budget),
            origin,
            f"smaller of max_gpu_equivalents {eq} and aggregate.gpu_limit {lim}",
        )
    elif not own and budget != below.budget:  # e.g. an aggregate section with no gpu_limit
        layer.set("gpu_budget", _number(budget), (*layer.path, "aggregate"))
    return state


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _fraction_decimal(value: Fraction | None) -> Decimal | None:
    return None if value is None else Decimal(value.numerator) / Decimal(value.denominator)


# Below DS01's `defaults`: our built-in budget, and no aggregate limit.
BASE_GPU = GpuState(_fraction_decimal(BUILTIN.gpu_budget), None)


def _number(value: Decimal | None) -> int | float | None:
    return None if value is None else plain(value)


# --- groups and members ----------------------------------------------------------------------

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


# --- user overrides and exemptions -------------------------------------------------------------


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


# --- what DS01 has and we do not model -------------------------------------------------------

MAPPED_TOP = ("defaults", "default_group", "groups", "user_overrides")
TOP_DROPS = {
    "enforcement": NOT_MODELLED,
    "gpu_allocation": f"{NEVER_READ} (TODO-NOT-IMPLEMENTED)",
    "monitoring": f"{NEVER_READ} (hard-coded in gpu-state-reader.py)",
    "bare_metal_access": f"{NOT_MODELLED} (GPU access outside containers)",
    "access_control": f"{NEVER_READ} (the Docker wrapper hard-codes admins and its mode)",
}
POLICY_DROPS = {
    "keepalive_max_duration_h": f"{NEVER_READ} (keep-alive age is hard-coded to 1440 min)",
    "gpu_hold_after_manual_stop_m": NEVER_READ,
}
API_NEVER_READ = ("idle_timeout_h", "max_runtime_h")


SIDE_FILES = (
    ("members_dir", "groups", "--members-dir"),
    ("user_overrides", "user-overrides.yaml", "--user-overrides"),
    ("exemptions", "lifecycle-exemptions.yaml", "--exemptions"),
)


def report_side_files(files: Ds01Files, notes: Notes) -> None:
    """DS01 keeps its side files beside resource-limits.yaml; say so when one is left out."""
    beside = files.resource_limits.parent
    for attribute, name, option in SIDE_FILES:
        if getattr(files, attribute) is None and (beside / name).exists():
            where = str(files.resource_limits)
            text = (
                f"{where}: {beside / name} lies beside it, as in DS01; pass {option} to import it"
            )
            notes.add(where, None, None, text)


def report_unmapped(main: Source, config: Mapping[Any, Any], notes: Notes) -> None:
    for key, value in config.items():
        if key in MAPPED_TOP:
            continue
        if key == "policies" and isinstance(value, dict):
            for name in value:
                notes.drop(main, (key, name), POLICY_DROPS.get(name, NOT_MODELLED))
        elif key == "container_types" and isinstance(value, dict):
            report_container_types(main, value, notes)
        else:
            notes.drop_section(main, (key,), value, TOP_DROPS.get(key, UNKNOWN))


def report_container_types(main: Source, types: Mapping[Any, Any], notes: Notes) -> None:
    why = f"{NOT_MODELLED} (limits of containers made outside DS01's CLI)"
    for name, body in types.items():
        path = ("container_types", name)
        rest = body
        if name == "api" and isinstance(body, dict):
            # DS01's scripts branch on the other types only: api gets the fallbacks.
            for key in API_NEVER_READ:
                if key in body:
                    notes.drop(main, (*path, key), f"{NEVER_READ} (api containers get fallbacks)")
            rest = {k: v for k, v in body.items() if k not in API_NEVER_READ}
        if rest or not isinstance(body, dict):
            notes.drop_section(main, path, rest, why)


# --- writing -----------------------------------------------------------------------------------

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


# --- the import ------------------------------------------------------------------------------


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
