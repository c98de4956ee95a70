"""`apply` against a real engine, through the CLI in subprocesses: the round trip on a demo-like
repo, one change of each kind, snapshots, live sessions, saved plans and refusals.

Every scenario ends the same way: apply, then plan again, and the plan is empty.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ds01ctl import __version__
from ds01ctl import labels as L
from ds01ctl.plan.planfile import save_plan
from tests.docker.dockerlab import Lab

pytestmark = pytest.mark.docker

MIB = 1024**2
SNAPSHOT_LABELS = {
    L.SNAPSHOT_OF,
    L.SNAPSHOT_OWNER,
    L.SNAPSHOT_TAKEN_AT,
    L.SNAPSHOT_REASON,
    L.SNAPSHOT_SITE,
}


def _actions(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, target, reason) of each action of a plan document."""
    return [(a["kind"], a["target"], a["reason"]) for a in plan["actions"]]


def _notes(events: list[dict[str, Any]]) -> dict[str, str | None]:
    """Target → the notes of its steps apply finished (None: none had one); none may have
    failed or been skipped."""
    assert [e for e in events if e["event"] in ("failed", "skipped")] == []
    notes: dict[str, list[str]] = {}
    for e in events:
        if e["event"] == "done":
            notes.setdefault(e["target"], []).extend(filter(None, [e["note"]]))
    return {target: "; ".join(texts) or None for target, texts in notes.items()}


def _applied(lab: Lab, *args: str) -> str:
    """Run apply; it must succeed. Its stdout."""
    done = lab.apply(*args)
    assert done.code == 0, done.output
    return done.stdout


def _inspect(lab: Lab, owner: str, name: str) -> dict[str, Any]:
    return dict(lab.client.inspect_container(lab.container_name(owner, name)))


def _the_container(lab: Lab, owner: str, name: str) -> dict[str, Any]:
    """The one container of workspace owner/name (never two)."""
    found = lab.containers_of(owner, name)
    assert len(found) == 1, [c["Names"] for c in found]
    return found[0]


def _snapshot(lab: Lab) -> str:
    """The reference of the one snapshot this test made."""
    [image] = lab.snapshot_images()
    [reference] = image["RepoTags"]
    return str(reference)


def _read(lab: Lab, image: str, path: str) -> str:
    return lab.docker("run", "--rm", image, "cat", path).stdout


def _demo_like(lab: Lab) -> dict[str, tuple[str, str]]:
    """The demo's three workspaces (examples/demo) under this lab's unique names: base name →
    (owner, name)."""
    wiki = {"path": lab.host_dir("datasets", "wiki"), "read_only": True}
    return {
        "notebook": ("alice", lab.workspace("alice", "notebook", cpus=0.5, memory="256m")),
        "nlp": (
            "h.baker",
            lab.workspace(
                "h.baker", "nlp", mig="1g.10gb", cpus=0.5, memory="256m", mounts={"data": wiki}
            ),
        ),
        "thesis": (
            "228755@uni.example",
            lab.workspace(
                "228755@uni.example",
                "thesis",
                framework={"name": "Tensorflow", "version": "2.16.1"},
                power="running",
                env={"TF_CPP_MIN_LOG_LEVEL": "2"},
            ),
        ),
    }


# --- the round trip ---------------------------------------------------------------------------


def test_round_trip_on_a_demo_like_repo(lab: Lab) -> None:
    demo = _demo_like(lab)
    plan, events = lab.apply_json()
    assert sorted(_actions(plan)) == sorted(
        ("create", f"workspace/{owner}/{name}", "new") for owner, name in demo.values()
    )
    assert len(_notes(events)) == 3
    for owner, name in demo.values():
        assert _the_container(lab, owner, name)["Names"] == ["/" + lab.container_name(owner, name)]
    thesis_owner, thesis = demo["thesis"]
    assert _inspect(lab, thesis_owner, thesis)["State"]["Running"]  # power: running
    notebook_owner, notebook = demo["notebook"]
    assert _inspect(lab, notebook_owner, notebook)["State"]["Status"] == "created"  # power: any
    nlp_owner, nlp = demo["nlp"]
    nlp_gpus = _inspect(lab, nlp_owner, nlp)["HostConfig"]["DeviceRequests"][0]["DeviceIDs"]
    assert [u[:4] for u in nlp_gpus] == ["MIG-"]
    lab.assert_converged()

    # Someone's work in the writable layer; then the manifest goes: an orphan, left alone ...
    thesis_target = f"workspace/{thesis_owner}/{thesis}"
    container = lab.container_name(thesis_owner, thesis)
    lab.docker("exec", container, "bash", "-c", "echo draft > ~/draft.txt")
    lab.remove_workspace(thesis_owner, thesis)
    orphaned = lab.plan_cli("--json", "--detailed-exitcode")
    assert orphaned.code == 0, orphaned.output
    assert json.loads(orphaned.stdout)["orphans"] == [thesis_target]
    # ... until --prune deletes it, after a snapshot of its changes.
    plan, events = lab.apply_json("--prune")
    delete, *images = _actions(plan)
    assert delete == ("delete", thesis_target, "no_manifest")
    # Its owner's account image, which nothing else uses once it is gone (--prune).
    assert [reason for _, _, reason in images] == ["leftover_account_image"]
    reference = _snapshot(lab)
    assert _notes(events) == {thesis_target: f"snapshot {reference}", images[0][1]: None}
    assert lab.containers_of(thesis_owner, thesis) == []
    assert _read(lab, reference, f"/home/{thesis_owner}/draft.txt") == "draft\n"
    lab.assert_converged(prune=True)


