"""Real `ds01ctl apply` processes: killed with SIGKILL mid-apply, and two at once on one engine.

The test hook `DS01CTL_TEST_SLOW_ACTION=<target>=<seconds>` (apply/executor.py) makes one
action sleep after its intent is journaled, so a test knows what is in flight when it kills.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from ds01ctl.apply.executor import SLOW_ACTION_ENV
from tests.docker.dockerlab import Lab

pytestmark = pytest.mark.docker

WAIT = 90.0  # seconds for anything a process should do soon (the CI machine has 2 cores)


def _start_apply(lab: Lab, *args: str, slow: str | None = None) -> subprocess.Popen[str]:
    """`ds01ctl apply` in the background, optionally with one slow action."""
    env = lab.cli_env(**({SLOW_ACTION_ENV: slow} if slow else {}))
    return subprocess.Popen(
        lab.cli_command(*lab.apply_args(*args)),
        cwd=lab.workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(what: str, ready: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT
    while not ready():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"apply exited ({process.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _last_apply(lab: Lab) -> list[dict[str, Any]]:
    """The records of the newest apply in the journal."""
    records = lab.journal()
    started = [r["apply"] for r in records if r["event"] == "apply_started"]
    return [r for r in records if started and r["apply"] == started[-1]]


def _targets(records: list[dict[str, Any]], *, settled: bool) -> set[str]:
    """Targets of the intents that have (settled) or lack (in flight) a result."""
    results = {r["action"] for r in records if r["event"] == "result"}
    return {
        r["target"]
        for r in records
        if r["event"] == "intent" and (r["action"] in results) == settled
    }


def _kill_9(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=WAIT)
    assert process.returncode == -signal.SIGKILL


def _write(lab: Lab, owner: str, name: str, text: str) -> None:
    """Someone's work outside the mounts: it lives only in the writable layer."""
    container = lab.container_name(owner, name)
    lab.docker("exec", container, "bash", "-c", f"echo {text} > ~/work.txt")


def _applied(lab: Lab, *args: str) -> str:
    done = lab.apply(*args)
    assert done.code == 0, done.output
    return done.stdout


def _one_container_each(lab: Lab, workspaces: list[tuple[str, str]]) -> None:
    for owner, name in workspaces:
        found = lab.containers_of(owner, name)
        assert len(found) == 1, (owner, name, [c["Names"] for c in found])
    assert len(lab.containers()) == len(workspaces)


def test_kill_9_in_the_middle_of_an_apply_leaves_evidence_and_converges(lab: Lab) -> None:
    old = lab.workspace("alice", "old", power="running")
    _applied(lab)
    _write(lab, "alice", old, "thesis-notes")
    lab.remove_workspace("alice", old)
    workspaces = [
        ("228755@uni.example", lab.workspace("228755@uni.example", "c1")),
        ("alice", lab.workspace("alice", "c2")),
        ("h.baker", lab.workspace("h.baker", "c3")),
    ]
    # Plan order: delete old (snapshot first), then the creates by target: the 2nd is alice's.
    slow = f"workspace/alice/{workspaces[1][1]}"
    others = {f"workspace/{o}/{n}" for o, n in (workspaces[0], workspaces[2])}
    process = _start_apply(lab, "--prune", slow=f"{slow}=300")
    _wait_for(
        "the slow create to be the only action in flight",
        lambda: (
            _targets(_last_apply(lab), settled=True) == {*others, f"workspace/alice/{old}"}
            and _targets(_last_apply(lab), settled=False) == {slow}
        ),
        process,
    )
    _kill_9(process)

    # The journal holds an intent with no result, and the apply never finished.
    killed = _last_apply(lab)
    assert [r["event"] for r in killed].count("apply_finished") == 0
    assert _targets(killed, settled=False) == {slow}
    [intent] = [r for r in killed if r["event"] == "intent" and r["target"] == slow]
    assert intent["kind"] == "create" and intent["spec_hash"]
    history = lab.history()
    assert history.code == 0, history.output
    assert f"in flight when it stopped: create {slow}" in history.stdout
    assert "(did not finish)" in history.stdout
    [snapshot] = lab.snapshot_images()  # the delete before the kill snapshotted `old`

    # The next plan picks up exactly what is missing; the next apply converges (and gets the
    # engine's lock at once: the kernel released it with the killed process).
    plan = lab.plan(prune=True).plan
    assert [(a.kind.value, a.target) for a in plan.actions] == [("create", slow)]
    _applied(lab, "--prune")
    _one_container_each(lab, workspaces)
    assert [s["Id"] for s in lab.snapshot_images()] == [snapshot["Id"]]  # kept, not redone
    lab.assert_converged(prune=True)


