"""A ledger of the wrong shape never stops plan or apply: one warning, and the safe default."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from ds01ctl.errors import Ds01Error
from ds01ctl.ledger import FILE_NAME, load_pending_since, read_ledger, record_pending

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)

BAD_LEDGERS = {
    "binary garbage": (b"\x00\xff\xfe\x81garbage", "is not JSON"),
    "torn": (b'{"version": 1, "pending_since": {"workspace/al', "is not JSON"),
    "empty": (b"", "is not JSON"),
    "nested absurdly deep": (b"[" * 100_000, "is not JSON"),
    "a list": (b"[1, 2]", "is a list, not a JSON object"),
    "a string": (b'"ledger"', "is a string, not a JSON object"),
    "a number": (b"3", "is a number, not a JSON object"),
    "null": (b"null", "is null, not a JSON object"),
    "version a string": (
        b'{"version": "1", "pending_since": {}}',
        "has a version that is a string, not a number",
    ),
    "version a boolean": (
        b'{"version": true, "pending_since": {}}',
        "has a version that is a boolean, not a number",
    ),
    "version an object": (
        b'{"version": {"major": 1}, "pending_since": {}}',
        "has a version that is an object, not a number",
    ),
    "pending_since a list": (
        b'{"version": 1, "pending_since": ["workspace/alice/w"]}',
        "has a pending_since that is a list, not an object",
    ),
    "pending_since a string": (
        b'{"version": 1, "pending_since": "2025-01-01"}',
        "has a pending_since that is a string, not an object",
    ),
}


@pytest.mark.parametrize("raw, why", BAD_LEDGERS.values(), ids=BAD_LEDGERS.keys())
def test_ledger_of_the_wrong_shape_is_one_warning_and_no_waiting_times(
    tmp_path: Path, raw: bytes, why: str
) -> None:
    (tmp_path / FILE_NAME).write_bytes(raw)
    read = read_ledger(tmp_path)
    assert read.pending_since == {}
    assert read.problem == (
        f"the ledger {tmp_path / FILE_NAME} {why}: waiting times of pending requests restart "
        "now; apply rewrites it"
    )


def test_ledger_entries_of_the_wrong_type_are_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    body = {
        "version": 1,
        "pending_since": {
            "workspace/alice/a": "2025-02-01T10:00:00+00:00",
            "workspace/bob/b": 1738400000,
            "workspace/carol/c": None,
            "workspace/dave/d": "last tuesday",
            "workspace/erin/e": ["2025-02-01"],
            "workspace/frank/f": "2025-02-02T10:00:00",  # naive: taken as UTC
        },
    }
    (tmp_path / FILE_NAME).write_text(json.dumps(body))
    read = read_ledger(tmp_path)
    assert read.pending_since == {
        "workspace/alice/a": dt.datetime(2025, 2, 1, 10, tzinfo=dt.UTC),
        "workspace/frank/f": dt.datetime(2025, 2, 2, 10, tzinfo=dt.UTC),
    }
    assert read.problem is not None
    assert read.problem.startswith(
        f"the ledger {tmp_path / FILE_NAME} has 4 entry(ies) that are not times "
        "(workspace/bob/b, workspace/carol/c, workspace/dave/d, …)"
    )


def test_ledger_a_directory_in_its_place_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).mkdir()
    read = read_ledger(tmp_path)
    assert read.pending_since == {}
    assert read.problem is not None and "cannot be read (Is a directory)" in read.problem


def test_ledger_missing_or_good_has_no_warning(tmp_path: Path) -> None:
    assert read_ledger(tmp_path).problem is None
    record_pending(tmp_path, ["workspace/alice/w"], NOW, {})
    read = read_ledger(tmp_path)
    assert (read.pending_since, read.problem) == ({"workspace/alice/w": NOW}, None)


def test_ledger_without_pending_since_is_empty_and_fine(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_text('{"version": 1, "pending_since": null}')
    assert read_ledger(tmp_path).problem is None
    assert load_pending_since(tmp_path) == {}


def test_ledger_newer_version_is_refused_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_text('{"version": 2, "pending_since": {}}')
    with pytest.raises(Ds01Error, match="written by a newer ds01ctl"):
        read_ledger(tmp_path)


def test_ledger_a_bad_one_is_rewritten_whole_by_the_next_record(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"[1, 2]")
    record_pending(tmp_path, ["workspace/alice/w"], NOW, load_pending_since(tmp_path))
    assert read_ledger(tmp_path).problem is None
    assert load_pending_since(tmp_path) == {"workspace/alice/w": NOW}


def test_ledger_that_cannot_be_written_is_one_error(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).mkdir()  # the rename onto it fails
    with pytest.raises(Ds01Error) as caught:
        record_pending(tmp_path, [], NOW, {})
    assert caught.value.code == "ledger"
    assert str(caught.value).startswith(f"cannot write the ledger {tmp_path / FILE_NAME}: ")
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]  # no temp file left behind
