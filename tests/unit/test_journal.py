"""The journal never stops the tool: whole lines, torn and malformed lines skipped and named.

Real files throughout; a full disk is a real tmpfs of a few pages.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ds01ctl.apply.journal import FILE_NAME, Journal, history, read_journal
from ds01ctl.errors import Ds01Error
from tests.tinyfs import PAGE, fill, tmpfs

Cli = Callable[..., Any]  # the `cli` fixture of tests/conftest.py


def journal_of_one_apply(state: Path, apply_id: str = "a1") -> Path:
    journal = Journal(state, apply_id)
    journal.record("apply_started", plan_digest="sha256:x", actions=1)
    journal.record("intent", action=1, kind="create", target="workspace/alice/w")
    journal.record("result", action=1, result="ok", seconds=0.1)
    journal.record("apply_finished", done=1, failed=0)
    journal.close()
    return state / FILE_NAME


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def test_journal_records_are_whole_lines(tmp_path: Path) -> None:
    path = journal_of_one_apply(tmp_path)
    data = path.read_bytes()
    assert data.endswith(b"\n")
    assert [json.loads(line)["event"] for line in data.splitlines()] == [
        "apply_started",
        "intent",
        "result",
        "apply_finished",
    ]
    assert read_journal(tmp_path).unreadable == []


def test_journal_torn_last_line_is_skipped_named_and_never_appended_onto(tmp_path: Path) -> None:
    path = journal_of_one_apply(tmp_path)
    with path.open("ab") as out:
        out.write(b'{"apply": "a2", "event": "intent", "v": 1, "ts": "2025-')  # the crash
    read = read_journal(tmp_path)
    assert [r["event"] for r in read.records][-1] == "apply_finished"
    assert read.unreadable == [5]

    journal_of_one_apply(tmp_path, "a3")  # the next apply starts a line of its own
    assert lines(path)[4].startswith(b'{"apply": "a2"') and lines(path)[5].startswith(b"{")
    read = read_journal(tmp_path)
    assert read.unreadable == [5]
    assert [a.apply_id for a in history(read)] == ["a1", "a3"]
    assert [a.finished is not None for a in history(read)] == [True, True]


def test_journal_torn_line_without_a_newline_gets_one_before_the_next_record(
    tmp_path: Path,
) -> None:
    (tmp_path / FILE_NAME).write_bytes(b'{"v": 1, "ts"')
    journal = Journal(tmp_path, "a1")
    journal.record("apply_started", actions=0)
    journal.close()
    assert lines(tmp_path / FILE_NAME)[0] == b'{"v": 1, "ts"'
    read = read_journal(tmp_path)
    assert (read.unreadable, [r["apply"] for r in read.records]) == ([1], ["a1"])


BAD_LINES = {
    "binary garbage": b"\x00\xff\xfe\x81 not text at all \xc3\x28",
    "not JSON": b"hello, journal",
    "a JSON list": b"[1, 2, 3]",
    "a JSON string": b'"apply_started"',
    "a JSON number": b"42",
    "null": b"null",
    "missing fields": b'{"v": 1, "event": "apply_started"}',
    "apply id a number": b'{"v": 1, "ts": "t", "apply": 7, "event": "apply_started"}',
    "version a string": b'{"v": "1", "ts": "t", "apply": "x", "event": "apply_started"}',
    "version a boolean": b'{"v": true, "ts": "t", "apply": "x", "event": "apply_started"}',
    "event a list": b'{"v": 1, "ts": "t", "apply": "x", "event": ["intent"]}',
    "intent without action": b'{"v": 1, "ts": "t", "apply": "a1", "event": "intent"}',
    "result action a string": (
        b'{"v": 1, "ts": "t", "apply": "a1", "event": "result", "action": "1", "result": "ok"}'
    ),
    "result without result": b'{"v": 1, "ts": "t", "apply": "a1", "event": "result", "action": 1}',
    "nested absurdly deep": b"[" * 100_000,
}


@pytest.mark.parametrize("bad", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_journal_malformed_line_in_the_middle_is_skipped_and_named(
    tmp_path: Path, bad: bytes
) -> None:
    path = journal_of_one_apply(tmp_path)
    good = lines(path)
    path.write_bytes(b"\n".join([*good[:2], bad, *good[2:]]))
    read = read_journal(tmp_path)
    assert read.unreadable == [3]
    [apply] = history(read)
    assert apply.finished is not None
    assert apply.actions[1]["result"] == "ok"


def test_journal_newer_record_is_refused_in_one_line(tmp_path: Path) -> None:
    line = {"v": 99, "ts": "t", "apply": "x", "event": "apply_started"}
    (tmp_path / FILE_NAME).write_text(json.dumps(line) + "\n")
    with pytest.raises(Ds01Error, match=r"journal.jsonl:1: written by a newer ds01ctl"):
        read_journal(tmp_path)


def test_journal_skipped_note_names_the_lines_once_and_caps_the_list(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"x\n" * 12)
    note = read_journal(tmp_path).skipped_note()
    assert note is not None
    assert f"{tmp_path / FILE_NAME}: 12 unreadable journal line(s) skipped" in note
    assert "line(s) 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more" in note


def test_cli_history_skips_bad_lines_and_says_so_once(tmp_path: Path, cli: Cli) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "site.yaml").write_text(SITE_WITH_STATE_DIR)
    path = journal_of_one_apply(repo / "state")
    good = lines(path)
    path.write_bytes(b"\n".join([good[0], b"\xff\xfe garbage", *good[1:]]) + b'{"v": 1, "ts')
    for json_out in ([], ["--json"]):
        result = cli("history", str(repo), *json_out, cwd=tmp_path)
        assert result.code == 0, result.output
        assert "Traceback" not in result.output
        assert result.stderr.splitlines() == [
            f"warning: {path}: 2 unreadable journal line(s) skipped (line(s) 2, 6); "
            "a torn last line is what a crash or a full disk leaves"
        ]
    assert "apply a1: 1 ok" in cli("history", str(repo), cwd=tmp_path).stdout
    [apply] = json.loads(cli("history", str(repo), "--json", cwd=tmp_path).stdout)
    assert apply["apply_id"] == "a1" and apply["finished"]


SITE_WITH_STATE_DIR = """\
apiVersion: ds01/v1
kind: Site
metadata: {name: lab}
spec:
  state_dir: state
  catalog: {architecture: CUDA_AMPERE}
