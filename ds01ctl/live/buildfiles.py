"""Files a build takes from the host: the Site's wheelhouse and local apt repository.

Each is a directory of the admin's; its regular files at the top level (wheels; `Packages`
and `.deb` files) are read whole, symbolic links and subdirectories skipped, so that the
generator stays pure and the content hash covers exactly what the build gets.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ds01ctl.errors import Ds01Error


def read_directory(path: str | Path) -> dict[str, bytes]:
    """File name → bytes of the regular files directly in `path`."""
    found: dict[str, bytes] = {}
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        raise Ds01Error(
            f"cannot read build directory {path}: {exc.strerror or exc}",
            hint="check the Site's images.wheelhouse / images.apt_repo",
        ) from None
    for entry in entries:
        if entry.name.startswith(".") or not stat.S_ISREG(
            entry.stat(follow_symlinks=False).st_mode
        ):
            continue
        with open(entry.path, "rb") as handle:
            found[entry.name] = handle.read()
    return found
