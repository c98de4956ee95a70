"""Bind sources are judged by where they really lead (real symlinks in a temp dir).

The mount policy is the test Site's, rooted in a temp dir: `<root>/{owner}/**` read-write and
`<root>/datasets/**` read-only. Below `<root>/<owner>` every directory is the owner's, so no
symlink there is followed; above it, only a symlink that root alone can have made.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ds01ctl.catalog.frameworks import FrameworkCatalog
from ds01ctl.live.paths import mount_problems, source_problem
from ds01ctl.manifests.mounts import fixed_prefix
from ds01ctl.manifests.site import MountRule
from ds01ctl.resolve.desired import resolve
from tests.configrepo import load, site_doc, workspace_doc, world, write_repo

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="root-owned directories need root")
DOCKER_SOCKET = "/var/run/docker.sock"


def _policy(root: Path) -> list[MountRule]:
    return [
        MountRule(path=f"{root}/{{owner}}/**"),
        MountRule(path=f"{root}/datasets/**", read_only=True),
    ]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The allowed tree; the temp dir above it is root's and writable by no one else."""
    top = tmp_path / "mounts"
    (top / "alice").mkdir(parents=True)
    (top / "bob" / "workspace").mkdir(parents=True)
    (top / "datasets").mkdir()
    return top


def _problem(root: Path, source: Path | str) -> str | None:
    return source_problem(str(source), "alice", _policy(root))


@pytest.mark.parametrize(
    ("pattern", "path", "prefix"),
    [
        ("/home/{owner}/**", "/home/alice/workspace", "/home/alice"),
        ("/datasets/**", "/datasets/imagenet", "/datasets"),
        ("/datasets/*/raw", "/datasets/a/raw", "/datasets"),
        ("/scratch", "/scratch", "/scratch"),
        ("/**", "/anything", "/"),
        ("/home/{owner}/**", "/elsewhere", "/"),  # no rule allows it: nothing is the admin's
    ],
)
def test_fixed_prefix_is_the_wildcard_free_part_of_the_rule(
    pattern: str, path: str, prefix: str
) -> None:
    assert fixed_prefix(path, "alice", [MountRule(path=pattern)]) == prefix


def test_real_directories_and_missing_ones_are_allowed(root: Path) -> None:
    (root / "alice" / "workspace").mkdir()
    assert _problem(root, root / "alice" / "workspace") is None
    assert _problem(root, root / "alice" / "not-yet" / "deeper") is None  # the engine makes it
    assert _problem(root, root / "datasets") is None


@pytest.mark.parametrize(
    "target", ["/etc", DOCKER_SOCKET, "../bob/workspace", "/"], ids=["etc", "socket", "vic", "root"]
)
def test_symlink_in_the_owners_tree_is_refused(root: Path, target: str) -> None:
    (root / "alice" / "x").symlink_to(target)
    problem = _problem(root, root / "alice" / "x")
    assert problem is not None and "\n" not in problem
    assert f"{root}/alice/x is a symlink (to {target}) below {root}/alice" in problem


def test_symlink_in_a_middle_component_is_refused(root: Path) -> None:
    (root / "alice" / "link").symlink_to("/etc")
    problem = _problem(root, root / "alice" / "link" / "ssl")
    assert problem is not None and "link is a symlink (to /etc)" in problem


def test_symlink_within_the_owners_own_tree_is_refused_too(root: Path) -> None:
    # Any symlink below the admin's prefix is refused: its owner can retarget it at any time.
    (root / "alice" / "real").mkdir()
    (root / "alice" / "workspace").symlink_to("real")
    assert _problem(root, root / "alice" / "workspace") is not None


def test_a_file_is_not_mounted(root: Path) -> None:
    (root / "alice" / "notes.txt").write_text("x")
    assert "is not a directory" in (_problem(root, root / "alice" / "notes.txt") or "")


@needs_root
def test_admins_symlink_at_the_prefix_is_followed(tmp_path: Path) -> None:
    # /home -> /srv/home style: root made it, in a directory only root can write.
    homes, real = tmp_path / "homes", tmp_path / "srv" / "alice"
    homes.mkdir(mode=0o755)
    real.mkdir(parents=True)
    (homes / "alice").symlink_to(real)
    policy = [MountRule(path=f"{homes}/{{owner}}/**")]
    assert source_problem(f"{homes}/alice/workspace", "alice", policy) is None
    # ... but not into the engine's state, whoever made the link.
    (homes / "alice").unlink()
    (homes / "alice").symlink_to("/var/run")
    problem = source_problem(f"{homes}/alice/docker.sock", "alice", policy)
    assert problem is not None and "the Docker socket or the engine's state" in problem


@pytest.mark.parametrize("how", ["others_write", "other_owner"])
def test_symlink_at_the_prefix_in_a_directory_others_control_is_refused(
    tmp_path: Path, how: str
) -> None:
    if how == "other_owner" and os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    homes = tmp_path / "homes"
    homes.mkdir()
    if how == "others_write":
        homes.chmod(0o1777)  # like /tmp: anyone may create the link first
    else:
        os.chown(homes, 12345, 12345)
    (homes / "alice").symlink_to("/etc")
    problem = source_problem(f"{homes}/alice", "alice", [MountRule(path=f"{homes}/{{owner}}/**")])
    assert problem is not None
    assert f"{homes}/alice is a symlink (to /etc) in {homes}, a directory someone other" in problem


def _repo(tmp_path: Path, root: Path) -> Any:
    site = site_doc(
        users={"alice": {"uid": 1001, "gid": 1001}},
        mount_policy=[r.model_dump() for r in _policy(root)],
        default_workspace_mount=f"{root}/{{owner}}/workspace",
    )
    docs = [
        workspace_doc(None, "plain"),
        workspace_doc(None, "sneaky", mounts={"data": f"{root}/alice/data"}),
    ]
    repo = load(write_repo(tmp_path, docs, site=site, path="users/alice/ws.yaml"))
    assert not repo.errors, repo.errors
    return repo


def test_plan_time_symlink_makes_that_workspace_pending_and_the_rest_proceeds(
    tmp_path: Path, root: Path
) -> None:
    (root / "alice" / "data").symlink_to(DOCKER_SOCKET)
    repo = _repo(tmp_path, root)
    refused = mount_problems(repo)
    assert list(refused) == ["workspace/alice/sneaky"]
    desired = resolve(repo, world(tmp_path, refused=refused), FrameworkCatalog.load())
    assert [s.name for s in desired.specs] == ["plain"]
    [pending] = desired.pending
    assert pending.target == "workspace/alice/sneaky"
    assert pending.reason == (
        f"refused: its /data mount: {root}/alice/data is a symlink (to {DOCKER_SOCKET}) below "
        f"{root}/alice, where its owner can change it; mount the real directory instead"
    )
