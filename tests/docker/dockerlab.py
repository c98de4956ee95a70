"""A throw-away config repo planned against the real engine under a unique site name.

Objects are uniquely named (container names are engine-wide) and removed by `cleanup`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml

from ds01ctl.apply import driver
from ds01ctl.resolve.spec import ContainerSpec
from ds01ctl.workflow import PlanResult, make_plan


def site_yaml(site: str, token: str) -> str:
    return f"""\
apiVersion: ds01/v1
kind: Site
metadata: {{name: {site}}}
spec:
  state_dir: state/{site}
  gpus: {{source: fixture, fixture: ../gpus.yaml}}
  catalog: {{architecture: CUDA_ADA}}
  image_mirrors:
    - {{prefix: aimehub/pytorch-2.7.1-cuda12.6.3, replacement: "ds01ctl-local/pytorch:2.7.1"}}
    - {{prefix: aimehub/tensorflow-2.16.1-cuda12.3, replacement: "ds01ctl-local/tensorflow:2.16.1"}}
  container_defaults: {{shm_size: 64m, stop_grace_period: 2s}}
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


@dataclass
class Lab:
    """A config repo in a temp dir, planned against the real engine under a unique site."""

    root: Path
    client: docker.APIClient
    site: str
    token: str
    made_tags: set[str] = field(default_factory=set)

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

    def remove_workspace(self, owner: str, name: str) -> None:
        (self.root / "users" / owner / f"{name}.yaml").unlink()

    def plan(self, *, prune: bool = False) -> PlanResult:
        return make_plan(self.root, prune=prune, client=self.client)

    def create(self, spec: ContainerSpec) -> str:
        """Create a container the way apply does (the same driver)."""
        driver.prepare_image(self.client, spec)
        self.made_tags.add(spec.image_tag)
        return driver.create(self.client, spec)

    def containers(self) -> list[dict[str, Any]]:
        return list(self.client.containers(all=True, filters={"label": f"ds01.site={self.site}"}))

    def cleanup(self) -> None:
        for entry in self.containers():
            self.client.remove_container(entry["Id"], force=True)
        for tag in self.made_tags:
            try:
                self.client.remove_image(tag)
            except docker.errors.APIError:
                pass
        shutil.rmtree(f"/tmp/ds01ctl-test-{self.token}", ignore_errors=True)
