"""Saved plans: a plan comes back exactly as saved, and every unusable file is refused with
code `plan_file` and one line saying why."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from ds01ctl.errors import Ds01Error
from ds01ctl.model.observed import LayerChanges
from ds01ctl.model.pending import PendingItem
from ds01ctl.model.spec import Bind, Power
from ds01ctl.plan import planfile
from ds01ctl.plan.actions import (
    Action,
    ActionKind,
    FieldChange,
    Fingerprint,
    GpuRow,
    Plan,
    PlanMeta,
    Precondition,
    Reason,
    Step,
    StepKind,
)
from ds01ctl.plan.planfile import PLANFILE_VERSION, load_plan, save_plan
from ds01ctl.plan.render_json import FORMAT_VERSION
from tests.specs import SECRET, workspace_spec

SESSIONS, MOUNTS = Precondition.NO_LIVE_SESSIONS, Precondition.MOUNTS_UNMOVED
GPU0 = "GPU-3f6c1a2e-8b4d-4e1f-9a7c-0d2e5b6a7c81"
MIG = "MIG-7a1c3e95-b2d4-5f68-8a0b-4c6e9d1f3a52"


def make_plan() -> Plan:
    """A replace with a full spec and fingerprint, a delete, pending work and GPU rows."""
    spec = workspace_spec(
        "bob",
        "nlp",
        uid=1002,
        binds=(Bind("/workspace", "/home/bob/nlp"),),
        ulimits=(("memlock", -1),),
        gpus=(GPU0,),
        power=Power.RUNNING,
        snapshot_on_replace=True,
    )
    observed = (("binds", ("/home/bob/nlp:/workspace",)), ("env", (("WANDB_API_KEY", SECRET),)))
    replace = Action(
        2,
        ActionKind.REPLACE,
        "workspace/bob/nlp",
        Reason.SPEC_CHANGED,
        changes=(FieldChange("gpus", (MIG,), (GPU0,), forces_replace=True),),
        spec=spec,
        container_id="c2",
        fingerprint=Fingerprint("c2", "sha256:abc", (*observed, ("running", True))),
        steps=(
            Step(3, StepKind.STOP, (), "c2", grace=10, preconditions=(SESSIONS, MOUNTS)),
            Step(4, StepKind.SNAPSHOT, (3,), "c2", reason="replace", layer=LayerChanges(3, 2048)),
            Step(5, StepKind.REMOVE, (4,), "c2", untag="ds01/bob/nlp:u1002"),
            Step(6, StepKind.CREATE, (2, 5)),
            Step(7, StepKind.START, (6,), of_step=6),
        ),
    )
    delete = Action(
        1,
        ActionKind.DELETE,
        "workspace/al/old",
        Reason.NO_MANIFEST,
        container_id="c1",
        steps=(
            Step(1, StepKind.SNAPSHOT, (), "c1", reason="no_manifest", preconditions=(SESSIONS,)),
            Step(2, StepKind.REMOVE, (1,), "c1"),
        ),
    )
    return Plan(
        actions=(delete, replace),
        pending=(PendingItem("workspace/gina/big", "no GPU free"),),
        gpus=(GpuRow(GPU0, 0, None, "workspace/al/old", "workspace/bob/nlp"),),
        warnings=("a warning",),
        meta=PlanMeta(site="lab", observed_at="2026-01-12T08:00:00+00:00"),
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    folder.mkdir()
    return folder


def save(plan: Plan, path: Path, state_dir: Path) -> None:
    save_plan(
        plan,
        path,
        tool_version="0.0.0-test",
        site="lab",
        state_dir=state_dir,
        config_commit="0123abcd",
    )


@pytest.fixture
def saved(tmp_path: Path, state_dir: Path) -> Path:
    path = tmp_path / "plan.ds01"
    save(make_plan(), path, state_dir)
    return path


def refused(path: Path, state_dir: Path) -> Ds01Error:
    with pytest.raises(Ds01Error) as caught:
        load_plan(path, state_dir=state_dir)
    assert caught.value.code == "plan_file"
    assert "\n" not in caught.value.message
    assert caught.value.hint
    return caught.value


def rewrite(path: Path, edit: Any, *, redigest: bool) -> None:
    """Change the saved JSON with `edit(raw)`; `redigest` keeps the digest valid."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    edit(raw)
    if redigest:
        raw["digest"] = planfile._digest({k: v for k, v in raw.items() if k != "digest"})
    path.write_text(json.dumps(raw), encoding="utf-8")


# --- saving and loading ---------------------------------------------------------------------


def test_planfile_round_trip(saved: Path, state_dir: Path) -> None:
    assert load_plan(saved, state_dir=state_dir) == make_plan()


def test_planfile_keeps_real_env_values(saved: Path, state_dir: Path) -> None:
    # apply creates containers from the saved spec: a masked value would be written into them.
    plan = load_plan(saved, state_dir=state_dir)
    assert plan.actions[1].container is not None
    assert dict(plan.actions[1].container.env)["WANDB_API_KEY"] == SECRET


def test_planfile_is_private_and_leaves_no_temp_files(saved: Path) -> None:
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert [p.name for p in saved.parent.iterdir() if p.is_file()] == [saved.name]


def test_planfile_overwrite_replaces_the_whole_file(saved: Path, state_dir: Path) -> None:
    save(Plan(actions=()), saved, state_dir)
    assert load_plan(saved, state_dir=state_dir) == Plan(actions=())
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


