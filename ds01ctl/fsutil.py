"""Writing files so that a reader never sees half of one: temp file, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
