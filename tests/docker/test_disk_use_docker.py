"""Per-user disk use in `ds01ctl limits`, measured by the real engine."""

from __future__ import annotations

import json

import pytest

from tests.docker.dockerlab import Lab

pytestmark = pytest.mark.docker

MiB = 1024**2


# 5 MiB written inside alice's workspace are charged to alice's writable layers, no one else's;
# her account image is hers (by uid); once pruned, the snapshot of that layer is charged only
# what it adds to the image it was committed from, not the base beneath it.
def test_disk_use_docker_charges_a_writable_layer_to_its_owner(lab: Lab) -> None:
    name = lab.workspace("alice", "disk", power="running")
    assert lab.apply().code == 0
    container = lab.container_name("alice", name)
    lab.docker("exec", container, "dd", "if=/dev/zero", "of=/tmp/x", "bs=1M", "count=5")

    done = lab.cli("limits", "alice", "-C", str(lab.root), "--json")
    assert done.code == 0, done.output
    disk = json.loads(done.stdout)["users"][0]["disk"]
    assert disk["writable_layers"] >= 5 * MiB, disk
    assert disk["snapshots"] == 0
    assert disk["account_images"] > 0  # the passwd entry and home directory added to the base

    others = lab.cli("limits", "h.baker", "-C", str(lab.root), "--json")
    assert others.code == 0, others.output
    assert json.loads(others.stdout)["users"][0]["disk"]["writable_layers"] == 0

    text = lab.cli("limits", "alice", "-C", str(lab.root))
    line = next(x for x in text.stdout.splitlines() if x.strip().startswith("disk:"))
    assert " MB writable layers, 0 bytes snapshots, " in line, line

    base = lab.client.inspect_image(lab.client.inspect_container(container)["Image"])
    lab.remove_workspace("alice", name)
    assert lab.apply("--prune").code == 0
    after = lab.cli("limits", "alice", "-C", str(lab.root), "--json")
    disk = json.loads(after.stdout)["users"][0]["disk"]
    assert disk["writable_layers"] == 0
    assert 5 * MiB <= disk["snapshots"] < 6 * MiB, (disk, base["Size"])
