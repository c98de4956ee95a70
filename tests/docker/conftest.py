"""Real-engine fixtures: the engine itself (started by scripts/docker-engine when needed) and
a throw-away config repo whose objects are uniquely named and removed after each test.

A missing engine fails these tests; it never skips them.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from ds01ctl.live.docker import connect
from tests.docker.dockerlab import QUOTA_YAML, Lab, site_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE_SCRIPT = REPO_ROOT / "scripts" / "docker-engine"
GPU_FIXTURE = REPO_ROOT / "examples" / "gpus" / "h100-80gb-mig.yaml"


@pytest.fixture(scope="session")
def client() -> docker.APIClient:
    done = subprocess.run(
        ["bash", str(ENGINE_SCRIPT)], capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"no Docker engine for the tests: {done.stderr.strip()[-500:]}")
    return connect()


@pytest.fixture(scope="session")
def gpu_requests_work() -> bool:
    """Whether this engine starts GPU device requests (scripts/docker-engine probes it)."""
    status = REPO_ROOT / "state" / "engine.env"
    text = status.read_text() if status.exists() else ""
    return "gpu=yes" in text.split()


@pytest.fixture
def lab(tmp_path: Path, client: docker.APIClient) -> Iterator[Lab]:
    token = uuid.uuid4().hex[:8]
    site = f"t-{token}"
    root = tmp_path / "config"  # the GPU fixture lies beside the config repo, not in it
    root.mkdir()
    (root / "site.yaml").write_text(site_yaml(site, token))
    (root / "quota.yaml").write_text(QUOTA_YAML)
    shutil.copy(GPU_FIXTURE, tmp_path / "gpus.yaml")
    lab = Lab(root, client, site, token)
    lab.make_host_dirs()
    lab.private_gpus()  # GPU UUIDs no other test or the demo holds
    try:
        yield lab
    finally:
        lab.cleanup()


@pytest.fixture(scope="session")
def debian_base(client: docker.APIClient) -> str:
    """The Debian test base's image ID (made on the first run, a few minutes; then cached)."""
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "debian-root")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"no Debian base for image builds: {done.stderr.strip()[-500:]}")
    return str(client.inspect_image(done.stdout.strip())["Id"])
