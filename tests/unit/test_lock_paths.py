"""The engine lock never follows a path another user controls (real files, real permissions).

The default lock directory lives in /run/lock, which every user may write: a directory or a
symlink planted there before root's first apply must not make root truncate another file.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ds01ctl.apply.lock import engine_lock, lock_path
from ds01ctl.errors import Ds01Error

ENGINE = "engine-id-for-the-lock-tests"
OTHER_UID = 12345

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


def _refused(lock_dir: Path) -> str:
    with pytest.raises(Ds01Error) as caught, engine_lock(lock_dir, ENGINE):
        pytest.fail("the lock was taken")
    text = str(caught.value)
    assert "\n" not in text and str(lock_dir) in text
    return text


def test_lock_is_taken_in_a_directory_it_makes_itself(tmp_path: Path) -> None:
    lock_dir = tmp_path / "run" / "ds01ctl"
    with engine_lock(lock_dir, ENGINE) as info:
        held = json.loads(lock_path(lock_dir, ENGINE).read_text())
        assert held["pid"] == os.getpid() == info.pid
    mode = lock_dir.stat()
    assert stat.S_IMODE(mode.st_mode) & 0o022 == 0
    assert mode.st_uid == os.geteuid()
    with engine_lock(lock_dir, ENGINE):  # and again, in the directory that now exists
        pass


def test_lock_file_planted_as_a_symlink_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    lock_dir = tmp_path / "lock"
    lock_dir.mkdir(mode=0o755)
    victim = tmp_path / "shadow"
    victim.write_text("root:secret:19000::::::\n")
    lock_path(lock_dir, ENGINE).symlink_to(victim)
    text = _refused(lock_dir)
    assert "is a symlink" in text
    assert victim.read_text() == "root:secret:19000::::::\n"


def test_lock_directory_planted_as_a_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir(mode=0o755)
    (tmp_path / "lock").symlink_to(elsewhere)
    assert "is a symlink" in _refused(tmp_path / "lock")
    assert list(elsewhere.iterdir()) == []


@needs_root
def test_lock_directory_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    lock_dir = tmp_path / "lock"
    lock_dir.mkdir(mode=0o755)
    os.chown(lock_dir, OTHER_UID, OTHER_UID)
    assert f"owned by uid {OTHER_UID}" in _refused(lock_dir)
    assert list(lock_dir.iterdir()) == []


def test_lock_directory_writable_by_others_is_refused(tmp_path: Path) -> None:
    lock_dir = tmp_path / "lock"
    lock_dir.mkdir()
    lock_dir.chmod(0o777)
    assert "writable by group or others (mode 0777)" in _refused(lock_dir)
    assert list(lock_dir.iterdir()) == []


@needs_root
def test_lock_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    lock_dir = tmp_path / "lock"
    lock_dir.mkdir(mode=0o755)
    planted = lock_path(lock_dir, ENGINE)
    planted.write_text("")
    os.chown(planted, OTHER_UID, OTHER_UID)
    assert f"owned by uid {OTHER_UID}" in _refused(lock_dir)


def test_lock_file_with_another_hard_link_is_refused(tmp_path: Path) -> None:
    lock_dir = tmp_path / "lock"
    lock_dir.mkdir(mode=0o755)
    victim = tmp_path / "precious"
    victim.write_text("keep me\n")
    os.link(victim, lock_path(lock_dir, ENGINE))
    assert "hard links" in _refused(lock_dir)
    assert victim.read_text() == "keep me\n"


def test_lock_wait_is_reported_through_the_callback_never_printed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from ds01ctl.apply.lock import LockInfo
    from ds01ctl.errors import LockHeld

    lock_dir = tmp_path / "locks"
    heard: list[tuple[LockInfo | None, float]] = []
    # flock belongs to the open file: a second open in this process waits like another apply.
    with (
        engine_lock(lock_dir, ENGINE) as mine,
        pytest.raises(LockHeld),
        engine_lock(lock_dir, ENGINE, timeout=0.3, on_wait=lambda h, s: heard.append((h, s))),
    ):
        pytest.fail("the lock was taken twice")
    assert heard, "no wait was reported"
    holder, _ = heard[0]
    assert holder is not None and (holder.pid, holder.since) == (mine.pid, mine.since)
    waited = [seconds for _, seconds in heard]
    assert waited == sorted(waited) and waited[-1] < 0.3
    assert capfd.readouterr() == ("", "")  # the core says nothing itself


def test_lock_wait_line_says_whose_lock_once_and_is_live_only_on_a_terminal() -> None:
    import io

    from ds01ctl.apply.lock import LockInfo
    from ds01ctl.cli import _LockWaitLine

    holder = LockInfo(ENGINE, 4242, "root@gpu1", "ds01ctl apply", "0", "2026-01-12T08:00:00+00:00")
    stream = io.StringIO()
    line = _LockWaitLine(stream)
    for seconds in (0.1, 0.5, 2.0):
        line(holder, seconds)
    line.finish()
    assert stream.getvalue() == (
        "Waiting for the lock held by pid 4242 (root@gpu1, `ds01ctl apply`), "
        "since 2026-01-12T08:00:00+00:00.\n"
    )

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    live = _LockWaitLine(tty)
    live(holder, 0.1)
    live(holder, 2.0)
    live.finish()
    text = tty.getvalue()
    assert text.count("Waiting for the lock held by") == 1
    assert text.endswith("\r  waited 2s for the engine lock\n")
