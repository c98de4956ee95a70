"""Plan rendering: the JSON document and the human text drawn from it, against golden files.

Each case builds a `Plan` by hand and compares `plan.json` and `plan.txt` in
`tests/golden/render/<case>/`; `DS01CTL_UPDATE_GOLDEN=1` rewrites them. Run as a script, this
file prints every case, which the hash-seed test uses to show the output does not depend on it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ds01ctl.model.kinds import Payload
from ds01ctl.model.observed import LayerChanges
from ds01ctl.model.pending import PendingItem
from ds01ctl.plan.actions import (
    Action,
    ActionKind,
    Drift,
    FieldChange,
    Fingerprint,
    GpuRow,
    Plan,
    PlanMeta,
    Precondition,
    Reason,
    Step,
    StepKind,
    Unmanaged,
)
from ds01ctl.plan.render_human import render
from ds01ctl.plan.render_json import (
    FORMAT_VERSION,
    MASK,
    dumps,
    plan_document,
    plan_from_document,
)
from tests.specs import GIB, SECRET, workspace_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
GOLDEN = REPO_ROOT / "tests" / "golden" / "render"
UPDATE = os.environ.get("DS01CTL_UPDATE_GOLDEN") == "1"
VERSION = "0.0.0-test"  # pinned so that a release does not rewrite every golden file

GPU0 = "GPU-3f6c1a2e-8b4d-4e1f-9a7c-0d2e5b6a7c81"
GPU1 = "GPU-8e2b7d41-5c3a-4f9e-b6d2-1a4c7e9f0b35"
GPU2 = "GPU-c47a9e13-2d6b-48f5-a1e9-7b3d5c8f2e60"
MIG_2G = "MIG-5d2e8a61-3f4b-5c7d-9e1a-2b6c8d0e4f17"
MIG_1G_A = "MIG-7a1c3e95-b2d4-5f68-8a0b-4c6e9d1f3a52"
MIG_1G_B = "MIG-9e4f6b23-c8a1-5d3e-b7f2-6a0d2c4e8b96"
SESSIONS, MOUNTS = Precondition.NO_LIVE_SESSIONS, Precondition.MOUNTS_UNMOVED
META = PlanMeta(
    site="lab",
    engine_id="ENGINE-1",
    observed_at="2026-01-12T08:00:00+00:00",
    gpu_source="fixture",
    config_commit="0123abcd",
)


def fingerprint(container_id: str, **fields: object) -> Fingerprint:
    pairs = tuple(sorted(fields.items()))
    return Fingerprint(container_id, "sha256:abc", (*pairs, ("running", True)))


def gpu_rows(**holders: tuple[str | None, str | None]) -> tuple[GpuRow, ...]:
    """Rows for GPU 0, GPU 1 and GPU 2's three MIG slices; `holders[name] = (before, after)`."""
    devices = [
        ("gpu0", GPU0, 0, None),
        ("gpu1", GPU1, 1, None),
        ("mig2g", MIG_2G, 2, "2g.10gb"),
        ("mig1a", MIG_1G_A, 2, "1g.5gb"),
        ("mig1b", MIG_1G_B, 2, "1g.5gb"),
    ]
    return tuple(
        GpuRow(uuid, index, profile, *holders.get(name, (None, None)))
        for name, uuid, index, profile in devices
    )


# --- cases ----------------------------------------------------------------------------------


def case_empty() -> Plan:
    return Plan(actions=(), meta=META)


def case_create_cpu() -> Plan:
    create = Action(
        1,
        ActionKind.CREATE,
        "workspace/alice/thesis",
        Reason.NEW,
        spec=workspace_spec("alice", "thesis"),
    )
    return Plan(actions=(create,), meta=META)


def case_create_mig() -> Plan:
    ws = workspace_spec(
        "bob", "nlp", uid=1002, gpus=(MIG_1G_A,), memory=16 * GIB, memory_swap=16 * GIB
    )
    create = Action(1, ActionKind.CREATE, "workspace/bob/nlp", Reason.NEW, spec=ws)
    return Plan(actions=(create,), gpus=gpu_rows(mig1a=(None, "workspace/bob/nlp")), meta=META)


