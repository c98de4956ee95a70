"""The state dir against a real engine: a full disk stops apply in one line before it acts, a
bad ledger is one plan warning that the next apply heals, and every working dir plans with
the same state dir."""

from __future__ import annotations

import getpass
import json
import socket
import subprocess
from pathlib import Path

import pytest

from ds01ctl.apply.journal import FILE_NAME, read_journal
from ds01ctl.ledger import FILE_NAME as LEDGER
from ds01ctl.ledger import read_ledger
from tests.docker.dockerlab import Lab
from tests.tinyfs import PAGE, fill, tmpfs

pytestmark = pytest.mark.docker


def test_apply_on_a_full_disk_stops_in_one_line_before_it_acts(lab: Lab, tmp_path: Path) -> None:
    name = lab.workspace("alice", "full")
    state = tmp_path / "tiny-state"
    with tmpfs(state, size=f"{4 * PAGE}"):
        journal = state / FILE_NAME
        # An earlier record filling the journal's page to 16 bytes short of its end, and one
        # page left: the ledger's. The next journal record finds no room.
        record = {"v": 1, "ts": "t", "apply": "old", "event": "apply_started", "note": ""}
        record["note"] = "x" * (PAGE - 16 - len(json.dumps(record)) - 1)
        journal.write_text(json.dumps(record) + "\n")
        filler = fill(state, leave_pages=1)

        done = lab.cli("apply", str(lab.root), "--auto-approve", "--state-dir", str(state))
        assert done.code == 1, done.output
        assert done.stderr.splitlines() == [
            f"error: cannot write the journal {journal}: No space left on device (free space "
            "or fix the state dir; actions already started ran to their end and nothing more "
            "was started: `ds01ctl plan` shows what is left)"
        ]
        assert lab.containers() == []  # the intent could not be written: nothing was done
        assert read_journal(state).unreadable == [2]  # apply_started, torn by the full disk

        filler.unlink()
        done = lab.cli("apply", str(lab.root), "--auto-approve", "--state-dir", str(state))
        assert done.code == 0, done.output
        [container] = lab.containers()
        assert container["Names"] == [f"/{lab.container_name('alice', name)}"]
        read = read_journal(state)
        assert read.unreadable == [2]  # the new apply started a line of its own
        assert [r["event"] for r in read.records if r["apply"] != "old"] == [
            "apply_started",
            "intent",
            "result",
            "apply_finished",
        ]
        history = lab.cli("history", str(lab.root), "--state-dir", str(state))
        assert history.code == 0, history.output
        assert history.stderr.splitlines() == [
            f"warning: {journal}: 1 unreadable journal line(s) skipped (line(s) 2); a torn "
            "last line is what a crash or a full disk leaves"
        ]
        assert "apply old: nothing  (did not finish)" in history.stdout
        assert ": 1 ok" in history.stdout
        # Who applied, with what command, and what it acted on (recorded in apply_started).
        user = f"{getpass.getuser()}@{socket.gethostname()}"
        assert f" by {user}: 1 ok" in history.stdout
        assert f"    command: ds01ctl --debug apply {lab.root} --auto-approve" in history.stdout
        assert f"    targets: workspace/alice/{name}" in history.stdout


def test_bad_ledger_is_one_plan_warning_and_the_next_apply_rewrites_it(lab: Lab) -> None:
    lab.state_dir.mkdir(parents=True)
    ledger = lab.state_dir / LEDGER
    ledger.write_text('{"version": 1, "pending_since": ["workspace/alice/x"]}\n')
    warning = (
        f"the ledger {ledger} has a pending_since that is a list, not an object: waiting "
        "times of pending requests restart now; apply rewrites it"
    )
    assert lab.plan().plan.warnings.count(warning) == 1
    shown = lab.plan_cli()
    assert shown.code == 0, shown.output
    assert shown.stdout.count(f"Warning: {warning}") == 1
    as_json = json.loads(lab.plan_cli("--json").stdout)
    assert as_json["warnings"].count(warning) == 1

    applied = lab.apply()
    assert applied.code == 0, applied.output
    assert "No changes." in applied.stdout
    assert read_ledger(lab.state_dir).problem is None
    assert lab.plan().plan.warnings.count(warning) == 0


def test_plan_from_any_working_dir_uses_the_config_repos_state_dir(
    lab: Lab, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = set()
    for cwd, path in [
        (lab.workdir, str(lab.root)),
        (lab.root, "."),
        (elsewhere, "../config"),
        (Path("/"), str(lab.root)),
    ]:
        done = subprocess.run(
            lab.cli_command("plan", "--json", path),
            cwd=cwd,
            env=lab.cli_env(),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        found.add(json.loads(done.stdout)["meta"]["state_dir"])
    assert found == {str(lab.state_dir)}
