"""The event log: DS01's events.jsonl v1 schema, whole lines, and a file only we can write."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from ds01ctl.errors import Ds01Error
from ds01ctl.events import (
    MAX_LINE,
    EventLog,
    event,
    lifecycle_event,
    parse_since,
    read_events,
)
from ds01ctl.lifecycle.clock import Step
from ds01ctl.lifecycle.policy import Cause, Decision
from tests.conftest import CliResult

NOW = dt.datetime(2026, 3, 2, 9, 24, tzinfo=dt.UTC)
WARN = Decision(
    "workspace/alice/train", "c" * 64, Step.WARN, Cause.IDLE,
    "idle for 24 min (timeout 30 min); stops in 6 min", NOW + dt.timedelta(minutes=6),
)  # fmt: skip


def test_events_lifecycle_warning_in_ds01_schema_v1() -> None:
    assert lifecycle_event(WARN, "alice", NOW) == {
        "timestamp": "2026-03-02T09:24:00Z",
        "event_type": "maintenance.idle_warning",
        "user": "alice",
        "source": "ds01ctl",
        "details": {
            "container": "cccccccccccc",
            "object": "workspace/alice/train",
            "reason": "idle for 24 min (timeout 30 min); stops in 6 min",
            "stop_at": "2026-03-02T09:30:00Z",
            "seconds_left": 360,
        },
        "schema_version": "1",
    }


def test_events_stop_is_ds01s_idle_kill() -> None:
    stop = Decision("workspace/a/b", "d" * 64, Step.STOP, Cause.IDLE, "stopped: idle", NOW)
    assert lifecycle_event(stop, "a", NOW)["event_type"] == "maintenance.idle_kill"


def test_events_appended_as_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "log" / "events.jsonl"
    with EventLog(path) as log:
        log.append(lifecycle_event(WARN, "alice", NOW))
        log.append(event("x.y", None, {"blob": "z" * 10_000}, NOW))  # too big: cut
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    records = [json.loads(line) for line in lines[:-1]]
    assert [r["event_type"] for r in records] == ["maintenance.idle_warning", "x.y"]
    assert records[1]["details"]["truncated"] is True
    assert all(len(line) + 1 <= MAX_LINE for line in lines[:-1])
    assert stat.S_IMODE(path.stat().st_mode) & 0o022 == 0


def test_events_group_writable_file_loses_its_write_bits(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("")
    os.chmod(path, 0o664)  # DS01's mode: any group member could forge events
    EventLog(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_events_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "shadow"
    target.write_text("")
    (tmp_path / "events.jsonl").symlink_to(target)
    with pytest.raises(Ds01Error, match="is a symbolic link"):
        EventLog(tmp_path / "events.jsonl")
    assert target.read_text() == ""


def test_events_refuses_a_file_of_another_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root (to give the file away); CI runs as root")
    path = tmp_path / "events.jsonl"
    path.write_text("")
    os.chown(path, 61001, 61001)
    with pytest.raises(Ds01Error, match="belongs to uid 61001"):
        EventLog(path)


def _log(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.append(lifecycle_event(WARN, "alice", NOW - dt.timedelta(hours=3)))
        log.append(event("gpu.allocated", "bob", {"gpu": "0"}, NOW - dt.timedelta(minutes=10)))
        log.append(lifecycle_event(WARN, "alice", NOW - dt.timedelta(minutes=5)))
    with path.open("a") as torn:  # a line DS01's writer left half-written
        torn.write('{"timestamp": "2026-03-02T09:2')
    return path


def test_events_read_filters_by_user_since_and_type(tmp_path: Path) -> None:
    path = _log(tmp_path)
    everything = read_events(path)
    assert [r["user"] for r in everything.records] == ["alice", "bob", "alice"]
    assert everything.skipped == 1
    since = parse_since("1h", NOW)
    assert since == NOW - dt.timedelta(hours=1)
    recent = read_events(path, user="alice", since=since)
    assert [r["timestamp"] for r in recent.records] == ["2026-03-02T09:19:00Z"]
    assert [r["user"] for r in read_events(path, event_type="maintenance").records] == [
        "alice",
        "alice",
    ]
    assert read_events(path, event_type="gpu.allocated").records[0]["user"] == "bob"
    assert parse_since("2026-03-02T09:00", NOW) == dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with pytest.raises(Ds01Error, match="neither an age nor a time"):
        parse_since("yesterday", NOW)


def test_events_cli_json_is_schema_v1_and_human_lines_say_what(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    path = _log(tmp_path)
    done = cli("events", "--events-log", str(path), "--user", "alice", "--json")
    assert done.code == 0, done.output
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == 2
    assert all(r["schema_version"] == "1" and r["source"] == "ds01ctl" for r in records)
    assert "1 line(s)" in done.stderr and "not events" in done.stderr
    human = cli("events", "--events-log", str(path), "--type", "gpu")
    assert human.stdout.splitlines() == ['2026-03-02T09:14:00Z  gpu.allocated  bob  {"gpu": "0"}']
    bad = cli("events", "--events-log", str(path), "--since", "yesterday")
    assert bad.code == 1 and "neither an age nor a time" in bad.output
    assert "Traceback" not in bad.output
