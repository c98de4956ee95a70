"""`ds01ctl limits`: effective limits with the layer that set each one (offline here)."""

from __future__ import annotations

import json
from pathlib import Path

from ds01ctl.limits_report import disk_of, limits_report
from tests.conftest import run_ds01ctl

LAB = Path(__file__).resolve().parents[2] / "examples" / "lab"


def test_limits_override_keeps_the_group_and_names_each_layer() -> None:
    report = limits_report(LAB, "h.baker", with_usage=False).to_dict_list()[0]
    assert report["group"] == "researcher"
    limits = report["limits"]
    assert limits["gpu_budget"] == {"value": "4", "source": "group researcher"}
    assert limits["cpus"] == {"value": "48", "source": "group researcher"}
    assert limits["idle_timeout"] == {"value": "never", "source": "user h.baker"}
    assert limits["pids"] == {"value": "4096", "source": "defaults"}


def test_limits_exemption_shows_until_when() -> None:
    report = limits_report(LAB, "alice", with_usage=False).to_dict_list()[0]
    assert report["limits"]["max_runtime"] == {
        "value": "7d",
        "source": "exemption until 2027-03-31",
        "reason": "thesis experiments need week-long training runs",
    }


def test_limits_text_shows_the_exemption_reason_next_to_its_value() -> None:
    done = run_ds01ctl("limits", "alice", "-C", str(LAB), "--offline")
    assert done.code == 0, done.output
    line = next(x for x in done.stdout.splitlines() if x.strip().startswith("max_runtime"))
    assert line.split() == [
        "max_runtime",
        "7d",
        "exemption",
        "until",
        "2027-03-31:",
        "thesis",
        "experiments",
        "need",
        "week-long",
        "training",
        "runs",
    ]
    pids = next(x for x in done.stdout.splitlines() if x.strip().startswith("pids"))
    assert ":" not in pids  # only an exemption has a reason


def test_limits_json_lists_every_known_user() -> None:
    done = run_ds01ctl("limits", "--config", str(LAB), "--offline", "--json")
    assert done.code == 0, done.output
    users = {u["user"] for u in json.loads(done.stdout)["users"]}
    assert {"alice", "h.baker", "228755@uni.example", "carol", "dave", "datasciencelab"} <= users


def test_limits_disk_use_reads_in_human_sizes_and_in_bytes_in_json() -> None:
    report = limits_report(LAB, "alice", with_usage=False)
    disk = {
        "writable_layers": {"alice": 5 * 1024**2 + 1, "carol": 7},
        "snapshots": {"alice": 3 * 1024**3},
    }
    report.users[0].disk = disk_of(disk, "alice")
    text = report.to_text()
    assert "  disk: 5.0 MB writable layers, 3.0 GB snapshots, 0 bytes account images\n" in text
    doc = json.loads(report.to_json())["users"][0]
    assert doc["disk"] == {
        "writable_layers": 5 * 1024**2 + 1,
        "snapshots": 3 * 1024**3,
        "account_images": 0,
    }


def test_limits_offline_reads_no_disk_use() -> None:
    done = run_ds01ctl("limits", "alice", "-C", str(LAB), "--offline", "--json")
    assert done.code == 0, done.output
    assert json.loads(done.stdout)["users"][0]["disk"] is None
    text = run_ds01ctl("limits", "alice", "-C", str(LAB), "--offline").stdout
    assert "disk:" not in text