def case_replace_gpus() -> Plan:
    target = "workspace/bob/nlp"
    change = FieldChange("gpus", (MIG_1G_A,), (MIG_2G,), forces_replace=True)
    replace = Action(
        1,
        ActionKind.REPLACE,
        target,
        Reason.SPEC_CHANGED,
        changes=(change,),
        spec=workspace_spec("bob", "nlp", uid=1002, gpus=(MIG_2G,)),
        container_id="c0ffee000001",
        fingerprint=fingerprint("c0ffee000001", gpus=(MIG_1G_A,), memory=32 * GIB),
        note="its container has 1.2g of changes outside its mounts; they will be snapshotted first",
    )
    rows = gpu_rows(mig1a=(target, None), mig2g=(None, target))
    return Plan(actions=(replace,), gpus=rows, meta=META)


def case_update_memory() -> Plan:
    change = FieldChange("memory", 32 * GIB, 64 * GIB)
    update = Action(
        1,
        ActionKind.UPDATE,
        "workspace/carol/cv",
        Reason.LIMITS_CHANGED,
        changes=(change, FieldChange("nano_cpus", 4 * 10**9, 5 * 10**8)),
        spec=workspace_spec("carol", "cv", uid=1003, memory=64 * GIB, nano_cpus=5 * 10**8),
        container_id="c0ffee000002",
        fingerprint=fingerprint("c0ffee000002", memory=32 * GIB, nano_cpus=4 * 10**9),
    )
    return Plan(actions=(update,), meta=META)


def case_delete_orphan() -> Plan:
    delete = Action(
        1,
        ActionKind.DELETE,
        "workspace/dave/old",
        Reason.NO_MANIFEST,
        container_id="c0ffee000003",
        fingerprint=fingerprint("c0ffee000003", env=(("WANDB_API_KEY", SECRET),)),
        note="its manifest was removed",
    )
    return Plan(actions=(delete,), meta=META)


def case_drift_pending_unmanaged() -> Plan:
    # No actions: everything here is reported, nothing is done.
    drift = Drift("workspace/carol/cv", (FieldChange("memory", 48 * GIB, 32 * GIB),))
    return Plan(
        actions=(),
        drift=(drift,),
        orphans=("workspace/erin/gone",),
        unmanaged=(
            Unmanaged(
                "legacy._.1005", "frank", "looks like an mlc container; ds01ctl does not manage it"
            ),
            Unmanaged("other._.1006", None, "managed by ds01ctl for site lab2"),
        ),
        pending=(PendingItem("workspace/gina/big", "needs 2 whole GPUs; 0 are free"),),
        warnings=("workspace/hal/x: made by a newer ds01ctl (hash version 9); left as it is",),
        meta=META,
    )


def case_gpu_table() -> Plan:
    # GPU 1 is gone: bob moves to GPU 0 once alice's orphan is deleted; start/stop show too.
    delete = Action(
        1,
        ActionKind.DELETE,
        "workspace/alice/old",
        Reason.NO_MANIFEST,
        container_id="c1",
        steps=(
            Step(1, StepKind.SNAPSHOT, (), "c1", reason="no_manifest", preconditions=(SESSIONS,)),
            Step(2, StepKind.REMOVE, (1,), "c1", untag="ds01/alice/old:u1001"),
        ),
    )
    stop = Action(
        2,
        ActionKind.STOP,
        "workspace/ivy/idle",
        Reason.POWER,
        container_id="c2",
        steps=(Step(3, StepKind.STOP, (), "c2", grace=30),),
    )
    replace = Action(
        3,
        ActionKind.REPLACE,
        "workspace/bob/train",
        Reason.GPU_GONE,
        changes=(FieldChange("gpus", (GPU1,), (GPU0,), forces_replace=True),),
        spec=workspace_spec("bob", "train", uid=1002, gpus=(GPU0,)),
        container_id="c3",
        note=f"its GPU {GPU1} no longer exists",
        steps=(
            Step(4, StepKind.STOP, (), "c3", grace=10, preconditions=(SESSIONS, MOUNTS)),
            Step(
                5, StepKind.SNAPSHOT, (4,), "c3", reason="replace", layer=LayerChanges(12, 3 << 30)
            ),
            Step(6, StepKind.REMOVE, (5,), "c3"),
            Step(7, StepKind.CREATE, (2, 6)),
            Step(8, StepKind.START, (7,), of_step=7),
        ),
    )
    start = Action(
        4,
        ActionKind.START,
        "workspace/jo/web",
        Reason.POWER,
        container_id="c4",
        steps=(Step(9, StepKind.START, (), "c4"),),
    )
    rows = gpu_rows(
        gpu0=("workspace/alice/old", "workspace/bob/train"), mig1b=("pid 4242", "pid 4242")
    )
    rows = tuple(row for row in rows if row.uuid != GPU1)  # GPU 1 is gone
    return Plan(actions=(delete, stop, replace, start), gpus=rows, meta=META)


