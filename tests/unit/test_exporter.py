"""The exporter: built from a status snapshot, scraped over real HTTP on 127.0.0.1, and
checked by Prometheus' own `promtool check metrics`."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import pytest

from ds01ctl.exporter import (
    ContainerStatus,
    LoopStatus,
    Slot,
    StatusSnapshot,
    build_registry,
    serve,
)

SNAPSHOT = StatusSnapshot(
    containers=(
        ContainerStatus("train._.61001", "alice", True, ("0",), Fraction(1), "warned"),
        ContainerStatus("nb._.61002", "h.baker", True, ("1.0",), Fraction(1, 7), "active"),
        ContainerStatus("old._.61002", "h.baker", False, (), Fraction(0), None),
    ),
    slots=(
        Slot("0", 0, "GPU-00000000-0000-0000-0000-000000000001"),
        Slot("1.0", 1, "MIG-00000000-0000-0000-0000-000000000002", mig=True, gpu_i_id=13),
    ),
    user_cpu_seconds={"alice": 1234.5, "h.baker": 3.25},
    user_memory_bytes={"alice": 2**30},
    events_24h={"maintenance.idle_kill": 2, 'odd"type': 1},
    lifecycle_events={"maintenance.idle_warning": 3},
    loop=LoopStatus(
        commit="0123abcd",
        last_success=dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC),
        duration_s=0.42,
        pending_requests=1,
        drift_objects=2,
    ),
)


@pytest.fixture
def scraped() -> Iterator[str]:
    server: Any = serve(build_registry(SNAPSHOT), port=0)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"  # the default: never on every interface
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            assert reply.status == 200
            yield reply.read().decode()
    finally:
        server.shutdown()
        server.server_close()


def test_exporter_ds01_names_and_labels(scraped: str) -> None:
    lines = set(scraped.splitlines())
    for expected in [
        'ds01_gpu_allocated{container="train._.61001",gpu_slot="0",interface="ds01ctl",'
        'user="alice"} 1.0',
        'ds01_mig_slot_info{gpu="1",gpu_i_id="13",mig_uuid="MIG-00000000-0000-0000-0000-'
        '000000000002",slot="1.0"} 1.0',
        'ds01_containers_total{interface="ds01ctl",status="running"} 2.0',
        'ds01_user_gpu_equivalents{user="h.baker"} 0.14285714285714285',
        'ds01_user_cpu_usage_seconds_total{user="alice"} 1234.5',
        'ds01_events_24h_total{event_type="odd\\"type"} 1.0',
        'ds01_lifecycle_state{container="train._.61001",state="warned",user="alice"} 1.0',
        'ds01_reconcile_info{commit="0123abcd"} 1.0',
        "ds01_reconcile_last_success_timestamp_seconds 1.772442e+09",
        "ds01_reconcile_pending_requests 1.0",
        "ds01_reconcile_drift_objects 2.0",
        "# TYPE ds01_containers_total untyped",
    ]:
        assert expected in lines, expected


def test_exporter_passes_promtool(scraped: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool not found: install Debian's prometheus package "
            "(scripts/bootstrap does it as root)"
        )
    done = subprocess.run(
        [promtool, "check", "metrics"], input=scraped, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
