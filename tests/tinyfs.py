"""Real small or read-only filesystems for tests: a tmpfs mounted on a test's directory.

A full disk and a read-only mount are what root meets in the field and what permission bits
cannot fake for root; a tmpfs of a few pages gives both honestly. It needs mount(2): tests
that use it are skipped, saying so, where that is not allowed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

PAGE = 4096  # tmpfs counts its size in pages


@contextlib.contextmanager
def tmpfs(directory: Path, *, size: str = "16k", read_only: bool = False) -> Iterator[Path]:
    """`directory` (made if missing) with a tmpfs of `size` mounted on it, unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    directory.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True, check=False)


def fill(directory: Path, *, leave_pages: int = 0) -> Path:
    """Fill the filesystem of `directory` up to `leave_pages` free pages; the filler's path."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while out.write(b"f" * PAGE):
                pass
        except OSError:  # ENOSPC: full
            pass
    os.truncate(filler, max(filler.stat().st_size - leave_pages * PAGE, 0) // PAGE * PAGE)
    assert os.statvfs(directory).f_bavail == leave_pages
    return filler
