"""Every way a container reaches a GPU counts as holding it: each claim form, read from
`docker inspect` JSON and resolved to the inventory's devices (pure)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from ds01ctl.live.docker import gpu_access
from ds01ctl.live.gpus import load_inventory_file
from ds01ctl.model.observed import GpuAccess
from ds01ctl.model.pending import PendingItem
from ds01ctl.plan.actions import GpuRow, Plan
from ds01ctl.plan.staleness import stale_reasons
from ds01ctl.resolve.gpuaccess import how, reached
from tests.unit.test_staleness import SPEC, _create

# Four A100s: 0 and 1 whole, 2 and 3 split into MIG instances (the `unmanaged` scenario's).
INVENTORY = load_inventory_file(
    Path(__file__).resolve().parents[1] / "scenarios" / "unmanaged" / "gpus.yaml"
)
GPU0 = "GPU-3f6c1a2e-8b4d-4e1f-9a7c-0d2e5b6a7c81"
GPU1 = "GPU-8e2b7d41-5c3a-4f9e-b6d2-1a4c7e9f0b35"
GPU2 = "GPU-c47a9e13-2d6b-48f5-a1e9-7b3d5c8f2e60"
# GPU 2's MIG instances in placement order (the order `2:j` counts in).
GPU2_MIGS = (
    "MIG-5d2e8a61-3f4b-5c7d-9e1a-2b6c8d0e4f17",
    "MIG-7a1c3e95-b2d4-5f68-8a0b-4c6e9d1f3a52",
    "MIG-9e4f6b23-c8a1-5d3e-b7f2-6a0d2c4e8b96",
    "MIG-1b9f4c2a-6e3d-5a7b-8c1e-2f4d6a8b0c13",
)
ALL = tuple(d.uuid for d in INVENTORY.devices(include_unhealthy=True))
assert len(ALL) == 9 and ALL[:2] == (GPU0, GPU1)


def _request(driver: str = "", count: int = 0, ids: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "Driver": driver,
        "Count": count,
        "DeviceIDs": list(ids) or None,
        "Capabilities": [["gpu"]] if driver != "cdi" else None,
        "Options": {},
    }


def _inspect(**host: Any) -> dict[str, Any]:
    env = host.pop("env", None)
    return {"Config": {"Env": env}, "HostConfig": {"Runtime": "runc", **host}}


def _node(path: str) -> dict[str, str]:
    return {"PathOnHost": path, "PathInContainer": path, "CgroupPermissions": "rwm"}


# (what `docker run` stored, the devices it reaches)
CASES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "nothing": (_inspect(), ()),
    "by GPU uuid": (_inspect(DeviceRequests=[_request(ids=(GPU1,))]), (GPU1,)),
    "by GPU uuid, other case": (_inspect(DeviceRequests=[_request(ids=(GPU1.lower(),))]), (GPU1,)),
    "by MIG uuid": (_inspect(DeviceRequests=[_request(ids=(GPU2_MIGS[2],))]), (GPU2_MIGS[2],)),
    "by GPU uuid of a MIG-on GPU: all its instances": (
        _inspect(DeviceRequests=[_request(ids=(GPU2,))]),
        GPU2_MIGS,
    ),
    "by index": (_inspect(DeviceRequests=[_request(ids=("1",))]), (GPU1,)),
    "by two indexes": (_inspect(DeviceRequests=[_request(ids=("0", "1"))]), (GPU0, GPU1)),
    "by index:mig": (_inspect(DeviceRequests=[_request(ids=("2:1",))]), (GPU2_MIGS[1],)),
    "by index:mig past the last instance": (
        _inspect(DeviceRequests=[_request(ids=("2:9",))]),
        (),
    ),
    "by PCI bus id": (_inspect(DeviceRequests=[_request(ids=("00000000:0F:00.0",))]), (GPU1,)),
    "by id all": (_inspect(DeviceRequests=[_request(ids=("all",))]), ALL),
    "by a uuid this host has not": (_inspect(DeviceRequests=[_request(ids=("GPU-nope",))]), ()),
    "count 1: the first GPU": (_inspect(DeviceRequests=[_request(count=1)]), (GPU0,)),
    "count 3: GPUs 0-2, MIG instances of 2 too": (
        _inspect(DeviceRequests=[_request(count=3)]),
        (GPU0, GPU1, *GPU2_MIGS),
    ),
    "count -1: all": (_inspect(DeviceRequests=[_request(count=-1)]), ALL),
    "driver nvidia": (_inspect(DeviceRequests=[_request("nvidia", ids=(GPU0,))]), (GPU0,)),
    "another vendor's request": (
        _inspect(
            DeviceRequests=[
                {"Driver": "amd", "Count": -1, "DeviceIDs": None, "Capabilities": [["rocm"]]}
            ]
        ),
        (),
    ),
    "CDI request by uuid": (
        _inspect(DeviceRequests=[_request("cdi", ids=(f"nvidia.com/gpu={GPU1}",))]),
        (GPU1,),
    ),
    "CDI request by index": (
        _inspect(DeviceRequests=[_request("cdi", ids=("nvidia.com/gpu=0",))]),
        (GPU0,),
    ),
    "CDI request all": (
        _inspect(DeviceRequests=[_request("cdi", ids=("nvidia.com/gpu=all",))]),
        ALL,
    ),
    "CDI name in Devices": (_inspect(Devices=[_node(f"nvidia.com/gpu={GPU0}")]), (GPU0,)),
    "CDI name of another kind": (_inspect(Devices=[_node("vendor.com/fpga=0")]), ()),
    "nvidia runtime, uuid": (
        _inspect(Runtime="nvidia", env=[f"NVIDIA_VISIBLE_DEVICES={GPU1}"]),
        (GPU1,),
    ),
    "nvidia runtime, indexes": (
        _inspect(Runtime="nvidia", env=["NVIDIA_VISIBLE_DEVICES=0,1"]),
        (GPU0, GPU1),
    ),
    "nvidia runtime, all (a CUDA image's default)": (
        _inspect(Runtime="nvidia", env=["PATH=/bin", "NVIDIA_VISIBLE_DEVICES=all"]),
        ALL,
    ),
    "nvidia runtime, void": (_inspect(Runtime="nvidia", env=["NVIDIA_VISIBLE_DEVICES=void"]), ()),
    "nvidia runtime, none": (_inspect(Runtime="nvidia", env=["NVIDIA_VISIBLE_DEVICES=none"]), ()),
    "nvidia runtime, empty": (_inspect(Runtime="nvidia", env=["NVIDIA_VISIBLE_DEVICES="]), ()),
    "nvidia runtime, unset": (_inspect(Runtime="nvidia", env=["PATH=/bin"]), ()),
    "runc with the variable: no GPU": (_inspect(env=["NVIDIA_VISIBLE_DEVICES=all"]), ()),
    "/dev/nvidia1 node": (
        _inspect(Devices=[_node("/dev/nvidiactl"), _node("/dev/nvidia1")]),
        (GPU1,),
    ),
    "/dev/nvidiactl and uvm only: no GPU": (
        _inspect(Devices=[_node("/dev/nvidiactl"), _node("/dev/nvidia-uvm")]),
        (),
    ),
    "privileged: all": (_inspect(Privileged=True), ALL),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_gpu_access_every_claim_form_reaches_its_devices(case: str) -> None:
    inspect, expected = CASES[case]
    access = gpu_access(inspect)
    assert reached(access, INVENTORY) == expected


def test_gpu_access_forms_are_read_raw_and_described() -> None:
    access = gpu_access(
        _inspect(
            DeviceRequests=[_request(ids=("2:1", GPU0)), _request(count=2)],
            Devices=[_node("/dev/nvidia3"), _node("nvidia.com/gpu=all")],
            Runtime="nvidia",
            env=["NVIDIA_VISIBLE_DEVICES=1"],
            Privileged=True,
        )
    )
    assert access == GpuAccess(
        ids=("2:1", GPU0),
        count=2,
        cdi=("nvidia.com/gpu=all",),
        visible="1",
        nodes=("/dev/nvidia3",),
        privileged=True,
    )
    assert how(access) == (
        f"device request 2:1,{GPU0}; device request for 2 GPU(s); CDI device nvidia.com/gpu=all; "
        "NVIDIA runtime with NVIDIA_VISIBLE_DEVICES=1; device /dev/nvidia3; privileged"
    )


def test_gpu_access_a_saved_plan_is_stale_once_anyone_holds_its_gpu() -> None:
    spec = dataclasses.replace(SPEC, gpus=(GPU1,))
    saved = Plan((_create(spec),), gpus=(GpuRow(GPU1, 1, None, None, spec.key),))
    # A container run by hand took GPU 1 since: the fresh plan places the workspace on GPU 0.
    fresh = Plan(
        (_create(dataclasses.replace(spec, gpus=(GPU0,))),),
        gpus=(GpuRow(GPU0, 0, None, None, spec.key), GpuRow(GPU1, 1, None, "by-hand", "by-hand")),
    )
    assert stale_reasons(saved, fresh) == [f"workspace/ann/nb: GPU {GPU1} is taken now"]


def test_gpu_access_a_saved_create_is_stale_once_its_container_name_is_in_use() -> None:
    why = "refused: container name nb._.1000 is in use by a container ds01ctl does not manage"
    fresh = Plan((), pending=(PendingItem("workspace/ann/nb", why),))
    assert stale_reasons(Plan((_create(SPEC),)), fresh) == [
        f"workspace/ann/nb: it cannot be created now: {why}"
    ]
