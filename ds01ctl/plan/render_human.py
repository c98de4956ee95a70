"""The plan for people, drawn from the JSON document (render_json) and never from `Plan`, so
`plan`, `plan --json` and a saved plan cannot tell different stories.

Terraform's wording: one header sentence per (kind, reason), the same "will be destroyed"
for every delete with its reason on a note line, and "(this is a bug)" for a combination that
cannot happen. Plain ANSI codes, no rich: this runs on every `plan` and start-up time counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ds01ctl.plan.render_json import mask_value
from ds01ctl.units import about_size, format_cpus, format_duration, format_size

Doc = Mapping[str, Any]

_RESET, _BOLD, _DIM = "\033[0m", "\033[1m", "\033[2m"
_GREEN, _YELLOW, _RED = "\033[32m", "\033[33m", "\033[31m"

_SYMBOLS = {
    "create": "+",
    "update": "~",
    "replace": "-/+",
    "delete": "-",
    "start": "~",
    "stop": "~",
    "build": "+",
    "cleanup": "-",
    "adopt": "-/+",
}
_DESTROYED = "will be destroyed"  # the same words for every delete: easy to scan for

# Header sentences by (kind, reason). A pair missing here cannot come out of diff: it is
# printed with "(this is a bug)" rather than guessed at. `{forcing}` names the fields that
# force a replacement. Deletes are not here: they always say _DESTROYED, and _DELETE_NOTES
# gives the reason on the line below.
_OUTSIDE = "changed outside ds01ctl"
_HEADERS: dict[tuple[str, str], str] = {
    ("create", "new"): "will be created",
    ("update", "limits_changed"): "will be updated in-place",
    ("update", "changed_outside"): f"will be updated in-place: its limits were {_OUTSIDE}",
    ("replace", "spec_changed"): "must be replaced: {forcing}",
    ("replace", "changed_outside"): f"must be replaced: it was {_OUTSIDE}",
    ("replace", "gpu_gone"): "must be replaced: a GPU it uses no longer exists",
    ("replace", "security_defaults"): (
        "must be replaced: ds01ctl's security defaults changed since it was made"
    ),
    ("cleanup", "leftover_helper"): "will be removed: a helper container left behind",
    ("cleanup", "leftover_tag"): "will be removed: an image tag a crashed apply left",
    ("cleanup", "leftover_account_image"): (
        "will be removed: an account image no container uses (--prune)"
    ),
    ("cleanup", "duplicate_snapshot"): "will be removed: a second copy of a snapshot",
    ("adopt", "mlc_container"): (
        "will be adopted: its owner's mlc container holds its name, and becomes this workspace"
    ),
    ("start", "power"): "will be started: its manifest pins it running",
    ("stop", "power"): "will be stopped: its manifest pins it stopped",
    ("build", "new"): "will be built",
    ("build", "spec_changed"): "will be rebuilt: its definition changed",
    ("build", "rebuild"): "will be rebuilt on its base's newest image, as asked (--rebuild)",
    ("replace", "image_changed"): "must be replaced: its Image has a new build",
}
_DELETE_NOTES = {
    "no_manifest": "(because it has no manifest and --prune was given)",
    "duplicate": "(because another container already holds this object)",
    "gpu_released": "(because it is stopped past its GPU hold, and someone waits for its GPU)",
    "container_hold_expired": (
        "(because it has no manifest and is stopped past its owner's container hold)"
    ),
}

# What a create shows of its spec, in this order: (label, spec key).
_CREATE_FIELDS = (
    ("image", "image"),
    ("gpus", "gpus"),
    ("cpus", "nano_cpus"),
    ("memory", "memory"),
    ("shm_size", "shm_size"),
    ("mounts", "binds"),
    ("network", "network"),
    ("user", "account"),
    ("env", "env"),  # values masked as in --json
)
_LABELS = {"nano_cpus": "cpus", "binds": "mounts"}
_SIZE_FIELDS = frozenset({"memory", "memory_swap", "shm_size"})
_SUMMARY_WORDS = (
    ("create", "to add"),
    ("update", "to change"),
    ("replace", "to replace"),
    ("delete", "to destroy"),
)
_EXTRA_WORDS = (
    ("start", "to start"),
    ("stop", "to stop"),
    ("build", "to build"),
    ("cleanup", "to clean up"),
    ("adopt", "to adopt"),
)


def render(doc: Doc, colour: bool = False, *, all_gpus: bool = False) -> str:
    """The whole plan as text ending in one newline; the same document gives the same bytes.

    The GPU table shows the devices whose holder changes; `all_gpus` shows every device."""
    ctx = _Context.of(doc, colour)
    blocks = [
        _source_line(doc, ctx),
        _actions_section(doc, ctx),
        _drift_section(doc, ctx),
        _pending_section(doc, ctx),
        _unmanaged_section(doc, ctx),
        _orphans_section(doc, ctx),
        _warnings_section(doc, ctx),
        [f"{ctx.paint('Note:', _BOLD)} {text}" for text in doc.get("notes", ())],
        _gpu_section(doc, ctx, all_gpus=all_gpus),
        _budget_section(doc, ctx),
        [_summary_line(doc, ctx)],
    ]
    return "\n\n".join("\n".join(b) for b in blocks if b) + "\n"


@dataclass(frozen=True)
class _Context:
    """What every line needs: colour on or off, and the GPU rows to name devices by."""

    colour: bool
    gpus: Mapping[str, Doc]  # GPU rows by uuid
    uuid_chars: int  # characters kept after `GPU-`/`MIG-` in a short uuid

    @classmethod
    def of(cls, doc: Doc, colour: bool) -> _Context:
        rows = {row["uuid"]: row for row in doc["gpus"]}
        return cls(colour, rows, _unique_prefix(list(rows)))

    def paint(self, text: str, *codes: str) -> str:
        return "".join(codes) + text + _RESET if self.colour and codes else text

    def symbol(self, symbol: str) -> str:
        if symbol == "-/+":
            return self.paint("-", _RED) + "/" + self.paint("+", _GREEN)
        colour = {"+": _GREEN, "~": _YELLOW, "-": _RED}.get(symbol)
        return self.paint(symbol, colour) if colour else symbol

    def short_uuid(self, uuid: str) -> str:
        prefix, _, rest = uuid.partition("-")
        if not rest or len(rest) <= self.uuid_chars:
            return uuid
        return f"{prefix}-{rest[: self.uuid_chars]}…"


def _unique_prefix(uuids: Sequence[str], least: int = 4) -> int:
    """How many characters after `GPU-`/`MIG-` tell every device apart (at least `least`)."""
    bodies = [u.partition("-")[2] for u in uuids]
    width = least
    while len({b[:width] for b in bodies}) < len(set(bodies)):
        width += 1
    return width


# --- actions --------------------------------------------------------------------------------


def _actions_section(doc: Doc, ctx: _Context) -> list[str]:
    if not doc["actions"]:
        return []
    lines = ["ds01ctl will perform the following actions:"]
    for action in doc["actions"]:
        lines += ["", *_action_block(action, ctx)]
    return lines


def _action_block(action: Doc, ctx: _Context) -> list[str]:
    kind, name = action["kind"], _display(action["target"])
    lines = [ctx.paint(f"  # {name} {_header(action)}", _BOLD)]
    if kind == "delete":
        lines.append(f"  #   {_DELETE_NOTES.get(action['reason'], _bug_note(action))}")
    if action["note"]:
        lines.append(f"  #   {action['note']}")
    symbol = _SYMBOLS.get(kind, "?")
    lines.append(f"{' ' * (3 - len(symbol))}{ctx.symbol(symbol)} {name}")
    if kind == "create" and action["spec"] is not None:
        lines += _field_lines(_create_rows(action["spec"], ctx), ctx)
    else:
        lines += _field_lines(_change_rows(action["changes"], ctx), ctx)
    return lines + _step_lines(action["kind"], action["steps"], ctx)


def _step_lines(kind: str, steps: Sequence[Doc], ctx: _Context) -> list[str]:
    """The action's steps in order, numbered as apply runs and reports them.

    A lone step that says no more than the header ("create" under "will be created") is left
    out: the block is for the order, the waits and the conditions, and it has none of them.
    """
    own = {step["id"] for step in steps}
    texts = []
    for step in steps:
        text = _STEP_TEXT.get(step["kind"], _unknown_step)(step)
        waits = [d for d in step["depends_on"] if d not in own]
        if waits:
            text += f", after step {', '.join(str(d) for d in waits)}"
        for condition in step["preconditions"]:
            text += f"; {_PRECONDITIONS.get(condition, condition)}"
        texts.append(f"        {step['id']}. {text}")
    if not steps or (len(steps) == 1 and texts[0].endswith(f". {kind}")):
        return []
    return [ctx.paint("      steps:", _DIM), *texts]


def _snapshot_text(step: Doc) -> str:
    layer = step["layer"]
    if step.get("keep_empty"):
        changed = (
            f": {about_size(layer['size'])} changed outside its mounts ({layer['paths']} path(s))"
            if layer is not None and layer["paths"]
            else ""
        )
        return f"snapshot its writable layer, whatever it holds{changed}"
    if layer is None:
        return "snapshot its changes outside its mounts, if any"
    if not layer["paths"]:
        return "snapshot, if anything outside its mounts changes by then (nothing has now)"
    return (
        f"snapshot first: {about_size(layer['size'])} changed outside its mounts "
        f"({layer['paths']} path(s))"
    )


def _unknown_step(step: Doc) -> str:
    return f"{step['kind']} (a step this ds01ctl cannot explain: this is a bug)"


_STEP_TEXT: dict[str, Callable[[Doc], str]] = {
    "snapshot": _snapshot_text,
    "stop": lambda step: f"stop (grace {format_duration(step['grace'])})",
    "remove": lambda step: "remove" + (f", then untag {step['untag']}" if step["untag"] else ""),
    "create": lambda step: (
        f"create from the snapshot of step {step['from_step']}"
        if step.get("from_step") is not None
        else "create"
    ),
    "start": lambda step: "start",
    "update": lambda step: "update in place",
    "remove_image": lambda step: f"remove image {step['image']}",
    "build": lambda step: "build (log under the state directory's builds/)",
    "wait_healthy": lambda step: (
        "wait until ready"
        + (" (else bring back the container it replaces)" if step.get("rollback_to") else "")
    ),
}
_PRECONDITIONS = {
    "no_live_sessions": "refused while sessions are open in it (--force)",
    "mounts_unmoved": "only if its mount sources have not moved",
}


def _header(action: Doc) -> str:
    kind, reason = action["kind"], action["reason"]
    if kind == "delete":
        return _DESTROYED
    sentence = _HEADERS.get((kind, reason))
    if sentence is None:
        return f"has an action this ds01ctl cannot explain ({kind}, {reason}) (this is a bug)"
    return sentence.format(forcing=_forcing(action["changes"]))


def _bug_note(action: Doc) -> str:
    return f"(because of {action['reason']}, which cannot delete anything: this is a bug)"


def _forcing(changes: Sequence[Doc]) -> str:
    fields = [_label(c["field"]) for c in changes if c["forces_replace"]]
    if not fields:
        return "its manifest changed"
    return f"{', '.join(fields)} {'forces' if len(fields) == 1 else 'force'} replacement"


def _label(field: str) -> str:
    return _LABELS.get(field, field)


def _display(target: str) -> str:
    """`workspace/alice/thesis` as people read it: `workspace alice/thesis`."""
    kind, _, rest = target.partition("/")
    return f"{kind} {rest}" if rest else target


# One line of an action's body: (symbol, label, value text, trailing comment).
_Row = tuple[str, str, str, str]


def _create_rows(spec: Doc, ctx: _Context) -> list[_Row]:
    rows = []
    for label, key in _CREATE_FIELDS:
        value = spec[key]
        if value in ([], {}, None, 0, ""):
            continue
        rows.append(("+", label, _value(key, value, ctx), ""))
    return rows


def _change_rows(changes: Sequence[Doc], ctx: _Context) -> list[_Row]:
    rows = []
    for change in changes:
        field = change["field"]
        if field == "labels" and _is_map(change["before"]) and _is_map(change["after"]):
            rows += _label_rows(change)
            continue
        before = _value(field, change["before"], ctx)
        after = _value(field, change["after"], ctx)
        note = "# forces replacement" if change["forces_replace"] else ""
        rows.append(("~", _label(field), f"{before} -> {after}", note))
    return rows


_LABEL_VALUE_CHARS = 40  # a label value is shown up to this many characters, then "…"


def _label_rows(change: Doc) -> list[_Row]:
    """A label change one changed key a line, each value cut short: labels can be hundreds
    of characters (a JSON blob), and the line that matters is which key changed. `--json`
    keeps the whole values."""
    before, after = change["before"], change["after"]
    note = "# forces replacement" if change["forces_replace"] else ""
    rows = []
    for key in sorted(set(before) | set(after)):
        old, new = _short_label(before.get(key)), _short_label(after.get(key))
        rows.append(("~", f"label {key}", f"{old} -> {new}", note))
        note = ""  # once per field is enough
    return rows


def _short_label(value: Any) -> str:
    if value is None:
        return "(none)"
    text = str(value)
    if len(text) > _LABEL_VALUE_CHARS:
        text = text[: _LABEL_VALUE_CHARS - 1] + "…"
    return _quote(text)


def _is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def _field_lines(rows: Sequence[_Row], ctx: _Context) -> list[str]:
    width = max((len(label) for _, label, _, _ in rows), default=0)
    lines = []
    for symbol, label, text, note in rows:
        line = f"      {ctx.symbol(symbol)} {label.ljust(width)} = {text}"
        lines.append(f"{line}  {note}" if note else line)
    return lines


# --- values ---------------------------------------------------------------------------------


def _value(field: str, value: Any, ctx: _Context) -> str:
    """A field's value as people read it: sizes as `32g`, GPUs by short UUID and index."""
    if value is None:
        return "null"
    value = mask_value(field, value)
    formatter = _FORMATTERS.get(field)
    if formatter is not None:
        return formatter(value, ctx)
    if field in _SIZE_FIELDS and _is_int(value):
        return _quote(format_size(value))
    return _literal(value)


