"""Rewriting a manifest in place keeps comments, other documents and other keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ds01ctl.errors import Ds01Error
from ds01ctl.manifests.rewrite import set_workspace_image

TEXT = """\
# alice's workspaces
apiVersion: ds01/v1
kind: Workspace
metadata:
  name: thesis   # the big one
spec:
  framework: {name: Pytorch, version: 2.7.1}
  cpus: 8
---
apiVersion: ds01/v1
kind: Workspace
metadata:
  name: other
spec:
  image_ref: ubuntu:24.04
"""


def test_rewrite_restore_points_the_workspace_at_the_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "ws.yaml"
    path.write_text(TEXT)
    set_workspace_image(path, "alice", "thesis", "ds01ctl-snapshot/alice:thesis-20261124T1200Z")
    text = path.read_text()
    assert "# alice's workspaces" in text and "# the big one" in text
    assert "framework" not in text.split("---")[0]
    assert "image_ref: ds01ctl-snapshot/alice:thesis-20261124T1200Z" in text
    assert "cpus: 8" in text and "image_ref: ubuntu:24.04" in text


def test_rewrite_unknown_workspace_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ws.yaml"
    path.write_text(TEXT)
    with pytest.raises(Ds01Error, match="declares no workspace alice/nope"):
        set_workspace_image(path, "alice", "nope", "x:y")
    assert path.read_text() == TEXT


# Restore may run as root; the file and the directories above it are a user's (git stores
# symlinks): whatever a link points at is never written.
def test_rewrite_refuses_a_file_that_is_a_symlink_and_leaves_its_target(tmp_path: Path) -> None:
    victim = tmp_path / "netplan.yaml"
    victim.write_text(TEXT)
    folder = tmp_path / "config" / "users" / "alice"
    folder.mkdir(parents=True)
    (folder / "ws.yaml").symlink_to(victim)
    with pytest.raises(Ds01Error, match=r"is a symbolic link; .* is not rewritten through it"):
        set_workspace_image(folder / "ws.yaml", "alice", "thesis", "x:y", root=tmp_path / "config")
    assert victim.read_text() == TEXT


def test_rewrite_refuses_a_directory_that_is_a_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (elsewhere / "ws.yaml").write_text(TEXT)
    root = tmp_path / "config"
    (root / "users").mkdir(parents=True)
    (root / "users" / "alice").symlink_to(elsewhere)
    with pytest.raises(Ds01Error, match=f"{root}/users/alice is a symbolic link"):
        set_workspace_image(root / "users/alice/ws.yaml", "alice", "thesis", "x:y", root=root)
    assert (elsewhere / "ws.yaml").read_text() == TEXT
    assert sorted(p.name for p in elsewhere.iterdir()) == ["ws.yaml"]


def test_rewrite_keeps_the_files_owner_and_mode(tmp_path: Path) -> None:
    folder = tmp_path / "users" / "alice"
    folder.mkdir(parents=True)
    path = folder / "ws.yaml"
    path.write_text(TEXT)
    path.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(path, 12345, 12345)
    before = path.stat()
    set_workspace_image(path, "alice", "thesis", "x:y", root=tmp_path)
    after = path.stat()
    assert "image_ref: x:y" in path.read_text()
    assert (after.st_uid, after.st_gid, after.st_mode) == (
        before.st_uid,
        before.st_gid,
        before.st_mode,
    )
    assert sorted(p.name for p in folder.iterdir()) == ["ws.yaml"]  # no temp file left
