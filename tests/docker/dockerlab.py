"""A throw-away config repo planned against the real engine under a unique site name.

Objects are uniquely named (container names are engine-wide) and removed by `cleanup`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml

from ds01ctl.apply.journal import read_records
from ds01ctl.drivers.docker import DockerDriver
from ds01ctl.drivers.docker import containers as driver
from ds01ctl.model.spec import ContainerSpec
from ds01ctl.workflow import PlanResult, make_plan
from tests.conftest import CliResult as Cli


def site_yaml(site: str, token: str) -> str:
    return f"""\
apiVersion: ds01/v1
kind: Site
metadata: {{name: {site}}}
spec:
  state_dir: ../state/{site}
  gpus: {{source: fixture, fixture: ../gpus.yaml}}
  catalog: {{architecture: CUDA_ADA}}
  allowed_images: ["ds01ctl-local/*"]  # images the tests build locally
  image_mirrors:
    - {{prefix: aimehub/pytorch-2.7.1-cuda12.6.3, replacement: "ds01ctl-local/pytorch:2.7.1"}}
    - {{prefix: aimehub/tensorflow-2.16.1-cuda12.3, replacement: "ds01ctl-local/tensorflow:2.16.1"}}
  container_defaults: {{shm_size: 64m, stop_grace_period: 2s, log: {{max_size: 10m, max_files: 2}}}}
  mount_policy:
    - path: /tmp/ds01ctl-test-{token}/{{owner}}/**
    - path: /tmp/ds01ctl-test-{token}/datasets/**
      read_only: true
  default_workspace_mount: /tmp/ds01ctl-test-{token}/{{owner}}/workspace
  users:
    alice: {{uid: 61001, gid: 61001}}
    h.baker: {{uid: 61002, gid: 61002}}
    228755@uni.example: {{uid: 61003, gid: 61003}}
"""


QUOTA_YAML = """\
apiVersion: ds01/v1
kind: QuotaPolicy
metadata: {name: test}
spec:
  default_group: users
  defaults: {cpus: 1, memory: 512m, memory_swap: 512m, shm_size: 64m, pids: 256,
             gpu_budget: 2, max_gpus_per_container: 1, max_workspaces: 5}
  groups:
    users: {members: [alice, h.baker, 228755@uni.example]}
"""


# The uid/gid pins of the test Site (`site_yaml`): uid == gid for each login.
UIDS = {"alice": 61001, "h.baker": 61002, "228755@uni.example": 61003}

_DEVICE_UUID = re.compile(
    r"\b(?:GPU|MIG)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
)


@dataclass
class Lab:
    """A config repo in a temp dir, planned against the real engine under a unique site."""

    root: Path
    client: docker.APIClient
    site: str
    token: str
    made_tags: set[str] = field(default_factory=set)
    made_containers: list[str] = field(default_factory=list)  # made outside ds01ctl

    def name(self, base: str) -> str:
        """A workspace name unique to this test (container names are engine-wide)."""
        return f"{base}-{self.token}"

    def workspace(self, owner: str, base: str, **spec: Any) -> str:
        name = self.name(base)
        body = {
            "framework": {"name": "Pytorch", "version": "2.7.1"},
            "cpus": 0.25,
            "memory": "128m",
            **spec,
        }
        folder = self.root / "users" / owner
        folder.mkdir(parents=True, exist_ok=True)
        document = {
            "apiVersion": "ds01/v1",
            "kind": "Workspace",
            "metadata": {"name": name},
            "spec": body,
        }
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        return name

    def container_name(self, owner: str, name: str) -> str:
        """mlc's Docker name of a workspace: `<name>._.<uid>`."""
        return f"{name}._.{UIDS[owner]}"

    def host_dir(self, *parts: str) -> str:
        """A host path this test's Site lets workspaces mount (removed by cleanup)."""
        return "/".join([f"/tmp/ds01ctl-test-{self.token}", *parts])

    def make_host_dirs(self) -> None:
        """The Site's host tree laid out like a real host's: the top is root's, each user's
        directory is theirs (as a home is), the shared datasets root's. Workspace directories
        inside are left missing: apply makes them, as their owner."""
        top = Path(self.host_dir())
        top.mkdir(mode=0o755)
        top.chmod(0o755)
        for login, uid in UIDS.items():
            home = Path(self.host_dir(login))
            home.mkdir(mode=0o755)
            os.chown(home, uid, uid)
        Path(self.host_dir("datasets", "wiki")).mkdir(parents=True)

    def remove_workspace(self, owner: str, name: str) -> None:
        (self.root / "users" / owner / f"{name}.yaml").unlink()

    def plan(self, *, prune: bool = False) -> PlanResult:
        return make_plan(self.root, prune=prune, driver=DockerDriver(self.client))

    def create(self, spec: ContainerSpec) -> str:
        """Create a container the way apply does (the same driver)."""
        if spec.network == f"ds01-{self.site}":  # the site network, as apply makes it first
            driver.ensure_network(self.client, spec.network, site=self.site, inter_container=False)
        driver.prepare_image(self.client, spec)
        self.made_tags.add(spec.image_tag)
        return driver.create(self.client, spec)

    def containers(self) -> list[dict[str, Any]]:
        return list(self.client.containers(all=True, filters={"label": f"ds01.site={self.site}"}))

    # --- the CLI in subprocesses, with this lab's own state and lock dirs ----------------------

    @property
    def workdir(self) -> Path:
        """Where the CLI runs (the test's temp dir, which also holds the config repo)."""
        return self.root.parent

    @property
    def state_dir(self) -> Path:
        """The Site's state dir as the CLI resolves it (`../state/<site>` from the config repo)."""
        return self.workdir / "state" / self.site

    @property
    def lock_dir(self) -> Path:
        return self.workdir / "lock"

    def cli_command(self, *args: str) -> list[str]:
        """`ds01ctl --debug ARGS`: an internal error shows its traceback in a failing test."""
        return [sys.executable, "-m", "ds01ctl", "--debug", *args]

    def cli_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DS01CTL_")}
        return {
            **env,
            "NO_COLOR": "1",
            "COLUMNS": "120",
            "DS01CTL_LOCK_DIR": str(self.lock_dir),
            **extra,
        }

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Cli:
        """`ds01ctl ARGS` in a subprocess (colour off, this lab's lock dir), output captured."""
        done = subprocess.run(
            self.cli_command(*args),
            cwd=self.workdir,
            env=self.cli_env(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Cli(done.returncode, done.stdout, done.stderr)

    def apply_args(self, *args: str) -> list[str]:
        """`apply CONFIG --auto-approve --state-dir … ARGS`."""
        return [
            "apply",
            str(self.root),
            "--auto-approve",
            "--state-dir",
            str(self.state_dir),
            *args,
        ]

    def apply(self, *args: str) -> Cli:
        return self.cli(*self.apply_args(*args))

    def plan_cli(self, *args: str) -> Cli:
        return self.cli("plan", str(self.root), *args)

    def history(self, *args: str) -> Cli:
        return self.cli("history", str(self.root), "--state-dir", str(self.state_dir), *args)

    def journal(self) -> list[dict[str, Any]]:
        """The records of this lab's journal (a torn last line is skipped)."""
        return list(read_records(self.state_dir))

    def apply_json(self, *args: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """`apply --json`, which must succeed: the plan it carried out, and its progress events."""
        done = self.apply("--json", *args)
        assert done.code == 0, done.output
        if not done.stdout.strip():
            return {"actions": []}, []  # nothing to do prints nothing
        plan, end = json.JSONDecoder().raw_decode(done.stdout)
        events = [json.loads(line) for line in done.stdout[end:].splitlines() if line.strip()]
        return plan, events

    def assert_converged(self, *, prune: bool = False) -> None:
        """Apply is done: `plan --detailed-exitcode` finds nothing to do, drift or pending."""
        done = self.plan_cli("--json", "--detailed-exitcode", *(["--prune"] if prune else []))
        plan = json.loads(done.stdout) if done.stdout.startswith("{") else {}
        assert plan.get("actions") == [], done.output
        assert plan["drift"] == [] and plan["pending"] == [], done.output
        assert done.code == 0, done.output

    def docker(self, *args: str, check: bool = True) -> Cli:
        """The `docker` CLI, as mlc and people run it."""
        done = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=120, check=False
        )
        result = Cli(done.returncode, done.stdout, done.stderr)
        assert not check or done.returncode == 0, f"docker {' '.join(args)}: {result.output}"
        return result

    def containers_of(self, owner: str, name: str) -> list[dict[str, Any]]:
        """This site's containers claiming workspace `owner/name` (by labels, any name)."""
        return [
            c
            for c in self.containers()
            if (c.get("Labels") or {}).get("ds01.owner") == owner
            and (c.get("Labels") or {}).get("ds01.name") == name
        ]

    # --- isolation --------------------------------------------------------------------------

    def private_gpus(self) -> None:
        """Give the GPU fixture beside the repo UUIDs of this test's own.

        GPU allocation is engine-wide (containers of other sites hold devices too): with
        UUIDs no other test or demo uses, a GPU request here always finds its device free.
        """
        fixture = self.root.parent / "gpus.yaml"
        text = fixture.read_text()
        fixture.write_text(_DEVICE_UUID.sub(lambda m: m.group(0)[:-8] + self.token, text))

    def track(self, container_id: str) -> str:
        """A container made outside ds01ctl (no site label) that cleanup must remove."""
        self.made_containers.append(container_id)
        return container_id

    def snapshot_images(self) -> list[dict[str, Any]]:
        """Snapshot images taken for this lab's site."""
        return list(self.client.images(filters={"label": f"ds01.snapshot.site={self.site}"}))

    def account_images(self) -> list[dict[str, Any]]:
        """Images with an account in them that this lab's site made (`…:ds01ctl-user-*`)."""
        label = f"{driver.USER_SETUP_SITE_LABEL}={self.site}"
        return list(self.client.images(filters={"label": label}))

    def leftovers(self) -> list[str]:
        """What of this lab is still on the engine: containers, images, networks."""
        found = [f"container {c['Names'][0]}" for c in self.containers()]
        for image in self.client.images():
            labels = image.get("Labels") or {}
            ours = self.site in (
                labels.get(driver.USER_SETUP_SITE_LABEL),
                labels.get("ds01.snapshot.site"),
            )
            named = [t for t in image.get("RepoTags") or [] if self.token in t]
            if ours or named:
                found.append(f"image {image['Id'][:19]} {named}")
        found += [
            f"network {n['Name']}"
            for n in self.client.networks(filters={"label": f"ds01.site={self.site}"})
        ]
        return found

    def cleanup(self) -> None:
        for container in self.made_containers:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.remove_container(container, force=True)
        for entry in self.containers():
            self.client.remove_container(entry["Id"], force=True)
        tags = set(self.made_tags)
        for image in self.client.images():
            for tag in image.get("RepoTags") or []:
                # per-container tags made by apply (`<repo>:<name>-<token>._.<uid>`)
                if f"-{self.token}._." in tag.rpartition(":")[2]:
                    tags.add(tag)
        for image in self.snapshot_images():
            tags.update(image.get("RepoTags") or [image["Id"]])
        for tag in tags:
            with contextlib.suppress(docker.errors.APIError):
                self.client.remove_image(tag)
        # The account images this site's applies made (each site has its own): newest first,
        # so one made from another (an adopted container's snapshot) goes before its base.
        for image in sorted(self.account_images(), key=lambda i: -int(i.get("Created") or 0)):
            for tag in image.get("RepoTags") or []:
                with contextlib.suppress(docker.errors.APIError):
                    self.client.remove_image(tag)
            with contextlib.suppress(docker.errors.APIError):
                self.client.remove_image(image["Id"])
        for network in self.client.networks(filters={"label": f"ds01.site={self.site}"}):
            with contextlib.suppress(docker.errors.APIError):
                self.client.remove_network(network["Id"])
        shutil.rmtree(f"/tmp/ds01ctl-test-{self.token}", ignore_errors=True)
