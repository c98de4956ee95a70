"""The ledger: the few facts Docker labels cannot hold, in `ledger.json` in the state dir.

Today that is since when each request has been pending (fairness: who waited longest is
placed first). Every fact is rebuildable or has a safe default: a lost ledger only resets
waiting times. The file carries a version, is written atomically and only by apply.

So a ledger that cannot be read, or reads as the wrong shape, never stops plan or apply: what
can be used is used, the rest restarts from now, and the reader gets one line saying so (plan
shows it among its warnings; the next apply rewrites the file whole).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ds01ctl.errors import Ds01Error
from ds01ctl.fsutil import json_kind, read_state_json, write_atomically

LEDGER_VERSION = 1
FILE_NAME = "ledger.json"


@dataclass(frozen=True)
class LedgerRead:
    pending_since: dict[str, dt.datetime]
    problem: str | None = None  # a warning for the plan: what was wrong and what was done


def read_ledger(state_dir: Path) -> LedgerRead:
    path = state_dir / FILE_NAME
    raw = read_state_json(path, LEDGER_VERSION, what="the ledger", code="ledger")
    if raw is None:
        return LedgerRead({})
    if isinstance(raw, str):
        return _unusable(path, raw)
    entries = raw.get("pending_since") or {}
    if not isinstance(entries, dict):
        return _unusable(path, f"has a pending_since that is {json_kind(entries)}, not an object")
    found, bad = {}, []
    for key, value in entries.items():
        since = _time(value)
        if since is None:
            bad.append(key)
        else:
            found[key] = since
    if not bad:
        return LedgerRead(found)
    return LedgerRead(
        found,
        f"the ledger {path} has {len(bad)} entry(ies) that are not times ({', '.join(bad[:3])}"
        f"{', …' if len(bad) > 3 else ''}): their waiting times restart now; apply rewrites it",
    )


def load_pending_since(state_dir: Path) -> dict[str, dt.datetime]:
    """Since when each request has been pending; what cannot be read is left out."""
    return read_ledger(state_dir).pending_since


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        since = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return since if since.tzinfo else since.replace(tzinfo=dt.UTC)


def _unusable(path: Path, why: str) -> LedgerRead:
    return LedgerRead(
        {},
        f"the ledger {path} {why}: waiting times of pending requests restart now; "
        "apply rewrites it",
    )


def record_pending(
    state_dir: Path, pending: Iterable[str], now: dt.datetime, known: Mapping[str, dt.datetime]
) -> None:
    """Keep the first time each still-pending request was seen; forget the others."""
    since = {key: known.get(key, now) for key in sorted(set(pending))}
    body = {
        "version": LEDGER_VERSION,
        "pending_since": {k: v.isoformat(timespec="seconds") for k, v in since.items()},
    }
    path = state_dir / FILE_NAME
    text = json.dumps(body, indent=2, sort_keys=True) + "\n"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text, private=True)
    except OSError as exc:
        raise Ds01Error(
            f"cannot write the ledger {path}: {exc.strerror or exc}",
            hint="free space or fix the state dir (apply keeps its journal and ledger there); "
            "nothing was changed yet",
            code="ledger",
        ) from None
