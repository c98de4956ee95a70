"""The plan as a versioned JSON document: the one wire format for `plan --json`, saved plans and
the human view, which is rendered from this document and never from `Plan` itself.

Keys are stable and sorted, kinds and reasons are spelled as their enum values, and env values
are masked unless a caller asks otherwise (only the plan file does). `plan_from_document` is the
exact inverse of `plan_document(plan, mask_secrets=False)`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

from ds01ctl import __version__
from ds01ctl.errors import InternalError
from ds01ctl.model.imagebuild import ContextFile, ImageBuildSpec
from ds01ctl.model.kinds import AnyPayload, Payload, payload_tag
from ds01ctl.model.observed import LayerChanges
from ds01ctl.model.pending import PendingItem
from ds01ctl.model.spec import Bind, ContainerSpec, Power, UserAccount
from ds01ctl.plan.actions import (
    Action,
    ActionKind,
    BudgetRow,
    Drift,
    FieldChange,
    Fingerprint,
    GpuRow,
    Plan,
    PlanMeta,
    Precondition,
    Reason,
    Step,
    StepKind,
    Unmanaged,
)

# Bump FORMAT_VERSION for any change that would force a program parsing this document to change:
# a key renamed, removed or given another type or meaning, an action kind or reason renamed.
# Adding a key or a new enum member is not a bump. The plan file's reader migrates older
# versions (planfile.py); `plan --json` consumers check it and refuse what they do not know.
FORMAT_VERSION = 2
# 2: each action carries its `steps` (ids, depends_on, the data each needs, preconditions);
#    actions lose `depends_on`; `snapshot` is a step kind, no longer an action kind.

MASK = "(masked)"
# Fields whose values may hold credentials: masked in changes, drift and fingerprints as well
# as in the spec. Env values are plain manifest config today; secrets referenced by a SecretRef
# must never reach a Plan at all (they are resolved by the executor), so even an unmasked
# document, as the plan file stores, holds no secret value.
SENSITIVE_FIELDS = frozenset({"env"})
# Spec fields held as canonical (key, value) pairs and written as JSON objects.
_PAIR_FIELDS = frozenset({"env", "ulimits", "labels"})
# Spec fields only endpoints set: written only where they differ from their default.
_ENDPOINT_ONLY = frozenset(
    {
        "ports",
        "devices",
        "gpu_vendor",
        "secret_env",
        "ready_path",
        "served_name",
        "start_timeout",
        "rollback",
    }
)


def plan_document(
    plan: Plan, *, mask_secrets: bool = True, tool_version: str = __version__
) -> dict[str, Any]:
    """The plan as plain JSON-safe data; `dumps` turns it into text."""
    return {
        "format_version": FORMAT_VERSION,
        "ds01ctl_version": tool_version,
        "meta": dataclasses.asdict(plan.meta),
        "summary": _summary(plan),
        "actions": [_action(a, mask_secrets) for a in plan.actions],
        "drift": [_drift(d, mask_secrets) for d in plan.drift],
        "orphans": list(plan.orphans),
        "unmanaged": [_unmanaged(u) for u in plan.unmanaged],
        "pending": [{"target": p.target, "reason": p.reason} for p in plan.pending],
        "gpus": [_gpu_row(g) for g in plan.gpus],
        "budgets": [
            {"owner": b.owner, "before": b.before, "after": b.after, "budget": b.budget}
            for b in plan.budgets
        ],
        "warnings": list(plan.warnings),
        "notes": list(plan.notes),
    }


def dumps(doc: Mapping[str, Any]) -> str:
    """Canonical text: sorted keys, two-space indent, UTF-8 as is, one trailing newline."""
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def mask_value(field: str, value: Any) -> Any:
    """`value` with secrets hidden when `field` is sensitive: keys and absent values stay, so
    a reader still sees which variable is added, changed or removed."""
    if field not in SENSITIVE_FIELDS or value is None:
        return value
    if isinstance(value, Mapping):
        return {key: _mask(v) for key, v in value.items()}
    if isinstance(value, list | tuple) and all(_is_pair(item) for item in value):
        return [[key, _mask(v)] for key, v in value]
    return MASK


def _mask(value: Any) -> Any:
    return None if value is None else MASK


# --- Plan -> document -----------------------------------------------------------------------


def _summary(plan: Plan) -> dict[str, Any]:
    return {
        "actions": plan.counts(),
        "pending": len(plan.pending),
        "drift": len(plan.drift),
        "orphans": len(plan.orphans),
        "unmanaged": len(plan.unmanaged),
    }


def _action(action: Action, mask: bool) -> dict[str, Any]:
    spec, fp = action.spec, action.fingerprint
    return {
        "id": action.id,
        "kind": action.kind.value,
        "target": action.target,
        "reason": action.reason.value,
        "changes": [_change(c, mask) for c in action.changes],
        "container_id": action.container_id,
        "note": action.note,
        # The tag of the payload's record (`model/kinds.py: Payload`); null with no payload.
        "payload_type": None if spec is None else payload_tag(spec).value,
        "spec": None if spec is None else _payload(spec, mask),
        "fingerprint": None if fp is None else _fingerprint(fp, mask),
        "steps": [_step(s) for s in action.steps],
    }


def _step(step: Step) -> dict[str, Any]:
    layer = step.layer
    return {
        "id": step.id,
        "kind": step.kind.value,
        "depends_on": list(step.depends_on),
        "container_id": step.container_id,
        "of_step": step.of_step,
        "grace": step.grace,
        "reason": step.reason,
        "layer": None if layer is None else {"paths": layer.paths, "size": layer.size},
        "untag": step.untag,
        "preconditions": [p.value for p in step.preconditions],
        # Only on an adoption's steps: every other plan reads as before.
        **({"keep_empty": True} if step.keep_empty else {}),
        **({"from_step": step.from_step} if step.from_step is not None else {}),
        **({"image": step.image} if step.image is not None else {}),
        # Only on a health wait that may roll back: other steps read as they always did.
        **({"rollback_to": step.rollback_to} if step.rollback_to else {}),
    }


def _change(change: FieldChange, mask: bool) -> dict[str, Any]:
    before, after = _json_value(change.before), _json_value(change.after)
    if mask:
        before, after = mask_value(change.field, before), mask_value(change.field, after)
    return {
        "field": change.field,
        "before": before,
        "after": after,
        "forces_replace": change.forces_replace,
    }


def _fingerprint(fp: Fingerprint, mask: bool) -> dict[str, Any]:
    fields = []
    for name, value in fp.fields:
        plain = _json_value(value)
        fields.append({"field": name, "value": mask_value(name, plain) if mask else plain})
    return {"container_id": fp.container_id, "spec_hash": fp.spec_hash, "fields": fields}


def _payload(payload: AnyPayload, mask: bool) -> dict[str, Any]:
    if isinstance(payload, ImageBuildSpec):
        return _build(payload)
    return _spec(payload, mask)


def _build(build: ImageBuildSpec) -> dict[str, Any]:
    """Every field of the build; context files as objects, tiers as [tier, items] in order."""
    return dataclasses.asdict(build)


def _build_from(raw: Mapping[str, Any]) -> ImageBuildSpec:
    values = dict(raw)
    values["context"] = tuple(ContextFile(**f) for f in raw["context"])
    values["tiers"] = tuple((k, tuple(v)) for k, v in raw["tiers"])
    return ImageBuildSpec(**values)


def _spec(spec: ContainerSpec, mask: bool) -> dict[str, Any]:
    """Every field of the spec, by name; pairs as objects, binds and the account as objects."""
    doc = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if f.name in _PAIR_FIELDS:
            value = _mapping(value, f.name, spec.key)
        elif f.name == "binds":
            value = [dataclasses.asdict(b) for b in value]
        elif f.name == "account":
            value = dataclasses.asdict(value)
        if f.name in _ENDPOINT_ONLY and value == f.default:
            continue  # written where set: a workspace's spec reads as it always did
        doc[f.name] = _json_value(value)
    if mask:
        doc["env"] = mask_value("env", doc["env"])
    return doc


def _mapping(pairs: Sequence[tuple[str, Any]], what: str, key: str) -> dict[str, Any]:
    """Canonical pairs (sorted, unique keys, as resolve makes them) as a JSON object.

    The object form reads well and is what consumers expect; it loses order and duplicates,
    so anything but the canonical form would not survive a saved plan: that is a bug upstream.
    """
    keys = [k for k, _ in pairs]
    if keys != sorted(set(keys)):
        raise InternalError(f"{key}: spec {what} is not canonical (sorted, unique keys)")
    return dict(pairs)


def _drift(drift: Drift, mask: bool) -> dict[str, Any]:
    return {"target": drift.target, "changes": [_change(c, mask) for c in drift.changes]}


def _unmanaged(item: Unmanaged) -> dict[str, Any]:
    return {"container": item.container, "owner": item.owner, "why": item.why}


def _gpu_row(row: GpuRow) -> dict[str, Any]:
    return {
        "uuid": row.uuid,
        "gpu_index": row.gpu_index,
        "profile": row.profile,
        "before": row.before,
        "after": row.after,
    }


def _json_value(value: Any) -> Any:
    """A canonical JSON value: tuples become lists, enums their value, datetimes ISO 8601.

    Field values in a plan are canonical scalars and tuples of them; anything else (a
    dataclass, a set) has no stable JSON form and is refused as a bug in whoever built it.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise InternalError(f"a plan value of type {type(value).__name__} has no JSON form: {value!r}")


