"""GPU processes are attributed to containers through /proc/<pid>/cgroup: checked here on a
real container's real process (the unit tests cover the cgroup v1 and v2 text forms)."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from ds01ctl.live.procs import container_id_from_cgroup

pytestmark = pytest.mark.docker


def test_gpu_process_of_a_real_container_maps_to_its_id(client: docker.APIClient) -> None:
    container = client.create_container("ds01ctl-local/base:latest", ["sleep", "60"])["Id"]
    try:
        client.start(container)
        pid = client.inspect_container(container)["State"]["Pid"]
        text = Path(f"/proc/{pid}/cgroup").read_text()
        assert container_id_from_cgroup(text) == container
    finally:
        client.remove_container(container, force=True)


def test_gpu_process_on_the_host_maps_to_no_container() -> None:
    assert container_id_from_cgroup(Path("/proc/self/cgroup").read_text()) is None
