"""Lifecycle notices are written as the user, so nothing a user plants makes root write.

The writer forks a child that drops to the container's uid:gid before it opens anything. These
tests plant what a student could in their own `/workspace` (a FIFO, a hard link to a file of
root's, a directory swapped for a symlink) and in their own processes (descriptors to a file of
root's, to `/dev/null`, to a terminal), and check what was written where. They hand out
ownership, so they need root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ds01ctl.apply.notify import ALERTS, notify_as

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="handing out ownership needs root")

UID = GID = 61002
STAMP = "2026-01-01T00:00Z"


@pytest.fixture
def home() -> Iterator[Path]:
    top = Path(tempfile.mkdtemp(prefix="ds01ctl-notify-"))
    top.chmod(0o755)
    workspace = top / "workspace"
    workspace.mkdir(mode=0o755)
    os.chown(workspace, UID, GID)
    (top / "root-only").mkdir(mode=0o755)  # stands for /etc
    yield top
    shutil.rmtree(top)


def _notify(workspace: Path, pids: tuple[int, ...] = ()) -> tuple[int, bool, str | None]:
    done = notify_as(UID, GID, "stops soon", workspace_real=str(workspace), pids=pids, stamp=STAMP)
    return done.terminals, done.alerts_file, done.problem


def test_alerts_are_appended_to_the_users_own_file_as_the_user(home: Path) -> None:
    assert _notify(home / "workspace") == (0, True, None)
    alerts = home / "workspace" / ALERTS
    assert alerts.read_text() == f"{STAMP} stops soon\n"
    assert (alerts.stat().st_uid, alerts.stat().st_gid) == (UID, GID)


def test_alerts_fifo_neither_blocks_nor_is_written(home: Path) -> None:
    os.mkfifo(home / "workspace" / ALERTS)
    os.chown(home / "workspace" / ALERTS, UID, GID)
    started = time.monotonic()
    _, written, problem = _notify(home / "workspace")
    assert time.monotonic() - started < 5 and not written and problem, problem


def test_alerts_hard_linked_to_a_file_of_roots_leave_it_untouched(home: Path) -> None:
    victim = home / "root-only" / "passwd"
    victim.write_text("root:x:0:0::/root:/bin/sh\n")
    victim.chmod(0o644)
    os.link(victim, home / "workspace" / ALERTS)  # protected_hardlinks aside: root made it
    _, written, problem = _notify(home / "workspace")
    assert not written and "Permission denied" in (problem or ""), problem
    assert victim.read_text() == "root:x:0:0::/root:/bin/sh\n"


def test_workspace_swapped_for_a_symlink_to_roots_directory_is_not_followed(home: Path) -> None:
    os.chmod(home / "root-only", 0o777)  # even where alice could write: the link is not followed
    shutil.rmtree(home / "workspace")
    os.symlink(home / "root-only", home / "workspace")
    _, written, problem = _notify(home / "workspace")
    assert not written and problem is not None
    assert "symbolic links" in problem or "Not a directory" in problem, problem
    assert not (home / "root-only" / ALERTS).exists()


def test_terminals_only_the_users_own_pseudo_terminals(home: Path) -> None:
    victim = home / "root-only" / "log"
    victim.write_text("root's\n")
    mine = home / "workspace" / "out"
    mine.write_text("")
    os.chown(mine, UID, GID)
    master, slave = os.openpty()
    os.fchown(slave, UID, GID)
    rootmaster, rootslave = os.openpty()  # a terminal of root's, held by a process of root's

    with open(victim, "rb") as roots, open(mine, "wb") as own, open(os.devnull, "wb") as null:
        # alice's process holds root's file (inherited), /dev/null and her own file;
        # another holds her terminal; root's holds root's terminal.
        plain = subprocess.Popen(
            ["sleep", "30"],
            stdin=roots,
            stdout=null,
            stderr=own,
            user=UID,
            group=GID,
            extra_groups=[],
        )
        tty = subprocess.Popen(
            ["sleep", "30"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            user=UID,
            group=GID,
            extra_groups=[],
        )
        other = subprocess.Popen(["sleep", "30"], stdin=rootslave, stdout=rootslave)
    try:
        terminals, _, _ = _notify(home / "workspace", (plain.pid, tty.pid, other.pid))
        assert terminals == 1
        assert b"stops soon" in os.read(master, 4096)
        os.set_blocking(rootmaster, False)
        with pytest.raises(BlockingIOError):
            os.read(rootmaster, 4096)  # root's terminal got nothing
        assert victim.read_text() == "root's\n" and mine.read_text() == ""
    finally:
        for proc in (plain, tty, other):
            proc.kill()
            proc.wait()
        for fd in (master, slave, rootmaster, rootslave):
            os.close(fd)
