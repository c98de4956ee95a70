"""A student's files under users/<login>/ get that login's rights and nothing more.

Owners come from the config repo's own users/, found from whatever path is named; nothing
outside the repo is read, and nothing in it can hang ds01ctl (symbolic links, FIFOs, devices).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from ds01ctl.manifests import Workspace
from ds01ctl.manifests.validate import validate_path
from tests.conftest import QUOTA_YAML, REPO_ROOT, SITE_YAML

TODAY = dt.date(2026, 1, 1)
WORKSPACE = """\
apiVersion: ds01/v1
kind: Workspace
metadata: {name: x}
spec:
  framework: {name: Pytorch, version: 2.7.1}
"""
QUOTA_WITH_VIC = QUOTA_YAML.replace("[alice]", "[alice, mal, vic, ann]")


def _repo(root: Path, files: dict[str, str]) -> Path:
    (root / ".git").mkdir(parents=True)  # bounds the search for the root
    (root / "site.yaml").write_text(SITE_YAML)
    (root / "quota.yaml").write_text(QUOTA_WITH_VIC)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _ds01ctl(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The CLI with its stdin an open pipe nobody writes to: a read of it would hang."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ds01ctl", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _owners(root: Path) -> set[tuple[str, str]]:
    repo = validate_path(root, today=TODAY)
    return {(w.metadata.owner or "", w.metadata.name) for w, _ in repo.of(Workspace)}


# --- whose file it is ------------------------------------------------------------------------


def test_repo_boundary_nested_users_dir_cannot_name_another_owner(tmp_path: Path) -> None:
    # mal's pull request adds users/mal/users/vic/x.yaml: a workspace as vic, vic's home mounted.
    root = _repo(tmp_path, {"users/mal/users/vic/x.yaml": WORKSPACE})
    repo = validate_path(root, today=TODAY)
    assert [(d.code, d.file) for d in repo.diagnostics] == [
        ("owner.path_mismatch", str(root / "users/mal/users/vic/x.yaml"))
    ]
    assert "users/ directory inside users/mal/" in repo.diagnostics[0].message
    assert _owners(root) == set()
    done = _ds01ctl("validate", ".", cwd=root)
    assert done.returncode == 1
    assert done.stdout.count("error") == 2, done.stdout  # the line and the summary


def test_repo_boundary_owner_is_first_component_below_repo_users(tmp_path: Path) -> None:
    # The repo itself lies under a directory named users/: that one says nothing.
    root = _repo(tmp_path / "users" / "vic" / "config", {"users/ann/x.yaml": WORKSPACE})
    assert _owners(root) == {("ann", "x")}


def test_repo_boundary_one_file_validated_in_its_repo(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"users/ann/x.yaml": WORKSPACE, "users/bob/y.yaml": "kind: ["})
    repo = validate_path(root / "users/ann/x.yaml", today=TODAY)
    assert repo.diagnostics == []  # bob's broken file is not ann's problem
    assert [(i.manifest.metadata.owner, i.file) for i in repo.named] == [
        ("ann", str(root / "users/ann/x.yaml"))
    ]
    assert repo.site is not None and repo.policy is not None  # the repo is the context
    done = _ds01ctl("validate", "users/ann/x.yaml", cwd=root)
    assert (done.returncode, done.stdout) == (0, "ok: 1 object(s) in 1 file(s), no problems\n")
    done = _ds01ctl("validate", "ann", cwd=root / "users")
    assert (done.returncode, done.stdout) == (0, "ok: 1 object(s) in 1 file(s), no problems\n")


def test_repo_boundary_one_file_reports_its_own_problems(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"users/ann/x.yaml": WORKSPACE + "  image: nope\n"})
    done = _ds01ctl("validate", "users/ann/x.yaml", cwd=root)
    assert done.returncode == 1
    assert "users/ann/x.yaml" in done.stdout
    assert "[schema.invalid]" in done.stdout or "[ref.image]" in done.stdout
    assert "site.missing" not in done.stdout


def test_repo_boundary_student_site_does_not_make_a_repo(tmp_path: Path) -> None:
    # A Site inside users/mal/ must not make users/mal/ a repo where mal names any owner.
    as_vic = WORKSPACE.replace("{name: x}", "{name: x, owner: vic}")
    root = _repo(tmp_path, {"users/mal/site.yaml": SITE_YAML, "users/mal/x.yaml": as_vic})
    repo = validate_path(root / "users/mal/x.yaml", today=TODAY)
    assert [d.code for d in repo.diagnostics] == ["path.no_config_repo"]
    assert repo.loaded == []


def test_repo_boundary_no_root_refused_before_walking(tmp_path: Path) -> None:
    # `plan /tmp`: nothing below the path is walked, so nothing there can hang or be read.
    (tmp_path / ".git").mkdir()
    (tmp_path / "deep").mkdir()
    os.mkfifo(tmp_path / "deep" / "x.yaml")
    done = _ds01ctl("plan", str(tmp_path), cwd=tmp_path)  # in a subprocess: a hang times out
    assert done.returncode == 1
    assert "is not in a config repo" in done.stderr
    assert "Traceback" not in done.stderr
    repo = validate_path(tmp_path, today=TODAY)
    assert [d.code for d in repo.diagnostics] == ["path.no_config_repo"]


def test_repo_boundary_examples_still_valid_by_file() -> None:
    files = sorted((REPO_ROOT / "examples" / "lab" / "users").rglob("*.yaml"))
    assert files
    for path in files:
        repo = validate_path(path, today=TODAY)
        assert repo.errors == [], [str(d) for d in repo.errors]
        assert all(item.path_owner == path.parent.name for item in repo.named)


# --- what is read ----------------------------------------------------------------------------


def test_repo_boundary_fifo_does_not_hang(tmp_path: Path) -> None:
    root = _repo(tmp_path, {})
    (root / "users" / "ann").mkdir(parents=True)
    os.mkfifo(root / "users" / "ann" / "x.yaml")
    done = _ds01ctl("validate", ".", cwd=root)
    assert done.returncode == 1
    assert "users/ann/x.yaml is a named pipe (FIFO), not a regular file" in done.stdout
    assert "[path.not_regular]" in done.stdout


def test_repo_boundary_links_to_devices_do_not_hang(tmp_path: Path) -> None:
    root = _repo(tmp_path, {})
    (root / "users" / "ann").mkdir(parents=True)
    (root / "users" / "ann" / "a.yaml").symlink_to("/dev/stdin")
    (root / "users" / "ann" / "b.yaml").symlink_to("/proc/kmsg")
    done = _ds01ctl("validate", ".", cwd=root)
    assert done.returncode == 1
    assert "users/ann/a.yaml is a symbolic link to /dev/stdin" in done.stdout
    assert "users/ann/b.yaml is a symbolic link to /proc/kmsg" in done.stdout
    assert done.stdout.count("[path.symlink]") == 2


def test_repo_boundary_link_out_of_repo_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.yaml").write_text(WORKSPACE.replace("{name: x}", "{name: s, owner: vic}"))
    (outside / "dir" / "y.yaml").write_text(WORKSPACE.replace("{name: x}", "{name: y}"))
    root = _repo(tmp_path / "config", {})
    (root / "users" / "ann").mkdir(parents=True)
    (root / "users" / "ann" / "s.yaml").symlink_to(outside / "secret.yaml")
    (root / "users" / "ann" / "linked").symlink_to(outside / "dir", target_is_directory=True)
    repo = validate_path(root, today=TODAY)
    assert sorted((d.code, d.file) for d in repo.diagnostics) == [
        ("path.symlink", str(root / "users/ann/linked")),
        ("path.symlink", str(root / "users/ann/s.yaml")),
    ]
    assert _owners(root) == set()


def test_repo_boundary_named_symlink_refused(tmp_path: Path) -> None:
    root = _repo(tmp_path / "config", {})
    (tmp_path / "elsewhere.yaml").write_text(WORKSPACE)
    (root / "users" / "ann").mkdir(parents=True)
    (root / "users" / "ann" / "x.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    repo = validate_path(root / "users" / "ann" / "x.yaml", today=TODAY)
    assert [d.code for d in repo.diagnostics] == ["path.symlink"]
    assert repo.named == []