def test_planfile_envelope_records_where_it_came_from(saved: Path, state_dir: Path) -> None:
    raw = json.loads(saved.read_text(encoding="utf-8"))
    assert raw["ds01ctl_planfile"] == PLANFILE_VERSION
    assert raw["plan"]["format_version"] == FORMAT_VERSION
    assert (raw["ds01ctl_version"], raw["site"], raw["config_commit"]) == (
        "0.0.0-test",
        "lab",
        "0123abcd",
    )
    assert raw["state_dir"] == str(state_dir.resolve())
    assert raw["digest"].startswith("sha256:")


def test_planfile_same_state_dir_by_another_spelling(saved: Path, state_dir: Path) -> None:
    other_spelling = state_dir.parent / "state" / ".." / "state"
    assert load_plan(saved, state_dir=other_spelling) == make_plan()


# --- refusals -------------------------------------------------------------------------------


def test_planfile_refuses_missing_file(tmp_path: Path, state_dir: Path) -> None:
    error = refused(tmp_path / "nope.ds01", state_dir)
    assert error.message.startswith("no plan file at")


def test_planfile_refuses_non_json(tmp_path: Path, state_dir: Path) -> None:
    path = tmp_path / "plan.ds01"
    path.write_text("# a shell script, not a plan\n", encoding="utf-8")
    assert "not valid JSON" in refused(path, state_dir).message


def test_planfile_refuses_truncated_file(saved: Path, state_dir: Path) -> None:
    text = saved.read_text(encoding="utf-8")
    saved.write_text(text[: len(text) // 2], encoding="utf-8")
    assert "not valid JSON" in refused(saved, state_dir).message


def test_planfile_refuses_json_that_is_no_envelope(tmp_path: Path, state_dir: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{"format_version": 1, "actions": []}', encoding="utf-8")
    assert "no `ds01ctl_planfile` version" in refused(path, state_dir).message


def test_planfile_refuses_edited_plan(saved: Path, state_dir: Path) -> None:
    # Someone "fixes" a saved plan by hand: the digest no longer matches.
    def bigger(raw: dict[str, Any]) -> None:
        raw["plan"]["actions"][1]["spec"]["memory"] *= 2

    rewrite(saved, bigger, redigest=False)
    assert "was modified after it was saved" in refused(saved, state_dir).message


def test_planfile_refuses_edited_envelope(saved: Path, state_dir: Path) -> None:
    # The digest covers the envelope too: pointing a plan at another state dir is caught.
    def elsewhere(raw: dict[str, Any]) -> None:
        raw["state_dir"] = "/srv/ds01/other"

    rewrite(saved, elsewhere, redigest=False)
    assert "was modified after it was saved" in refused(saved, state_dir).message


def test_planfile_refuses_newer_envelope(saved: Path, state_dir: Path) -> None:
    def newer(raw: dict[str, Any]) -> None:
        raw["ds01ctl_planfile"] = PLANFILE_VERSION + 1
        raw["digest"] = "sha256:computed-some-newer-way"

    rewrite(saved, newer, redigest=False)
    error = refused(saved, state_dir)
    assert "made by a newer ds01ctl" in error.message
    assert error.hint is not None and "upgrade" in error.hint


def test_planfile_refuses_newer_plan_format(saved: Path, state_dir: Path) -> None:
    def newer(raw: dict[str, Any]) -> None:
        raw["plan"]["format_version"] = FORMAT_VERSION + 1

    rewrite(saved, newer, redigest=True)
    assert (
        f"made by a newer ds01ctl (format_version {FORMAT_VERSION + 1}"
        in refused(saved, state_dir).message
    )


@pytest.mark.parametrize("version", [0, "1", None, True])
def test_planfile_refuses_nonsense_version(saved: Path, state_dir: Path, version: Any) -> None:
    def odd(raw: dict[str, Any]) -> None:
        raw["ds01ctl_planfile"] = version

    rewrite(saved, odd, redigest=True)
    assert "not a version number" in refused(saved, state_dir).message


def test_planfile_refuses_other_state_dir(saved: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-state"
    other.mkdir()
    error = refused(saved, other)
    assert error.message.startswith("this plan was made for state dir ")
    assert "run with the same Site" in error.message


def test_planfile_refuses_malformed_document_with_valid_digest(
    saved: Path, state_dir: Path
) -> None:
    # Written by a buggy tool: the checksum is right, the content is not a plan.
    def broken(raw: dict[str, Any]) -> None:
        raw["plan"]["actions"][0]["kind"] = "teleport"

    rewrite(saved, broken, redigest=True)
    assert "malformed" in refused(saved, state_dir).message


# --- migrations -----------------------------------------------------------------------------


def test_planfile_upgrade_runs_each_step_in_order(saved: Path) -> None:
    # No old version exists yet; this pins the mechanism the first migration will use.
    steps = {
        1: lambda raw: {**raw, "seen": [*raw.get("seen", []), 1]},
        2: lambda raw: {**raw, "seen": [*raw["seen"], 2]},
    }
    raw = planfile._upgrade({"v": 1}, "v", 3, steps, saved)
    assert raw == {"v": 3, "seen": [1, 2]}


def test_planfile_upgrade_without_a_step_is_refused(saved: Path) -> None:
    with pytest.raises(Ds01Error, match=r"made by an older ds01ctl \(v 1; this one reads 2\)"):
        planfile._upgrade({"v": 1}, "v", 2, {}, saved)


def test_planfile_of_format_1_is_refused_as_made_by_an_older_ds01ctl(
    saved: Path, state_dir: Path
) -> None:
    # Format 1 left the steps to apply; upgrading it would need the observation it lacks.
    def older(raw: dict[str, Any]) -> None:
        raw["plan"]["format_version"] = 1

    rewrite(saved, older, redigest=True)
    error = refused(saved, state_dir)
    assert error.message.endswith(
        "was made by an older ds01ctl (format_version 1; this one reads 2): make a new plan"
    )
