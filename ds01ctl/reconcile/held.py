"""Plans held for approval: saved under the state dir with an id, approved by an admin, applied
by the loop's next tick after the usual saved-plan checks.

The id is a digest of what the held actions would do (kind, target, reason, container, spec,
fingerprint), not of when they were planned: the loop re-saves the same held plan every full
pass and its id stays the one the admin was shown. When the held actions change, the id
changes and the old file goes, so an approval can never apply something else than what was
shown. Layout: `<state>/reconcile/held/<ID>.json` (a plan file, 0600) and
`<state>/reconcile/approved/<ID>` (who approved, when).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from ds01ctl import __version__
from ds01ctl.errors import Ds01Error
from ds01ctl.fsutil import write_atomically
from ds01ctl.plan.actions import Action, Plan
from ds01ctl.plan.render_json import plan_document
from ds01ctl.plan.staleness import restrict

_ID = re.compile(r"^[0-9a-f]{12}$")


def plan_id(actions: tuple[Action, ...]) -> str:
    """A short digest of what the actions do (pure)."""
    doc = plan_document(Plan(actions=actions), mask_secrets=False)["actions"]
    keys = ("kind", "target", "reason", "container_id", "spec", "fingerprint")
    canonical = json.dumps(
        sorted(([a[k] for k in keys] for a in doc), key=lambda row: (row[1], row[0])),
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def held_plan(plan: Plan, targets: tuple[str, ...]) -> Plan:
    """The plan narrowed to the held targets, saved as made with those targets: apply re-plans
    just them (and what they depend on) when it checks the saved plan."""
    narrowed = restrict(plan, targets, why="held for approval")
    return dataclasses.replace(narrowed, meta=dataclasses.replace(plan.meta, targets=targets))


class HeldPlans:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "reconcile"
        self.held_dir = self.root / "held"
        self.approved_dir = self.root / "approved"
        self.state_dir = state_dir

    def path(self, ident: str) -> Path:
        return self.held_dir / f"{check_id(ident)}.json"

    def save(self, plan: Plan, ident: str) -> Path:
        """Save the held plan (and drop every other held plan: superseded)."""
        from ds01ctl.plan.planfile import save_plan

        self.held_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.path(ident)
        if not path.exists():
            save_plan(
                plan,
                path,
                tool_version=__version__,
                site=plan.meta.site or "",
                state_dir=self.state_dir,
                config_commit=plan.meta.config_commit,
            )
        self.keep_only({ident})
        return path

    def keep_only(self, idents: set[str]) -> None:
        for folder in (self.held_dir, self.approved_dir):
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if entry.name.removesuffix(".json") not in idents:
                    entry.unlink(missing_ok=True)

    def held(self) -> list[str]:
        if not self.held_dir.is_dir():
            return []
        return sorted(p.name.removesuffix(".json") for p in self.held_dir.glob("*.json"))

    def approve(self, ident: str, who: str, now: dt.datetime) -> Path:
        path = self.path(ident)
        if not os.access(self.root, os.W_OK | os.X_OK) and self.root.exists():
            raise Ds01Error(
                f"cannot record an approval in {self.root}: it is the reconcile loop's (root's)",
                hint="run `ds01ctl approve` as root (sudo)",
                code="approve",
            )
        if not path.is_file():
            known = ", ".join(self.held()) or "none"
            raise Ds01Error(
                f"no plan {ident} is held for approval (held now: {known})",
                hint="see `ds01ctl status`: a held plan is replaced when what it holds changes",
                code="unknown_plan",
            )
        record = {"id": ident, "by": who, "at": now.isoformat(timespec="seconds")}
        try:
            self.approved_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomically(self.approved_dir / ident, json.dumps(record) + "\n", private=True)
        except OSError as exc:
            raise Ds01Error(
                f"cannot record the approval in {self.approved_dir}: {exc.strerror}",
                hint="run `ds01ctl approve` as root (sudo), with the loop's --state-dir",
                code="approve",
            ) from None
        return path

    def approved(self) -> list[tuple[str, dict[str, Any]]]:
        if not self.approved_dir.is_dir():
            return []
        found = []
        for entry in sorted(self.approved_dir.iterdir()):
            if not _ID.match(entry.name):
                continue
            try:
                record = json.loads(entry.read_text())
            except (OSError, ValueError):
                record = {}
            found.append((entry.name, record if isinstance(record, dict) else {}))
        return found

    def done(self, ident: str) -> None:
        """An approved plan was applied (or refused as stale): it is held no more."""
        for path in (self.approved_dir / ident, self.held_dir / f"{ident}.json"):
            path.unlink(missing_ok=True)


def check_id(ident: str) -> str:
    if not _ID.fullmatch(ident):
        raise Ds01Error(
            f"{ident!r} is not a plan id (12 hex digits, as `ds01ctl status` shows them)",
            hint="copy the id from `ds01ctl status`",
            code="unknown_plan",
        )
    return ident


def who_am_i() -> str:
    from ds01ctl.apply.lock import invoker

    return invoker()[0] + (
        f" (sudo by {os.environ['SUDO_USER']})" if "SUDO_USER" in os.environ else ""
    )
