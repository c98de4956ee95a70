"""Workspaces made by `apply` are containers `mlc` (aime-mlc 2.2.0) manages as its own.

The reference is what real `mlc create` made (tests/data/mlc-create-ground-truth.json, recorded
from mlc.py at aime-team/aime-mlc@ac0e371 on Docker 20.10): a workspace is compared with it
field by field, and only the differences on the commented list below are allowed. Then mlc's
own Docker lookups are run as the `docker` CLI, and `mlc open`'s exec as each owner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ds01ctl import labels as L
from tests.docker.dockerlab import UIDS, Lab

pytestmark = pytest.mark.docker

GROUND_TRUTH = Path(__file__).resolve().parents[1] / "data" / "mlc-create-ground-truth.json"
# The case made with `-w <tmp>/ws -d <tmp>/data -m <tmp>/models` (every mount mlc knows).
CASE = "mlchk-gt"
GT_LOGIN, GT_UID, GT_IMAGE, GT_FRAMEWORK = (
    "alice",
    1234,
    "aimehub/pytorch-2.8.0-aime-cuda12.6.3",
    "Pytorch-2.8.0-aime",
)
MLC_LABELS = {
    L.MLC,
    L.MLC_NAME,
    L.MLC_USER,
    L.MLC_ARCH,
    L.MLC_VERSION,
    L.MLC_WORK_MOUNT,
    L.MLC_DATA_MOUNT,
    L.MLC_MODELS_MOUNT,
    L.MLC_FRAMEWORK,
    L.MLC_GPUS,
}
DEVICE_UUID = re.compile(r"^(GPU|MIG)-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")
X11 = "/tmp/.X11-unix"
MIB = 1024**2


def _without_x11(binds: list[str]) -> list[str]:
    return sorted(b for b in binds if X11 not in b)


def _ground_truth_case() -> dict[str, Any]:
    cases = json.loads(GROUND_TRUTH.read_text())["cases"]
    [case] = [c for c in cases if c["container"]["Name"] == f"/{CASE}._.{GT_UID}"]
    return dict(case["container"])


def test_ground_truth_is_mlc_2_2_0_create_with_every_mount() -> None:
    record = json.loads(GROUND_TRUTH.read_text())
    assert record["mlc"]["repo"] == "aime-team/aime-mlc"
    assert record["mlc"]["commit"].startswith("ac0e371")
    container = _ground_truth_case()
    assert set(container["Config.Labels"]) == MLC_LABELS
    assert {b.split(":")[1] for b in container["HostConfig.Binds"]} == {
        "/workspace",
        "/data",
        "/models",
        X11,
    }


# Differences from `mlc create` that ds01ctl makes on purpose, each with its reason. A field of
# the ground truth that differs and is not here fails the test; each check says what ours must
# be instead. Arguments: our value, mlc's value (normalised to this workspace), the expected
# GPU UUIDs.
Check = Callable[[Any, Any, list[str]], bool]
ALLOWED: dict[str, Check] = {
    # mlc writes its raw `-g` string (`all`, `2`); ds01ctl names the devices by UUID, `;`
    # between them (no commas: mlc list splits on them), `-` for none (DESIGN §4).
    "Config.Labels.aime.mlc.GPUS": lambda ours, gt, gpus: ours == (";".join(gpus) or "-"),
    # No X11 socket mount on a headless shared server; /workspace, /data, /models as mlc's.
    "HostConfig.Binds": lambda ours, gt, gpus: (
        sorted(ours) == sorted(b for b in gt if X11 not in b)
    ),
    # --privileged is refused by the sandbox and exposes every GPU whatever --gpus says.
    "HostConfig.Privileged": lambda ours, gt, gpus: ours is False,
    # Not the host network: the site network (`ds01-<site>`, no traffic between containers).
    "HostConfig.NetworkMode": lambda ours, gt, gpus: ours.startswith("ds01-t-"),
    # Not the host's IPC namespace.
    "HostConfig.IpcMode": lambda ours, gt, gpus: ours in ("private", "shareable"),
    # No memlock=-1 (refused without CAP_SYS_RESOURCE; a Site setting, off in tests); the
    # stack ulimit is mlc's.
    "HostConfig.Ulimits": lambda ours, gt, gpus: ours == [u for u in gt if u["Name"] != "memlock"],
    # No /dev/snd, /dev/video0: they only work with --privileged (start fails without them).
    "HostConfig.Devices": lambda ours, gt, gpus: not ours,
    # GPUs by UUID, never a count or `all`; none asked, none requested.
    "HostConfig.DeviceRequests": lambda ours, gt, gpus: (
        ours == [{**gt[0], "Count": 0, "DeviceIDs": gpus}] if gpus else not ours
    ),
    # No `--group-add video/sudo`: no sudo for workspace owners on a shared server.
    "extra.HostConfig.GroupAdd": lambda ours, gt, gpus: not ours,
    # `label=disable` is a side effect of --privileged; ours is no-new-privileges instead
    # (a setuid or file-capability binary gains nothing).
    "extra.HostConfig.SecurityOpt": lambda ours, gt, gpus: ours == ["no-new-privileges"],
    # /dev/shm from the owner's quota (the test quota says 64m, Docker's default is 64m too).
    "extra.HostConfig.ShmSize": lambda ours, gt, gpus: ours == 64 * MIB,
    # The account image is committed with an empty ENTRYPOINT (never the setup helper's own,
    # which a null would keep); like mlc's null, it runs the command as given.
    "extra.Config.Entrypoint": lambda ours, gt, gpus: ours in (None, []),
    # power: running starts it (mlc's container is only created until `mlc open`).
    "extra.State.Status": lambda ours, gt, gpus: ours == "running",
}


def _value(inspect: dict[str, Any], path: str) -> Any:
    """`Config.Labels` → inspect["Config"]["Labels"]; label keys keep their dots."""
    if path.startswith("Config.Labels."):
        return (inspect["Config"]["Labels"] or {}).get(path.removeprefix("Config.Labels."))
    node: Any = inspect
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _fields(container: dict[str, Any]) -> dict[str, Any]:
    """The ground truth flattened to paths: labels one by one, `extra` keys under `extra.`."""
    fields: dict[str, Any] = {}
    for key, value in container.items():
        if key == "Config.Labels":
            fields.update({f"Config.Labels.{k}": v for k, v in value.items()})
        elif key == "extra":
            fields.update({f"extra.{k}": v for k, v in value.items()})
        else:
            fields[key] = value
    return fields


def _normalised(gt: dict[str, Any], lab: Lab, owner: str, name: str) -> dict[str, Any]:
    """The ground truth as mlc would have made this workspace: its paths, login, ids, image."""
    uid = UIDS[owner]
    text = json.dumps(gt)
    for old, new in (
        (f"{CASE}._.{GT_UID}", f"{name}._.{uid}"),
        (f'"{CASE}"', json.dumps(name)),
        ("<tmp>/ws", lab.host_dir(owner, "ws")),
        ("<tmp>/data", lab.host_dir(owner, "data")),
        ("<tmp>/models", lab.host_dir(owner, "models")),
        (f"{GT_UID}:{GT_UID}", f"{uid}:{uid}"),
        (f'"{GT_LOGIN}"', json.dumps(owner)),
        (GT_IMAGE, "ds01ctl-local/pytorch"),
        (GT_FRAMEWORK, "Pytorch-2.7.1"),
    ):
        text = text.replace(old, new)
    return _fields(json.loads(text))


def _shape_differences(
    inspect: dict[str, Any], expected: dict[str, Any], gpus: list[str]
) -> list[str]:
    problems = []
    for path, theirs in sorted(expected.items()):
        ours = _value(inspect, path.removeprefix("extra."))
        if ours == theirs:
            continue
        check = ALLOWED.get(path)
        if check is None:
            problems.append(f"{path}: ours {ours!r}, mlc's {theirs!r} (not an allowed difference)")
        elif not check(ours, theirs, gpus):
            problems.append(f"{path}: ours {ours!r} is not the allowed difference from {theirs!r}")
    return problems


def _check_labels(inspect: dict[str, Any], lab: Lab, owner: str, name: str) -> None:
    labels = inspect["Config"]["Labels"]
    binds = {b.split(":")[1]: b.split(":")[0] for b in inspect["HostConfig"]["Binds"]}
    assert set(labels) >= MLC_LABELS
    assert labels[L.MLC] == labels[L.MLC_USER] == owner  # the raw login, as os.getlogin()
    assert labels[L.MLC_NAME] == name
    assert re.fullmatch(r"(Pytorch|Tensorflow)-\d+\.\d+\.\d+(-aime)?", labels[L.MLC_FRAMEWORK])
    assert labels[L.MLC_ARCH] == "CUDA_ADA"
    assert labels[L.MLC_VERSION] == "4"
    assert labels[L.MLC_WORK_MOUNT] == binds["/workspace"]
    assert labels[L.MLC_DATA_MOUNT] == binds["/data"]
    assert labels[L.MLC_MODELS_MOUNT] == binds["/models"]
    gpus = labels[L.MLC_GPUS]
    assert gpus == "-" or all(DEVICE_UUID.match(u) for u in gpus.split(";"))
    # Extra labels are DS01's namespace and ours, nothing else.
    assert all(k.startswith("ds01.") for k in set(labels) - MLC_LABELS)
    assert labels[L.DS01_INTERFACE] == "ds01ctl" and labels[L.DS01_SITE] == lab.site
    # No commas anywhere: `mlc list` crashes on them, for every user with -au.
    image = lab.client.inspect_image(inspect["Image"])["Config"]["Labels"] or {}
    assert {k: v for k, v in {**labels, **image}.items() if "," in v} == {}


def _check_extras(inspect: dict[str, Any]) -> None:
    """What ds01ctl adds that `mlc create` does not set at all."""
    config, host = inspect["Config"], inspect["HostConfig"]
    assert config["StopSignal"] == "SIGHUP"  # bash as PID 1 ignores SIGTERM
    assert host["NanoCpus"] > 0 and host["Memory"] > 0 and host["PidsLimit"] > 0
    assert host["MemorySwap"] >= host["Memory"]


def _check_mlc_lookups(lab: Lab, owner: str, name: str, image_tag: str) -> None:
    """mlc.py's own `docker container ps` filters (reference/mlc.md §2) find the workspace."""
    tag = lab.container_name(owner, name)

    def names(*filters: str, fmt: str = "{{.Names}}", every: bool = True) -> list[str]:
        args = ["container", "ps", *(["-a"] if every else []), *filters, "--format", fmt]
        return lab.docker(*args).stdout.splitlines()

    # open/start/stop/remove: the user's containers (L496)
    assert tag in names(f"--filter=label=aime.mlc.USER={owner}")
    # create's existence check (L388) and remove's image lookup (L2085): stdout must be exact
    assert names("--filter", f"name={tag}", "--filter", "label=aime.mlc") == [tag]
    assert names("--filter", f"name={tag}", "--filter", "label=aime.mlc", fmt="{{.Image}}") == [
        image_tag
    ]
    # is it running? (L402)
    assert names(f"--filter=name=^/{tag}$", "--filter=label=aime.mlc", every=False) == [tag]
    # `mlc list` (L1103) and `mlc list -au`
    assert tag in names("--filter", f"label=aime.mlc={owner}")
    assert tag in names("--filter", "label=aime.mlc")
    # the name mlc shows: the docker name without `._.<uid>` (L506)
    match = re.match(r"^(.*?)(?:\._\.\w+)?$", tag)
    assert match is not None and match.group(1) == name


