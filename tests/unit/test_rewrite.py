"""Rewriting a manifest in place keeps comments, other documents and other keys."""

from __future__ import annotations

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