def case_upgrade_security() -> Plan:
    # After an upgrade: a helper an interrupted apply left is removed; a workspace made by the
    # older ds01ctl and unchanged since is replaced to get the new confinement.
    cleanup = Action(
        1,
        ActionKind.CLEANUP,
        "helper/alice/0123456789ab",
        Reason.LEFTOVER_HELPER,
        container_id="0123456789abcdef",
        note="container eager_turing (account-setup helper) was left by an interrupted apply",
    )
    replace = Action(
        2,
        ActionKind.REPLACE,
        "workspace/alice/thesis",
        Reason.SECURITY_DEFAULTS,
        changes=(
            FieldChange("cap_drop", (), ("ALL",), forces_replace=True),
            FieldChange("security_opt", (), ("no-new-privileges",), forces_replace=True),
        ),
        spec=workspace_spec("alice", "thesis"),
        container_id="c0ffee000004",
        note="made by an older ds01ctl (hash version 1), before its confinement",
    )
    return Plan(actions=(cleanup, replace), meta=META)


CASES: dict[str, Callable[[], Plan]] = {
    "upgrade-security": case_upgrade_security,
    "empty": case_empty,
    "create-cpu": case_create_cpu,
    "create-mig": case_create_mig,
    "replace-gpus": case_replace_gpus,
    "update-memory": case_update_memory,
    "delete-orphan": case_delete_orphan,
    "drift-pending-unmanaged": case_drift_pending_unmanaged,
    "gpu-table": case_gpu_table,
}


def outputs(plan: Plan) -> dict[str, str]:
    doc = plan_document(plan, tool_version=VERSION)
    return {"plan.json": dumps(doc), "plan.txt": render(doc, colour=False)}


# --- golden ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_golden(case: str) -> None:
    folder = GOLDEN / case
    for name, text in outputs(CASES[case]()).items():
        path = folder / name
        if UPDATE:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"no golden {path.name} for {case}: run with DS01CTL_UPDATE_GOLDEN=1"
        assert text == path.read_text(encoding="utf-8"), f"{case}/{name} differs from golden"


def test_render_golden_has_no_stray_cases() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == sorted(CASES)


# --- the document ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_document_round_trip_unmasked(case: str) -> None:
    plan = CASES[case]()
    doc = plan_document(plan, mask_secrets=False)
    assert plan_from_document(doc) == plan
    assert plan_from_document(json.loads(dumps(doc))) == plan  # through text, as a plan file


def test_document_masks_env_values_everywhere() -> None:
    # The secret sits in a create's spec, in a fingerprint and in a change.
    change = FieldChange(
        "env",
        {"NEW": None, "WANDB_API_KEY": SECRET},
        {"NEW": "1", "WANDB_API_KEY": "new-" + SECRET},
    )
    update = dataclasses.replace(case_update_memory().actions[0], changes=(change,))
    plan = Plan(actions=(*case_create_cpu().actions, update, *case_delete_orphan().actions))
    masked = dumps(plan_document(plan))
    assert SECRET not in masked
    doc = json.loads(masked)
    assert doc["actions"][0]["spec"]["env"] == {"HF_HOME": MASK, "WANDB_API_KEY": MASK}
    assert doc["actions"][1]["changes"][0]["before"] == {"NEW": None, "WANDB_API_KEY": MASK}
    assert doc["actions"][1]["changes"][0]["after"] == {"NEW": MASK, "WANDB_API_KEY": MASK}
    assert {"field": "env", "value": [["WANDB_API_KEY", MASK]]} in doc["actions"][2]["fingerprint"][
        "fields"
    ]
    assert SECRET in dumps(plan_document(plan, mask_secrets=False))


# A create shows its network and its env like every other field; env values masked as in
# --json, even when the document it renders is the unmasked one a plan file holds.
def test_render_create_shows_network_and_masked_env() -> None:
    plan = case_create_cpu()
    for doc in (plan_document(plan), plan_document(plan, mask_secrets=False)):
        text = render(doc)
        assert '+ network  = "bridge"' in text
        assert f'+ env      = {{"HF_HOME": "{MASK}", "WANDB_API_KEY": "{MASK}"}}' in text
        assert SECRET not in text and "/workspace/.hf" not in text


