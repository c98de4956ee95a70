"""A workspace the lifecycle stopped is not started again by the plan, even if its manifest
pins `power: running`, until its owner starts it (pure: in_force and diff)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ds01ctl.catalog.frameworks import FrameworkCatalog
from ds01ctl.lifecycle.stops import LifecycleStop, in_force, read_stops, write_stops
from ds01ctl.live.gpus import load_inventory_file
from ds01ctl.model.observed import Observed, ObservedContainer
from ds01ctl.plan.actions import ActionKind, Plan
from ds01ctl.plan.diff import diff
from ds01ctl.resolve.desired import World, resolve
from tests.configrepo import NOW
from tests.unit.test_diff import ENGINE, _as_docker_reports, _spec
from tests.unit.test_resolve import _repo, _workspace

STOPPED_AT = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def _stopped(live: ObservedContainer, started: dt.datetime) -> ObservedContainer:
    assert live.config is not None
    config = dataclasses.replace(live.config, started=started, finished=STOPPED_AT)
    return dataclasses.replace(live, state="exited", config=config)


RAN_FROM = STOPPED_AT - dt.timedelta(hours=2)


def _record(key: str) -> dict[str, LifecycleStop]:
    stop = LifecycleStop(key, "c", "idle", STOPPED_AT, "stopped: idle for 30 min", RAN_FROM)
    return {key: stop}


def _pinned_running(tmp_path: Path) -> tuple[Any, ObservedContainer]:
    repo = _repo(tmp_path, _workspace("alice", "w", power="running"))
    return repo, _as_docker_reports(_spec(tmp_path, repo))


def _plan(tmp_path: Path, repo: Any, live: ObservedContainer, held: dict[str, str]) -> Plan:
    docker = Observed(ENGINE, (live,), MappingProxyType({}))
    inventory = load_inventory_file(tmp_path / "gpus.yaml")
    desired = resolve(repo, World(docker, inventory, {}, NOW), FrameworkCatalog.load())
    return diff(desired, docker, inventory, prune=False, lifecycle_stopped=held)


def test_lifecycle_stop_keeps_a_pinned_running_workspace_stopped(tmp_path: Path) -> None:
    repo, live = _pinned_running(tmp_path)
    stopped = _stopped(live, RAN_FROM)
    held = in_force(_record(stopped.key), [stopped])
    assert held == {
        "workspace/alice/w": "workspace/alice/w was stopped by the lifecycle at 2026-03-02 "
        "10:00 UTC (idle): not started again until its owner starts it (`mlc open`)"
    }
    assert [a.kind for a in _plan(tmp_path, repo, stopped, {}).actions] == [ActionKind.START]
    plan = _plan(tmp_path, repo, stopped, held)
    assert plan.actions == ()
    assert held["workspace/alice/w"] in plan.notes


def test_lifecycle_stop_ends_once_its_owner_starts_it(tmp_path: Path) -> None:
    _, live = _pinned_running(tmp_path)
    restarted = _stopped(live, STOPPED_AT + dt.timedelta(minutes=5))  # `mlc open`, then stopped
    assert in_force(_record(restarted.key), [restarted]) == {}
    assert live.config is not None
    replaced = dataclasses.replace(  # made by a replace, never started: still held
        live, state="created", config=dataclasses.replace(live.config, started=None)
    )
    assert list(in_force(_record(replaced.key), [replaced])) == [replaced.key]
    running = dataclasses.replace(live, state="running")
    assert in_force(_record(running.key), [running]) == {}


def test_lifecycle_stops_file_round_trip_and_a_bad_file_is_one_line(tmp_path: Path) -> None:
    write_stops(tmp_path, _record("workspace/alice/w"))
    assert read_stops(tmp_path).stops == _record("workspace/alice/w")
    assert (tmp_path / "lifecycle-stops.json").stat().st_mode & 0o077 == 0
    (tmp_path / "lifecycle-stops.json").write_text("{")
    found = read_stops(tmp_path)
    assert found.stops == {}
    assert found.problem is not None and "is not JSON" in found.problem
