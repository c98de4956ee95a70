"""The lifecycle timers file: round trip, atomic 0600, and defensive reading."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest

from ds01ctl.errors import Ds01Error
from ds01ctl.lifecycle.clock import Clock
from ds01ctl.lifecycle.policy import Timers
from ds01ctl.lifecycle.timers import FILE_NAME, read_timers, write_timers

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
WARNED = Clock(warned_at=T0, deadline=T0 + dt.timedelta(minutes=6))
TIMERS = {
    "a" * 64: Timers("workspace/alice/x", T0, T0, T0, 12.5, idle=WARNED),
    "b" * 64: Timers("workspace/bob/y", T0, T0, None, None, release_noted_at=T0),
}


def test_lifecycle_timers_round_trip(tmp_path: Path) -> None:
    write_timers(tmp_path, TIMERS)
    assert read_timers(tmp_path).timers == TIMERS
    assert read_timers(tmp_path).problem is None
    assert stat.S_IMODE((tmp_path / FILE_NAME).stat().st_mode) == 0o600


def test_lifecycle_timers_missing_is_empty(tmp_path: Path) -> None:
    assert read_timers(tmp_path / "nowhere").timers == {}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"version": 1, "containers": {', "is not JSON"),  # torn
        (b"\xff\xfe", "is not JSON"),
        (b"[1, 2]", "is a list, not a JSON object"),
        (b'{"version": "1", "containers": {}}', "has a version that is a string, not a number"),
        (b'{"version": 1}', "has no containers object"),
    ],
)
def test_lifecycle_timers_unreadable_restart_the_clocks(
    tmp_path: Path, content: bytes, why: str
) -> None:
    (tmp_path / FILE_NAME).write_bytes(content)
    read = read_timers(tmp_path)
    assert read.timers == {}
    assert read.problem is not None
    assert why in read.problem
    assert "idle clocks restart now" in read.problem


def test_lifecycle_timers_bad_entries_are_dropped_one_by_one(tmp_path: Path) -> None:
    write_timers(tmp_path, TIMERS)
    body = json.loads((tmp_path / FILE_NAME).read_text())
    body["containers"]["c" * 64] = {"key": "workspace/x/y", "observed_at": "yesterday"}
    body["containers"]["d" * 64] = {"key": "", "observed_at": T0.isoformat()}
    body["containers"]["e" * 64] = {
        **body["containers"]["a" * 64],
        "cpu_seconds": True,
    }
    (tmp_path / FILE_NAME).write_text(json.dumps(body))
    read = read_timers(tmp_path)
    assert read.timers == TIMERS
    assert read.problem is not None
    assert "3 unreadable entry(ies) (cccccccccccc, dddddddddddd, eeeeeeeeeeee)" in read.problem


def test_lifecycle_timers_newer_version_refused(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_text('{"version": 2, "containers": {}}')
    with pytest.raises(Ds01Error, match="newer ds01ctl") as caught:
        read_timers(tmp_path)
    assert caught.value.code == "lifecycle_timers"


def test_lifecycle_timers_write_replaces_a_symlink_not_its_target(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep me")
    (tmp_path / FILE_NAME).symlink_to(target)
    write_timers(tmp_path, TIMERS)
    assert target.read_text() == "keep me"
    assert not (tmp_path / FILE_NAME).is_symlink()
