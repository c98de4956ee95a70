"""`ds01ctl exporter` against the real engine: started as a process on 127.0.0.1, scraped with
a real HTTP GET, checked by `promtool check metrics`, with the loop's own numbers from
`reconcile.json` and event counts from the event log."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from ds01ctl.events import EventLog, event
from ds01ctl.exporter import LoopStatus
from ds01ctl.loopstatus import write_loop_status
from tests.docker.dockerlab import Lab


def test_exporter_serves_ds01_metrics_from_the_engine(lab: Lab, tmp_path: Path) -> None:
    name = lab.workspace("alice", "exp")
    assert lab.apply().code == 0
    (entry,) = lab.containers_of("alice", name)
    lab.client.start(entry["Id"])
    now = dt.datetime.now(dt.UTC)
    write_loop_status(
        lab.state_dir, LoopStatus("cafe0123", now, 0.25, pending_requests=3, drift_objects=1)
    )
    log_path = tmp_path / "events.jsonl"
    with EventLog(log_path) as log:
        log.append(event("maintenance.idle_kill", "alice", {"object": "x"}, now))
    process = subprocess.Popen(
        lab.cli_command(
            "exporter", "-C", str(lab.root), "--port", "0", "--interval", "1",
            "--events-log", str(log_path), "--state-dir", str(lab.state_dir),
        ),
        cwd=lab.workdir, env=lab.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("serving /metrics on 127.0.0.1:"), first
        port = int(first.split(":")[1].split(",")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as reply:
            assert reply.status == 200
            text = reply.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert 'ds01_user_containers_count{user="alice"} 1.0' in text
    assert 'ds01_containers_total{interface="ds01ctl",status="running"} 1.0' in text
    assert 'ds01_lifecycle_events_total{event_type="maintenance.idle_kill"} 1.0' in text
    assert 'ds01_events_24h_total{event_type="maintenance.idle_kill"} 1.0' in text
    assert 'ds01_reconcile_info{commit="cafe0123"} 1.0' in text
    assert "ds01_reconcile_pending_requests 3.0" in text
    assert "ds01_reconcile_drift_objects 1.0" in text
    (last,) = [
        line.split()[1]
        for line in text.splitlines()
        if line.startswith("ds01_reconcile_last_success_timestamp_seconds ")
    ]
    assert abs(float(last) - now.timestamp()) < 1e-3
    cpu = [line for line in text.splitlines() if line.startswith("ds01_user_cpu_usage_seconds")]
    assert cpu and 'user="alice"' in cpu[0], text
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: install Debian's prometheus package")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