"""


def test_journal_on_a_full_disk_is_one_error_and_leaves_no_glued_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with tmpfs(state, size=f"{4 * PAGE}"):
        path = journal_of_one_apply(state)
        filler = fill(state)
        journal = Journal(state, "a2")
        # The journal's page has room for part of this record only: a short write, then ENOSPC.
        with pytest.raises(Ds01Error) as caught:
            journal.record("intent", action=1, note="n" * PAGE)
        journal.close()
        assert caught.value.code == "journal"
        assert str(caught.value).startswith(
            f"cannot write the journal {path}: No space left on device ("
        )
        assert "\n" not in str(caught.value)
        assert not path.read_bytes().endswith(b"\n")  # torn by the full disk
        assert read_journal(state).unreadable == [5]

        filler.unlink()  # space again: the next apply's first record starts a new line
        journal_of_one_apply(state, "a3")
        read = read_journal(state)
        assert read.unreadable == [5]
        assert [a.apply_id for a in history(read)] == ["a1", "a3"]


def test_cli_history_says_who_applied_what(tmp_path: Path, cli: Cli) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "site.yaml").write_text(SITE_WITH_STATE_DIR)
    journal = Journal(repo / "state", "b2")
    journal.record(
        "apply_started",
        plan_digest="sha256:x",
        actions=2,
        user="root@gpu1",
        command="ds01ctl apply --target workspace/alice/w",
        targets=["workspace/alice/w", "workspace/bob/v"],
    )
    journal.close()
    journal_of_one_apply(repo / "state", "a1")  # an older record without them
    out = cli("history", cwd=repo).stdout  # the config repo found from the directory
    assert "apply b2 by root@gpu1: nothing  (did not finish)" in out
    assert "    command: ds01ctl apply --target workspace/alice/w" in out
    assert "    targets: workspace/alice/w, workspace/bob/v" in out
    assert "apply a1: 1 ok" in out
    b2, a1 = json.loads(cli("history", "--json", "-C", str(repo)).stdout)
    assert (b2["user"], b2["targets"]) == ("root@gpu1", ["workspace/alice/w", "workspace/bob/v"])
    assert (a1["user"], a1["command"], a1["targets"]) == (None, None, [])
