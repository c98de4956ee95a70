"""A workspace whose directory does not exist yet: apply makes it as its owner, so /workspace is
writable by the user it is for (the engine alone would make it as root)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.docker.dockerlab import UIDS, Lab

pytestmark = pytest.mark.docker


def test_missing_workspace_dir_is_made_by_its_owner_and_writable_inside(lab: Lab) -> None:
    uid = UIDS["alice"]
    source = Path(lab.host_dir("alice", "workspace"))
    assert not source.exists()
    name = lab.workspace("alice", "fresh", power="running")

    document = json.loads(lab.plan_cli("--json").stdout)
    [create] = document["actions"]
    assert create["kind"] == "create"
    assert create["note"] == f"+ mkdir {source} (as alice, 0750)"

    done = lab.apply()
    assert done.code == 0, done.output
    info = source.lstat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (uid, uid, 0o750)

    container = lab.container_name("alice", name)
    probe = lab.docker(
        "exec",
        "-u",
        f"{uid}:{uid}",
        container,
        "sh",
        "-c",
        "touch /workspace/x && ls -ln /workspace",
    )
    assert probe.code == 0, probe.output
    made = os.lstat(source / "x")
    assert (made.st_uid, made.st_gid) == (uid, uid)
    lab.assert_converged()


def test_missing_read_only_dataset_makes_the_workspace_pending(lab: Lab) -> None:
    wiki = lab.host_dir("datasets", "missing")
    name = lab.workspace("alice", "reader", mounts={"data": {"path": wiki, "read_only": True}})
    document = json.loads(lab.plan_cli("--json").stdout)
    assert document["actions"] == []
    assert document["pending"] == [
        {
            "target": f"workspace/alice/{name}",
            "reason": f"refused: its /data mount: {wiki} does not exist and is mounted "
            f"read-only; create {wiki} first or ask an admin",
        }
    ]
    assert not Path(wiki).exists()
