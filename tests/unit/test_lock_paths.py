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
