"""Missing mount sources: a read-write one is made by its owner, a read-only one is pending.

Real directories in a temp tree laid out like a host: `<base>` and `<base>/mounts` are root's
(0755), `<base>/mounts/alice` is alice's (uid 61001), as a home is its user's. The helper runs
as alice, so these tests need root to hand out ownership.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ds01ctl.apply.mountdirs import ensure_source, make_dirs_as
from ds01ctl.catalog.frameworks import FrameworkCatalog
from ds01ctl.live.paths import missing_source, mount_problems
from ds01ctl.manifests.site import MountRule
from ds01ctl.model.spec import Bind, UserAccount
from ds01ctl.resolve.desired import resolve
from tests.configrepo import load, site_doc, workspace_doc, world, write_repo

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="handing out ownership needs root")

UID = GID = 61001
ALICE = UserAccount("alice", UID, GID)


@pytest.fixture
def base() -> Iterator[Path]:
    # Not under pytest's tmp_path: that is root's 0700, which alice could not even traverse.
    top = Path(tempfile.mkdtemp(prefix="ds01ctl-mountdirs-"))
    top.chmod(0o755)
    (top / "mounts" / "alice").mkdir(parents=True)
    (top / "mounts").chmod(0o755)
    (top / "mounts" / "alice").chmod(0o755)
    os.chown(top / "mounts" / "alice", UID, GID)
    (top / "mounts" / "datasets").mkdir(mode=0o755)
    (top / "victim").mkdir(mode=0o755)  # stands for /etc: root's, where alice may not write
    yield top
    shutil.rmtree(top)


def _policy(base: Path) -> list[MountRule]:
    return [
        MountRule(path=f"{base}/mounts/{{owner}}/**"),
        MountRule(path=f"{base}/mounts/datasets/**", read_only=True),
        MountRule(path=f"{base}/victim/**"),  # allowed, but alice has no right to write there
    ]


def _ensure(base: Path, source: Path, *, read_only: bool = False) -> str | None:
    bind = Bind("/workspace", str(source), read_only)
    return ensure_source(bind, ALICE, "alice", _policy(base), 0o750)


def test_missing_workspace_is_made_by_its_owner_with_the_sites_mode(base: Path) -> None:
    source = base / "mounts" / "alice" / "projects" / "x" / "workspace"
    assert missing_source(Bind("/workspace", str(source)), "alice", _policy(base)) == str(source)
    old = os.umask(0o077)  # root's umask does not narrow the Site's mode
    try:
        assert _ensure(base, source) is None
    finally:
        os.umask(old)
    for made in (source.parent.parent, source.parent, source):
        info = made.lstat()
        assert (info.st_uid, info.st_gid) == (UID, GID), made
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o750, made
    assert missing_source(Bind("/workspace", str(source)), "alice", _policy(base)) is None


def test_existing_source_is_left_as_it_is(base: Path) -> None:
    source = base / "mounts" / "alice" / "workspace"
    source.mkdir(mode=0o700)
    os.chown(source, 0, 0)  # odd, but the admin's choice: kept
    before = source.lstat()
    assert _ensure(base, source) is None
    after = source.lstat()
    assert (after.st_uid, after.st_gid, after.st_mode) == (0, 0, before.st_mode)
    assert stat.S_IMODE(after.st_mode) == 0o700


def test_planted_symlink_is_refused_and_nothing_appears_at_its_target(base: Path) -> None:
    home = base / "mounts" / "alice"
    (home / "workspace").symlink_to(base / "victim")
    problem = _ensure(base, home / "workspace" / "sub")
    assert problem is not None and "is a symlink" in problem
    assert list((base / "victim").iterdir()) == []


def test_symlink_swapped_in_after_the_check_is_not_followed_by_the_helper(base: Path) -> None:
    # The check saw <home> and nothing below it; the owner plants a link before the helper runs.
    home = base / "mounts" / "alice"
    (home / "workspace").symlink_to(base / "victim")
    error = make_dirs_as(str(home), ("workspace", "sub"), UID, GID, 0o750)
    assert error is not None and "workspace" in error
    assert list((base / "victim").iterdir()) == []
    # Even a link in the part root found existing is not followed (O_NOFOLLOW per component).
    error = make_dirs_as(str(home / "workspace"), ("sub",), UID, GID, 0o750)
    assert error is not None
    assert list((base / "victim").iterdir()) == []


def test_owner_cannot_create_where_their_uid_may_not_write(base: Path) -> None:
    problem = _ensure(base, base / "victim" / "workspace")
    assert problem == (
        f"its /workspace mount: alice cannot create {base}/victim/workspace (Permission denied "
        f"at {base}/victim/workspace); create it first or ask an admin"
    )
    assert list((base / "victim").iterdir()) == []


def test_missing_read_only_source_is_never_made(base: Path) -> None:
    source = base / "mounts" / "datasets" / "wiki"
    problem = _ensure(base, source, read_only=True)
    assert problem == (
        f"its /workspace mount: {source} does not exist and is mounted read-only; "
        f"create {source} first or ask an admin"
    )
    assert not source.exists()


def test_missing_read_only_mount_makes_the_workspace_pending(base: Path, tmp_path: Path) -> None:
    site = site_doc(
        users={"alice": {"uid": UID, "gid": GID}},
        mount_policy=[r.model_dump() for r in _policy(base)],
        default_workspace_mount=f"{base}/mounts/{{owner}}/workspace",
    )
    wiki = f"{base}/mounts/datasets/wiki"
    docs = [
        workspace_doc(None, "plain"),
        workspace_doc(None, "reader", mounts={"data": {"path": wiki, "read_only": True}}),
    ]
    repo = load(write_repo(tmp_path, docs, site=site, path="users/alice/ws.yaml"))
    assert not repo.errors, repo.errors
    refused = mount_problems(repo)
    desired = resolve(repo, world(tmp_path, refused=refused), FrameworkCatalog.load())
    assert [s.name for s in desired.specs] == ["plain"], (
        desired.pending
    )  # its missing workspace is made at apply
    [pending] = desired.pending
    assert pending.target == "workspace/alice/reader"
    assert pending.reason == (
        f"refused: its /data mount: {wiki} does not exist and is mounted read-only; "
        f"create {wiki} first or ask an admin"
    )
