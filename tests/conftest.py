"""Shared test helpers: the CLI run as a subprocess, and a minimal valid Site and QuotaPolicy."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

SITE_YAML = """\
apiVersion: ds01/v1
kind: Site
metadata: {name: lab}
spec:
  catalog: {architecture: CUDA_AMPERE}
  mount_policy:
    - path: /home/{owner}/**
    - path: /datasets/**
      read_only: true
"""

QUOTA_YAML = """\
apiVersion: ds01/v1
kind: QuotaPolicy
metadata: {name: lab}
spec:
  default_group: students
  groups:
    students: {members: [alice]}
"""


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_ds01ctl(*args: str, cwd: Path | None = None) -> CliResult:
    """`python -m ds01ctl ARGS` in a subprocess, colour off, output captured."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    done = subprocess.run(
        [sys.executable, "-m", "ds01ctl", *args],
        cwd=cwd or REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """Run the CLI in a subprocess: `cli("validate", str(path), cwd=...)`."""
    return run_ds01ctl


@pytest.fixture
def site_repo(tmp_path: Path) -> Path:
    """A config repo holding only a valid Site and QuotaPolicy: add the file under test."""
    (tmp_path / "site.yaml").write_text(SITE_YAML, encoding="utf-8")
    (tmp_path / "quota.yaml").write_text(QUOTA_YAML, encoding="utf-8")
    return tmp_path
