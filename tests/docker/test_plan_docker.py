"""`plan` against a real engine: creates, the empty plan after, one case per field-table row,
drift from `docker update`, and containers ds01ctl does not own."""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import selectors
import time
from collections.abc import Callable

import pytest

from ds01ctl import labels as L
from ds01ctl.model.spec import Bind, ContainerSpec, limits_label
from ds01ctl.model.spechash import spec_hash
from ds01ctl.plan.actions import ActionKind, Reason, Unmanaged
from ds01ctl.plan.fields import FIELDS, OnChange
from tests.docker.dockerlab import Lab

pytestmark = pytest.mark.docker

MIG_OTHER = "MIG-0d6a9c31-7e2f-5b84-a3c5-9f1e6b0d2a47"  # a 2g.20gb: wrong for a 1g.10gb ask


def _relabel(spec: ContainerSpec, **changes: object) -> ContainerSpec:
    """`spec` with `changes`, its labels (hash, limits) recomputed as resolve would."""
    changed = dataclasses.replace(spec, **changes)  # type: ignore[arg-type]
    labels = dict(changed.labels)
    labels[L.DS01_SPEC_HASH] = spec_hash(changed)
    labels[L.DS01_LIMITS] = limits_label(changed)
    return dataclasses.replace(changed, labels=tuple(sorted(labels.items())))


def _with_label(spec: ContainerSpec, key: str, value: str) -> ContainerSpec:
    labels = dict(spec.labels)
    labels[key] = value
    return dataclasses.replace(spec, labels=tuple(sorted(labels.items())))


# How to make a live container differ from its manifest in each field of the table. A new
# row without an entry here fails test_every_field_has_a_mutation.
MUTATIONS: dict[str, Callable[[ContainerSpec], ContainerSpec]] = {
    "container_name": lambda s: _relabel(s, container_name=s.container_name + "x"),
    "image": lambda s: _relabel(
        _with_label(s, L.DS01_IMAGE, "ds01ctl-local/base:latest"), image="ds01ctl-local/base:latest"
    ),
    "image_tag": lambda s: _relabel(s, image_tag=s.image_tag.replace("._.", "._.0")),
    "user": lambda s: _relabel(s, account=dataclasses.replace(s.account, gid=61999)),
    "command": lambda s: _relabel(s, command=("bash",)),
    "tty": lambda s: _relabel(s, tty=False),
    "working_dir": lambda s: _relabel(s, working_dir="/tmp"),
    "env": lambda s: _relabel(s, env=(("EXTRA", "1"),)),
    "binds": lambda s: _relabel(s, binds=(*s.binds, Bind("/data", s.binds[0].source, True))),
    "network": lambda s: _relabel(s, network="none"),
    "shm_size": lambda s: _relabel(s, shm_size=s.shm_size * 2),
    "ulimits": lambda s: _relabel(s, ulimits=(("nofile", 4096),)),
    "stop_signal": lambda s: _relabel(s, stop_signal="SIGTERM"),
    "stop_grace": lambda s: _relabel(s, stop_grace=s.stop_grace + 1),
    # the same test's fixture UUIDs end in its token (lab.private_gpus)
    "gpus": lambda s: _relabel(s, gpus=(MIG_OTHER[:-8] + s.gpus[0][-8:],)),
    "cap_drop": lambda s: _relabel(s, cap_drop=()),
    "cap_add": lambda s: _relabel(s, cap_add=("KILL",)),
    "security_opt": lambda s: _relabel(s, security_opt=()),
    "log": lambda s: _relabel(s, log_options=(("max-file", "1"), ("max-size", "1048576"))),
    "labels": lambda s: _with_label(s, L.MLC_ARCH, "CUDA_AMPERE"),
    "nano_cpus": lambda s: _relabel(s, nano_cpus=s.nano_cpus * 2),
    "memory": lambda s: _relabel(s, memory=s.memory * 2, memory_swap=s.memory_swap * 2),
    "memory_swap": lambda s: _relabel(s, memory_swap=s.memory_swap * 2),
    "pids": lambda s: _relabel(s, pids=s.pids + 1),
    "restart_policy": lambda s: _relabel(s, restart_policy="unless-stopped"),
}


