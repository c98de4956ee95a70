"""A symlink in a directory the mount policy allows never takes root's engine around it.

ds01ctl refuses such a source at plan time (the workspace is pending, the rest proceeds) and
again right before a create. What holds after that is the engine's guarantee: it follows a
bind source at every start, but the container runs as the owner's uid, so a source swapped for
a symlink to /etc or the Docker socket brings in nothing beyond the owner's own rights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ds01ctl.apply.executor import Context, NullReporter, execute
from ds01ctl.apply.journal import Journal
from ds01ctl.drivers.docker import DockerDriver
from tests.docker.dockerlab import UIDS, Lab

pytestmark = pytest.mark.docker

SOCKET = "/var/run/docker.sock"


def _owned_dir(path: str, owner: str = "alice") -> Path:
    """A host directory as its owner would have it: theirs, 0755."""
    made = Path(path)
    made.mkdir(parents=True, exist_ok=True)
    os.chown(made, UIDS[owner], UIDS[owner])
    return made


def _swap_for_symlink(source: Path, target: str) -> None:
    """What the owner can do to a directory of theirs at any time."""
    source.rename(source.with_name(source.name + ".moved"))
    source.symlink_to(target)


def _as_user(lab: Lab, container: str, script: str) -> tuple[int, str]:
    """Run `script` in the container as its own user (mlc open's), exit code and output."""
    done = lab.docker("exec", container, "bash", "-c", script, check=False)
    return done.code, done.output


def _binds(lab: Lab, container: str) -> list[str]:
    return list(lab.client.inspect_container(container)["HostConfig"]["Binds"] or [])


@pytest.mark.parametrize("target", ["/etc", SOCKET, "vic"], ids=["etc", "socket", "vic"])
def test_symlinked_mount_is_pending_at_plan_time_and_never_created(lab: Lab, target: str) -> None:
    victim = _owned_dir(lab.host_dir("h.baker", "workspace"), "h.baker")
    home = _owned_dir(lab.host_dir("alice"))
    (home / "x").symlink_to(str(victim) if target == "vic" else target)
    sneaky = lab.workspace("alice", "sneaky", mounts={"workspace": str(home / "x")})
    plain = lab.workspace("alice", "plain")
    _owned_dir(lab.host_dir("alice", "workspace"))

    done = lab.apply("--json")
    assert done.code == 0, done.output
    document, _ = json.JSONDecoder().raw_decode(done.stdout)
    [pending] = document["pending"]
    assert pending["target"] == f"workspace/alice/{sneaky}"
    assert f"{home}/x is a symlink (to " in pending["reason"]
    assert "\n" not in pending["reason"]
    assert [a["target"] for a in document["actions"]] == [f"workspace/alice/{plain}"]
    assert lab.containers_of("alice", sneaky) == []
    assert lab.containers_of("alice", plain) != []


def test_source_swapped_after_the_plan_fails_that_create_only(lab: Lab) -> None:
    moved = _owned_dir(lab.host_dir("alice", "moved"))
    _owned_dir(lab.host_dir("alice", "workspace"))
    sneaky = lab.workspace("alice", "sneaky", mounts={"workspace": str(moved)})
    plain = lab.workspace("alice", "plain")
    planned = lab.plan()
    assert planned.plan.pending == ()
    _swap_for_symlink(moved, "/etc")  # between plan and apply

    assert planned.repo.site is not None
    journal = Journal(lab.state_dir, "swap-test")
    try:
        driver = DockerDriver(lab.client)
        context = Context(driver, lab.site, False, planned.repo.site.spec.mount_policy)
        outcome = execute(planned.plan, context, journal, NullReporter())
    finally:
        journal.close()
    by_target = {a.target: a.steps[0].id for a in planned.plan.actions}  # each one's create
    error = outcome.failed[by_target[f"workspace/alice/{sneaky}"]]
    assert error.startswith(f"workspace/alice/{sneaky} is not created: its /workspace mount: ")
    assert f"{moved} is a symlink (to /etc)" in error and "\n" not in error
    assert by_target[f"workspace/alice/{plain}"] in outcome.done
    assert lab.containers_of("alice", sneaky) == []


def _applied_workspace(lab: Lab, **spec: object) -> tuple[str, Path, str]:
    """A running (or stopped) workspace of alice's on a host dir of hers: name, dir, container."""
    source = _owned_dir(lab.host_dir("alice", "workspace"))
    name = lab.workspace("alice", "victim", **spec)
    done = lab.apply()
    assert done.code == 0, done.output
    return name, source, lab.container_name("alice", name)


def test_source_swapped_for_etc_after_apply_gives_the_user_nothing_of_root(lab: Lab) -> None:
    name, source, container = _applied_workspace(lab, power="running")
    lab.docker("stop", "-t", "0", container)
    _swap_for_symlink(source, "/etc")
    lab.docker("start", container)  # the engine follows the symlink at every start

    probe = f"ds01ctl-probe-{lab.token}"
    code, output = _as_user(
        lab,
        container,
        f"id -u; test -f /workspace/passwd && echo etc-is-mounted; "
        f"touch /workspace/{probe}; echo x >> /workspace/passwd",
    )
    try:
        assert output.startswith(f"{UIDS['alice']}\netc-is-mounted"), output
        assert code != 0 and output.count("Permission denied") == 2, output
        assert not Path("/etc", probe).exists()
    finally:
        Path("/etc", probe).unlink(missing_ok=True)

    # ds01ctl no longer trusts that source: the workspace is pending, its container untouched.
    document = json.loads(lab.plan_cli("--json").stdout)
    assert [p["target"] for p in document["pending"]] == [f"workspace/alice/{name}"]
    assert document["actions"] == []
    assert _binds(lab, container) == [f"{source}:/workspace"]


def test_source_swapped_for_the_docker_socket_is_unusable_to_the_user(lab: Lab) -> None:
    # Created but never started (power: stopped): its /data mount point does not exist yet,
    # so the engine mounts the socket itself there at the first start. The worst case.
    data = _owned_dir(lab.host_dir("alice", "data"))
    _, _, container = _applied_workspace(lab, power="stopped", mounts={"data": str(data)})
    _swap_for_symlink(data, SOCKET)
    lab.docker("start", container)

    code, output = _as_user(
        lab,
        container,
        "id -G; stat -c '%u %g %a' /data; test -S /data && echo is-a-socket; "
        "test -w /data && echo writable; echo ping > /data",
    )
    socket_gid = os.stat(SOCKET).st_gid
    groups, mode = output.splitlines()[:2]
    assert str(socket_gid) not in groups.split(), output
    assert mode == f"0 {socket_gid} 660", output
    assert "is-a-socket" in output and "writable" not in output, output
    assert code != 0 and "Permission denied" in output, output
    # The same test as root in the container does find it writable: the check is real.
    root = lab.docker("exec", "-u", "0", container, "sh", "-c", "test -w /data && echo writable")
    assert root.stdout.strip() == "writable"


def test_started_workspace_cannot_start_on_the_docker_socket(lab: Lab) -> None:
    # Once started, /workspace is a directory in the container: the socket cannot go there.
    _, source, container = _applied_workspace(lab, power="running")
    lab.docker("stop", "-t", "0", container)
    _swap_for_symlink(source, SOCKET)
    started = lab.docker("start", container, check=False)
    assert started.code != 0 and "not a directory" in started.output, started.output
    assert not lab.client.inspect_container(container)["State"]["Running"]
