"""The ledger: the few facts Docker labels cannot hold, in `ledger.json` in the state dir.

Today that is since when each request has been pending (fairness: who waited longest is
placed first). Every fact is rebuildable or has a safe default: a lost ledger only resets
waiting times. The file carries a version, is written atomically and only by apply.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from ds01ctl.errors import Ds01Error
from ds01ctl.fsutil import write_atomically

LEDGER_VERSION = 1
FILE_NAME = "ledger.json"


def load_pending_since(state_dir: Path) -> dict[str, dt.datetime]:
    path = state_dir / FILE_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # unreadable or torn: waiting times restart, nothing else is lost
    if not isinstance(raw, dict) or raw.get("version", 0) > LEDGER_VERSION:
        raise Ds01Error(
            f"{path} was written by a newer ds01ctl", hint="upgrade ds01ctl", code="ledger"
        )
    found = {}
    for key, value in (raw.get("pending_since") or {}).items():
        try:
            since = dt.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            continue
        found[str(key)] = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
    return found


def record_pending(
    state_dir: Path, pending: Iterable[str], now: dt.datetime, known: Mapping[str, dt.datetime]
) -> None:
    """Keep the first time each still-pending request was seen; forget the others."""
    since = {key: known.get(key, now) for key in sorted(set(pending))}
    body = {
        "version": LEDGER_VERSION,
        "pending_since": {k: v.isoformat(timespec="seconds") for k, v in since.items()},
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(body, indent=2, sort_keys=True) + "\n"
    write_atomically(state_dir / FILE_NAME, text, private=True)
