"""Reading activity from the real engine's cgroup files (cgroup v1 here): a container burning
CPU is active, a sleeping one is idle, and a `docker exec` session is counted."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator

import docker
import pytest

from ds01ctl.lifecycle.policy import Limits, Observation, State, Timers, decide
from ds01ctl.live.activity import ActivityReader, detect_layout

IMAGE = "ds01ctl-local/base:latest"
GPU = ("GPU-00000000-0000-0000-0000-0000000000aa",)  # only a label for the policy here


@pytest.fixture
def run(client: docker.APIClient) -> Iterator[Callable[[str], tuple[str, int]]]:
    made: list[str] = []

    def start(command: str) -> tuple[str, int]:
        name = f"ds01ctl-activity-{uuid.uuid4().hex[:8]}"
        container = client.create_container(IMAGE, ["sh", "-c", command], name=name)
        made.append(container["Id"])
        client.start(container["Id"])
        pid = int(client.inspect_container(container["Id"])["State"]["Pid"])
        return container["Id"], pid

    yield start
    for cid in made:
        client.remove_container(cid, force=True)


def reader() -> ActivityReader:
    layout = detect_layout()
    assert layout is not None, "no cgroup hierarchy with CPU accounting found"
    return ActivityReader(layout)


def two_passes(cid: str, pid: int) -> State:
    """The policy's verdict from two reads a second apart."""
    read = reader()
    t0 = dt.datetime.now(dt.UTC)
    first = read.read(cid, pid)
    assert first.cpu_seconds is not None
    time.sleep(1.0)
    second = read.read(cid, pid)
    now = dt.datetime.now(dt.UTC)
    previous = Timers("workspace/t/x", t0, t0, None, first.cpu_seconds)
    obs = Observation(
        cid, "workspace/t/x", "t", gpu_ids=GPU, cpu_seconds=second.cpu_seconds,
        sessions=second.sessions, newest_session=second.newest_session,
    )  # fmt: skip
    return decide(obs, previous, Limits(1800, None, None), now).state


def test_activity_busy_container_is_active(run: Callable[[str], tuple[str, int]]) -> None:
    cid, pid = run("while :; do :; done")
    assert two_passes(cid, pid) is State.ACTIVE


def test_activity_sleeping_container_is_idle(run: Callable[[str], tuple[str, int]]) -> None:
    cid, pid = run("sleep 600")
    time.sleep(0.5)  # past its start-up
    assert two_passes(cid, pid) is State.IDLE_SUSPECTED


def test_activity_exec_session_is_counted(
    run: Callable[[str], tuple[str, int]], client: docker.APIClient
) -> None:
    cid, pid = run("sleep 600")
    assert reader().read(cid, pid).sessions == 0
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    exec_id = client.exec_create(cid, ["sh", "-c", "sleep 600 & sleep 600"])
    client.exec_start(exec_id, detach=True)
    deadline = time.monotonic() + 10
    while (found := reader().read(cid, pid)).sessions == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert found.sessions == 1  # the session's own children are part of it
    assert found.newest_session is not None
    assert found.newest_session >= before
    # An idle shell left open is not activity: the policy sees only its start as activity.
    assert two_passes(cid, pid) is State.IDLE_SUSPECTED