def test_every_field_has_a_mutation() -> None:
    assert set(MUTATIONS) == {row.name for row in FIELDS}


def test_plan_empty_engine_creates_every_workspace(lab: Lab) -> None:
    cpu = lab.workspace("alice", "cpu")
    mig = lab.workspace("h.baker", "mig", mig="1g.10gb")
    ldap = lab.workspace("228755@uni.example", "ldap", power="running")
    plan = lab.plan().plan
    assert [(a.kind, a.target) for a in plan.actions] == [
        (ActionKind.CREATE, f"workspace/228755@uni.example/{ldap}"),
        (ActionKind.CREATE, f"workspace/alice/{cpu}"),
        (ActionKind.CREATE, f"workspace/h.baker/{mig}"),
    ]
    specs = {a.target: a.spec for a in plan.actions}
    assert specs[f"workspace/h.baker/{mig}"].gpus[0].startswith("MIG-")  # type: ignore[union-attr]


def test_plan_after_creating_everything_is_empty(lab: Lab) -> None:
    lab.workspace("alice", "cpu")
    lab.workspace("h.baker", "mig", mig="1g.10gb")
    for action in lab.plan().plan.actions:
        assert action.container is not None
        lab.create(action.container)
    again = lab.plan().plan
    assert again.actions == ()
    assert again.drift == ()


@pytest.mark.parametrize("row", [r.name for r in FIELDS])
def test_plan_field_changed_gives_its_action(lab: Lab, row: str) -> None:
    lab.workspace("h.baker", "f", mig="1g.10gb")
    spec = lab.plan().plan.actions[0].container
    assert spec is not None
    lab.create(MUTATIONS[row](spec))
    actions = lab.plan().plan.actions
    expected = next(r for r in FIELDS if r.name == row).on_change
    assert len(actions) == 1
    action = actions[0]
    if expected is OnChange.REPLACE:
        assert action.kind is ActionKind.REPLACE
    else:
        assert action.kind is ActionKind.UPDATE
        assert action.reason is Reason.LIMITS_CHANGED
    assert row in {c.field for c in action.changes}


@pytest.mark.parametrize("row", [r.name for r in FIELDS])
def test_plan_field_unchanged_twin_is_empty(lab: Lab, row: str) -> None:
    # The twin of the case above: the same workspace created as planned gives no action.
    lab.workspace("h.baker", "f", mig="1g.10gb")
    spec = lab.plan().plan.actions[0].container
    assert spec is not None and MUTATIONS[row](spec) != spec
    lab.create(spec)
    assert lab.plan().plan.actions == ()


UPDATES = {
    "nano_cpus": {"NanoCpus": 500_000_000},
    "memory": {"Memory": 200 * 1024**2, "MemorySwap": 512 * 1024**2},
    "memory_swap": {"MemorySwap": 400 * 1024**2},
    "pids": {"PidsLimit": 300},
    "restart_policy": {"RestartPolicy": {"Name": "unless-stopped"}},
}


def test_updates_cover_every_updatable_row() -> None:
    assert set(UPDATES) == {r.name for r in FIELDS if r.on_change is OnChange.UPDATE}


@pytest.mark.parametrize("row", sorted(UPDATES))
def test_plan_docker_update_outside_is_drift(lab: Lab, row: str) -> None:
    lab.workspace("alice", "d")
    spec = lab.plan().plan.actions[0].container
    assert spec is not None
    container = lab.create(spec)
    url = lab.client._url("/containers/{0}/update", container)
    lab.client._raise_for_status(lab.client._post_json(url, data=UPDATES[row]))
    plan = lab.plan().plan
    assert [(a.kind, a.reason) for a in plan.actions] == [
        (ActionKind.UPDATE, Reason.CHANGED_OUTSIDE)
    ]
    assert [d.target for d in plan.drift] == [plan.actions[0].target]
    assert row in {c.field for c in plan.drift[0].changes}


