"""Leftover images (plan/leftovers.py, pure): what is judged a leftover, and that nothing a
container, another image or a manifest uses ever is."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from ds01ctl import labels as L
from ds01ctl.model.observed import (
    ContainerConfig,
    EngineInfo,
    Observed,
    ObservedContainer,
    ObservedImage,
)
from ds01ctl.plan.leftovers import leftovers

ENGINE = EngineInfo("engine", "host", "20.10", "1.41", 8, 32 * 1024**3)
ACCOUNT = ObservedImage(
    id="sha256:acc",
    tags=("lab/pytorch:ds01ctl-user-0123456789abcdef", "lab/pytorch:gone._.41001"),
    labels=MappingProxyType({L.USER_SETUP: "sha256:base:41001", L.USER_SETUP_SITE: "lab"}),
    size=0,
    created=1,
)


def _snapshot(id: str, tag: str, created: int, layers: tuple[str, ...]) -> ObservedImage:
    labels = {L.SNAPSHOT_OF: "workspace/alice/w", L.SNAPSHOT_OWNER: "alice"}
    return ObservedImage(id, (tag,), MappingProxyType(labels), 0, created, layers=layers)


def _container(image_id: str, tag: str) -> ObservedContainer:
    return ObservedContainer(
        "c1", "w._.41001", "running", MappingProxyType({}), tag, image_id,
        L.Ownership.OURS, ContainerConfig("w._.41001", tag),
    )  # fmt: skip


def _found(observed: Observed, **kw: object) -> list[tuple[str, str]]:
    args: dict[str, object] = {
        "removed": frozenset(), "untagged": frozenset(), "named": frozenset(), "prune": True,
    }  # fmt: skip
    args.update(kw)
    return [(f.reason, f.reference) for f in leftovers(observed, (), **args)]  # type: ignore[arg-type]


def _observed(*images: ObservedImage, containers: tuple[ObservedContainer, ...] = ()) -> Observed:
    return Observed(ENGINE, containers, MappingProxyType({}), site_images=images)


def test_a_tag_with_no_container_and_an_unused_account_image_are_leftovers() -> None:
    assert _found(_observed(ACCOUNT)) == [
        ("leftover_account_image", "lab/pytorch:ds01ctl-user-0123456789abcdef"),
        ("leftover_tag", "lab/pytorch:gone._.41001"),
    ]
    assert _found(_observed(ACCOUNT), prune=False) == [("leftover_tag", "lab/pytorch:gone._.41001")]


def test_nothing_a_container_an_image_or_a_manifest_uses_is_a_leftover() -> None:
    used = _observed(ACCOUNT, containers=(_container(ACCOUNT.id, "lab/pytorch:gone._.41001"),))
    assert _found(used) == []
    parent = dataclasses.replace(_observed(ACCOUNT), parents=frozenset({ACCOUNT.id}))
    assert _found(parent) == [("leftover_tag", "lab/pytorch:gone._.41001")]
    assert _found(_observed(ACCOUNT), named=frozenset({"lab/pytorch:gone._.41001"})) == []


def test_a_container_the_plan_removes_frees_what_it_used_and_its_untag_is_not_repeated() -> None:
    observed = _observed(ACCOUNT, containers=(_container(ACCOUNT.id, "lab/pytorch:gone._.41001"),))
    found = _found(
        observed, removed=frozenset({"c1"}), untagged=frozenset({"lab/pytorch:gone._.41001"})
    )
    assert found == [("leftover_account_image", "lab/pytorch:ds01ctl-user-0123456789abcdef")]


def test_only_exact_duplicate_snapshots_go_and_the_used_one_is_kept() -> None:
    old = _snapshot("sha256:1", "ds01ctl-snapshot/alice:w-1", 1, ("sha256:l0", "sha256:l1"))
    new = _snapshot("sha256:2", "ds01ctl-snapshot/alice:w-2", 2, ("sha256:l0", "sha256:l1"))
    other = _snapshot("sha256:3", "ds01ctl-snapshot/alice:w-3", 3, ("sha256:l0", "sha256:l2"))
    assert _found(_observed(old, new, other)) == [
        ("duplicate_snapshot", "ds01ctl-snapshot/alice:w-2")
    ]
    used = dataclasses.replace(_observed(old, new, other), parents=frozenset({"sha256:2"}))
    assert _found(used) == [("duplicate_snapshot", "ds01ctl-snapshot/alice:w-1")]
    unread = dataclasses.replace(new, layers=None)  # content unknown: never a duplicate
    assert _found(_observed(old, unread)) == []