def test_document_contract_keys_and_vocabulary() -> None:
    # Changing any of these breaks consumers: bump FORMAT_VERSION and update this test.
    doc = plan_document(case_replace_gpus())
    assert FORMAT_VERSION == 2
    assert sorted(doc) == [
        "actions",
        "budgets",
        "drift",
        "ds01ctl_version",
        "format_version",
        "gpus",
        "meta",
        "notes",
        "orphans",
        "pending",
        "summary",
        "unmanaged",
        "warnings",
    ]
    assert sorted(doc["summary"]) == ["actions", "drift", "orphans", "pending", "unmanaged"]
    assert sorted(doc["actions"][0]) == [
        "changes",
        "container_id",
        "fingerprint",
        "id",
        "kind",
        "note",
        "payload_type",
        "reason",
        "spec",
        "steps",
        "target",
    ]
    # The payload is a tagged union: its tag beside the record, null with no record.
    assert [p.value for p in Payload] == ["container", "image_build"]
    for action in doc["actions"]:
        assert action["payload_type"] == (None if action["spec"] is None else "container")
    assert sorted(doc["actions"][0]["changes"][0]) == ["after", "before", "field", "forces_replace"]
    assert sorted(doc["gpus"][0]) == ["after", "before", "gpu_index", "profile", "uuid"]
    assert [k.value for k in ActionKind] == [
        "create",
        "update",
        "replace",
        "delete",
        "start",
        "stop",
        "build",
        "cleanup",
        "adopt",
    ]
    steps = plan_document(case_gpu_table())["actions"][2]["steps"]
    assert sorted(steps[0]) == [
        "container_id",
        "depends_on",
        "grace",
        "id",
        "kind",
        "layer",
        "of_step",
        "preconditions",
        "reason",
        "untag",
    ]
    assert steps[1]["layer"] == {"paths": 12, "size": 3 << 30}
    assert [k.value for k in StepKind] == [
        "snapshot",
        "stop",
        "remove",
        "create",
        "start",
        "update",
        "remove_image",
        "build",
        "wait_healthy",
    ]
    assert [p.value for p in Precondition] == ["no_live_sessions", "mounts_unmoved"]
    assert [r.value for r in Reason] == [
        "new",
        "spec_changed",
        "changed_outside",
        "limits_changed",
        "gpu_gone",
        "power",
        "no_manifest",
        "duplicate",
        "gpu_released",
        "security_defaults",
        "leftover_helper",
        "mlc_container",
        "leftover_tag",
        "leftover_account_image",
        "duplicate_snapshot",
        "image_changed",
        "rebuild",
        "container_hold_expired",
    ]
    assert sorted(doc["summary"]["actions"]) == sorted(k.value for k in ActionKind)


def test_document_refuses_values_without_a_json_form() -> None:
    bad = Plan(actions=(), drift=(Drift("workspace/a/b", (FieldChange("x", {1, 2}, None),)),))
    with pytest.raises(Exception, match="no JSON form"):
        plan_document(bad)


def test_document_refuses_non_canonical_env() -> None:
    # Unsorted pairs would come back sorted from a saved plan: a bug in whoever built the spec.
    unsorted = workspace_spec("alice", "thesis", env=(("B", "1"), ("A", "2")))
    plan = Plan(
        actions=(Action(1, ActionKind.CREATE, "workspace/alice/thesis", Reason.NEW, spec=unsorted),)
    )
    with pytest.raises(Exception, match="not canonical"):
        plan_document(plan)


# --- the human text -------------------------------------------------------------------------


def test_render_same_from_saved_text_as_from_memory() -> None:
    # `plan` renders the document in memory, `show FILE` the same document read back.
    doc = plan_document(case_gpu_table())
    assert render(json.loads(dumps(doc))) == render(doc)


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_colour_adds_only_escape_codes(case: str) -> None:
    doc = plan_document(CASES[case]())
    coloured = render(doc, colour=True)
    assert re.sub(r"\033\[[0-9;]*m", "", coloured) == render(doc, colour=False)
    assert "\033[1m" in coloured  # at least the summary line is bold


def test_render_impossible_combination_says_bug() -> None:
    odd = Action(
        1,
        ActionKind.CREATE,
        "workspace/alice/thesis",
        Reason.NO_MANIFEST,
        spec=workspace_spec("alice", "thesis"),
    )
    text = render(plan_document(Plan(actions=(odd,))))
    assert "# workspace alice/thesis has an action this ds01ctl cannot explain" in text
    assert "(this is a bug)" in text


