"""The loop's view of the config repo: a bare clone fetched from a remote branch, one clean
checkout per commit, and (with --require-signed) only commits `git verify-commit` accepts.
Real git, real gpg, a bare remote made by the test."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ds01ctl.errors import Ds01Error
from ds01ctl.reconcile.gitsource import GitSource


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Admin", "-c", "user.email=admin@lab.example", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return done.stdout.strip()


@pytest.fixture
def remote(tmp_path: Path) -> tuple[Path, Path]:
    bare, work = tmp_path / "remote.git", tmp_path / "work"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    (work / "site.yaml").write_text("kind: Site\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "first")
    _git(work, "push", "-q", str(bare), "HEAD:main")
    return bare, work


def test_fetch_and_a_clean_checkout_per_commit(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    bare, work = remote
    source = GitSource(str(bare), "main", tmp_path / "loop")
    first = source.fetch()
    assert first == _git(work, "rev-parse", "HEAD")
    tree = source.checkout(first)
    assert (tree / "site.yaml").read_text() == "kind: Site\n"
    # Something written into the checkout is not trusted: the next checkout is made fresh.
    (tree / "site.yaml").write_text("tampered\n")
    (tree / "extra.yaml").write_text("kind: Workspace\n")
    again = source.checkout(first)
    assert (again / "site.yaml").read_text() == "kind: Site\n"
    assert not (again / "extra.yaml").exists()
    (work / "quota.yaml").write_text("kind: QuotaPolicy\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "second")
    _git(work, "push", "-q", str(bare), "HEAD:main")
    second = source.fetch()
    assert second != first
    source.checkout(second)
    source.keep_trees({second})
    assert sorted(p.name for p in source.trees.iterdir()) == [second]


def test_a_missing_branch_is_one_line(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    source = GitSource(str(remote[0]), "nope", tmp_path / "loop")
    with pytest.raises(Ds01Error, match=r"config repo .*\(nope\): git fetch failed"):
        source.fetch()


def test_required_signatures(
    tmp_path: Path, remote: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bare, work = remote
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = {"GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "Admin <admin@lab.example>",
         "ed25519", "sign", "never"],
        env={**os.environ, **gpg}, check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("GNUPGHOME", str(home))
    source = GitSource(str(bare), "main", tmp_path / "loop", require_signed=True)
    unsigned = source.fetch()
    why = source.verify(unsigned)
    assert why is not None and why.startswith(f"commit {unsigned[:12]} has no valid signature")
    (work / "quota.yaml").write_text("kind: QuotaPolicy\n")
    _git(work, "add", "-A", env=gpg)
    _git(work, "commit", "-q", "-S", "-m", "signed", env=gpg)
    _git(work, "push", "-q", str(bare), "HEAD:main")
    signed = source.fetch()
    assert source.verify(signed) is None
    assert GitSource(str(bare), "main", tmp_path / "other").verify(unsigned) is None  # not asked
