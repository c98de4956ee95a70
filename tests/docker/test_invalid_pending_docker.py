"""One student's bad object never stops the lab: it is pending with its reason, and every other
workspace is planned and applied against the real engine."""

from __future__ import annotations

import json
import re

import pytest

from ds01ctl.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK
from ds01ctl.plan.actions import ActionKind
from tests.docker.dockerlab import Lab

pytestmark = pytest.mark.docker


def _pending(done_stdout: str) -> dict[str, str]:
    return {p["target"]: p["reason"] for p in json.loads(done_stdout)["pending"]}


def test_broken_file_is_pending_and_the_other_user_is_created(lab: Lab) -> None:
    good = lab.workspace("alice", "good")
    broken = lab.workspace("h.baker", "broken", cpus="lots")
    created = lab.apply()
    assert created.code == 0, created.output
    assert [c["Labels"]["ds01.owner"] for c in lab.containers()] == ["alice"]
    assert lab.containers()[0]["Labels"]["ds01.name"] == good
    plan = lab.plan_cli("--json", "--detailed-exitcode")
    assert plan.code == EXIT_OK, plan.output  # pending alone is not a change
    reason = _pending(plan.stdout)[f"workspace/h.baker/{broken}"]
    assert re.fullmatch(
        rf"invalid: users/h\.baker/{broken}\.yaml:\d+:\d+: error\[schema\.invalid\]: .*cpus.*",
        reason,
    ), reason
    failing = lab.plan_cli("--fail-on-pending")
    assert failing.code == EXIT_ERROR
    assert f"pending: workspace/h.baker/{broken}: invalid: users/h.baker/" in failing.stderr


def test_over_quota_object_keeps_its_container_even_with_prune(lab: Lab) -> None:
    # A cap lowered under a running workspace: it becomes invalid, and is neither deleted
    # (it is no orphan) nor replaced; the other user's new workspace is still created.
    kept = lab.workspace("alice", "kept")
    assert lab.apply().code == 0
    before = [c["Id"] for c in lab.containers()]
    quota = lab.root / "quota.yaml"
    quota.write_text(
        quota.read_text().replace("users: {members:", "users: {limits: {cpus: 0.1}, members:")
    )
    other = lab.workspace("h.baker", "other", cpus=0.1)
    plan = lab.plan(prune=True).plan
    assert [(a.kind, a.target) for a in plan.actions] == [
        (ActionKind.CREATE, f"workspace/h.baker/{other}")
    ]
    reason = dict((p.target, p.reason) for p in plan.pending)[f"workspace/alice/{kept}"]
    assert reason.startswith(f"invalid: users/alice/{kept}.yaml:")
    assert "[quota.request]" in reason and "asks cpus 0.25" in reason
    assert lab.apply("--prune").code == 0
    assert before[0] in [c["Id"] for c in lab.containers()]


def test_invalid_site_still_stops_the_plan(lab: Lab) -> None:
    lab.workspace("alice", "w")
    site = lab.root / "site.yaml"
    site.write_text(site.read_text().replace("state_dir:", "state_dirx:"))
    done = lab.plan_cli()
    assert done.code == EXIT_ERROR
    assert "state_dirx" in done.output and "[schema.unknown_key]" in done.output


def test_unpullable_image_is_pending_and_the_rest_is_planned(lab: Lab) -> None:
    site = lab.root / "site.yaml"
    site.write_text(
        site.read_text().replace('"ds01ctl-local/*"', '"ds01ctl-local/*", "nosuch.invalid/*"')
    )
    bad = lab.workspace("alice", "bad", framework=None, image_ref="nosuch.invalid/team/img:1")
    good = lab.workspace("h.baker", "good")
    done = lab.plan_cli("--json", "--detailed-exitcode")
    assert done.code == EXIT_CHANGES, done.output
    document = json.loads(done.stdout)
    assert [a["target"] for a in document["actions"]] == [f"workspace/h.baker/{good}"]
    reason = _pending(done.stdout)[f"workspace/alice/{bad}"]
    assert reason.startswith("refused: image nosuch.invalid/team/img:1 is not on this host")
    assert "\n" not in reason and "500 Server Error" not in reason and len(reason) < 300