# --- one change of each kind ------------------------------------------------------------------


def test_memory_change_is_an_update_in_place(lab: Lab) -> None:
    spec: dict[str, Any] = {"power": "running"}
    name = lab.workspace("alice", "mem", **spec)
    lab.apply_json()
    before = _inspect(lab, "alice", name)

    lab.workspace("alice", "mem", **spec, memory="256m")
    plan, events = lab.apply_json()
    assert _actions(plan) == [("update", f"workspace/alice/{name}", "limits_changed")]
    assert list(_notes(events)) == [f"workspace/alice/{name}"]
    after = _inspect(lab, "alice", name)
    assert after["Id"] == before["Id"]  # the same container, never restarted
    assert after["State"]["Running"] and after["State"]["StartedAt"] == before["State"]["StartedAt"]
    assert after["HostConfig"]["Memory"] == 256 * MIB
    lab.assert_converged()


def test_mount_change_replaces(lab: Lab) -> None:
    name = lab.workspace("alice", "mnt")
    lab.apply_json()
    before = _inspect(lab, "alice", name)

    models = lab.host_dir("alice", "models")
    lab.workspace("alice", "mnt", mounts={"models": models})
    plan, events = lab.apply_json()
    assert _actions(plan) == [("replace", f"workspace/alice/{name}", "spec_changed")]
    assert _notes(events) == {f"workspace/alice/{name}": None}  # no changes: no snapshot
    after = _inspect(lab, "alice", name)
    assert after["Id"] != before["Id"]
    assert f"{models}:/models" in after["HostConfig"]["Binds"]
    assert after["Config"]["Labels"][L.MLC_MODELS_MOUNT] == models
    _the_container(lab, "alice", name)
    assert lab.snapshot_images() == []
    lab.assert_converged()


def test_gpu_change_replaces(lab: Lab) -> None:
    name = lab.workspace("h.baker", "gpu", mig="1g.10gb")
    lab.apply_json()
    before = _inspect(lab, "h.baker", name)
    [old_gpu] = before["HostConfig"]["DeviceRequests"][0]["DeviceIDs"]

    lab.workspace("h.baker", "gpu", mig="2g.20gb")
    plan, _ = lab.apply_json()
    assert _actions(plan) == [("replace", f"workspace/h.baker/{name}", "spec_changed")]
    assert {c["field"] for c in plan["actions"][0]["changes"]} >= {"gpus"}
    after = _inspect(lab, "h.baker", name)
    [new_gpu] = after["HostConfig"]["DeviceRequests"][0]["DeviceIDs"]
    assert after["Id"] != before["Id"] and new_gpu != old_gpu
    assert after["Config"]["Labels"][L.MLC_GPUS] == new_gpu
    _the_container(lab, "h.baker", name)
    lab.assert_converged()


def test_power_pinned_starts_and_stops_a_workspace(lab: Lab) -> None:
    name = lab.workspace("alice", "pow")
    lab.apply_json()
    before = _inspect(lab, "alice", name)
    assert before["State"]["Status"] == "created"  # power: any creates, never starts

    lab.workspace("alice", "pow", power="running")
    plan, _ = lab.apply_json()
    assert _actions(plan) == [("start", f"workspace/alice/{name}", "power")]
    after = _inspect(lab, "alice", name)
    assert after["Id"] == before["Id"] and after["State"]["Running"]
    lab.assert_converged()

    lab.workspace("alice", "pow", power="stopped")
    plan, _ = lab.apply_json()
    assert _actions(plan) == [("stop", f"workspace/alice/{name}", "power")]
    stopped = _inspect(lab, "alice", name)
    assert stopped["Id"] == before["Id"] and stopped["State"]["Status"] == "exited"
    lab.assert_converged()


