"""The reconcile loop on a real git repo (a bare remote and a clone the test pushes from) and
the real engine: a pushed change is applied within one interval; a commit whose Site does
not validate applies nothing, says why in an event, and leaves the previous commit in force;
a replace waits for `approve`; SIGTERM ends a running loop cleanly, journaled.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ds01ctl.workflow import SLOW_ACTION_ENV
from tests.docker.dockerlab import Lab

pytestmark = pytest.mark.docker


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Admin", "-c", "user.email=admin@lab.example", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


@dataclass
class GitOps:
    lab: Lab
    remote: Path
    events: Path

    def push(self, message: str) -> str:
        _git(self.lab.root, "add", "-A")
        _git(self.lab.root, "commit", "-q", "--allow-empty", "-m", message)
        _git(self.lab.root, "push", "-q", "origin", "HEAD:main")
        return _git(self.lab.root, "rev-parse", "HEAD")

    def args(self, *extra: str) -> list[str]:
        return [
            "reconcile",
            "--remote",
            str(self.remote),
            "--branch",
            "main",
            "--state-dir",
            str(self.lab.state_dir),
            "--events",
            str(self.events),
            "--no-preflight",  # this test is not the deployment (examples/deploy's test is)
            *extra,
        ]

    def once(self) -> None:
        done = self.lab.cli(*self.args("--once"))
        assert done.code == 0, done.output

    def start(self, interval: float, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.lab.cli_command(*self.args("--interval", str(interval))),
            cwd=self.lab.workdir,
            env=self.lab.cli_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def read_events(self) -> list[dict[str, Any]]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines()]

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.read_events() if e["event_type"] == event_type]

    def status(self, *args: str) -> dict[str, Any]:
        done = self.lab.cli("status", "--state-dir", str(self.lab.state_dir), "--json", *args)
        assert done.code == 0, done.output
        return dict(json.loads(done.stdout))

    def container_ids(self, owner: str, name: str) -> list[str]:
        return [c["Id"] for c in self.lab.containers_of(owner, name)]


@pytest.fixture
def gitops(lab: Lab) -> Iterator[GitOps]:
    # The loop checks the repo out elsewhere: the GPU fixture is named by its absolute path.
    site = lab.root / "site.yaml"
    fixture = lab.root.parent / "gpus.yaml"
    site.write_text(site.read_text().replace("fixture: ../gpus.yaml", f"fixture: {fixture}"))
    remote = lab.root.parent / "remote.git"
    _git(lab.root.parent, "init", "-q", "--bare", "-b", "main", str(remote))
    _git(lab.root, "init", "-q", "-b", "main")
    _git(lab.root, "remote", "add", "origin", str(remote))
    yield GitOps(lab, remote, lab.root.parent / "events.jsonl")


def _wait(predicate: Any, timeout: float, step: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def test_a_pushed_workspace_is_applied_and_the_commit_reported(gitops: GitOps) -> None:
    lab = gitops.lab
    name = lab.workspace("alice", "first")
    commit = gitops.push("alice: first workspace")
    gitops.once()
    (container,) = lab.containers_of("alice", name)  # made as `mlc create` makes it
    state = gitops.status()
    assert state["config"]["commit"] == commit
    assert [o["target"] for o in state["objects"]] == [f"workspace/alice/{name}"]
    applied = gitops.of_type("reconcile.applied")
    assert applied and applied[-1]["details"]["commit"] == commit
    assert applied[-1]["details"]["targets"] == [f"workspace/alice/{name}"]
    assert gitops.of_type("reconcile.commit")[-1]["details"]["commit"] == commit
    # The tick ran the lifecycle pass (a CPU-only workspace with no max_runtime: nothing to
    # watch, so no timers) and left the loop's numbers for the exporter.
    assert (lab.state_dir / "lifecycle.json").is_file() and state["lifecycle_timers"] == []
    loop = json.loads((lab.state_dir / "reconcile.json").read_text())
    assert loop["commit"] == commit and loop["last_success"] and loop["pending_requests"] == 0
    # A second run with nothing new changes nothing.
    gitops.once()
    assert gitops.container_ids("alice", name) == [container["Id"]]


def test_an_invalid_site_applies_nothing_and_the_previous_commit_stays(gitops: GitOps) -> None:
    lab = gitops.lab
    first = lab.workspace("alice", "kept")
    good = gitops.push("first")
    gitops.once()
    second = lab.workspace("alice", "later")
    site = lab.root / "site.yaml"
    site.write_text(site.read_text() + "  no_such_setting: 1\n")
    bad = gitops.push("a typo in the Site")
    gitops.once()
    assert lab.containers_of("alice", second) == []  # nothing of the bad commit
    assert len(lab.containers_of("alice", first)) == 1
    (rejected,) = gitops.of_type("reconcile.commit_rejected")
    assert rejected["details"]["commit"] == bad
    assert rejected["details"]["in_force"] == good
    assert "site.yaml:" in rejected["details"]["why"]
    assert "no_such_setting" in rejected["details"]["why"]
    state = gitops.status()
    assert state["config"]["commit"] == good
    assert state["config"]["rejected"]["commit"] == bad
    # The commit in force is still enforced: its workspace, removed by hand, comes back.
    lab.client.remove_container(lab.containers_of("alice", first)[0]["Id"], force=True)
    gitops.once()
    assert len(lab.containers_of("alice", first)) == 1
    assert lab.containers_of("alice", second) == []


def test_a_replace_waits_for_approval(gitops: GitOps) -> None:
    lab = gitops.lab
    name = lab.workspace("alice", "env")
    gitops.push("first")
    gitops.once()
    (before,) = gitops.container_ids("alice", name)
    lab.workspace("alice", "env", env={"MODE": "two"})  # env forces a replace
    gitops.push("a new env")
    gitops.once()
    assert gitops.container_ids("alice", name) == [before]  # held, not applied
    state = gitops.status()
    (held,) = state["held"]
    assert [a["target"] for a in held["actions"]] == [f"workspace/alice/{name}"]
    assert held["actions"][0]["action"] == "replace"
    (event,) = gitops.of_type("reconcile.held")
    assert event["details"]["plan"] == held["id"]
    # The same held plan keeps its id at the next pass.
    gitops.once()
    assert gitops.status()["held"][0]["id"] == held["id"]
    human = lab.cli("status", "--state-dir", str(lab.state_dir))
    assert f"ds01ctl approve {held['id']}" in human.stdout, human.output
    # A wrong id is refused in one line; the right one is applied by the next tick.
    wrong = lab.cli("approve", "0123456789ab", "--state-dir", str(lab.state_dir))
    assert wrong.code == 1 and "no plan 0123456789ab is held" in wrong.stderr
    ok = lab.cli("approve", held["id"], "--state-dir", str(lab.state_dir))
    assert ok.code == 0, ok.output
    gitops.once()
    (after,) = gitops.container_ids("alice", name)
    assert after != before
    assert gitops.of_type("reconcile.approved_applied")[-1]["details"]["plan"] == held["id"]
    assert gitops.status()["held"] == []


def test_the_loop_applies_within_one_interval_and_stops_on_sigterm(gitops: GitOps) -> None:
    lab = gitops.lab
    gitops.push("empty")
    interval = 3.0
    process = gitops.start(interval)
    try:
        assert _wait(lambda: gitops.of_type("reconcile.commit"), 60), "the loop never started"
        name = lab.workspace("alice", "live")
        commit = gitops.push("alice: a workspace")
        # The next tick (at most one interval later) takes the commit and applies it.
        assert _wait(
            lambda: any(
                e["details"]["commit"] == commit for e in gitops.of_type("reconcile.commit")
            ),
            interval + 5,
        ), "the pushed commit was not taken within one interval"
        assert _wait(lambda: lab.containers_of("alice", name), 60)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "SIGTERM: stopping" in err
    stopped = gitops.of_type("reconcile.stopped")
    assert stopped and stopped[-1]["details"]["signal"] is True


def test_sigterm_during_an_apply_abandons_the_steps_not_started(gitops: GitOps) -> None:
    lab = gitops.lab
    name = lab.workspace("alice", "slow", power="running")  # two steps: create, start
    gitops.push("a slow workspace")
    target = f"workspace/alice/{name}"
    process = gitops.start(30, **{SLOW_ACTION_ENV: f"{target}=4"})
    try:
        # The create step's intent is journaled before its pause: stop the loop then.
        assert _wait(
            lambda: any(r.get("event") == "intent" for r in lab.journal()),
            90,
        ), "the apply never started"
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, err = process.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert took < 20  # the step under way (4 s) finishes; the start is never begun
    results = [r for r in lab.journal() if r.get("result") == "failed"]
    assert any("abandoned" in str(r.get("error")) for r in results), lab.journal()
    (container,) = lab.containers_of("alice", name)
    assert container["State"] == "created"  # made, never started


def test_a_users_invalid_file_is_pending_in_their_status_and_the_rest_proceeds(
    gitops: GitOps,
) -> None:
    lab = gitops.lab
    good = lab.workspace("alice", "good")
    bad = lab.workspace("h.baker", "bad")
    path = lab.root / "users" / "h.baker" / f"{bad}.yaml"
    path.write_text(path.read_text().replace("cpus: 0.25", "cpus: lots"))
    gitops.push("one good, one bad")
    gitops.once()
    assert len(lab.containers_of("alice", good)) == 1
    assert lab.containers_of("h.baker", bad) == []
    assert gitops.of_type("reconcile.commit_rejected") == []  # only the Site or quota would
    # h.baker's own file says why, as h.baker's uid would read it.
    mine = lab.state_dir / "users" / "h.baker.json"
    assert mine.stat().st_uid == 61002 and (mine.stat().st_mode & 0o777) == 0o600
    doc = json.loads(mine.read_text())
    (pending,) = doc["pending"]
    assert pending["target"] == f"workspace/h.baker/{bad}"
    assert pending["reason"].startswith(f"invalid: users/h.baker/{bad}.yaml:")
    assert json.loads((lab.state_dir / "users" / "alice.json").read_text())["pending"] == []


def test_a_second_instance_waits_for_the_engine_lock(gitops: GitOps) -> None:
    from ds01ctl.apply.lock import engine_lock
    from ds01ctl.drivers.docker import DockerDriver

    lab = gitops.lab
    name = lab.workspace("alice", "locked")
    gitops.push("a workspace")
    lab.lock_dir.mkdir(mode=0o755, exist_ok=True)
    with engine_lock(lab.lock_dir, DockerDriver(lab.client).backend_id):
        process = subprocess.Popen(
            lab.cli_command(*gitops.args("--once")),
            cwd=lab.workdir,
            env=lab.cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert _wait(lambda: gitops.of_type("reconcile.lock_wait"), 60), "it did not wait"
            assert process.poll() is None
            assert lab.containers_of("alice", name) == []
        except BaseException:
            process.kill()
            raise
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "waiting for the engine lock" in err
    assert len(lab.containers_of("alice", name)) == 1
