"""A GPU held by a container ds01ctl did not make is never booked again (real engine).

A `docker run --gpus device=<uuid>` by hand carries no label; the plan must still see it hold
the device, place the next workspace elsewhere, name the container as the holder, and refuse a
saved plan made before it appeared. The NVIDIA-runtime form (`--runtime nvidia -e
NVIDIA_VISIBLE_DEVICES=…`) needs a runtime this test engine does not have: it is covered by
tests/unit/test_gpu_access.py and the `gpu-held-outside` scenario.
"""

from __future__ import annotations

import json
from pathlib import Path

import docker

from ds01ctl import __version__
from ds01ctl.live.gpus import load_inventory_file
from ds01ctl.plan.planfile import save_plan
from tests.docker.dockerlab import Lab

BASE = "ds01ctl-local/base:latest"


def _save_plan(lab: Lab, path: Path) -> Path:
    result = lab.plan()
    meta = result.plan.meta
    save_plan(
        result.plan,
        path,
        tool_version=__version__,
        site=meta.site or "",
        state_dir=lab.state_dir,
        config_commit=meta.config_commit,
    )
    return path


def _apply_saved(lab: Lab, plan_file: Path) -> str:
    done = lab.cli("apply", str(plan_file), "-C", str(lab.root), "--state-dir", str(lab.state_dir))
    assert done.code == 1, done.output
    [line] = done.stderr.splitlines()
    assert line.startswith("error: the saved plan is stale"), line
    return line


def _planned_gpus(plan: dict[str, object], target: str) -> list[str]:
    [action] = [a for a in plan["actions"] if a["target"] == target]  # type: ignore[attr-defined]
    return list(action["spec"]["gpus"])


def test_gpu_taken_by_hand_is_not_booked_again(lab: Lab, gpu_requests_work: bool) -> None:
    name = lab.workspace("alice", "gh", mig="1g.10gb")
    target = f"workspace/alice/{name}"
    inventory = load_inventory_file(lab.root.parent / "gpus.yaml")
    slices = [d.uuid for d in inventory.devices() if d.profile == "1g.10gb"]
    assert len(slices) == 2
    plan_file = _save_plan(lab, lab.workdir / "plan.json")
    saved = json.loads(plan_file.read_text())["plan"]
    [first] = _planned_gpus(saved, target)

    # Someone runs a container by hand on that very slice: no label, a device request by UUID.
    hog = lab.name("hog")
    made = lab.client.create_container(
        BASE,
        ["sleep", "600"],
        name=hog,
        host_config=lab.client.create_host_config(
            device_requests=[docker.types.DeviceRequest(device_ids=[first], capabilities=[["gpu"]])]
        ),
    )
    lab.track(made["Id"])
    if gpu_requests_work:  # held either way; started where the engine can
        lab.client.start(made["Id"])

    line = _apply_saved(lab, plan_file)
    assert f"{target}: GPU {first} is taken now" in line
    assert lab.containers() == []  # nothing of the saved plan was applied

    done = lab.plan_cli("--json")
    assert done.code == 0, done.output
    plan = json.loads(done.stdout)
    assert _planned_gpus(plan, target) == [s for s in slices if s != first]
    [row] = [g for g in plan["gpus"] if g["uuid"] == first]
    assert (row["before"], row["after"]) == (hog, hog)
    [held] = [u for u in plan["unmanaged"] if u["container"] == hog]
    assert held["why"] == f"holds GPU {first} outside ds01ctl (device request {first})"
    human = lab.plan_cli()
    assert f"{hog}: holds GPU {first} outside ds01ctl" in human.stdout, human.output

    applied = lab.apply()
    assert applied.code == 0, applied.output
    container = lab.client.inspect_container(lab.container_name("alice", name))
    [request] = container["HostConfig"]["DeviceRequests"]
    assert request["DeviceIDs"] != [first]
    lab.assert_converged()


def test_saved_plan_refused_once_its_container_name_is_in_use(lab: Lab) -> None:
    name = lab.workspace("h.baker", "nm")
    target = f"workspace/h.baker/{name}"
    plan_file = _save_plan(lab, lab.workdir / "plan.json")

    # Someone creates a plain container under the name the workspace's would get.
    taken = lab.container_name("h.baker", name)
    lab.track(lab.client.create_container(BASE, ["true"], name=taken)["Id"])

    line = _apply_saved(lab, plan_file)
    assert f"{target}: it cannot be created now: refused: container name {taken} is in use" in line
    done = lab.plan_cli("--json")
    assert done.code == 0, done.output
    plan = json.loads(done.stdout)
    assert plan["actions"] == []
    [pending] = plan["pending"]
    assert pending["target"] == target and taken in pending["reason"]