def test_render_delete_wording_is_the_same_for_every_reason() -> None:
    for reason in (Reason.NO_MANIFEST, Reason.DUPLICATE, Reason.POWER):
        delete = Action(1, ActionKind.DELETE, "workspace/a/b", reason, container_id="c")
        lines = render(plan_document(Plan(actions=(delete,)))).splitlines()
        assert "  # workspace a/b will be destroyed" in lines
        note = lines[lines.index("  # workspace a/b will be destroyed") + 1]
        assert note.startswith("  #   (because")
        assert ("this is a bug" in note) == (reason is Reason.POWER)


def test_render_pending_only_is_not_no_changes() -> None:
    plan = Plan(actions=(), pending=(PendingItem("workspace/gina/big", "no GPU free"),))
    assert render(plan_document(plan)).endswith(
        "Plan: 0 to add, 0 to change, 0 to replace, 0 to destroy, 1 pending.\n"
    )


def test_render_is_independent_of_hash_seed() -> None:
    # Run in fresh interpreters: a set or dict walk that leaked into the output would differ.
    texts = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-m", "tests.unit.test_render"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            check=True,
            timeout=120,
        )
        texts.append(done.stdout)
    assert texts[0] == texts[1]
    assert b"Plan: 1 to add" in texts[0]


if __name__ == "__main__":
    for name in sorted(CASES):
        for text in outputs(CASES[name]()).values():
            sys.stdout.write(text)


def test_render_orphans_only_is_not_matches_the_manifests() -> None:
    plan = Plan(actions=(), orphans=("workspace/erin/gone", "workspace/erin/old"))
    text = render(plan_document(plan))
    assert "matches the manifests" not in text
    assert text.endswith(
        "No changes to apply; 2 managed container(s) have no manifest "
        "(see above; --prune deletes them).\n"
    )
    assert "  workspace erin/gone" in text


def test_render_gpu_table_shows_changing_rows_unless_asked_for_all() -> None:
    doc = plan_document(case_gpu_table())
    changed = render(doc)
    assert "workspace/alice/old  workspace/bob/train" in changed
    assert "pid 4242" not in changed and "MIG-5d2e" not in changed
    every = render(doc, all_gpus=True)
    assert "pid 4242" in every and "MIG-5d2e" in every
    assert "GPU allocation (before → after):" in every


def test_render_gpu_table_absent_when_nothing_changes() -> None:
    plan = Plan(actions=(), gpus=gpu_rows(mig1b=("pid 4242", "pid 4242")))
    assert "GPU allocation" not in render(plan_document(plan))
    assert "pid 4242" in render(plan_document(plan), all_gpus=True)


def test_render_label_change_is_one_short_line_per_changed_key() -> None:
    blob = json.dumps({"layers": ["x" * 60] * 5})
    change = FieldChange(
        "labels",
        {"ds01.extra": blob, "team": "vision"},
        {"ds01.extra": None, "team": "nlp"},
        forces_replace=True,
    )
    replace = Action(
        1,
        ActionKind.REPLACE,
        "workspace/carol/cv",
        Reason.SPEC_CHANGED,
        changes=(change,),
        spec=workspace_spec("carol", "cv", uid=1003),
        container_id="c0ffee000005",
    )
    doc = plan_document(Plan(actions=(replace,)))
    lines = render(doc).splitlines()
    extra = next(line for line in lines if "label ds01.extra" in line)
    team = next(line for line in lines if "label team" in line)
    assert "…" in extra and "-> (none)" in extra and len(extra) < 120
    assert team.strip().startswith("~ label team") and '"vision" -> "nlp"' in team
    assert "# forces replacement" in extra and "# forces replacement" not in team
    # --json keeps the whole values.
    parsed = json.loads(dumps(doc))
    assert parsed["actions"][0]["changes"][0]["before"]["ds01.extra"] == blob


def test_render_lone_step_that_repeats_the_header_is_left_out() -> None:
    alone = Action(
        1,
        ActionKind.CREATE,
        "workspace/alice/thesis",
        Reason.NEW,
        spec=workspace_spec("alice", "thesis"),
        steps=(Step(1, StepKind.CREATE, ()),),
    )
    waiting = dataclasses.replace(
        alone, id=2, target="workspace/bob/nlp", steps=(Step(2, StepKind.CREATE, (1,)),)
    )
    text = render(plan_document(Plan(actions=(alone, waiting))))
    assert text.count("steps:") == 1
    assert "2. create, after step 1" in text and "1. create" not in text
