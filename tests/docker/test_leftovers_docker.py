"""Leftover images after a crash, found by the next plan and cleaned (plan/leftovers.py), on
the real engine: per-container tags whose container is gone, duplicate snapshots (every
plan), account images no container uses (`--prune`). Nothing a container, another image or
a manifest uses is ever removed."""

from __future__ import annotations

from typing import Any

import pytest

from ds01ctl.plan.actions import Action
from tests.docker.dockerlab import Lab

pytestmark = pytest.mark.docker


def _cleanups(lab: Lab, *, prune: bool = False) -> dict[str, Action]:
    """The plan's image cleanups by reason and reference: `reason reference`."""
    return {
        f"{a.reason.value} {a.steps[0].image}": a
        for a in lab.plan(prune=prune).plan.actions
        if a.steps and a.steps[0].image is not None
    }


def _tags(lab: Lab) -> set[str]:
    return {t for i in lab.client.images() for t in i.get("RepoTags") or []}


def _account_image(lab: Lab) -> dict[str, Any]:
    [image] = lab.account_images()
    return image


def test_a_per_container_tag_whose_container_is_gone_is_removed_by_the_next_apply(
    lab: Lab,
) -> None:
    name = lab.workspace("alice", "kept")
    assert lab.apply().code == 0
    account = _account_image(lab)
    # A crash after the account setup tagged a container that was never made.
    stray = f"ds01ctl-local/pytorch:{lab.name('never')}._.61001"
    lab.client.tag(account["Id"], *stray.rpartition(":")[::2])
    lab.made_tags.add(stray)
    found = _cleanups(lab)
    assert list(found) == [f"leftover_tag {stray}"]
    assert found[f"leftover_tag {stray}"].note == (
        f"image tag {stray} was made for a container that no longer exists"
    )
    shown = lab.plan_cli()
    assert "will be removed: an image tag a crashed apply left" in shown.stdout
    assert f"1. remove image {stray}" in shown.stdout
    assert lab.apply().code == 0
    assert stray not in _tags(lab)
    # The account image and the workspace's own tag stay: a container uses them.
    assert f"ds01ctl-local/pytorch:{name}._.61001" in _tags(lab)
    assert _account_image(lab)["Id"] == account["Id"]
    lab.assert_converged()


def test_an_unused_account_image_goes_only_with_prune_in_the_apply_that_frees_it(
    lab: Lab,
) -> None:
    name = lab.workspace("h.baker", "only")
    assert lab.apply().code == 0
    account = _account_image(lab)
    [account_tag] = [t for t in account["RepoTags"] if ":ds01ctl-user-" in t]
    lab.remove_workspace("h.baker", name)
    # Without --prune the orphan keeps it; with it, the account image goes after the orphan.
    assert _cleanups(lab) == {}
    pruned = lab.plan(prune=True).plan
    [delete] = [a for a in pruned.actions if a.kind.value == "delete"]
    [cleanup] = [a for a in pruned.actions if a.reason.value == "leftover_account_image"]
    assert cleanup.steps[0].image == account_tag
    removal = next(s.id for s in delete.steps if s.kind.value == "remove")
    assert cleanup.steps[0].depends_on == (removal,)
    assert lab.apply("--prune").code == 0
    assert lab.account_images() == []
    lab.assert_converged(prune=True)


def test_the_same_snapshot_under_two_tags_keeps_one_the_named_one_first(lab: Lab) -> None:
    name = lab.workspace("alice", "snap", power="running")
    assert lab.apply().code == 0
    container = lab.container_name("alice", name)
    lab.docker("exec", container, "bash", "-c", "echo work > ~/work.txt")
    lab.remove_workspace("alice", name)
    assert lab.apply("--prune").code == 0
    [snapshot] = lab.snapshot_images()
    [first] = snapshot["RepoTags"]
    second = first + "-copy"
    lab.client.tag(snapshot["Id"], *second.rpartition(":")[::2])
    assert list(_cleanups(lab)) == [f"duplicate_snapshot {second}"]
    # The one a manifest names is the one kept.
    lab.workspace("alice", "restored", framework=None, image_ref=second)
    assert list(_cleanups(lab)) == [f"duplicate_snapshot {first}"]
    lab.remove_workspace("alice", lab.name("restored"))
    assert lab.apply().code == 0
    assert lab.snapshot_images()[0]["RepoTags"] == [first]
    lab.assert_converged(prune=True)