def _is_pair(item: Any) -> bool:
    return isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str)


# --- document -> Plan -----------------------------------------------------------------------


def plan_from_document(doc: Mapping[str, Any]) -> Plan:
    """The `Plan` an unmasked document was made from (`KeyError`/`ValueError` if malformed).

    JSON has no tuples, so every list comes back as a tuple; that is exact because a plan
    holds only tuples. A masked document rebuilds too, but with `(masked)` env values.
    """
    return Plan(
        actions=tuple(_action_from(a) for a in doc["actions"]),
        drift=tuple(Drift(d["target"], _changes_from(d["changes"])) for d in doc["drift"]),
        orphans=tuple(doc["orphans"]),
        unmanaged=tuple(Unmanaged(u["container"], u["owner"], u["why"]) for u in doc["unmanaged"]),
        pending=tuple(PendingItem(p["target"], p["reason"]) for p in doc["pending"]),
        gpus=tuple(_gpu_row_from(g) for g in doc["gpus"]),
        budgets=tuple(
            BudgetRow(b["owner"], b["before"], b["after"], b["budget"]) for b in doc["budgets"]
        ),
        warnings=tuple(doc["warnings"]),
        notes=tuple(doc.get("notes", ())),
        meta=PlanMeta(**{**doc["meta"], "targets": tuple(doc["meta"].get("targets", ()))}),
    )


