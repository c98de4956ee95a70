"""The pure resolve step: manifests + one observation → container specs, pending, releases.

Observations are built by hand (no Docker): a `Observed` of `ObservedContainer`s with just
the inspect fields resolve reads.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from ds01ctl import labels as L
from ds01ctl.catalog.frameworks import FrameworkCatalog
from ds01ctl.model.inventory import GpuProcess
from ds01ctl.model.observed import ContainerConfig, ObservedContainer
from ds01ctl.model.spec import UserAccount
from ds01ctl.resolve.desired import Desired, resolve
from tests.configrepo import NOW, load, quota_doc, site_doc, workspace_doc, world, write_repo

MIG_1G = "MIG-3b7e1f58-a4c2-5d96-8e0b-1c5a7d3f9e62"  # a 1g.10gb of h100-80gb-mig.yaml
MIG_1G_OTHER = "MIG-8c2d4a70-f6b1-5e38-9d7a-4e0c2b6f8a15"

_policy = quota_doc
_workspace = workspace_doc


def _repo(
    tmp_path: Path,
    *docs: dict[str, Any],
    policy: dict[str, Any] | None = None,
    refused: tuple[str, ...] = (),
) -> Any:
    repo = load(write_repo(tmp_path, docs, policy=policy))
    assert [d.code for d in repo.errors] == list(refused), repo.errors
    return repo


def _stopped(
    owner: str, name: str, gpus: tuple[str, ...], stopped: dt.datetime
) -> ObservedContainer:
    labels = {
        L.DS01_INTERFACE: L.INTERFACE,
        L.DS01_SITE: "unit",
        L.DS01_KIND: "workspace",
        L.DS01_OWNER: owner,
        L.DS01_NAME: name,
    }
    config = ContainerConfig(
        name=f"{name}._.1", image_tag="x", labels=labels, gpus=tuple(sorted(gpus)), finished=stopped
    )
    return ObservedContainer(
        id=f"{owner}-{name}",
        name=f"{name}._.1",
        state="exited",
        labels=MappingProxyType(labels),
        image="x",
        image_id="sha256:x",
        ownership=L.Ownership.OURS,
        config=config,
    )


def _resolve(repo: Any, tmp_path: Path, *containers: ObservedContainer) -> Desired:
    return resolve(repo, world(tmp_path, containers), FrameworkCatalog.load())


def test_resolve_quota_exceeded_is_pending_with_reason(tmp_path: Path) -> None:
    docs = (_workspace("alice", "big", cpus=4),)
    repo = _repo(tmp_path, *docs, policy=_policy(cpus=2), refused=("quota.request",))
    desired = _resolve(repo, tmp_path)
    assert desired.specs == ()
    assert [p.target for p in desired.pending] == ["workspace/alice/big"]
    assert "quota allows 2" in desired.pending[0].reason


def test_resolve_aggregate_cpus_keep_the_first_and_hold_the_newest(tmp_path: Path) -> None:
    docs = [_workspace("alice", n, cpus=1) for n in ("a", "b", "c")]
    repo = _repo(tmp_path, *docs, policy=_policy(aggregate_cpus=2))
    desired = _resolve(repo, tmp_path)
    assert [s.name for s in desired.specs] == ["a", "b"]
    assert [p.target for p in desired.pending] == ["workspace/alice/c"]
    assert "aggregate limit is 2" in desired.pending[0].reason


# The engine would reject it: it is refused by name, and the rest of the plan goes on.
def test_resolve_cpus_over_the_host_is_refused_and_the_rest_proceeds(tmp_path: Path) -> None:
    docs = [_workspace("alice", "huge", cpus=16), _workspace("alice", "small", cpus=1)]
    repo = _repo(tmp_path, *docs, policy=_policy(cpus=64))
    desired = _resolve(repo, tmp_path)
    assert [s.name for s in desired.specs] == ["small"]
    assert [(p.target, p.reason) for p in desired.pending] == [
        (
            "workspace/alice/huge",
            "refused: asks 16 CPUs; this host has 8 (lower cpus in the manifest)",
        )
    ]


def test_resolve_owner_without_uid_is_an_error_naming_them(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _workspace("carol", "nb"))
    desired = _resolve(repo, tmp_path)
    assert len(desired.errors) == 1
    assert "carol has no passwd entry" in desired.errors[0]


# A stopped workspace past its GPU hold gives its GPU up only to someone who waits for it.
def test_resolve_expired_hold_released_for_a_waiting_request(tmp_path: Path) -> None:
    docs = [_workspace("alice", "old", mig="1g.10gb"), _workspace("bob", "new", mig="1g.10gb")]
    repo = _repo(tmp_path, *docs, policy=_policy(gpu_hold_after_stop="15m"))
    stopped = NOW - dt.timedelta(hours=1)
    other = _stopped("x", "holder", (MIG_1G_OTHER,), NOW)  # not ours: keeps the other 1g
    other = dataclasses.replace(other, ownership=L.Ownership.ADOPTABLE)
    desired = _resolve(repo, tmp_path, _stopped("alice", "old", (MIG_1G,), stopped), other)
    assert [h.key for h in desired.released] == ["workspace/alice/old"]
    assert [(s.key, s.gpus) for s in desired.specs] == [("workspace/bob/new", (MIG_1G,))]
    assert [p.target for p in desired.pending] == ["workspace/alice/old"]


def test_resolve_hold_within_its_time_keeps_the_gpu_and_says_until_when(tmp_path: Path) -> None:
    docs = [_workspace("alice", "old", mig="1g.10gb"), _workspace("bob", "new", mig="1g.10gb")]
    repo = _repo(tmp_path, *docs, policy=_policy(gpu_hold_after_stop="15m"))
    recently = NOW - dt.timedelta(minutes=5)
    desired = _resolve(repo, tmp_path, _stopped("alice", "old", (MIG_1G,), recently))
    assert desired.released == ()
    assert "keeps its GPU until 2026-11-24 12:10 UTC" in desired.notes[0]


def test_resolve_expired_hold_kept_when_nobody_waits(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        _workspace("alice", "old", mig="1g.10gb"),
        policy=_policy(gpu_hold_after_stop="15m"),
    )
    long_ago = NOW - dt.timedelta(days=2)
    desired = _resolve(repo, tmp_path, _stopped("alice", "old", (MIG_1G,), long_ago))
    assert desired.released == ()
    assert [(s.key, s.gpus) for s in desired.specs] == [("workspace/alice/old", (MIG_1G,))]


@pytest.mark.parametrize("expires, ignored", [("2026-11-01", True), ("2027-01-01", False)])
def test_resolve_exemption_applies_until_it_expires(
    tmp_path: Path, expires: str, ignored: bool
) -> None:
    policy = _policy(cpus=1)
    policy["spec"]["exemptions"] = [
        {"user": "alice", "limits": {"cpus": 4}, "expires": expires, "reason": "deadline"}
    ]
    refused = ("quota.request",) if ignored else ()
    repo = _repo(tmp_path, _workspace("alice", "w", cpus=3), policy=policy, refused=refused)
    desired = _resolve(repo, tmp_path)
    assert bool(desired.pending) is ignored
    assert any("is ignored" in w for w in desired.warnings) is ignored


# An orphaned workspace (manifest removed, not pruned) still names its GPU: nobody gets it.
def test_resolve_orphan_keeps_its_gpu_from_new_requests(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _workspace("bob", "new", mig="1g.10gb"))
    orphan = _stopped("alice", "gone", (MIG_1G,), NOW)
    other = dataclasses.replace(
        _stopped("x", "y", (MIG_1G_OTHER,), NOW), ownership=L.Ownership.ADOPTABLE
    )
    desired = _resolve(repo, tmp_path, orphan, other)
    assert desired.specs == ()
    assert [p.target for p in desired.pending] == ["workspace/bob/new"]


# A stray process on a workspace's own GPU does not move the workspace off it.
def test_resolve_stray_process_does_not_move_the_owner(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w", mig="1g.10gb"))
    mine = _stopped("alice", "w", (MIG_1G,), NOW)
    plain = world(tmp_path, (mine,))
    stray = GpuProcess(pid=4242, device_uuid=MIG_1G, uid=1002, name="python")
    inventory = dataclasses.replace(plain.inventory, processes=(stray,))
    desired = resolve(
        repo, dataclasses.replace(plain, inventory=inventory), FrameworkCatalog.load()
    )
    assert [(s.key, s.gpus) for s in desired.specs] == [("workspace/alice/w", (MIG_1G,))]


# Each workspace keeps its own GPU hold: one workspace's shorter hold is not its owner's.
def test_resolve_gpu_hold_is_per_workspace(tmp_path: Path) -> None:
    docs = [
        _workspace("alice", "brief", mig="1g.10gb", lifecycle={"gpu_hold_after_stop": "10m"}),
        _workspace("alice", "long", mig="1g.10gb"),
    ]
    repo = _repo(tmp_path, *docs, policy=_policy(gpu_hold_after_stop="1h", gpu_budget=2))
    stopped = NOW - dt.timedelta(minutes=20)
    desired = _resolve(
        repo,
        tmp_path,
        _stopped("alice", "brief", (MIG_1G,), stopped),
        _stopped("alice", "long", (MIG_1G_OTHER,), stopped),
    )
    # brief's 10 minutes are over; long keeps the quota's hour.
    assert desired.notes == (
        "workspace/alice/long is not running and keeps its GPU until 2026-11-24 12:40 UTC; "
        "after that it gives it up to whoever is waiting",
    )


# An exemption allowed a long hold and has expired: the plan clamps it to the quota, says so.
def test_resolve_lifecycle_clamped_when_its_exemption_expired(tmp_path: Path) -> None:
    policy = _policy(gpu_hold_after_stop="15m")
    policy["spec"]["exemptions"] = [
        {
            "user": "alice",
            "limits": {"gpu_hold_after_stop": "30d"},
            "expires": "2026-11-01",
            "reason": "deadline",
        }
    ]
    docs = [_workspace("alice", "w", mig="1g.10gb", lifecycle={"gpu_hold_after_stop": "30d"})]
    repo = _repo(tmp_path, *docs, policy=policy)
    stopped = NOW - dt.timedelta(minutes=5)
    desired = _resolve(repo, tmp_path, _stopped("alice", "w", (MIG_1G,), stopped))
    assert any(
        "lifecycle gpu_hold_after_stop 30d is above alice's quota" in w and "15m" in w
        for w in desired.warnings
    ), desired.warnings
    assert "keeps its GPU until 2026-11-24 12:10 UTC" in desired.notes[0]


# With no network named anywhere, workspaces go on the site network (ds01-<site>).
def test_resolve_default_network_is_the_site_network(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w"), _workspace("bob", "n", network="none"))
    assert [(s.name, s.network) for s in _resolve(repo, tmp_path).specs] == [
        ("w", "ds01-unit"),
        ("n", "none"),
    ]


# An owner without a uid pin: validate cannot tell whose per-container tag `…:x._.1001` is;
# plan can, and refuses alice's tag to carol by name while the rest of the plan goes on.
def test_resolve_other_users_container_tag_refused_at_plan(tmp_path: Path) -> None:
    site = site_doc(allowed_images=["registry.lab.example/*"])
    docs = [
        _workspace("carol", "stolen", framework=None, image_ref="registry.lab.example/a:x._.1001"),
        _workspace("carol", "mine", framework=None, image_ref="registry.lab.example/a:y._.3000"),
    ]
    repo = load(write_repo(tmp_path, docs, site=site))
    assert not repo.errors, repo.errors
    carol = {"carol": UserAccount("carol", 3000, 3000)}
    desired = resolve(repo, replace(world(tmp_path), accounts=carol), FrameworkCatalog.load())
    assert [s.name for s in desired.specs] == ["mine"]
    assert [p.target for p in desired.pending] == ["workspace/carol/stolen"]
    assert "another user's container (uid 1001)" in desired.pending[0].reason


# memory_swap is memory plus swap (DS01's and Docker's --memory-swap): the quota's swap cap
# less its memory cap is the swap allowed, on top of a workspace's own memory.
@pytest.mark.parametrize(
    "defaults, memory, swap",
    [
        ({}, "256m", 256 * 2**20),  # built-in 32g/32g: no swap, not 31.75g of it
        ({"memory": "32g", "memory_swap": "48g"}, "256m", 256 * 2**20 + 16 * 2**30),
        ({"memory": "32g", "memory_swap": "48g"}, "32g", 48 * 2**30),  # never above the cap
        ({"memory": "32g", "memory_swap": "16g"}, "20g", 20 * 2**30),  # never below memory
    ],
)
def test_resolve_memory_swap_follows_memory(
    tmp_path: Path, defaults: dict[str, Any], memory: str, swap: int
) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w", memory=memory), policy=_policy(**defaults))
    (spec,) = _resolve(repo, tmp_path).specs
    assert spec.memory_swap == swap
    assert spec.memory_swap >= spec.memory


def test_resolve_notes_the_exemption_that_allows_a_request(tmp_path: Path) -> None:
    policy = _policy(cpus=1)
    policy["spec"]["exemptions"] = [
        {"user": "alice", "limits": {"cpus": 4}, "expires": "2027-01-01", "reason": "deadline"}
    ]
    docs = (_workspace("alice", "w", cpus=3), _workspace("alice", "small", cpus=1))
    desired = _resolve(_repo(tmp_path, *docs, policy=policy), tmp_path)
    assert [n for n in desired.notes if "exemption" in n] == [
        "workspace/alice/w: cpus 3 is above alice's quota (1); allowed by the exemption "
        "until 2027-01-01: deadline"
    ]
