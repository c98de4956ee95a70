"""Without a Docker engine, plan and apply say so in one line (and validate never needs one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"


@pytest.mark.parametrize("command", [["plan"], ["apply", "--auto-approve"]])
def test_no_engine_is_one_clear_line(tmp_path: Path, command: list[str]) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    done = subprocess.run(
        [sys.executable, "-m", "ds01ctl", *command, str(DEMO)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: no Docker engine answers (start dockerd (scripts/docker-engine does it on a "
        "test machine), or set DOCKER_HOST)"
    ]
    assert "Traceback" not in done.stdout + done.stderr
