"""The reconcile loop's status file: the shape the loop writes and the exporter reads."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from ds01ctl.exporter import LoopStatus
from ds01ctl.loopstatus import decode, encode, read_loop_status, write_loop_status

STATUS = LoopStatus(
    commit="0123abcd",
    last_success=dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC),
    duration_s=0.42,
    pending_requests=1,
    drift_objects=2,
)


def test_loopstatus_shape_is_version_1() -> None:
    assert json.loads(encode(STATUS)) == {
        "version": 1,
        "commit": "0123abcd",
        "last_success": "2026-03-02T09:00:00+00:00",
        "duration_s": 0.42,
        "pending_requests": 1,
        "drift_objects": 2,
    }
    assert decode(encode(STATUS)) == STATUS


def test_loopstatus_bad_values_are_one_line() -> None:
    assert decode("{") == "is not JSON"
    assert decode('{"version": 2}') == "is not version 1 of the loop status"
    body = json.loads(encode(STATUS))
    assert decode(json.dumps({**body, "pending_requests": -1})) == (
        "has a pending_requests that is not a count"
    )
    assert decode(json.dumps({**body, "last_success": "noon"})) == (
        "has a last_success that is not an ISO time"
    )


def test_loopstatus_file_missing_is_no_loop_and_bad_is_said(tmp_path: Path) -> None:
    assert read_loop_status(tmp_path) == (LoopStatus(), None)
    write_loop_status(tmp_path, STATUS)
    assert read_loop_status(tmp_path) == (STATUS, None)
    (tmp_path / "reconcile.json").write_text("[]")
    status, problem = read_loop_status(tmp_path)
    assert status == LoopStatus()
    assert (
        problem == f"the loop status {tmp_path}/reconcile.json is not version 1 of the loop status"
    )
