"""The CI gate refuses what the server would refuse: requests above the owner's quota, uid pins
shared by two logins; and on the server, a user's invalid object is set aside, not fatal."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from ds01ctl.catalog.frameworks import FrameworkCatalog
from ds01ctl.errors import ValidationFailed
from ds01ctl.live.gpus import load_inventory_file
from ds01ctl.manifests.validate import validate_path
from ds01ctl.model.observed import EngineInfo, Observed
from ds01ctl.resolve.desired import World, resolve
from ds01ctl.workflow import load_repo

REPO_ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
SITE = """\
apiVersion: ds01/v1
kind: Site
metadata: {name: lab}
spec:
  gpus: {source: fixture, fixture: ../gpus.yaml}
  catalog: {architecture: CUDA_ADA}
  users:
    alice: {uid: 5001, gid: 5001}
    bob: {uid: 5002, gid: 5002}
"""
QUOTA = """\
apiVersion: ds01/v1
kind: QuotaPolicy
metadata: {name: lab}
spec:
  default_group: students
  defaults: {cpus: 8, memory: 16g, shm_size: 2g, pids: 1024, gpu_budget: 2/7,
             max_gpus_per_container: 1, allow_whole_gpus: false, max_workspaces: 2}
  groups:
    students: {members: [alice, bob]}