def _cpus(value: Any, ctx: _Context) -> str:
    return format_cpus(value) if _is_int(value) else _literal(value)


def _duration(value: Any, ctx: _Context) -> str:
    return _quote(format_duration(value)) if _is_int(value) else _literal(value)


def _gpus(value: Any, ctx: _Context) -> str:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        return _literal(value)
    return ", ".join(_gpu(uuid, ctx) for uuid in value) if value else "(none)"


def _gpu(uuid: str, ctx: _Context) -> str:
    row = ctx.gpus.get(uuid)
    if row is None:
        return f"{ctx.short_uuid(uuid)} (not on this host)"
    where = f"GPU {row['gpu_index']}"
    if row["profile"]:
        where = f"{row['profile']} on {where}"
    return f"{ctx.short_uuid(uuid)} ({where})"


def _binds(value: Any, ctx: _Context) -> str:
    if not isinstance(value, list) or not all(isinstance(b, Mapping) for b in value):
        return _literal(value)
    texts = [f"{b['source']}:{b['target']}" + (":ro" if b["read_only"] else "") for b in value]
    return _literal(texts)


def _account(value: Any, ctx: _Context) -> str:
    if not isinstance(value, Mapping):
        return _literal(value)
    return _quote(f"{value['login']} ({value['uid']}:{value['gid']})")


