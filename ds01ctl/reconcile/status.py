"""`ds01ctl status`: the loop's last full pass as a document, and its rendering.

The loop writes the whole status (`<state>/reconcile/status.json`, 0600: it names every
user's objects) and each user's part of it (`userstatus`). `status` run by root reads the
whole one (with `--user LOGIN`, that user's part), adds the lifecycle timers the state dir
holds, and renders; run by anyone else it reads only their own file. Neither needs the
Docker socket: status shows the loop's last word, with its time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ds01ctl.errors import Ds01Error
from ds01ctl.reconcile import userstatus

if TYPE_CHECKING:
    from ds01ctl.reconcile.hooks import LifecycleReport
    from ds01ctl.reconcile.policy import Split
    from ds01ctl.workflow import PlanResult

VERSION = 1


def status_document(
    result: PlanResult,
    cut: Split,
    *,
    state: Mapping[str, Any],
    failures: Sequence[Mapping[str, Any]],
    lifecycle: LifecycleReport,
    now: dt.datetime,
) -> dict[str, Any]:
    """The whole status after a full pass (pure over what the pass saw)."""
    plan = result.plan
    objects = [
        {
            "target": c.key,
            "state": c.state,
            "container": c.name,
            "gpus": list(c.gpu_ids),
        }
        for c in sorted(result.observed.ours(), key=lambda c: c.key)
    ]
    user_warnings: dict[str, list[str]] = {}
    for line in plan.warnings:
        for owner in {userstatus.owner_of(t) for t in _targets_in(line, plan)} - {None}:
            assert owner is not None
            user_warnings.setdefault(owner, []).append(line)
    for login, lines in lifecycle.warnings.items():
        user_warnings.setdefault(login, []).extend(lines)
    return {
        "version": VERSION,
        "updated_at": now.isoformat(timespec="seconds"),
        "config": {
            key: state.get(key)
            for key in ("commit", "in_force_since", "fetched", "fetch_error", "rejected")
        },
        "loop": {
            key: state.get(key)
            for key in ("last_tick", "last_full_pass", "last_success", "last_error", "duration_s")
        },
        "objects": objects,
        "pending": [{"target": p.target, "reason": p.reason} for p in plan.pending],
        "held": list(state.get("held", [])),
        "reported": [
            {"target": a.target, "action": a.kind.value, "reason": a.reason.value}
            for a in cut.reported
        ],
        "drift": [{"target": d.target, "fields": [c.field for c in d.changes]} for d in plan.drift],
        "failures": [dict(f) for f in failures],
        "gpus": [
            {"uuid": g.uuid, "gpu_index": g.gpu_index, "profile": g.profile, "holder": g.before}
            for g in plan.gpus
        ],
        "budgets": [{"owner": b.owner, "held": b.before, "budget": b.budget} for b in plan.budgets],
        "lifecycle": [dict(row) for row in lifecycle.timers],
        "user_warnings": user_warnings,
        "warnings": list(plan.warnings),
    }


def _targets_in(line: str, plan: Any) -> set[str]:
    known = {a.target for a in plan.actions} | {p.target for p in plan.pending}
    return {t for t in known if t in line}


# --- reading ------------------------------------------------------------------------------


def read_status(state_dir: Path, user: str | None) -> dict[str, Any]:
    """The status this caller may see: root the whole (or one user's part), others their own."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        if user not in (None, me):
            raise Ds01Error(
                f"only root sees another user's status ({user})",
                hint="run `ds01ctl status` for your own, or ask an admin",
                code="no_status",
            )
        return userstatus.read_own(state_dir, me)
    path = state_dir / "reconcile" / "status.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Ds01Error(
            f"no status yet: {path} is missing",
            hint="start the loop (`ds01ctl reconcile`, or its systemd unit) with this --state-dir",
            code="no_status",
        ) from None
    except (OSError, ValueError) as exc:
        raise Ds01Error(
            f"cannot read {path}: {exc}", hint="the loop rewrites it", code="no_status"
        ) from None
    doc["lifecycle_timers"] = lifecycle_timers(state_dir)
    if user is not None:
        part = userstatus.for_user(doc, user)
        part["lifecycle_timers"] = [
            t for t in doc["lifecycle_timers"] if userstatus.owner_of(t["target"]) == user
        ]
        return part
    return dict(doc)


