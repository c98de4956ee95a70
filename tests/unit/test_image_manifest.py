"""Image manifests at validate time: the requirements file stays the owner's own.

The other bad inputs (unknown preset, pip options, URLs, apt names with shell
metacharacters, a base the image policy refuses) are in tests/golden/validate/image-bad-input.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from ds01ctl.manifests.validate import validate_path

SITE = "apiVersion: ds01/v1\nkind: Site\nmetadata: {name: lab}\n"
QUOTA = (
    "apiVersion: ds01/v1\nkind: QuotaPolicy\nmetadata: {name: q}\n"
    "spec: {default_group: s, groups: {s: {members: [mal]}}}\n"
)
IMAGE = (
    "apiVersion: ds01/v1\nkind: Image\nmetadata: {name: env1}\n"
    "spec:\n  base: {framework: {name: Pytorch, version: 2.7.1}}\n"
    "  requirements_file: %s\n"
)


def _repo(tmp_path: Path, requirements: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "site.yaml").write_text(SITE)
    (tmp_path / "quota.yaml").write_text(QUOTA)
    (tmp_path / "users" / "mal").mkdir(parents=True)
    (tmp_path / "users" / "mal" / "image.yaml").write_text(IMAGE % requirements)
    return tmp_path


def _codes(root: Path) -> list[tuple[str, str, int | None]]:
    repo = validate_path(root, today=dt.date(2025, 1, 1))
    return [(d.code, d.message, d.line) for d in repo.diagnostics]


def test_image_requirements_file_symlink_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("numpy\n")
    root = _repo(tmp_path / "repo", "req.txt")
    os.symlink(secret, root / "users" / "mal" / "req.txt")
    codes = _codes(root)
    assert any(c == "image.requirements_file" and "symbolic link" in m for c, m, _ in codes)


def test_image_requirements_file_through_symlinked_directory_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "req.txt").write_text("numpy\n")
    root = _repo(tmp_path / "repo", "lib/req.txt")
    os.symlink(elsewhere, root / "users" / "mal" / "lib")
    codes = _codes(root)
    assert ("image.requirements_file", 6) in [(c, line) for c, _, line in codes]
    assert any("'lib' is a symbolic link" in m for _, m, _ in codes)


def test_image_requirements_file_absolute_and_escaping_refused(tmp_path: Path) -> None:
    for relative in ("/etc/passwd", "../../site.yaml"):
        root = _repo(tmp_path / relative.replace("/", "_"), relative)
        messages = [m for c, m, _ in _codes(root) if c == "image.requirements_file"]
        assert len(messages) == 1, relative


def test_image_requirements_file_of_the_owner_is_read(tmp_path: Path) -> None:
    root = _repo(tmp_path, "deps/req.txt")
    (root / "users" / "mal" / "deps").mkdir()
    (root / "users" / "mal" / "deps" / "req.txt").write_text("numpy==2.1.0  # pinned\n")
    assert _codes(root) == []