def test_plan_never_acts_on_containers_it_does_not_own(lab: Lab) -> None:
    made: list[str] = []
    elsewhere = f"{lab.site}-elsewhere"  # unique: other tests' other-site containers never count
    mlc_labels = {"aime.mlc": "alice", "aime.mlc.USER": "alice", "aime.mlc.NAME": "legacy"}
    for labels in (
        {},
        {"ds01.managed": "true", "ds01.user": "alice"},
        mlc_labels,
        {"ds01.interface": "ds01ctl", "ds01.site": elsewhere, "ds01.owner": "alice"},
    ):
        made.append(
            lab.client.create_container(
                "ds01ctl-local/base:latest", "bash", labels=labels, name=lab.name(f"x{len(made)}")
            )["Id"]
        )
    try:
        plan = lab.plan(prune=True).plan
        assert plan.actions == ()
        reported = {u.container for u in plan.unmanaged}
        assert {lab.name("x1"), lab.name("x2")} <= reported
        assert lab.name("x0") not in reported
        assert Unmanaged("1 container(s)", None, f"managed by ds01ctl for site {elsewhere}") in (
            plan.unmanaged
        )
    finally:
        for container in made:
            lab.client.remove_container(container, force=True)


def test_plan_orphan_is_deleted_only_with_prune(lab: Lab) -> None:
    name = lab.workspace("alice", "gone")
    spec = lab.plan().plan.actions[0].container
    assert spec is not None
    lab.create(spec)
    lab.remove_workspace("alice", name)
    plan = lab.plan().plan
    assert plan.actions == () and plan.orphans == (f"workspace/alice/{name}",)
    pruned = lab.plan(prune=True).plan
    assert [(a.kind, a.reason) for a in pruned.actions] == [
        (ActionKind.DELETE, Reason.NO_MANIFEST),
        # The account image only it used goes with it, after it (--prune).
        (ActionKind.CLEANUP, Reason.LEFTOVER_ACCOUNT_IMAGE),
    ]


def test_plan_power_pinned_running_starts_a_stopped_workspace(lab: Lab) -> None:
    lab.workspace("alice", "p", power="running")
    spec = lab.plan().plan.actions[0].container
    assert spec is not None
    lab.create(spec)
    assert [(a.kind, a.reason) for a in lab.plan().plan.actions] == [
        (ActionKind.START, Reason.POWER)
    ]


# --- the command line -------------------------------------------------------------------------


def test_plan_target_limits_the_plan_and_an_unknown_one_names_the_nearest(lab: Lab) -> None:
    one = lab.workspace("alice", "one")
    two = lab.workspace("alice", "two")
    planned = lab.cli("plan", "-C", str(lab.root), "--target", f"Workspace/alice/{one}", "--json")
    assert planned.code == 0, planned.output
    document = json.loads(planned.stdout)
    assert [a["target"] for a in document["actions"]] == [f"workspace/alice/{one}"]
    assert document["meta"]["targets"] == [f"workspace/alice/{one}"]

    typo = f"workspace/alice/{two}x"
    wrong = lab.cli("plan", str(lab.root), "--target", typo)
    assert wrong.code == 1, wrong.output
    [line] = wrong.stderr.splitlines()
    assert line.startswith(f"error: --target {typo} matches nothing declared or planned")
    assert f"(nearest: workspace/alice/{two}" in line
    assert lab.containers() == []


def test_apply_answered_anything_but_yes_exits_1_and_changes_nothing(lab: Lab) -> None:
    lab.workspace("alice", "ask")
    # A real terminal: apply asks only on one.
    pid, fd = pty.fork()
    if pid == 0:  # the child: ds01ctl apply on the pseudo-terminal
        command = lab.cli_command("apply", str(lab.root), "--state-dir", str(lab.state_dir))
        os.execvpe(command[0], command, lab.cli_env())
    output = b""
    answered = False
    deadline = time.monotonic() + 120
    watch = selectors.DefaultSelector()
    watch.register(fd, selectors.EVENT_READ)
    while time.monotonic() < deadline:
        if not watch.select(timeout=1.0):
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"Only 'yes' will be accepted" in output:
            os.write(fd, b"no\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    assert answered, text
    assert os.waitstatus_to_exitcode(status) == 1, text
    assert "Apply cancelled: the answer was not 'yes'; nothing was changed." in text
    assert lab.containers() == []