def lifecycle_timers(state_dir: Path) -> list[dict[str, Any]]:
    """The lifecycle timers in the state dir, when the lifecycle pass keeps any."""
    from ds01ctl.lifecycle.timers import read_timers

    try:
        found = read_timers(state_dir)
    except Ds01Error:
        return []
    rows = []
    for cid, t in sorted(found.timers.items(), key=lambda kv: kv[1].key):
        rows.append(
            {
                "target": t.key,
                "container": cid[:12],
                "last_active": _iso(t.last_active),
                "idle_stop_at": _iso(t.idle.deadline),
                "runtime_stop_at": _iso(t.runtime.deadline),
            }
        )
    return rows


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


# --- rendering ----------------------------------------------------------------------------


def render(doc: Mapping[str, Any]) -> str:
    """The status for people: one section per thing that has rows."""
    out: list[str] = []
    config = doc.get("config") or {}
    commit = config.get("commit")
    since = config.get("in_force_since")
    out.append(
        f"Commit in force: {commit[:12] if commit else '(none yet)'}"
        + (f" (since {since})" if since else "")
    )
    if doc.get("user"):
        out.insert(0, f"Status of {doc['user']}, as of {doc.get('updated_at')}")
    else:
        loop = doc.get("loop") or {}
        out.append(
            f"Last full pass: {loop.get('last_full_pass') or 'never'}"
            + (f" ({loop['duration_s']} s)" if loop.get("duration_s") is not None else "")
            + f"; last tick {loop.get('last_tick') or 'never'}"
        )
        if loop.get("last_error"):
            out.append(f"Last pass failed: {loop['last_error']}")
        if config.get("fetch_error"):
            out.append(f"Fetch failing: {config['fetch_error']}")
    rejected = config.get("rejected")
    if rejected:
        out.append(f"Commit {str(rejected.get('commit'))[:12]} not applied: {rejected.get('why')}")
    held = doc.get("held")
    if held:
        out.append("")
        for plan in held:
            out.append(f"Waiting for approval: plan {plan['id']} (`ds01ctl approve {plan['id']}`)")
            out.extend(f"  {a['action']} {a['target']} ({a['reason']})" for a in plan["actions"])
    mine = doc.get("waiting_for_approval")
    if mine:
        out.append("")
        out.append("Waiting for an admin's approval:")
        out.extend(f"  {a['action']} {a['target']} ({a['reason']})" for a in mine)
    _table(
        out,
        "Objects",
        [
            (o["target"], o["state"], ", ".join(o.get("gpus") or []) or "-")
            for o in doc.get("objects", [])
        ],
        ("OBJECT", "STATE", "GPUS"),
    )
    _table(
        out,
        "Pending",
        [(p["target"], p["reason"]) for p in doc.get("pending", [])],
        ("OBJECT", "WHY"),
    )
    for failure in doc.get("failures", []):
        out.append("")
        out.append(
            f"Failed: {failure['action']} {failure['target']} ({failure['step']}): "
            f"{failure['error']}"
        )
        out.extend(f"  | {line}" for line in failure.get("log_tail") or [])
    _table(
        out,
        "Reported only",
        [(r["target"], r["action"], r["reason"]) for r in doc.get("reported", [])],
        ("OBJECT", "ACTION", "REASON"),
    )
    _table(
        out,
        "Drift",
        [(d["target"], ", ".join(d["fields"])) for d in doc.get("drift", [])],
        ("OBJECT", "FIELDS"),
    )
    _table(
        out,
        "GPUs",
        [
            (str(g["gpu_index"]), g.get("profile") or "whole", g["uuid"], g.get("holder") or "free")
            for g in doc.get("gpus", [])
        ],
        ("GPU", "PROFILE", "UUID", "HOLDER"),
    )
    _table(
        out,
        "GPU budget",
        [(b["owner"], b["held"], b.get("budget") or "unlimited") for b in doc.get("budgets", [])],
        ("USER", "HELD", "BUDGET"),
    )
    timers = doc.get("lifecycle_timers") or []
    _table(
        out,
        "Lifecycle timers",
        [
            (
                t["target"],
                t["last_active"] or "-",
                t["idle_stop_at"] or "-",
                t["runtime_stop_at"] or "-",
            )
            for t in timers
        ],
        ("OBJECT", "LAST ACTIVE", "IDLE STOP AT", "RUNTIME STOP AT"),
    )
    warnings = list(doc.get("warnings") or [])
    if warnings:
        out.append("")
        out.extend(f"warning: {w}" for w in warnings)
    return "\n".join(out) + "\n"


def _table(
    out: list[str], title: str, rows: Sequence[tuple[str, ...]], header: tuple[str, ...]
) -> None:
    if not rows:
        return
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    out.append("")
    out.append(f"{title}:")
    for row in table:
        out.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
