"""The pure diff on hand-built observations: a container as Docker would report it, built
from the spec it was created from (then changed the way the case needs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ds01ctl import labels as L
from ds01ctl.catalog.frameworks import FrameworkCatalog
from ds01ctl.live.gpus import load_inventory_file
from ds01ctl.model.inventory import GpuProcess
from ds01ctl.model.observed import EngineInfo, ImageConfig, Observed, ObservedContainer
from ds01ctl.model.spec import ContainerSpec
from ds01ctl.model.spechash import as_made_by, spec_hash
from ds01ctl.plan.actions import ActionKind, Reason
from ds01ctl.plan.diff import diff
from ds01ctl.resolve.desired import World, resolve
from tests.configrepo import NOW
from tests.observed import observed_container, observed_entry
from tests.unit.test_resolve import _repo, _workspace

ENGINE = EngineInfo("engine", "host", "20.10", "1.41", 8, 32 * 1024**3)
VANISHED = "MIG-00000000-dead-5000-8000-000000000000"


def _as_docker_reports(spec: ContainerSpec, **changes: Any) -> ObservedContainer:
    """The container `spec` makes, as `docker inspect` shows it."""
    spec = dataclasses.replace(spec, **changes)
    return observed_container(observed_entry(spec, id="c-" + spec.name), "unit")


def _plan(
    tmp_path: Path,
    repo: Any,
    *containers: ObservedContainer,
    processes: tuple[GpuProcess, ...] = (),
) -> Any:
    docker = Observed(ENGINE, tuple(containers), MappingProxyType({}))
    inventory = load_inventory_file(tmp_path / "gpus.yaml")
    inventory = dataclasses.replace(inventory, processes=processes)
    desired = resolve(repo, World(docker, inventory, {}, NOW), FrameworkCatalog.load())
    return diff(desired, docker, inventory, prune=False, logins={1002: "bob"})


def _spec(tmp_path: Path, repo: Any) -> ContainerSpec:
    action = _plan(tmp_path, repo).actions[0]
    assert action.kind is ActionKind.CREATE and action.spec is not None
    return action.spec  # type: ignore[no-any-return]


def test_diff_container_as_created_is_no_change(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w", mig="1g.10gb"))
    live = _as_docker_reports(_spec(tmp_path, repo))
    assert _plan(tmp_path, repo, live).actions == ()


# After a reboot re-partitioned the MIG GPU, the container names a UUID that is gone.
def test_diff_vanished_gpu_replaces_and_says_so(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w", mig="1g.10gb"))
    live = _as_docker_reports(_spec(tmp_path, repo), gpus=(VANISHED,))
    plan = _plan(tmp_path, repo, live)
    assert [(a.kind, a.reason) for a in plan.actions] == [(ActionKind.REPLACE, Reason.GPU_GONE)]
    assert VANISHED in (plan.actions[0].note or "")


def test_diff_gpu_use_outside_ds01ctl_is_reported_with_its_owner(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w"))
    live = _as_docker_reports(_spec(tmp_path, repo))
    stray = GpuProcess(pid=4242, device_uuid=VANISHED, uid=1002, name="python")
    plan = _plan(tmp_path, repo, live, processes=(stray,))
    assert [(u.container, u.owner) for u in plan.unmanaged] == [
        ("pid 4242 (python) on the host", "bob")
    ]
    assert "unmanaged GPU use" in plan.unmanaged[0].why


def test_diff_container_missing_its_spec_hash_is_replaced_not_crashed_on(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w"))
    spec = _spec(tmp_path, repo)
    labels = tuple((k, v) for k, v in spec.labels if k != L.DS01_SPEC_HASH)
    plan = _plan(tmp_path, repo, _as_docker_reports(spec, labels=labels))
    assert [(a.kind, a.reason) for a in plan.actions] == [
        (ActionKind.REPLACE, Reason.CHANGED_OUTSIDE)
    ]
    assert "labels are incomplete" in (plan.actions[0].note or "")


def test_diff_container_of_an_unknown_kind_is_reported_and_left_alone(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w"))
    spec = _spec(tmp_path, repo)
    labels = tuple((k, "robot" if k == L.DS01_KIND else v) for k, v in spec.labels)
    # Under a name of its own: one with the workspace's container name would keep it pending.
    odd = _as_docker_reports(spec, labels=labels, name="odd", container_name="odd._.1001")
    plan = _plan(tmp_path, repo, odd)
    assert [(a.kind, a.target) for a in plan.actions] == [(ActionKind.CREATE, "workspace/alice/w")]
    assert any("kind 'robot'" in w for w in plan.warnings)


def _made_by_version_1(spec: ContainerSpec) -> ObservedContainer:
    """The container ds01ctl with hash version 1 made for the same manifest: no confinement,
    no device-selecting environment, the default bridge network, no log size limit, labelled
    with the version-1 hash."""
    spec = as_made_by(spec, "1")
    labels = dict(spec.labels)
    labels[L.DS01_HASH_VERSION] = "1"
    labels[L.DS01_SPEC_HASH] = spec_hash(spec, "1")
    live = _as_docker_reports(
        spec, labels=tuple(sorted(labels.items())), cap_drop=(), security_opt=()
    )
    assert live.config is not None
    made = dataclasses.replace(
        live.config, env=MappingProxyType(dict(spec.env)), log_driver="json-file", log_options=()
    )
    return dataclasses.replace(live, config=made)


def test_diff_container_of_hash_version_1_is_replaced_for_security_defaults(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w", env={"HF_HOME": "/workspace/.hf"}))
    plan = _plan(tmp_path, repo, _made_by_version_1(_spec(tmp_path, repo)))
    [action] = plan.actions
    assert (action.kind, action.reason) == (ActionKind.REPLACE, Reason.SECURITY_DEFAULTS)
    assert "hash version 1" in (action.note or "")
    changed = {c.field: (c.before, c.after) for c in action.changes}
    assert changed["cap_drop"] == ((), ("ALL",))
    assert changed["security_opt"] == ((), ("no-new-privileges",))
    assert changed["env"] == ({"NVIDIA_VISIBLE_DEVICES": None}, {"NVIDIA_VISIBLE_DEVICES": "void"})
    assert changed["network"] == ("bridge", "ds01-unit")
    assert changed["log"] == (
        ("json-file", ()),
        ("json-file", (("max-file", "3"), ("max-size", str(50 * 1024**2)))),
    )
    assert all(c.forces_replace for c in action.changes)


def test_diff_container_of_hash_version_1_with_a_changed_manifest_is_spec_changed(
    tmp_path: Path,
) -> None:
    (tmp_path / "old").mkdir()
    old = _repo(tmp_path / "old", _workspace("alice", "w"))
    live = _made_by_version_1(_spec(tmp_path / "old", old))
    new = _repo(tmp_path, _workspace("alice", "w", env={"A": "1"}))
    [action] = _plan(tmp_path, new, live).actions
    assert (action.kind, action.reason) == (ActionKind.REPLACE, Reason.SPEC_CHANGED)


def test_diff_confinement_changed_outside_is_replaced(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w"))
    spec = _spec(tmp_path, repo)
    loose = _as_docker_reports(spec, security_opt=("seccomp=unconfined",), cap_add=("SYS_ADMIN",))
    [action] = _plan(tmp_path, repo, loose).actions
    assert (action.kind, action.reason) == (ActionKind.REPLACE, Reason.CHANGED_OUTSIDE)
    assert {c.field for c in action.changes} == {"security_opt", "cap_add"}


def test_diff_leftover_helper_is_cleaned_up_and_nothing_else(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w"))
    live = _as_docker_reports(_spec(tmp_path, repo))
    labels = {L.DS01_HELPER: L.HELPER_ACCOUNT_SETUP, L.DS01_SITE: "lab", L.DS01_OWNER: "alice"}
    helper = dataclasses.replace(
        live,
        id="0123456789abcdef",
        name="eager_turing",
        labels=MappingProxyType(labels),
        ownership=L.ownership(labels, "lab"),
    )
    assert helper.ownership is L.Ownership.HELPER
    [action] = _plan(tmp_path, repo, live, helper).actions
    assert (action.kind, action.reason, action.target, action.container_id) == (
        ActionKind.CLEANUP,
        Reason.LEFTOVER_HELPER,
        "helper/alice/0123456789ab",
        "0123456789abcdef",
    )
    assert L.ownership(labels, "another-site") is L.Ownership.FOREIGN


def test_diff_spec_sets_the_device_environment_so_an_image_value_never_wins(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w", mig="1g.10gb"))
    spec = _spec(tmp_path, repo)
    assert dict(spec.environment)["NVIDIA_VISIBLE_DEVICES"] == ",".join(spec.gpus)
    # An image that bakes NVIDIA_VISIBLE_DEVICES=all hands it down; ours overrides it.
    live = dataclasses.replace(
        _as_docker_reports(spec), image_config=ImageConfig(env={"NVIDIA_VISIBLE_DEVICES": "all"})
    )
    assert _plan(tmp_path, repo, live).actions == ()
