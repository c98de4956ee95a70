"""Saved plans (`plan --out FILE`, `apply FILE`): the unmasked plan document in a versioned
envelope with a digest, written atomically and read back only if nothing about it is off.

The reader refuses a missing, corrupted, edited or newer file and one made for another state
dir, each with one line saying why; older versions are upgraded step by step (pipx's
metadata file). Whether the plan still matches the live state is apply's check, not this one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ds01ctl.errors import Ds01Error
from ds01ctl.fsutil import write_atomically
from ds01ctl.plan.actions import Plan
from ds01ctl.plan.render_json import FORMAT_VERSION, plan_document, plan_from_document

PLANFILE_VERSION = 1
_CODE = "plan_file"
_REPLAN = "make a new plan with `ds01ctl plan --out FILE`"

RawDoc = dict[str, Any]
# Upgrades by the version they read: each turns version n into n + 1. When the envelope or
# the plan document changes shape, add the step here instead of teaching the reader two
# shapes, and keep every older step. A version with no step is refused as "made by an older
# ds01ctl": format 1 has none, because its actions left the steps to apply (restart the old
# container? is it running, with which stop grace?), and a faithful upgrade would need the
# observation the plan was made from, which the file does not hold.
_ENVELOPE_MIGRATIONS: dict[int, Callable[[RawDoc], RawDoc]] = {}
_FORMAT_MIGRATIONS: dict[int, Callable[[RawDoc], RawDoc]] = {}


# On disk (planfile version 1), one JSON object: ds01ctl_planfile (int), ds01ctl_version,
# site, state_dir, config_commit (or null), plan (render_json's document, unmasked) and
# digest (`sha256:<hex>` over every other key, canonical JSON).


def save_plan(
    plan: Plan,
    path: Path,
    *,
    tool_version: str,
    site: str,
    state_dir: Path,
    config_commit: str | None,
) -> None:
    """Write the plan to `path` (mode 0600): a reader sees the old file or the new, never half."""
    # Unmasked: apply needs the real env values. They are manifest config, never secrets
    # (see render_json.SENSITIVE_FIELDS), which is also why 0600 is enough protection.
    body: RawDoc = {
        "ds01ctl_planfile": PLANFILE_VERSION,
        "ds01ctl_version": tool_version,
        "site": site,
        "state_dir": str(_canonical_dir(state_dir)),
        "config_commit": config_commit,
        "plan": plan_document(plan, mask_secrets=False, tool_version=tool_version),
    }
    envelope = {**body, "digest": _digest(body)}
    text = json.dumps(envelope, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    write_atomically(path, text, private=True)


def load_plan(path: Path, *, state_dir: Path) -> Plan:
    """The plan saved at `path`, or a `Ds01Error` (code `plan_file`) saying why it is unusable."""
    raw = _read_json(path)
    # Version first: a newer file may checksum differently, and "upgrade" is the useful answer.
    _check_version(raw, "ds01ctl_planfile", PLANFILE_VERSION, path)
    _check_digest(raw, path)
    raw = _upgrade(raw, "ds01ctl_planfile", PLANFILE_VERSION, _ENVELOPE_MIGRATIONS, path)
    _check_state_dir(raw, state_dir)
    doc = raw["plan"]
    if not isinstance(doc, dict):
        raise _not_a_plan(path, "it holds no plan document")
    doc = _upgrade(doc, "format_version", FORMAT_VERSION, _FORMAT_MIGRATIONS, path)
    try:
        return plan_from_document(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"its plan document is malformed ({type(exc).__name__}: {exc})"
        raise _not_a_plan(path, detail) from None


# --- writing --------------------------------------------------------------------------------


def _digest(body: Mapping[str, Any]) -> str:
    """A checksum against accidental edits and truncation; anyone can recompute it, so it
    proves nothing about who wrote the file (the state dir's permissions do that)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _canonical_dir(path: Path) -> Path:
    return path.expanduser().resolve()


# --- reading --------------------------------------------------------------------------------


def _read_json(path: Path) -> RawDoc:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _error(f"no plan file at {path}", "save one with `ds01ctl plan --out FILE`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(f"cannot read the plan file {path}: {_why(exc)}", _REPLAN) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        detail = (
            f"it is not valid JSON (line {exc.lineno}, column {exc.colno}): it may be cut short"
        )
        raise _not_a_plan(path, detail) from None
    if not isinstance(raw, dict) or "ds01ctl_planfile" not in raw:
        raise _not_a_plan(path, "it has no `ds01ctl_planfile` version")
    return raw


def _upgrade(
    raw: RawDoc,
    key: str,
    current: int,
    migrations: Mapping[int, Callable[[RawDoc], RawDoc]],
    path: Path,
) -> RawDoc:
    """`raw` brought up to version `current` of `key`, one step at a time; newer is refused."""
    version = _check_version(raw, key, current, path)
    while version < current:
        step = migrations.get(version)
        if step is None:
            raise _error(
                f"the plan file {path} was made by an older ds01ctl ({key} {version}; this one "
                f"reads {current}): make a new plan",
                _REPLAN,
            )
        raw = step(raw)
        version += 1
        raw[key] = version
    return raw


def _check_version(raw: RawDoc, key: str, current: int, path: Path) -> int:
    version = raw.get(key)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _not_a_plan(path, f"its {key} is {version!r}, not a version number")
    if version > current:
        raise _error(
            f"the plan file {path} was made by a newer ds01ctl ({key} {version}; "
            f"this one reads up to {current})",
            "upgrade ds01ctl, or make the plan again with this one",
        )
    return version


def _check_digest(raw: RawDoc, path: Path) -> None:
    body = {key: value for key, value in raw.items() if key != "digest"}
    if raw.get("digest") != _digest(body):
        raise _error(
            f"the plan file {path} was modified after it was saved",
            f"never edit a saved plan; {_REPLAN}",
        )


def _check_state_dir(raw: RawDoc, state_dir: Path) -> None:
    saved = raw.get("state_dir")
    if saved != str(_canonical_dir(state_dir)):
        raise _error(
            f"this plan was made for state dir {saved}; run with the same Site",
            f"or {_REPLAN} here",
        )


def _not_a_plan(path: Path, why: str) -> Ds01Error:
    return _error(f"{path} is not a usable ds01ctl plan file: {why}", _REPLAN)


def _error(message: str, hint: str) -> Ds01Error:
    return Ds01Error(message, hint=hint, code=_CODE)


def _why(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