_FORMATTERS: dict[str, Callable[[Any, _Context], str]] = {
    "nano_cpus": _cpus,
    "stop_grace": _duration,
    "gpus": _gpus,
    "binds": _binds,
    "account": _account,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# --- the other sections ---------------------------------------------------------------------


def _drift_section(doc: Doc, ctx: _Context) -> list[str]:
    if not doc["drift"]:
        return []
    # A change reads live -> desired everywhere, drift included: now -> what the manifests say.
    lines = [ctx.paint("Changed outside ds01ctl (as it is now -> as the manifests say):", _BOLD)]
    for drift in doc["drift"]:
        lines += ["", f"  {ctx.symbol('~')} {_display(drift['target'])}"]
        lines += _field_lines(_change_rows(drift["changes"], ctx), ctx)
    return lines


def _pending_section(doc: Doc, ctx: _Context) -> list[str]:
    if not doc["pending"]:
        return []
    title = ctx.paint("Pending (nothing is done for these now; each says why):", _BOLD)
    return [title, *(f"  {_display(p['target'])}: {p['reason']}" for p in doc["pending"])]


def _unmanaged_section(doc: Doc, ctx: _Context) -> list[str]:
    if not doc["unmanaged"]:
        return []
    lines = [ctx.paint("Not managed by ds01ctl (left alone):", _BOLD)]
    for item in doc["unmanaged"]:
        owner = f" (owner {item['owner']})" if item["owner"] else ""
        lines.append(f"  {item['container']}{owner}: {item['why']}")
    return lines


def _orphans_section(doc: Doc, ctx: _Context) -> list[str]:
    if not doc["orphans"]:
        return []
    title = ctx.paint("Orphans (delete with --prune):", _BOLD)
    return [title, *(f"  {_display(target)}" for target in doc["orphans"])]


def _warnings_section(doc: Doc, ctx: _Context) -> list[str]:
    return [f"{ctx.paint('Warning:', _BOLD, _YELLOW)} {text}" for text in doc["warnings"]]


def _gpu_section(doc: Doc, ctx: _Context, *, all_gpus: bool) -> list[str]:
    # A lab's table is every device on every plan: only the rows that change are news.
    rows = [r for r in doc["gpus"] if all_gpus or (r["before"] or "-") != (r["after"] or "-")]
    if not rows:
        return []
    table = [(" ", "GPU", "PROFILE", "UUID", "BEFORE", "AFTER")]
    for row in rows:
        before, after = row["before"] or "-", row["after"] or "-"
        mark = "~" if before != after else " "
        profile = row["profile"] or "whole"
        table.append(
            (mark, str(row["gpu_index"]), profile, ctx.short_uuid(row["uuid"]), before, after)
        )
    widths = [max(len(cells[i]) for cells in table) for i in range(len(table[0]))]
    title = (
        "GPU allocation (before → after):"
        if all_gpus
        else ("GPU allocation, the devices that change (before → after; plan --gpus shows all):")
    )
    lines = [ctx.paint(title, _BOLD)]
    for cells in table:
        padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]
        padded[0] = ctx.symbol(cells[0])
        lines.append(("  " + "  ".join(padded)).rstrip())
    return lines


