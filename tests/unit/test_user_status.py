"""Per-user status files: each user reads their own, without root or the Docker socket, and
nobody else's; they are written as their owner, 0600, never through a symlink.

The readers run in forked children that drop to real accounts of this host (`nobody`,
`daemon`), as a student's shell would be."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ds01ctl.apply.lock import invoker
from ds01ctl.errors import Ds01Error
from ds01ctl.reconcile import userstatus
from ds01ctl.reconcile.commands import approve as approve_command
from ds01ctl.reconcile.commands import status as status_command
from ds01ctl.reconcile.held import HeldPlans
from ds01ctl.reconcile.status import render

STATUS: dict[str, Any] = {
    "updated_at": "2026-01-01T00:00:00+00:00",
    "config": {
        "commit": "a" * 40,
        "rejected": {"commit": "b" * 40, "why": "site.yaml:3:1: admins' secret detail"},
    },
    "objects": [
        {"target": "workspace/nobody/mine", "state": "running", "gpus": []},
        {"target": "workspace/daemon/theirs", "state": "exited", "gpus": []},
    ],
    "pending": [
        {"target": "workspace/nobody/big", "reason": "invalid: users/nobody/big.yaml:4:3: no"},
        {"target": "workspace/daemon/x", "reason": "no free GPU"},
    ],
    "held": [
        {
            "id": "0123456789ab",
            "actions": [
                {"target": "workspace/nobody/mine", "action": "replace", "reason": "spec_changed"}
            ],
        }
    ],
    "failures": [
        {
            "target": "workspace/daemon/theirs",
            "action": "create",
            "step": "start",
            "error": "exit 1",
            "log_tail": ["Traceback", "boom"],
        }
    ],
    "budgets": [{"owner": "nobody", "held": "0", "budget": "1"}],
    "user_warnings": {"nobody": ["idle: stops at 12:00"]},
}


def test_a_users_document_holds_only_their_objects() -> None:
    doc = userstatus.for_user(STATUS, "nobody")
    assert [o["target"] for o in doc["objects"]] == ["workspace/nobody/mine"]
    assert [p["target"] for p in doc["pending"]] == ["workspace/nobody/big"]
    assert doc["waiting_for_approval"][0]["plan"] == "0123456789ab"
    assert doc["failures"] == []
    assert doc["warnings"] == ["idle: stops at 12:00"]
    # A rejected commit's reason names admins' files: users learn only that it is not live.
    assert "secret" not in json.dumps(doc)
    theirs = userstatus.for_user(STATUS, "daemon")
    assert theirs["failures"][0]["log_tail"] == ["Traceback", "boom"]
    assert theirs["waiting_for_approval"] == []


def _ids(*logins: str) -> dict[str, tuple[int, int]]:
    return {login: (pwd.getpwnam(login).pw_uid, pwd.getpwnam(login).pw_gid) for login in logins}


@pytest.fixture
def state_dir() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("these tests write files as other users: run them as root (CI does)")
    # Outside pytest's tmp (0700, root's): the readers must be able to reach the state dir.
    path = Path(f"/tmp/ds01ctl-status-{uuid.uuid4().hex[:8]}")
    path.mkdir(mode=0o711)
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _as(login: str, work: Callable[[], str]) -> str:
    """`work()` run in a child that dropped to `login`'s uid and gid; what it returned."""
    entry = pwd.getpwnam(login)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read)
        try:
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            try:
                out = "ok:" + work()
            except Ds01Error as exc:
                out = "error:" + exc.message
            except OSError as exc:
                out = f"oserror:{exc.errno}"
            os.write(write, out.encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def test_each_user_reads_their_own_status_and_nobody_elses(state_dir: Path) -> None:
    docs = userstatus.documents(STATUS, ["nobody", "daemon"])
    skipped = userstatus.write_user_files(state_dir, docs, _ids("nobody", "daemon"))
    assert skipped == []
    users = state_dir / "users"
    info = users.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o711)
    mine = (users / "nobody.json").stat()
    assert mine.st_uid == pwd.getpwnam("nobody").pw_uid
    assert stat.S_IMODE(mine.st_mode) == 0o600

    # `ds01ctl status` as nobody: their own objects, read without root or the socket.
    out = _as("nobody", lambda: status_command(state_dir, None, json_out=True))
    assert out.startswith("ok:"), out
    doc = json.loads(out[3:])
    assert doc["user"] == "nobody"
    assert [o["target"] for o in doc["objects"]] == ["workspace/nobody/mine"]
    human = _as("nobody", lambda: status_command(state_dir, None, json_out=False))
    assert human.removeprefix("ok:") == render(doc)
    assert "Waiting for an admin's approval:" in human and "workspace/nobody/big" in human
    # Not another user's, by the command or by reading the file.
    refused = _as("nobody", lambda: status_command(state_dir, "daemon", json_out=True))
    assert refused.startswith("error:only root sees another user's status")
    direct = _as("nobody", (users / "daemon.json").read_text)
    assert direct == f"oserror:{13}"  # EACCES
    listing = _as("nobody", lambda: ",".join(os.listdir(users)))
    assert listing == f"oserror:{13}"  # nobody learns who else has a file


def test_a_planted_symlink_is_replaced_not_followed(state_dir: Path) -> None:
    victim = state_dir / "victim"
    victim.write_text("root's file\n")
    users = state_dir / "users"
    users.mkdir(mode=0o711)
    (users / "nobody.json").symlink_to(victim)
    docs = userstatus.documents(STATUS, ["nobody"])
    userstatus.write_user_files(state_dir, docs, _ids("nobody"))
    assert victim.read_text() == "root's file\n"
    assert victim.stat().st_uid == 0
    written = users / "nobody.json"
    assert not written.is_symlink()
    assert json.loads(written.read_text())["user"] == "nobody"


def test_a_users_dir_others_can_write_is_refused(state_dir: Path) -> None:
    users = state_dir / "users"
    users.mkdir()
    users.chmod(0o777)
    with pytest.raises(Ds01Error, match="others can write it"):
        userstatus.write_user_files(state_dir, {}, {})
    users.rmdir()
    users.symlink_to(state_dir)
    with pytest.raises(Ds01Error, match="symbolic link"):
        userstatus.write_user_files(state_dir, {}, {})


def test_files_of_users_gone_are_removed(state_dir: Path) -> None:
    userstatus.write_user_files(
        state_dir, userstatus.documents(STATUS, ["nobody", "daemon"]), _ids("nobody", "daemon")
    )
    userstatus.write_user_files(state_dir, userstatus.documents(STATUS, ["nobody"]), _ids("nobody"))
    assert sorted(p.name for p in (state_dir / "users").iterdir()) == ["nobody.json"]


# The readers run as users who cannot read this interpreter's own directory: what they call
# is imported here, before the fork.
_LOADED = (invoker, HeldPlans)


def test_a_user_cannot_approve_a_held_plan(state_dir: Path) -> None:
    held = state_dir / "reconcile" / "held"
    held.mkdir(parents=True, mode=0o700)
    (state_dir / "reconcile").chmod(0o700)
    (held / "0123456789ab.json").write_text("{}")
    out = _as("nobody", lambda: approve_command(state_dir, "0123456789ab"))
    assert out.startswith("error:cannot record an approval in"), out
    assert not (state_dir / "reconcile" / "approved").exists()