def test_user_stopping_a_workspace_keeps_the_plan_empty(lab: Lab) -> None:
    # power: any leaves running/stopped to the user: `mlc open` starts it, `mlc stop` (a
    # plain `docker stop`) stops it, and neither makes the next plan non-empty.
    name = lab.workspace("alice", "user")
    lab.apply_json()
    container = lab.container_name("alice", name)
    lab.docker("start", container)
    lab.assert_converged()
    lab.docker("stop", container)
    assert lab.client.inspect_container(container)["State"]["Status"] == "exited"
    lab.assert_converged()


# --- snapshots and live sessions --------------------------------------------------------------


def test_replaced_workspace_with_changes_is_snapshotted(lab: Lab) -> None:
    spec: dict[str, Any] = {"power": "running"}
    name = lab.workspace("alice", "snap", **spec)
    lab.apply_json()
    container = lab.container_name("alice", name)
    before = _inspect(lab, "alice", name)
    lab.docker("exec", container, "bash", "-c", "echo chapter 1 > ~/draft.txt")

    lab.workspace("alice", "snap", **spec, mounts={"data": lab.host_dir("alice", "data")})
    out = _applied(lab)  # the human view names the snapshot too
    reference = _snapshot(lab)
    assert reference.startswith(f"ds01ctl-snapshot/alice:{name}-")
    assert f"snapshotted workspace alice/{name} (" in out and f"; snapshot {reference})" in out
    assert f"created workspace alice/{name} (" in out and f"started workspace alice/{name} (" in out
    assert _inspect(lab, "alice", name)["Id"] != before["Id"]

    labels = lab.client.inspect_image(reference)["Config"]["Labels"]
    ours = {k for k in labels if k.startswith(("ds01.", "aime.mlc"))} - SNAPSHOT_LABELS
    inherited = {k for k in before["Config"]["Labels"] if k.startswith(("ds01.", "aime.mlc"))}
    assert inherited <= ours  # every label the container had is there ...
    assert {k: labels[k] for k in ours if labels[k]} == {}  # ... and blank
    assert {k for k in labels if k.startswith("ds01.snapshot.")} == SNAPSHOT_LABELS
    assert labels[L.SNAPSHOT_OF] == f"workspace/alice/{name}"
    assert labels[L.SNAPSHOT_OWNER] == "alice"
    assert labels[L.SNAPSHOT_SITE] == lab.site
    assert labels[L.SNAPSHOT_REASON] == "replace"
    assert dt.datetime.fromisoformat(labels[L.SNAPSHOT_TAKEN_AT]).tzinfo is not None
    assert _read(lab, reference, "/home/alice/draft.txt") == "chapter 1\n"

    listed = lab.cli("snapshots", "list", "-C", str(lab.root))
    assert listed.code == 0, listed.output
    header, row = listed.stdout.splitlines()
    assert header.split() == ["SNAPSHOT", "OF", "TAKEN", "REASON", "SIZE"]
    assert row.split()[:2] == [reference, f"workspace/alice/{name}"]
    assert re.fullmatch(r".*  \d+(\.\d)? (bytes?|KB|MB|GB|TB)", row), row  # not raw bytes

    # A container made from the snapshot inherits only blank labels: never taken as managed.
    restored = lab.name("restored")
    lab.track(lab.docker("create", "--name", restored, reference).stdout.strip())
    done = lab.plan_cli("--json", "--prune")
    assert done.code == 0, done.output
    plan = json.loads(done.stdout)
    assert plan["actions"] == [] and plan["orphans"] == []
    assert restored not in {u["container"] for u in plan["unmanaged"]}
    lab.assert_converged(prune=True)


def test_applied_workspace_logs_as_the_site_says(lab: Lab) -> None:
    name = lab.workspace("alice", "logs")
    lab.apply_json()
    log = _inspect(lab, "alice", name)["HostConfig"]["LogConfig"]
    assert log["Type"] == "json-file"
    assert (log["Config"]["max-size"], log["Config"]["max-file"]) == (str(10 * MIB), "2")
    lab.assert_converged()  # read back as made: nothing to change