def _source_line(doc: Doc, ctx: _Context) -> list[str]:
    """What the plan was made against: the site, the engine, and where GPU state came from."""
    meta = doc["meta"]
    if not meta.get("site"):
        return []
    parts = [f"site {meta['site']}"]
    if meta.get("engine_version"):
        parts.append(f"Docker {meta['engine_version']}")
    if meta.get("gpu_source"):
        parts.append(f"GPU state from {meta['gpu_source']}")
    return [ctx.paint("Planned against " + ", ".join(parts) + ".", _DIM)]


def _budget_section(doc: Doc, ctx: _Context) -> list[str]:
    rows = doc.get("budgets") or []
    if not rows:
        return []
    lines = [ctx.paint("GPU budgets (GPU units held, before → after):", _BOLD)]
    for row in rows:
        budget = f"of {row['budget']}" if row["budget"] is not None else "(unlimited)"
        lines.append(f"  {row['owner']}: {row['before']} → {row['after']} {budget}")
    return lines


def _summary_line(doc: Doc, ctx: _Context) -> str:
    counts, pending = doc["summary"]["actions"], len(doc["pending"])
    orphans = len(doc["orphans"])
    if not doc["actions"] and not pending and orphans:
        # Not "matches the manifests": the orphans listed above are live state no manifest has.
        return (
            f"{ctx.paint('No changes to apply;', _BOLD)} {orphans} managed container(s) have "
            "no manifest (see above; --prune deletes them)."
        )
    if not doc["actions"] and not pending:
        return ctx.paint("No changes.", _BOLD) + " The live state matches the manifests."
    parts = [f"{counts.get(kind, 0)} {words}" for kind, words in _SUMMARY_WORDS]
    parts += [f"{counts[kind]} {words}" for kind, words in _EXTRA_WORDS if counts.get(kind)]
    if pending:
        parts.append(f"{pending} pending")
    return f"{ctx.paint('Plan:', _BOLD)} {', '.join(parts)}."