def test_kill_9_during_a_replace_loses_no_snapshot(lab: Lab) -> None:
    spec: dict[str, Any] = {"power": "running"}
    name = lab.workspace("alice", "rep", **spec)
    _applied(lab)
    _write(lab, "alice", name, "results")
    before = lab.client.inspect_container(lab.container_name("alice", name))
    lab.workspace("alice", "rep", **spec, mounts={"data": lab.host_dir("alice", "data")})
    target = f"workspace/alice/{name}"
    process = _start_apply(lab, slow=f"{target}=300")
    _wait_for(
        "the replace to be in flight",
        lambda: _targets(_last_apply(lab), settled=False) == {target},
        process,
    )
    _kill_9(process)

    [intent] = [r for r in _last_apply(lab) if r["event"] == "intent"]
    assert intent["kind"] == "replace" and intent["container"] == before["Id"]
    # The intent keeps the previous shape, so the replacement could be undone by hand.
    assert intent["previous"]["binds"] == before["HostConfig"]["Binds"]
    assert f"in flight when it stopped: replace {target}" in lab.history().stdout
    # Killed before it touched anything: the container and its changes are still there.
    now = lab.client.inspect_container(lab.container_name("alice", name))
    assert now["Id"] == before["Id"] and now["State"]["Running"]
    assert lab.snapshot_images() == []

    out = _applied(lab)
    [snapshot] = lab.snapshot_images()
    [reference] = snapshot["RepoTags"]
    assert f"snapshot {reference}" in out
    assert lab.docker("run", "--rm", reference, "cat", "/home/alice/work.txt").stdout == (
        "results\n"
    )
    _one_container_each(lab, [("alice", name)])
    lab.assert_converged()


def test_only_started_actions_are_in_flight(lab: Lab) -> None:
    workspaces = [
        ("228755@uni.example", lab.workspace("228755@uni.example", "q1")),
        ("alice", lab.workspace("alice", "q2")),
        ("h.baker", lab.workspace("h.baker", "q3")),
    ]
    first = f"workspace/{workspaces[0][0]}/{workspaces[0][1]}"
    process = _start_apply(lab, "--parallelism", "1", slow=f"{first}=300")
    _wait_for(
        "the first create's intent",
        lambda: first in _targets(_last_apply(lab), settled=False),
        process,
    )
    time.sleep(1.0)  # time enough for anything else to be (wrongly) journaled
    _kill_9(process)
    assert _targets(_last_apply(lab), settled=False) == {first}
    history = lab.history().stdout
    assert history.count("in flight when it stopped") == 1, history


def test_concurrent_applies_wait_for_the_engine_lock(lab: Lab) -> None:
    # All three processes share this lab's lock dir (DS01CTL_LOCK_DIR): one engine, one lock.
    name = lab.workspace("alice", "lock")
    target = f"workspace/alice/{name}"
    holder = _start_apply(lab, slow=f"{target}=10")
    _wait_for(
        "the first apply to hold the lock and act",
        lambda: target in _targets(_last_apply(lab), settled=False),
        holder,
    )
    started = time.monotonic()
    impatient = _start_apply(lab, "--lock-timeout", "1")
    patient = _start_apply(lab, "--lock-timeout", "120")

    out, err = impatient.communicate(timeout=WAIT)
    waited = time.monotonic() - started
    assert impatient.returncode == 1, out + err
    waiting, line = err.splitlines()  # it said once whose lock it waited for, then gave up
    assert waiting.startswith(f"Waiting for the lock held by pid {holder.pid} (")
    assert line.startswith("error: another apply holds the lock of this Docker engine")
    assert f"pid {holder.pid}," in line
    assert "`ds01ctl " in line and f" apply {lab.root} --auto-approve" in line
    assert waited >= 1.0
    assert "Traceback" not in out + err

    out, err = patient.communicate(timeout=WAIT + 120)
    assert patient.returncode == 0, out + err
    # Once, however long it waited; no live line when stderr is not a terminal.
    assert err.count("Waiting for the lock held by") == 1, err
    assert f"Waiting for the lock held by pid {holder.pid} (" in err and "\r" not in err
    holder_out, holder_err = holder.communicate(timeout=WAIT)
    assert holder.returncode == 0, holder_out + holder_err
    assert "1 done, 0 failed, 0 skipped" in holder_out
    # The second planned only after the first had finished: nothing was left to do.
    assert "No changes." in out
    _one_container_each(lab, [("alice", name)])
    lab.assert_converged()
