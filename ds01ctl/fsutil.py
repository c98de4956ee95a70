"""Writing files so that a reader never sees half of one (temp file, fsync, rename), and
reading back the versioned JSON state files written so."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ds01ctl.errors import Ds01Error


def write_atomically(path: Path, text: str, *, private: bool = False) -> None:
    """Replace `path` with `text` in one step. `private` keeps it 0600 (plans, ledgers);
    otherwise it gets the usual mode under the umask (files meant for a git repo)."""
    # The temp file lives in the target's directory, so os.replace is a rename within one
    # filesystem: atomic. mkstemp makes it 0600.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
            if not private:
                umask = os.umask(0)
                os.umask(umask)
                # On the descriptor: the name could be swapped in a directory others can write.
                os.fchmod(out.fileno(), 0o666 & ~umask)
        os.replace(tmp, path)  # replaces a symlink at `path` itself, never its target
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_state_json(
    path: Path, version: int, *, what: str, code: str
) -> dict[str, Any] | str | None:
    """The JSON object in the state file `path` (None when there is none), or one line saying
    why it cannot be used (`is not JSON`, …) for the caller's warning: such files hold facts
    with safe defaults, so a bad one is reported, never fatal. A version above `version` is an
    error: the caller would overwrite what a newer ds01ctl wrote (`what` names the file)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    except (ValueError, RecursionError):  # not UTF-8, not JSON (torn), or absurdly nested
        return "is not JSON"
    if not isinstance(raw, dict):
        return f"is {json_kind(raw)}, not a JSON object"
    found = raw.get("version", 0)
    if not isinstance(found, int) or isinstance(found, bool):
        return f"has a version that is {json_kind(found)}, not a number"
    if found > version:
        # Refused, not ignored: the next write would replace what a newer ds01ctl wrote.
        raise Ds01Error(
            f"{what} {path} was written by a newer ds01ctl", hint="upgrade ds01ctl", code=code
        )
    return raw


def json_kind(value: Any) -> str:
    """How a JSON value reads in a sentence: `a list`, `null`, …"""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return "null" if value is None else names.get(type(value), "a number")