def test_apply_prunes_a_workspaces_snapshots_beyond_the_sites_retention(lab: Lab) -> None:
    site = lab.root / "site.yaml"
    site.write_text(
        site.read_text().replace("  users:", "  snapshots: {keep_per_workspace: 1}\n  users:")
    )
    spec: dict[str, Any] = {"power": "running"}
    name = lab.workspace("alice", "keep", **spec)
    lab.apply_json()
    taken = []
    for mount in ("one", "two"):
        lab.docker("exec", lab.container_name("alice", name), "bash", "-c", f"echo {mount} > ~/f")
        lab.workspace("alice", "keep", **spec, mounts={"data": lab.host_dir("alice", mount)})
        _, events = lab.apply_json()
        taken.append(_snapshot(lab))
    note = _notes(events)[f"workspace/alice/{name}"] or ""
    assert note == f"snapshot {taken[1]}"
    assert {"event": "snapshots_pruned", "removed": [taken[0]]} in events
    assert [t for i in lab.snapshot_images() for t in i["RepoTags"]] == [taken[1]]
    lab.assert_converged()


def test_replace_with_on_replace_discard_takes_no_snapshot(lab: Lab) -> None:
    spec: dict[str, Any] = {"power": "running", "on_replace": "discard"}
    name = lab.workspace("alice", "disc", **spec)
    lab.apply_json()
    lab.docker("exec", lab.container_name("alice", name), "bash", "-c", "echo x > ~/scratch")
    lab.workspace("alice", "disc", **spec, mounts={"data": lab.host_dir("alice", "data")})
    plan, events = lab.apply_json()
    assert _actions(plan) == [("replace", f"workspace/alice/{name}", "spec_changed")]
    assert _notes(events) == {f"workspace/alice/{name}": None}
    assert lab.snapshot_images() == []
    lab.assert_converged()


def test_replace_with_a_live_session_needs_force(lab: Lab) -> None:
    spec: dict[str, Any] = {"power": "running"}
    name = lab.workspace("alice", "live", **spec)
    lab.apply_json()
    container = lab.container_name("alice", name)
    before = _inspect(lab, "alice", name)
    lab.docker("exec", "-d", container, "sleep", "300")  # someone's job in an `mlc open` shell

    lab.workspace("alice", "live", **spec, mounts={"data": lab.host_dir("alice", "data")})
    # The plan says it first, naming the workspace and its sessions (the sleep).
    warning = (
        f"workspace/alice/{name} has 1 live `docker exec` session(s) (processes besides its "
        "shell); apply will refuse to replace it without --force"
    )
    assert lab.plan().plan.warnings.count(warning) == 1
    planned = lab.cli("plan", "-C", str(lab.root))
    assert f"Warning: {warning}" in planned.stdout, planned.output
    refused = lab.apply()
    assert refused.code == 1, refused.output
    # The first step of the replace (the stop) carries the precondition.
    assert f"failed   workspace alice/{name} (stop): " in refused.stdout
    assert f"skipped  workspace alice/{name} (remove): step " in refused.stdout
    assert "live `docker exec` sessions" in refused.stdout and "--force" in refused.stdout
    assert "Traceback" not in refused.output and "internal error" not in refused.output
    now = _inspect(lab, "alice", name)
    assert now["Id"] == before["Id"] and now["State"]["Running"]  # untouched
    assert "sleep 300" in lab.docker("top", container).stdout
    assert lab.snapshot_images() == []

    plan, _ = lab.apply_json("--force")
    assert _actions(plan) == [("replace", f"workspace/alice/{name}", "spec_changed")]
    assert _inspect(lab, "alice", name)["Id"] != before["Id"]
    _the_container(lab, "alice", name)
    lab.assert_converged()


# --- saved plans ------------------------------------------------------------------------------


def _save_plan(lab: Lab, path: Path, *, prune: bool = False) -> Path:
    """The file `ds01ctl plan --out FILE` writes, made in-process.

    `test_plan_out_then_apply_file` covers the CLI itself; this keeps the staleness and
    corruption checks independent of it.
    """
    result = lab.plan(prune=prune)
    meta = result.plan.meta
    save_plan(
        result.plan,
        path,
        tool_version=__version__,
        site=meta.site or "",
        state_dir=lab.state_dir,
        config_commit=meta.config_commit,
    )
    return path


