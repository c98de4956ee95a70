"""The activity reader on recorded cgroup v2 files (this project's CI host has cgroup v1; the
real-engine tests in tests/docker cover v1), mountinfo layouts and GPU activity."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path

from ds01ctl.live.activity import (
    ActivityReader,
    CgroupLayout,
    detect_layout,
    gpu_active,
    keep_alive_of,
    workspace_dir,
)
from ds01ctl.model.inventory import Gpu, GpuInventory, GpuProcess, MigInstance

DATA = Path(__file__).resolve().parents[1] / "data" / "cgroup"
CID = "ab12" + "0" * 60
BOOT = dt.datetime.fromtimestamp(1760000000, dt.UTC)


def v2_reader() -> ActivityReader:
    layout = detect_layout(DATA / "v2" / "proc")
    assert layout == CgroupLayout(2, Path("/sys/fs/cgroup"), "/")
    # The recorded tree stands in for the host's /sys/fs/cgroup.
    return ActivityReader(CgroupLayout(2, DATA / "v2" / "sys/fs/cgroup"), DATA / "v2" / "proc")


def test_activity_v2_cpu_time_and_exec_sessions() -> None:
    activity = v2_reader().read(CID, 4242)
    assert activity.cpu_seconds == 8123.456789  # cpu.stat usage_usec
    # 4301 (parent outside the container) is a session; its child 4302 and init's own
    # child 4310 are not.
    assert activity.sessions == 1
    ticks = os.sysconf("SC_CLK_TCK")
    assert activity.newest_session == BOOT + dt.timedelta(seconds=360000 / ticks)


def test_activity_v2_found_by_name_without_a_pid() -> None:
    assert v2_reader().read(CID, None).cpu_seconds == 8123.456789


def test_activity_unknown_container_is_unreadable_not_idle() -> None:
    assert v2_reader().read("f" * 64, None).cpu_seconds is None


def test_activity_hybrid_host_uses_v1_cpuacct() -> None:
    layout = detect_layout(DATA / "hybrid" / "proc")
    assert layout == CgroupLayout(1, Path("/sys/fs/cgroup/cpu,cpuacct"), "/")


def test_activity_this_host_has_a_layout() -> None:
    assert detect_layout() is not None


def test_activity_keep_alive_is_read_without_following_symlinks(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("")
    os.utime(target, (2_000_000_000, 2_000_000_000))
    (tmp_path / ".keep-alive").symlink_to(target)
    os.utime(tmp_path / ".keep-alive", (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    assert keep_alive_of(tmp_path) == dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)
    assert keep_alive_of(tmp_path / "none") is None
    (tmp_path / ".keep-alive").unlink()
    (tmp_path / ".keep-alive").mkdir()
    assert keep_alive_of(tmp_path) is None  # a directory is no keep-alive


def test_activity_workspace_dir_from_inspect() -> None:
    inspect = {
        "Mounts": [
            {"Type": "bind", "Source": "/data/x", "Destination": "/data"},
            {"Type": "bind", "Source": "/home/alice/ws", "Destination": "/workspace"},
        ]
    }
    assert workspace_dir(inspect) == Path("/home/alice/ws")
    assert workspace_dir({"Mounts": []}) is None


WHOLE = "GPU-00000000-0000-0000-0000-000000000001"
PARENT = "GPU-00000000-0000-0000-0000-000000000002"
MIG = "MIG-00000000-0000-0000-0000-000000000003"


def inventory(util: int, mig_process_of: str | None) -> GpuInventory:
    mig = MigInstance(
        uuid=MIG, parent_uuid=PARENT, profile="1g.18gb", compute_slices=1, memory_mib=16000,
        gi_id=1, ci_id=0, placement_start=0,
    )  # fmt: skip
    processes: tuple[GpuProcess, ...] = ()
    if mig_process_of is not None:
        processes = (GpuProcess(pid=7, device_uuid=MIG, used_mib=500, container_id=mig_process_of),)
    return GpuInventory(
        source="fixture",
        host="h",
        taken_at=BOOT,
        gpus=(
            Gpu(
                uuid=WHOLE,
                index=0,
                name="H100",
                pci_bus_id="0:1",
                memory_total_mib=81559,
                util_pct=util,
            ),
            Gpu(
                uuid=PARENT,
                index=1,
                name="H100",
                pci_bus_id="0:2",
                memory_total_mib=81559,
                mig_enabled=True,
                migs=(mig,),
            ),
        ),
        processes=processes,
    )


def test_activity_gpu_whole_gpu_by_utilisation() -> None:
    assert gpu_active(inventory(40, None), CID, (WHOLE,), 5) is True
    assert gpu_active(inventory(2, None), CID, (WHOLE,), 5) is False
    assert gpu_active(inventory(2, None), CID, (), 5) is None


def test_activity_gpu_mig_by_the_containers_own_processes() -> None:
    # NVML has no utilisation per MIG instance: a process of this container there counts.
    assert gpu_active(inventory(0, CID), CID, (MIG,), 5) is True
    assert gpu_active(inventory(0, "e" * 64), CID, (MIG,), 5) is False
    assert gpu_active(inventory(0, None), CID, ("MIG-gone",), 5) is None


def test_activity_gpu_mig_by_gpm_where_measured() -> None:
    # GPM measured the instance: its SM utilisation decides, a process holding memory alone
    # (an idle notebook kernel) does not.
    def measured(util: int) -> GpuInventory:
        found = inventory(0, CID)
        parent = found.gpus[1]
        mig = dataclasses.replace(parent.migs[0], util_pct=util)
        return dataclasses.replace(
            found, gpus=(found.gpus[0], dataclasses.replace(parent, migs=(mig,)))
        )

    assert gpu_active(measured(0), CID, (MIG,), 5) is False
    assert gpu_active(measured(60), CID, (MIG,), 5) is True
