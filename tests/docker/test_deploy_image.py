"""The reconcile daemon's container image (examples/deploy): built from the Debian root with
ds01ctl installed offline from wheels; run without the host's mounts it refuses in one line
naming them; run with them (the host's socket, paths at identical paths, accounts, PID
namespace, cgroups) it reconciles the demo repo (examples/demo, made unique to this test).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

pytestmark = pytest.mark.docker

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "examples" / "deploy"
DEMO = REPO_ROOT / "examples" / "demo"
BASE = "ds01ctl-local/debian:bookworm"
PINS = {"alice": 2001, "h.baker": 2002, "228755@uni.example": 2003}
_UUID = re.compile(r"\b(?:GPU|MIG)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def _run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Deploy:
    token: str
    root: Path  # everything the daemon reads or writes on the host, mounted at the same path
    image: str
    site: str
    remote: Path
    commit: str

    @property
    def daemon_args(self) -> list[str]:
        return [
            "--remote",
            str(self.remote),
            "--branch",
            "main",
            "--state-dir",
            str(self.root / "state"),
            "--events",
            str(self.root / "log" / "events.jsonl"),
            "--lock-dir",
            str(self.root / "lock"),
            "--once",
        ]


def _demo_repo(root: Path, token: str, site: str) -> Path:
    """examples/demo with a site name, workspace names, host paths and GPU UUIDs of its own
    (the engine is shared), and the GPU fixture named by an absolute path."""
    config = root / "config"
    shutil.copytree(DEMO, config)
    fixture = root / "gpus.yaml"
    text = (REPO_ROOT / "examples" / "gpus" / "h100-80gb-mig.yaml").read_text()
    fixture.write_text(_UUID.sub(lambda m: m.group(0)[:-8] + token, text))
    host = root / "host"
    for path in config.rglob("*.yaml"):
        text = path.read_text().replace("/srv/ds01ctl-demo", str(host))
        if path.name == "site.yaml":
            text = text.replace("name: demo", f"name: {site}")
            text = text.replace("fixture: ../gpus/h100-80gb-mig.yaml", f"fixture: {fixture}")
        else:
            text = re.sub(r"(?m)^  name: (\S+)$", rf"  name: \1-{token}", text)
        path.write_text(text)
    for login, uid in PINS.items():
        home = host / "home" / login
        home.mkdir(parents=True)
        os.chown(home, uid, uid)
    (host / "datasets" / "wiki").mkdir(parents=True)
    return config


@pytest.fixture
def deploy(client: docker.APIClient, tmp_path: Path) -> Iterator[Deploy]:
    token = uuid.uuid4().hex[:8]
    site = f"d-{token}"
    image = f"ds01ctl-local/reconcile-test:{token}"
    root = Path(f"/tmp/ds01ctl-deploy-{token}")
    root.mkdir(mode=0o755)
    try:
        made = _run("bash", str(REPO_ROOT / "scripts" / "debian-root"))
        assert made.returncode == 0, made.stderr
        context = tmp_path / "context"
        shutil.copytree(DEPLOY, context, ignore=shutil.ignore_patterns("wheels"))
        # ds01ctl and its dependencies as wheels, from the project's own package index.
        wheels = _run(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-input",
            "-w",
            str(context / "wheels"),
            str(REPO_ROOT),
        )
        assert wheels.returncode == 0, wheels.stderr[-2000:]
        built = _run(
            "docker", "build", "-q", "--build-arg", f"BASE={BASE}", "-t", image, str(context)
        )
        assert built.returncode == 0, built.stderr[-2000:]
        config = _demo_repo(root, token, site)
        remote = root / "remote.git"
        git = ["git", "-c", "user.name=Admin", "-c", "user.email=admin@lab.example"]
        subprocess.run([*git, "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
        subprocess.run([*git, "init", "-q", "-b", "main"], cwd=config, check=True)
        subprocess.run([*git, "add", "-A"], cwd=config, check=True)
        subprocess.run([*git, "commit", "-qm", "demo"], cwd=config, check=True)
        subprocess.run([*git, "push", "-q", str(remote), "HEAD:main"], cwd=config, check=True)
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=config, capture_output=True, text=True, check=True
        ).stdout.strip()
        (root / "lock").mkdir(mode=0o755)
        yield Deploy(token, root, image, site, remote, commit)
    finally:
        for entry in client.containers(all=True, filters={"label": f"ds01.site={site}"}):
            client.remove_container(entry["Id"], force=True)
        for entry in client.images():
            for tag in entry.get("RepoTags") or []:
                if f"-{token}._." in tag or tag == image:
                    with contextlib.suppress(docker.errors.APIError):
                        client.remove_image(tag)
        for network in client.networks(filters={"label": f"ds01.site={site}"}):
            with contextlib.suppress(docker.errors.APIError):
                client.remove_network(network["Id"])
        shutil.rmtree(root, ignore_errors=True)


def test_the_daemon_image_refuses_without_the_host_and_reconciles_the_demo_with_it(
    client: docker.APIClient, deploy: Deploy
) -> None:
    socket = "/var/run/docker.sock"
    bare = _run(
        "docker",
        "run",
        "--rm",
        "-v",
        f"{socket}:{socket}",
        deploy.image,
        *deploy.daemon_args,
        timeout=120,
    )
    assert bare.returncode == 1, bare.stdout + bare.stderr
    line = bare.stderr.strip()
    assert "\n" not in line, line  # one line
    assert line.startswith("error: the reconcile daemon cannot run in this container: missing")
    for missing in (
        f"the state dir {deploy.root}/state",
        "the host's accounts",
        "the host's cgroups",
        "the host's PID namespace (--pid host)",
    ):
        assert missing in line, line
    assert client.containers(all=True, filters={"label": f"ds01.site={deploy.site}"}) == []

    root = str(deploy.root)
    ran = _run(
        "docker", "run", "--rm", "--pid", "host",
        "-v", f"{socket}:{socket}",
        "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        "-v", "/etc/passwd:/etc/passwd:ro",
        "-v", "/etc/group:/etc/group:ro",
        "-v", f"{root}:{root}",
        deploy.image, *deploy.daemon_args,
        timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    names = sorted(
        c["Names"][0].lstrip("/")
        for c in client.containers(all=True, filters={"label": f"ds01.site={deploy.site}"})
    )
    assert f"notebook-{deploy.token}._.2001" in names, ran.stderr
    assert f"thesis-{deploy.token}._.2003" in names, ran.stderr
    status = json.loads((deploy.root / "state" / "reconcile" / "status.json").read_text())
    assert status["config"]["commit"] == deploy.commit
    events = [
        json.loads(line) for line in (deploy.root / "log" / "events.jsonl").read_text().splitlines()
    ]
    assert any(e["event_type"] == "reconcile.applied" for e in events)
    # Users read their status on the host, as the daemon in the container wrote it.
    alice = deploy.root / "state" / "users" / "alice.json"
    assert alice.stat().st_uid == PINS["alice"]