def test_plan_out_then_apply_file(lab: Lab) -> None:
    name = lab.workspace("alice", "saved")
    plan_file = lab.workdir / "plan.json"
    made = lab.plan_cli("--out", str(plan_file))
    assert made.code == 0, made.output
    assert f"apply it with: ds01ctl apply {plan_file}" in made.stdout
    applied = lab.cli(
        "apply", str(plan_file), "-C", str(lab.root), "--state-dir", str(lab.state_dir)
    )
    assert applied.code == 0, applied.output
    _the_container(lab, "alice", name)
    lab.assert_converged()


def test_saved_plan_applies_once(lab: Lab) -> None:
    a = lab.workspace("alice", "sa")
    b = lab.workspace("h.baker", "sb")
    plan_file = _save_plan(lab, lab.workdir / "plan.json")
    applied = lab.cli(
        "apply", str(plan_file), "-C", str(lab.root), "--state-dir", str(lab.state_dir)
    )
    assert applied.code == 0, applied.output
    _the_container(lab, "alice", a)
    _the_container(lab, "h.baker", b)

    again = lab.cli("apply", str(plan_file), "-C", str(lab.root), "--state-dir", str(lab.state_dir))
    assert again.code == 1
    assert "stale" in again.stderr and f"workspace/alice/{a}: it exists now" in again.stderr
    assert len(lab.containers()) == 2
    lab.assert_converged()


def test_saved_plan_is_stale_after_docker_update(lab: Lab) -> None:
    a = lab.workspace("alice", "sta")
    b = lab.workspace("h.baker", "stb")
    _applied(lab)
    lab.workspace("alice", "sta", memory="256m")
    lab.workspace("h.baker", "stb", memory="256m")
    plan_file = _save_plan(lab, lab.workdir / "plan.json")
    saved = json.loads(plan_file.read_text())["plan"]
    assert [kind for kind, _, _ in _actions(saved)] == ["update", "update"]

    # Someone changes one planned container between plan and apply.
    lab.docker(
        "update", "--memory", "200m", "--memory-swap", "512m", lab.container_name("alice", a)
    )
    stale = lab.cli("apply", str(plan_file), "-C", str(lab.root), "--state-dir", str(lab.state_dir))
    assert stale.code == 1, stale.output
    [line] = stale.stderr.splitlines()
    assert line.startswith("error: the saved plan is stale")
    assert f"workspace/alice/{a}" in line and f"workspace/h.baker/{b}" not in line
    # Nothing of the plan was applied, not even the action on the unchanged container.
    assert _inspect(lab, "h.baker", b)["HostConfig"]["Memory"] == 128 * MIB
    assert _inspect(lab, "alice", a)["HostConfig"]["Memory"] == 200 * MIB

    _applied(lab)  # a fresh plan converges
    assert _inspect(lab, "alice", a)["HostConfig"]["Memory"] == 256 * MIB
    lab.assert_converged()


def test_saved_plan_with_target_touches_nothing_else(lab: Lab) -> None:
    a = lab.workspace("alice", "ta")
    b = lab.workspace("h.baker", "tb")
    plan_file = _save_plan(lab, lab.workdir / "plan.json")
    done = lab.cli(
        "apply",
        str(plan_file),
        "-C",
        str(lab.root),
        "--state-dir",
        str(lab.state_dir),
        "--target",
        f"workspace/alice/{a}",
    )
    # Refusing the combination, or applying only the target: either is fine; both is not.
    assert lab.containers_of("h.baker", b) == [], done.output


