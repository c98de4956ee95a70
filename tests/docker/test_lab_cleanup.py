"""The tests' lab removes what its runs made: containers, per-container tags, snapshots, the
account images its applies made (`…:ds01ctl-user-*`), networks. A leak here fills the
engine that every later run shares."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import docker
import pytest

from tests.docker.conftest import GPU_FIXTURE
from tests.docker.dockerlab import QUOTA_YAML, Lab, site_yaml

pytestmark = pytest.mark.docker


def test_lab_cleanup_leaves_nothing_of_its_runs(tmp_path: Path, client: docker.APIClient) -> None:
    token = uuid.uuid4().hex[:8]
    root = tmp_path / "config"
    root.mkdir()
    (root / "site.yaml").write_text(site_yaml(f"t-{token}", token))
    (root / "quota.yaml").write_text(QUOTA_YAML)
    shutil.copy(GPU_FIXTURE, tmp_path / "gpus.yaml")
    lab = Lab(root, client, f"t-{token}", token)
    try:
        lab.make_host_dirs()
        lab.private_gpus()
        # An image of this run's own (as the confinement tests build), and the shared one.
        own = f"ds01ctl-local/own-{token}:latest"
        client.tag("ds01ctl-local/pytorch:2.7.1", *own.rpartition(":")[::2])
        lab.made_tags.add(own)
        kept = lab.workspace("alice", "kept")
        gone = lab.workspace("h.baker", "gone", image_ref=own)
        assert lab.apply().code == 0
        lab.remove_workspace("h.baker", gone)
        assert lab.apply("--prune").code == 0  # a snapshot, if its layer changed
        assert lab.account_images(), "the applies made account images of this site"
        assert lab.leftovers(), kept
    finally:
        lab.cleanup()
    assert lab.leftovers() == []