"""


def _repo(tmp_path: Path, files: dict[str, str], site: str = SITE) -> Path:
    root = tmp_path / "config"
    shutil.copy(REPO_ROOT / "examples/gpus/h100-80gb-mig.yaml", tmp_path / "gpus.yaml")
    for name, text in {"site.yaml": site, "quota.yaml": QUOTA, **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _ws(name: str, **spec: Any) -> str:
    body = {"framework": {"name": "Pytorch", "version": "2.7.1"}, **spec}
    doc = {"apiVersion": "ds01/v1", "kind": "Workspace", "metadata": {"name": name}, "spec": body}
    return yaml.safe_dump(doc, sort_keys=False)


def _errors(root: Path) -> list[str]:
    repo = validate_path(root, today=NOW.date())
    return [f"{d.where} {d.code} {d.message}" for d in repo.errors]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"gpus": 1}, "quota.gpus workspace alice/w asks 1 whole GPU(s); alice may not use whole"),
        ({"mig": "3g.40gb"}, "quota.gpus workspace alice/w asks 3/7 GPU units; alice's whole GPU "),
        ({"cpus": 1000}, "quota.request workspace alice/w asks cpus 1000; alice's quota allows 8"),
        ({"memory": "32g"}, "quota.request workspace alice/w asks memory 32g; alice's quota allo"),
        ({"shm_size": "4g"}, "quota.request workspace alice/w asks shm_size 4g; alice's quota al"),
        ({"pids": 5000}, "quota.request workspace alice/w asks pids 5000; alice's quota allows "),
    ],
)
def test_validate_refuses_a_request_above_the_quota(
    tmp_path: Path, spec: dict[str, Any], expected: str
) -> None:
    root = _repo(tmp_path, {"users/alice/w.yaml": _ws("w", **spec)})
    found = _errors(root)
    assert found and all(f.startswith(f"{root}/users/alice/w.yaml:9:") for f in found)
    assert any(expected in f for f in found), found


def test_validate_accepts_requests_within_the_quota(tmp_path: Path) -> None:
    spec = {"mig": "2g.20gb", "cpus": 8, "memory": "16g", "shm_size": "2g", "pids": 1024}
    assert _errors(_repo(tmp_path, {"users/alice/w.yaml": _ws("w", **spec)})) == []


def test_validate_refuses_devices_per_container_and_extra_workspaces(tmp_path: Path) -> None:
    quota = QUOTA.replace("max_gpus_per_container: 1", "max_gpus_per_container: 0")
    files = {f"users/bob/{n}.yaml": _ws(n) for n in ("a", "b", "c")}
    files["users/alice/m.yaml"] = _ws("m", mig="1g.10gb")
    root = _repo(tmp_path, files)
    (root / "quota.yaml").write_text(quota)
    found = _errors(root)
    assert len(found) == 2
    assert found[0].endswith(
        "users/alice/m.yaml:9:8 quota.gpus workspace alice/m asks 1 GPU device(s); alice may "
        "use 0 per container (defaults)"
    )
    assert found[1].endswith(
        "users/bob/c.yaml:4:9 quota.workspaces workspace bob/c is bob's workspace number 3 "
        "(in name order); bob may have 2 (defaults)"
    )


def test_validate_refuses_a_uid_pinned_to_two_logins_at_the_second_pin(tmp_path: Path) -> None:
    site = SITE.replace("bob: {uid: 5002", "bob: {uid: 5001")
    root = _repo(tmp_path, {"users/alice/w.yaml": _ws("w")}, site=site)
    assert _errors(root) == [
        f"{root}/site.yaml:9:16 site.duplicate_uid bob is pinned to uid 5001, which is already "
        "alice's"
    ]


def _world(root: Path, **extra: Any) -> World:
    engine = EngineInfo("engine", "host", "27.0", "1.47", 16, 64 * 1024**3)
    docker = Observed(engine, (), MappingProxyType({}))
    inventory = load_inventory_file(root.parent / "gpus.yaml")
    return World(docker, inventory, {}, NOW, **extra)


def test_plan_sets_a_users_invalid_object_aside_and_plans_the_rest(tmp_path: Path) -> None:
    files = {
        "users/alice/w.yaml": _ws("w"),
        "users/bob/broken.yaml": _ws("broken", cpus="lots"),
        "users/bob/big.yaml": _ws("big", cpus=64),
    }
    repo = load_repo(_repo(tmp_path, files), NOW.date())
    desired = resolve(repo, _world(repo.root), FrameworkCatalog.load())
    assert [s.key for s in desired.specs] == ["workspace/alice/w"]
    pending = {p.target: p.reason for p in desired.pending}
    assert sorted(pending) == ["workspace/bob/big", "workspace/bob/broken"]
    assert pending["workspace/bob/broken"].startswith(
        "invalid: users/bob/broken.yaml:9:9: error[schema.invalid]: "
    )
    assert pending["workspace/bob/big"].startswith(
        "invalid: users/bob/big.yaml:9:9: error[quota.request]: workspace bob/big asks cpus 64"
    )


def test_plan_unreadable_user_file_keeps_that_owners_undeclared_containers(
    tmp_path: Path,
) -> None:
    from tests.unit.test_resolve import _stopped

    files = {"users/alice/w.yaml": _ws("w"), "users/bob/broken.yaml": "kind: [\n"}
    repo = load_repo(_repo(tmp_path, files), NOW.date())
    world = _world(repo.root)
    live = _stopped("bob", "old", (), NOW)
    world = World(
        Observed(world.observed.engine, (live,), MappingProxyType({})), world.inventory, {}, NOW
    )
    desired = resolve(repo, world, FrameworkCatalog.load())
    pending = {p.target: p.reason for p in desired.pending}
    assert sorted(pending) == ["users/bob/broken.yaml", "workspace/bob/old"]
    assert pending["workspace/bob/old"].startswith("invalid: users/bob/broken.yaml:")
    assert "workspace/bob/old" in desired.keys  # so it is no orphan, even with --prune


def test_plan_errors_outside_users_still_stop_it(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"users/alice/w.yaml": _ws("w")})
    (root / "quota.yaml").write_text(QUOTA.replace("pids: 1024", "pids: many"))
    with pytest.raises(ValidationFailed):
        load_repo(root, NOW.date())


def test_plan_pin_on_another_logins_host_uid_leaves_that_owner_pending(tmp_path: Path) -> None:
    files = {"users/alice/w.yaml": _ws("w"), "users/bob/v.yaml": _ws("v")}
    repo = load_repo(_repo(tmp_path, files), NOW.date())
    world = _world(repo.root, uid_logins={5001: "alice", 5002: "carol"})
    desired = resolve(repo, world, FrameworkCatalog.load())
    assert [s.key for s in desired.specs] == ["workspace/alice/w"]
    assert [(p.target, p.reason) for p in desired.pending] == [
        (
            "workspace/bob/v",
            "refused: the Site pins bob to uid 5002, which is carol's on this host (pin bob to "
            "their own uid, or remove the pin to use the host's account)",
        )
    ]
