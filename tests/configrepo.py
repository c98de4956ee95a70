"""A small config repo for unit tests, written to a temp dir and validated like a real one.

Site `unit` reads its GPUs from a copy of `examples/gpus/h100-80gb-mig.yaml` beside the repo;
the QuotaPolicy has one group, `all`, with the defaults a test passes. `world` is an empty
engine over those GPUs at `NOW`.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ds01ctl.live.gpus import load_inventory_file
from ds01ctl.manifests.validate import ConfigRepo, validate_path
from ds01ctl.model.observed import EngineInfo, Observed, ObservedContainer
from ds01ctl.resolve.desired import World

REPO_ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
ENGINE = EngineInfo("engine", "host", "20.10", "1.41", 8, 32 * 1024**3)
USERS = {"alice": {"uid": 1001, "gid": 1001}, "bob": {"uid": 1002, "gid": 1002}}


def site_doc(**spec: Any) -> dict[str, Any]:
    """The unit Site; `spec` adds to or replaces its top-level settings."""
    body: dict[str, Any] = {
        "gpus": {"source": "fixture", "fixture": "../gpus.yaml"},
        "catalog": {"architecture": "CUDA_ADA"},
        "users": USERS,
    }
    return {
        "apiVersion": "ds01/v1",
        "kind": "Site",
        "metadata": {"name": "unit"},
        "spec": body | spec,
    }


def quota_doc(**defaults: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ds01/v1",
        "kind": "QuotaPolicy",
        "metadata": {"name": "unit"},
        "spec": {"default_group": "all", "groups": {"all": {}}, "defaults": defaults},
    }


def workspace_doc(owner: str | None, name: str, **spec: Any) -> dict[str, Any]:
    """A small Workspace; `owner` None leaves it to the file's place under `users/`."""
    body = {"framework": {"name": "Pytorch", "version": "2.7.1"}, "cpus": 1, "memory": "1g"}
    metadata = {"name": name} if owner is None else {"name": name, "owner": owner}
    return {"apiVersion": "ds01/v1", "kind": "Workspace", "metadata": metadata, "spec": body | spec}


def write_repo(
    tmp_path: Path,
    docs: Sequence[Mapping[str, Any]] = (),
    *,
    site: Mapping[str, Any] | None = None,
    policy: Mapping[str, Any] | None = None,
    path: str = "ws.yaml",
) -> Path:
    """Write the repo under `tmp_path/config` (docs to `path` in it) and return its root."""
    root = tmp_path / "config"
    root.mkdir()
    shutil.copy(REPO_ROOT / "examples/gpus/h100-80gb-mig.yaml", tmp_path / "gpus.yaml")
    (root / "site.yaml").write_text(yaml.safe_dump(dict(site or site_doc())))
    (root / "quota.yaml").write_text(yaml.safe_dump(dict(policy or quota_doc())))
    if docs:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(yaml.safe_dump_all([dict(d) for d in docs]))
    return root


def load(root: Path) -> ConfigRepo:
    return validate_path(root, today=NOW.date())


def world(
    tmp_path: Path,
    containers: Sequence[ObservedContainer] = (),
    *,
    refused: Mapping[str, str] | None = None,
) -> World:
    """No other containers, the repo's GPU fixture, no accounts, at NOW."""
    observed = Observed(ENGINE, tuple(containers), MappingProxyType({}))
    inventory = load_inventory_file(tmp_path / "gpus.yaml")
    return World(observed, inventory, {}, NOW, refused_mounts=dict(refused or {}))
