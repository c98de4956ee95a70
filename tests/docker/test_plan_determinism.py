"""Identical inputs give byte-identical plans, whatever the order of files on disk and the
hash seed of the interpreter (sets and dicts must never leak their order into a plan)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docker.dockerlab import Lab

pytestmark = pytest.mark.docker

SCRIPT = """
import datetime as dt, sys
from pathlib import Path
from ds01ctl.plan import render_human, render_json
from ds01ctl.workflow import make_plan
now = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
plan = make_plan(Path(sys.argv[1]), now=now).plan
doc = render_json.plan_document(plan)
sys.stdout.write(render_json.dumps(doc) + render_human.render(doc))
"""


def _plan_bytes(root: Path, seed: str) -> bytes:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root)],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def _rewrite_in_order(root: Path, order: list[Path]) -> None:
    """Recreate the manifests in `order`, so the directory lists them differently."""
    texts = {path: path.read_bytes() for path in order}
    for path in order:
        path.unlink()
    for path in order:
        path.write_bytes(texts[path])


def test_plan_is_byte_identical_across_file_order_and_hash_seed(lab: Lab) -> None:
    for owner, base in (
        ("alice", "a"),
        ("alice", "b"),
        ("h.baker", "c"),
        ("228755@uni.example", "d"),
    ):
        lab.workspace(owner, base, env={"Z_LAST": "1", "A_FIRST": "2", "M_MID": "3"})
    lab.workspace("h.baker", "g", mig="1g.10gb")
    files = sorted(lab.root.rglob("*.yaml"))
    first = _plan_bytes(lab.root, "1")
    _rewrite_in_order(lab.root, list(reversed(files)))
    second = _plan_bytes(lab.root, "4242")
    assert b"will be created" in first
    assert first == second
