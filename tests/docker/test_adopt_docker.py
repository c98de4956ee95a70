"""Adopting a container `mlc create` made, on the real engine.

The stand-in is what real mlc 2.2.0 made (tests/data/mlc-create-ground-truth.json, the case
with -w, -d and -m), with this lab's paths, login and uid, minus what this engine refuses
(`--privileged`, the host network and IPC, /dev/snd and /dev/video0, `--gpus all`, memlock,
the X11 socket): its image is mlc's per-container tag `<repo>:<name>._.<uid>`, a commit of
the base with the user's account added, as mlc's set-up container does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ds01ctl import labels as L
from ds01ctl.workflow import SLOW_ACTION_ENV
from tests.docker.dockerlab import UIDS, Lab

pytestmark = pytest.mark.docker

GROUND_TRUTH = Path(__file__).resolve().parents[1] / "data" / "mlc-create-ground-truth.json"
BASE = "ds01ctl-local/pytorch:2.7.1"  # where the lab's Site mirrors mlc's Pytorch 2.7.1 image
REFUSED_HERE = {"HostConfig.Privileged", "HostConfig.NetworkMode", "HostConfig.IpcMode"}


def _ground_truth() -> dict[str, Any]:
    [case] = [c for c in json.loads(GROUND_TRUTH.read_text())["cases"] if "-d" in c["mlc_command"]]
    return dict(case["container"])


def _mlc_create(lab: Lab, owner: str, name: str, *, labelled_for: str | None = None) -> str:
    """A container as `mlc create NAME Pytorch 2.7.1 -w … -d … -m …` run by `owner` makes
    it (as another login's, with `labelled_for`); started, as `mlc open` leaves it."""
    truth = _ground_truth()
    uid = UIDS[owner]
    login = labelled_for or owner
    container = f"{name}._.{uid}"
    paths = {m: lab.host_dir(owner, m) for m in ("workspace", "data", "models")}
    for path in paths.values():
        Path(path).mkdir(exist_ok=True)
        Path(path).chmod(0o750)
        os.chown(path, uid, uid)
    # mlc's set-up container adds the account to the base and is committed to the
    # per-container tag (no apt here: the test base has none).
    tag = f"ds01ctl-local/pytorch:{container}"
    account = (
        f"echo '{login}:x:{uid}:{uid}::/home/{login}:/bin/bash' >> /etc/passwd && "
        f"echo '{login}:x:{uid}:' >> /etc/group && mkdir -p /home/{login} && "
        f"chown {uid}:{uid} /home/{login}"
    )
    setup = lab.docker("create", "--user", "0:0", BASE, "sh", "-c", account).stdout.strip()
    lab.track(setup)
    lab.docker("start", "-a", setup)
    lab.docker("commit", setup, tag)
    lab.docker("rm", setup)
    lab.made_tags.add(tag)
    labels = {
        **truth["Config.Labels"],
        "aime.mlc": login,
        "aime.mlc.USER": login,
        "aime.mlc.NAME": name,
        "aime.mlc.FRAMEWORK": "Pytorch-2.7.1",
        "aime.mlc.GPUS": "-",
        "aime.mlc.WORK_MOUNT": paths["workspace"],
        "aime.mlc.DATA_MOUNT": paths["data"],
        "aime.mlc.MODELS_MOUNT": paths["models"],
    }
    binds = {"<tmp>/ws": paths["workspace"], "<tmp>/data": paths["data"]}
    binds["<tmp>/models"] = paths["models"]
    args = ["create", "-it", "--name", container, "-w", truth["Config.WorkingDir"]]
    for bind in truth["HostConfig.Binds"]:
        source, _, target = bind.partition(":")
        if source in binds:
            args += ["-v", f"{binds[source]}:{target}"]
    for key, value in sorted(labels.items()):
        args += ["--label", f"{key}={value}"]
    args += ["--user", f"{uid}:{uid}", "--tty", "--interactive"]
    for ulimit in truth["HostConfig.Ulimits"]:
        if ulimit["Name"] != "memlock":
            args += ["--ulimit", f"{ulimit['Name']}={ulimit['Soft']}"]
    args += [tag, *truth["Config.Cmd"]]
    assert truth["HostConfig.Privileged"] and truth["HostConfig.NetworkMode"] == "host"
    made = lab.docker(*args).stdout.strip()
    lab.track(made)
    lab.docker("start", made)
    return container


def _manifest(lab: Lab, owner: str, base: str, **spec: Any) -> str:
    mounts = {m: {"path": lab.host_dir(owner, m)} for m in ("data", "models")}
    return lab.workspace(owner, base, mounts=mounts, **spec)


def _work(lab: Lab, container: str, owner: str) -> None:
    """A file in the writable layer (the home) and one in the bind-mounted workspace."""
    lab.docker("exec", container, "bash", "-c", f"echo layer > /home/{owner}/notes.txt")
    lab.docker("exec", container, "bash", "-c", "echo mounted > /workspace/thesis.txt")


def _inspect(lab: Lab, container: str) -> dict[str, Any]:
    return dict(lab.client.inspect_container(container))


def test_an_mlc_container_is_pending_until_adopted_then_keeps_the_users_work(lab: Lab) -> None:
    name = _manifest(lab, "alice", "mlcws")
    container = _mlc_create(lab, "alice", name)
    _work(lab, container, "alice")
    before = _inspect(lab, container)["Id"]

    # Without consent: pending, with what to do; apply succeeds and touches nothing.
    plan = lab.plan().plan
    [pending] = [p for p in plan.pending if p.target == f"workspace/alice/{name}"]
    assert pending.reason == (
        f"container {container} made by mlc holds this name; set adopt: true in the manifest "
        "or pass --adopt to make it this workspace (its writable layer is kept)"
    )
    assert not [a for a in plan.actions if a.target == f"workspace/alice/{name}"]
    assert lab.apply().code == 0
    assert _inspect(lab, container)["Id"] == before

    shown = lab.plan_cli("--adopt")
    assert shown.code == 0, shown.output
    assert f"# workspace alice/{name} will be adopted: its owner's mlc container" in shown.stdout
    assert "snapshot its writable layer, whatever it holds" in shown.stdout
    assert "create from the snapshot of step" in shown.stdout

    done = lab.apply("--adopt")
    assert done.code == 0, done.output
    after = _inspect(lab, container)
    assert after["Id"] != before
    labels = after["Config"]["Labels"]
    assert labels[L.DS01_INTERFACE] == "ds01ctl" and labels[L.DS01_SITE] == lab.site
    assert labels[L.MLC_USER] == "alice" and labels[L.DS01_OWNER] == "alice"
    host = after["HostConfig"]
    assert host["Privileged"] is False and host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["NetworkMode"] == f"ds01-{lab.site}"
    assert after["Config"]["User"] == f"{UIDS['alice']}:{UIDS['alice']}"
    assert sorted(host["Binds"]) == sorted(_inspect_binds(lab, "alice"))
    status = lab.docker("exec", container, "cat", "/proc/self/status").stdout
    assert "NoNewPrivs:\t1" in status and "CapEff:\t0000000000000000" in status
    # The user's work: the file in the writable layer and the one in the mounted workspace.
    assert lab.docker("exec", container, "cat", "/home/alice/notes.txt").stdout == "layer\n"
    assert lab.docker("exec", container, "cat", "/workspace/thesis.txt").stdout == "mounted\n"
    adopted = [r for r in lab.journal() if r.get("action_kind") == "adopt"]
    assert [r["kind"] for r in adopted] == ["snapshot", "stop", "remove", "create", "start"]
    lab.assert_converged()


def _inspect_binds(lab: Lab, owner: str) -> list[str]:
    return [
        f"{lab.host_dir(owner, 'workspace')}:/workspace",
        f"{lab.host_dir(owner, 'data')}:/data",
        f"{lab.host_dir(owner, 'models')}:/models",
    ]


def test_another_users_mlc_container_is_never_adopted(lab: Lab) -> None:
    name = _manifest(lab, "alice", "theirs", adopt=True)
    # Named as alice's would be (`<name>._.<alice's uid>`), but mlc made it for h.baker.
    container = _mlc_create(lab, "alice", name, labelled_for="h.baker")
    before = _inspect(lab, container)["Id"]
    plan = lab.plan().plan
    [pending] = [p for p in plan.pending if p.target == f"workspace/alice/{name}"]
    assert pending.reason.startswith(f"refused: container name {container} is in use")
    assert "labelled for h.baker" in pending.reason
    assert "only alice's own mlc container" in pending.reason
    assert lab.apply("--adopt").code == 0
    assert _inspect(lab, container)["Id"] == before
    assert lab.containers_of("alice", name) == []


def test_mounts_other_than_the_manifests_leave_it_pending_and_untouched(lab: Lab) -> None:
    name = lab.workspace("alice", "mounts", adopt=True)  # no /data, /models declared
    container = _mlc_create(lab, "alice", name)
    before = _inspect(lab, container)["Id"]
    plan = lab.plan().plan
    [pending] = [p for p in plan.pending if p.target == f"workspace/alice/{name}"]
    assert pending.reason.startswith(f"not adopted: container {container} mounts ")
    assert "declare the container's mounts in the manifest" in pending.reason
    assert lab.apply().code == 0
    assert _inspect(lab, container)["Id"] == before


def test_an_adoption_killed_after_its_snapshot_converges_with_nothing_lost(lab: Lab) -> None:
    name = _manifest(lab, "alice", "killed", adopt=True)
    container = _mlc_create(lab, "alice", name)
    _work(lab, container, "alice")
    target = f"workspace/alice/{name}"
    # Every step of the adoption waits 5 s after its intent: kill once the snapshot is taken,
    # while the stop waits.
    env = lab.cli_env(**{SLOW_ACTION_ENV: f"{target}=5"})
    process = subprocess.Popen(
        lab.cli_command(*lab.apply_args()),
        cwd=lab.workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120

    def snapshotted() -> bool:
        records = lab.journal()
        steps = {r["step"] for r in records if r.get("kind") == "snapshot"}
        return any(r["event"] == "result" and r["step"] in steps for r in records)

    while not snapshotted():
        assert process.poll() is None and time.monotonic() < deadline, "no snapshot"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    # Killed after the snapshot: the container is still mlc's, and the layer is kept.
    assert L.DS01_SITE not in _inspect(lab, container)["Config"]["Labels"]
    [snapshot] = lab.snapshot_images()
    assert (snapshot.get("Labels") or {})[L.SNAPSHOT_REASON] == "adopt"
    done = lab.apply()
    assert done.code == 0, done.output
    assert lab.docker("exec", container, "cat", "/home/alice/notes.txt").stdout == "layer\n"
    assert lab.docker("exec", container, "cat", "/workspace/thesis.txt").stdout == "mounted\n"
    assert _inspect(lab, container)["Config"]["Labels"][L.DS01_SITE] == lab.site
    # The second adoption snapshotted the same layer again: the next plan finds the exact
    # duplicate (the first, not the one the workspace is made from) and removes it.
    first, second = sorted(lab.snapshot_images(), key=lambda i: i["Created"])
    [duplicate] = [a for a in lab.plan().plan.actions if a.reason.value == "duplicate_snapshot"]
    assert duplicate.steps[0].image == first["RepoTags"][0]
    assert lab.apply().code == 0
    assert [i["Id"] for i in lab.snapshot_images()] == [second["Id"]]
    assert lab.docker("exec", container, "cat", "/home/alice/notes.txt").stdout == "layer\n"
    lab.assert_converged()
