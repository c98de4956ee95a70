"""The bodies of `ds01ctl reconcile`, `approve` and `status` (cli.py holds thin wrappers)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from ds01ctl.reconcile.hooks import LifecycleHook
from ds01ctl.reconcile.loop import LoopSettings, Reconciler

DEFAULT_STATE_DIR = Path("/var/lib/ds01ctl")


def lifecycle_hook() -> LifecycleHook:
    """The lifecycle pass the loop runs each tick: idle stop and max_runtime."""
    from ds01ctl.reconcile.lifecycle import enforcement

    return enforcement()


def reconcile(settings: LoopSettings, *, once: bool, preflight: bool) -> int:
    if preflight:
        from ds01ctl.reconcile.preflight import refuse_unless_ready

        refuse_unless_ready(settings)
    loop = Reconciler(settings, lifecycle=lifecycle_hook())
    loop.install_signals()
    return loop.run(once=once)


def approve(state_dir: Path, ident: str) -> str:
    from ds01ctl.reconcile.held import HeldPlans, check_id, who_am_i

    held = HeldPlans(state_dir)
    held.approve(check_id(ident), who_am_i(), dt.datetime.now(dt.UTC))
    return (
        f"Approved plan {ident}: the reconcile loop applies it at its next tick, after checking "
        "that a fresh plan still holds exactly it (see `ds01ctl status`)."
    )


def status(state_dir: Path, user: str | None, *, json_out: bool) -> str:
    from ds01ctl.reconcile.status import read_status, render

    doc = read_status(state_dir, user)
    if json_out:
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"
    return render(doc)
