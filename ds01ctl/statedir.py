"""The Site's state dir (journal, ledger) as the commands need it, or one line saying why not.

Readers (plan, history) take a missing state dir for an empty one: nothing was recorded yet.
Apply, the one writer, makes it when it is missing and checks that it can write there before
it observes or changes anything, so a read-only or misplaced state dir stops it at the start,
not halfway through an apply.
"""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

from ds01ctl.errors import Ds01Error

_ELSEWHERE = "or point the Site's state_dir or --state-dir at another directory"


def existing_state_dir(path: Path) -> Path:
    """`path`, if it is a directory or nothing at all; an error if something else is there."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return path
    except NotADirectoryError:
        raise _not_a_directory(path, part=True) from None
    except OSError as exc:
        raise Ds01Error(
            f"cannot read the state dir {path}: {exc.strerror}",
            hint=f"run ds01ctl as a user who can read it, {_ELSEWHERE}",
            code="state_dir",
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise _not_a_directory(path)
    return path


def writable_state_dir(path: Path) -> Path:
    """`path` as a directory apply can write: made if missing, then tried with a scratch file."""
    existing_state_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except NotADirectoryError:
        raise _not_a_directory(path, part=True) from None
    except FileExistsError:  # made as something else since the check above
        raise _not_a_directory(path) from None
    except OSError as exc:
        raise Ds01Error(
            f"cannot create the state dir {path}: {exc.strerror}",
            hint=f"create it for the user who runs apply (root on a server), {_ELSEWHERE}",
            code="state_dir",
        ) from None
    try:
        # Unlinked at once (O_TMPFILE where the filesystem has it): the honest answer to
        # "can we write here", which permission bits alone do not give for root or a
        # read-only mount.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise Ds01Error(
            f"the state dir {path} is not writable: {exc.strerror}",
            hint="apply keeps its journal and ledger there: make it writable for the user who "
            f"runs apply, {_ELSEWHERE}",
            code="state_dir",
        ) from None
    return path


def _not_a_directory(path: Path, *, part: bool = False) -> Ds01Error:
    where = "cannot be a directory: a part of its path is a file" if part else "is not a directory"
    return Ds01Error(
        f"the state dir {path} {where}",
        hint=f"move what is there away, {_ELSEWHERE}",
        code="state_dir",
    )