def _action_from(raw: Mapping[str, Any]) -> Action:
    spec, fp = raw["spec"], raw["fingerprint"]
    return Action(
        id=raw["id"],
        kind=ActionKind(raw["kind"]),
        target=raw["target"],
        reason=Reason(raw["reason"]),
        changes=_changes_from(raw["changes"]),
        spec=None if spec is None else _payload_from(Payload(raw["payload_type"]), spec),
        container_id=raw["container_id"],
        fingerprint=None if fp is None else _fingerprint_from(fp),
        note=raw["note"],
        steps=tuple(_step_from(s) for s in raw["steps"]),
    )


def _step_from(raw: Mapping[str, Any]) -> Step:
    layer = raw["layer"]
    return Step(
        id=raw["id"],
        kind=StepKind(raw["kind"]),
        depends_on=tuple(raw["depends_on"]),
        container_id=raw["container_id"],
        of_step=raw["of_step"],
        grace=raw["grace"],
        reason=raw["reason"],
        layer=None if layer is None else LayerChanges(layer["paths"], layer["size"]),
        untag=raw["untag"],
        preconditions=tuple(Precondition(p) for p in raw["preconditions"]),
        keep_empty=bool(raw.get("keep_empty", False)),
        from_step=raw.get("from_step"),
        image=raw.get("image"),
        rollback_to=raw.get("rollback_to"),
    )


def _changes_from(raw: Iterable[Mapping[str, Any]]) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(c["field"], _tuples(c["before"]), _tuples(c["after"]), c["forces_replace"])
        for c in raw
    )


def _fingerprint_from(raw: Mapping[str, Any]) -> Fingerprint:
    fields = tuple((f["field"], _tuples(f["value"])) for f in raw["fields"])
    return Fingerprint(raw["container_id"], raw["spec_hash"], fields)


def _payload_from(tag: Payload, raw: Mapping[str, Any]) -> AnyPayload:
    match tag:
        case Payload.CONTAINER:
            return _spec_from(raw)
        case Payload.IMAGE_BUILD:
            return _build_from(raw)


def _spec_from(raw: Mapping[str, Any]) -> ContainerSpec:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(ContainerSpec):
        if f.name in _ENDPOINT_ONLY and f.name not in raw:
            continue  # its default
        value = raw[f.name]
        if f.name in _PAIR_FIELDS:
            values[f.name] = tuple(sorted(value.items()))
        elif f.name == "binds":
            values[f.name] = tuple(Bind(**b) for b in value)
        elif f.name == "account":
            values[f.name] = UserAccount(**value)
        elif f.name == "power":
            values[f.name] = Power(value)
        else:
            values[f.name] = _tuples(value)
    return ContainerSpec(**values)


def _gpu_row_from(raw: Mapping[str, Any]) -> GpuRow:
    return GpuRow(raw["uuid"], raw["gpu_index"], raw["profile"], raw["before"], raw["after"])


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples a plan holds, recursively."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value