def _check_open(lab: Lab, owner: str, name: str) -> None:
    """`mlc open` = `docker exec -it --user uid:gid <name> bash`: the owner, in /workspace."""
    uid = UIDS[owner]
    done = lab.docker(
        "exec", "-u", f"{uid}:{uid}", lab.container_name(owner, name), "bash", "-c", "id -un; pwd"
    )
    assert done.stdout.splitlines() == [owner, "/workspace"], done.output


def test_workspaces_are_what_mlc_create_makes(lab: Lab, gpu_requests_work: bool) -> None:
    # Running (for the exec), with every mount mlc knows; a MIG slice where the engine can
    # start GPU containers (scripts/docker-engine's test-only hook), else CPU-only.
    migs = {"alice": "1g.10gb", "h.baker": "1g.10gb", "228755@uni.example": "2g.20gb"}
    names = {}
    for owner in UIDS:
        names[owner] = lab.workspace(
            owner,
            "mlcgt",
            power="running",
            **({"mig": migs[owner]} if gpu_requests_work else {}),
            mounts={
                "workspace": lab.host_dir(owner, "ws"),
                "data": lab.host_dir(owner, "data"),
                "models": lab.host_dir(owner, "models"),
            },
        )
    done = lab.apply()
    assert done.code == 0, done.output
    gt = _ground_truth_case()
    for owner, name in names.items():
        inspect = dict(lab.client.inspect_container(lab.container_name(owner, name)))
        requests = inspect["HostConfig"]["DeviceRequests"] or []
        gpus = [u for r in requests for u in r["DeviceIDs"] or []]
        assert len(gpus) == (1 if gpu_requests_work else 0)
        expected = _normalised(gt, lab, owner, name)
        problems = _shape_differences(inspect, expected, gpus)
        assert not problems, f"{owner}:\n" + "\n".join(problems)
        # The fields the brief names, spelled out (they are in the comparison too).
        assert inspect["Config"]["User"] == f"{UIDS[owner]}:{UIDS[owner]}"
        assert inspect["Config"]["Tty"] is True and inspect["Config"]["OpenStdin"] is True
        assert inspect["Config"]["Cmd"] == ["bash", "-c", "bash"]
        assert inspect["Config"]["WorkingDir"] == "/workspace"
        image_tag = f"ds01ctl-local/pytorch:{name}._.{UIDS[owner]}"
        assert inspect["Config"]["Image"] == image_tag
        assert not any(X11 in b for b in inspect["HostConfig"]["Binds"])
        _check_labels(inspect, lab, owner, name)
        _check_extras(inspect)
        _check_mlc_lookups(lab, owner, name, image_tag)
        _check_open(lab, owner, name)
    lab.assert_converged()

    # `mlc remove` (after `mlc stop`): the container, then the image reference it was made
    # from. The tag is the workspace's own, so no other workspace loses its image.
    owner, name = "alice", names["alice"]
    tag, image_tag = lab.container_name(owner, name), f"ds01ctl-local/pytorch:{name}._.61001"
    lab.docker("stop", tag)
    lab.docker("container", "rm", tag)
    assert "Untagged: " + image_tag in lab.docker("image", "rm", image_tag).stdout
    for other in ("h.baker", "228755@uni.example"):
        still = lab.client.inspect_container(lab.container_name(other, names[other]))
        lab.client.inspect_image(still["Image"])
    done = lab.apply()  # the workspace is declared: it comes back
    assert done.code == 0, done.output
    assert len(lab.containers_of(owner, name)) == 1
    lab.assert_converged()
