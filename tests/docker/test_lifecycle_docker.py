"""A lifecycle pass on the real engine with an injected clock: a workspace pinned `power:
running` past its max_runtime is warned (its terminal, /workspace/.ds01-alerts written as its
user, events), then stopped, and the next plan does not start it again."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import time
from pathlib import Path

from ds01ctl.drivers.docker import DockerDriver
from ds01ctl.events import EventLog
from ds01ctl.lifecycle.clock import Step
from ds01ctl.lifecycle.enforce import run_pass
from ds01ctl.live.docker import parse_docker_time
from ds01ctl.plan.actions import ActionKind
from ds01ctl.workflow import load_repo
from tests.docker.dockerlab import UIDS, Lab


def _started(lab: Lab, owner: str, name: str) -> tuple[str, dt.datetime]:
    (entry,) = lab.containers_of(owner, name)
    inspect = lab.client.inspect_container(entry["Id"])
    started = parse_docker_time(inspect["State"]["StartedAt"])
    assert started is not None and inspect["State"]["Running"]
    return entry["Id"], started


def test_lifecycle_pass_warns_as_the_user_then_stops_and_the_plan_keeps_it_stopped(
    lab: Lab, tmp_path: Path
) -> None:
    name = lab.workspace("alice", "lc", power="running", lifecycle={"max_runtime": "1h"})
    done = lab.apply()
    assert done.code == 0, done.output
    cid, started = _started(lab, "alice", name)
    workspace = Path(lab.host_dir("alice", "workspace"))
    alerts = workspace / ".ds01-alerts"
    # The owner plants a symlink where the alerts go, towards another file of theirs: a
    # writer that followed it would write there.
    target = Path(lab.host_dir("alice", "elsewhere"))
    target.write_text("untouched\n")
    os.chown(target, UIDS["alice"], UIDS["alice"])
    os.symlink(target, alerts)
    os.lchown(alerts, UIDS["alice"], UIDS["alice"])

    repo = load_repo(lab.root, started.date())
    driver = DockerDriver(lab.client)
    log_path = tmp_path / "events.jsonl"

    problems: list[str] = []

    def one_pass(minutes: float) -> list[Step]:
        with EventLog(log_path) as events:
            result = run_pass(
                driver,
                repo,
                lab.state_dir,
                now=started + dt.timedelta(minutes=minutes),
                events=events,
            )
        problems.extend(result.problems)
        return [d.step for d in result.decisions if d.key == f"workspace/alice/{name}"]

    assert one_pass(1) == []
    assert one_pass(48) == [Step.WARN]
    assert target.read_text() == "untouched\n"  # the symlink was not followed
    assert alerts.is_symlink()
    assert problems == [
        f"workspace/alice/{name}: /workspace/.ds01-alerts not written: "
        f"{workspace}/.ds01-alerts: Too many levels of symbolic links"
    ]
    alerts.unlink()
    assert one_pass(57) == [Step.FINAL_WARN]
    info = alerts.lstat()
    assert stat.S_ISREG(info.st_mode) and info.st_uid == UIDS["alice"]
    text = alerts.read_text()
    assert "final warning" in text and "stops in 3 min" in text, text
    # Its terminal (bash as PID 1 with a TTY, mlc style) got both warnings: the container's
    # log is what its terminal shows.
    deadline = time.monotonic() + 5
    while b"stops in 3 min" not in lab.client.logs(cid) and time.monotonic() < deadline:
        time.sleep(0.1)
    shown = lab.client.logs(cid).decode(errors="replace")
    assert "warning" in shown and "stops in 12 min" in shown and "stops in 3 min" in shown, shown

    assert one_pass(60) == [Step.STOP]
    assert not lab.client.inspect_container(cid)["State"]["Running"]
    log_info = log_path.stat()  # the writer's (root's here) and nobody else's to write
    assert log_info.st_uid == os.geteuid() and stat.S_IMODE(log_info.st_mode) & 0o022 == 0
    types = [json.loads(line)["event_type"] for line in log_path.read_text().splitlines()]
    assert types == [
        "maintenance.runtime_warning",
        "maintenance.runtime_final_warning",
        "maintenance.runtime_kill",
    ]
    plan = lab.plan().plan
    assert [a for a in plan.actions if a.target == f"workspace/alice/{name}"] == []
    assert any("stopped by the lifecycle" in note for note in plan.notes), plan.notes
    # Its owner starts it again (`mlc open`): the stop is spent, power: running holds again.
    lab.client.start(cid)
    lab.client.stop(cid, timeout=2)
    kinds = [a.kind for a in lab.plan().plan.actions if a.target == f"workspace/alice/{name}"]
    assert kinds == [ActionKind.START]


def test_lifecycle_dry_run_changes_nothing(lab: Lab, tmp_path: Path) -> None:
    name = lab.workspace("alice", "dry", lifecycle={"max_runtime": "1h"})
    assert lab.apply().code == 0
    (entry,) = lab.containers_of("alice", name)
    lab.client.start(entry["Id"])  # power: any is made stopped; its owner starts it
    cid, started = _started(lab, "alice", name)
    repo = load_repo(lab.root, started.date())
    result = run_pass(
        DockerDriver(lab.client),
        repo,
        lab.state_dir,
        now=started + dt.timedelta(hours=5),
        dry_run=True,
    )
    assert [d.step for d in result.decisions] == [Step.WARN]
    assert result.lines[0].startswith(f"workspace/alice/{name}: would warn: running for 5 h")
    assert lab.client.inspect_container(cid)["State"]["Running"]
    assert not (lab.state_dir / "lifecycle.json").exists()
    assert not Path(lab.host_dir("alice", "workspace", ".ds01-alerts")).exists()


def test_lifecycle_cli_once_dry_run(lab: Lab) -> None:
    name = lab.workspace("alice", "cli", lifecycle={"max_runtime": "1h"})
    assert lab.apply().code == 0
    (entry,) = lab.containers_of("alice", name)
    lab.client.start(entry["Id"])
    done = lab.cli(
        "lifecycle", "run", "-C", str(lab.root), "--once", "--dry-run",
        "--state-dir", str(lab.state_dir),
    )  # fmt: skip
    assert done.code == 0, done.output
    assert done.stdout == ""  # started a moment ago: nothing to say
    assert "Traceback" not in done.output
    assert not (lab.state_dir / "lifecycle.json").exists()