def _forge(plan_file: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit a saved plan and recompute its digest, as anyone who can write the file can."""
    body = json.loads(plan_file.read_text())
    del body["digest"]
    edit(body["plan"])
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    body["digest"] = "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    plan_file.write_text(json.dumps(body, sort_keys=True, indent=2))


def test_forged_plan_with_docker_socket_is_refused(lab: Lab) -> None:
    # A saved plan, edited to mount the Docker socket, its digest recomputed; applied from the
    # config repo's root, where apply finds the repo to re-plan by itself.
    name = lab.workspace("alice", "forged")
    plan_file = _save_plan(lab, lab.workdir / "plan.json")
    socket = {"source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}

    def add_socket(plan: dict[str, Any]) -> None:
        [action] = plan["actions"]
        action["spec"]["binds"].append({**socket, "read_only": False})

    _forge(plan_file, add_socket)
    command = lab.cli_command("apply", str(plan_file), "--state-dir", str(lab.state_dir))
    done = subprocess.run(
        command,
        cwd=lab.root,
        env=lab.cli_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("error: the saved plan is not what"), line
    assert f"workspace/alice/{name}: spec.binds differs from a fresh plan" in line
    assert "Traceback" not in done.stderr
    for container in lab.containers():
        binds = lab.client.inspect_container(container["Id"])["HostConfig"]["Binds"] or []
        assert not any("docker.sock" in bind for bind in binds), binds
    assert lab.containers_of("alice", name) == []
    lab.apply()  # the repo's own plan still applies, without the socket
    _the_container(lab, "alice", name)
    binds = _inspect(lab, "alice", name)["HostConfig"]["Binds"]
    assert not any("docker.sock" in bind for bind in binds), binds


def test_forged_plan_with_an_extra_action_is_refused(lab: Lab) -> None:
    # The fresh plan must hold every saved action: one the repo does not plan is refused.
    name = lab.workspace("alice", "fa")
    plan_file = _save_plan(lab, lab.workdir / "plan.json")

    def add_action(plan: dict[str, Any]) -> None:
        extra = json.loads(json.dumps(plan["actions"][0]))
        extra["id"] += 1
        extra["target"] = f"workspace/h.baker/{name}"
        extra["spec"]["owner"] = "h.baker"
        plan["actions"].append(extra)

    _forge(plan_file, add_action)
    done = lab.cli("apply", str(plan_file), "-C", str(lab.root), "--state-dir", str(lab.state_dir))
    assert done.code == 1, done.output
    [line] = done.stderr.splitlines()
    assert line.startswith("error: the saved plan is") and f"workspace/h.baker/{name}:" in line
    assert lab.containers() == []


CORRUPTIONS: dict[str, Callable[[str], str]] = {
    "truncated": lambda text: text[: len(text) // 2],
    "edited": lambda text: text.replace('"kind": "create"', '"kind": "delete"', 1),
    "not_json": lambda text: "this is not a plan\n",
    "empty": lambda text: "",
    "binary": lambda text: "\x00\x01\x02\ufffe",
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupted_plan_file_is_a_one_line_error(lab: Lab, corruption: str) -> None:
    lab.workspace("alice", "bad")
    plan_file = _save_plan(lab, lab.workdir / "plan.json")
    text = plan_file.read_text()
    bad = CORRUPTIONS[corruption](text)
    assert bad != text
    plan_file.write_text(bad)
    done = lab.cli("apply", str(plan_file), "-C", str(lab.root), "--state-dir", str(lab.state_dir))
    assert done.code == 1
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    assert str(plan_file) in done.stderr
    assert lab.containers() == []


def test_plan_file_errors_name_the_real_flag(lab: Lab) -> None:
    plan_file = lab.workdir / "plan.json"
    plan_file.write_text("{}")
    done = lab.cli("apply", str(plan_file), "-C", str(lab.root), "--state-dir", str(lab.state_dir))
    assert done.code == 1
    assert "plan -out" not in done.stderr, done.stderr
    assert "plan --out FILE" in done.stderr


def test_prune_with_target_is_refused(lab: Lab) -> None:
    keep = lab.workspace("alice", "keep")
    gone = lab.workspace("h.baker", "gone")
    _applied(lab)
    lab.remove_workspace("h.baker", gone)
    journaled = len(lab.journal())
    refused = lab.apply("--prune", "--target", f"workspace/alice/{keep}")
    assert refused.code == 1
    assert "error: --prune needs the whole config repo" in refused.stderr
    assert "Traceback" not in refused.output and "internal error" not in refused.output
    _the_container(lab, "h.baker", gone)  # nothing was pruned, nothing even started
    assert len(lab.journal()) == journaled
    _applied(lab, "--prune")
    lab.assert_converged(prune=True)


def test_plan_prune_of_a_partial_repo_is_refused(lab: Lab) -> None:
    lab.workspace("alice", "part")
    _applied(lab)
    done = lab.cli("plan", str(lab.root / "site.yaml"), "--prune")
    assert "will be destroyed" not in done.stdout
    assert done.code == 1, done.output
    assert "--prune needs the whole config repo" in done.stderr


def test_plan_of_one_users_directory_acts_on_it_alone(lab: Lab) -> None:
    # `plan users/alice` reads the whole repo (Site, quotas) and plans alice's objects only.
    a = lab.workspace("alice", "pa")
    lab.workspace("h.baker", "pb")
    done = lab.cli("plan", str(lab.root / "users" / "alice"), "--json")
    assert done.code == 0, done.output
    plan = json.loads(done.stdout)
    assert _actions(plan) == [("create", f"workspace/alice/{a}", "new")]
    assert any("only part of the plan" in w for w in plan["warnings"]), plan["warnings"]
