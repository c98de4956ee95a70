"""Who may adopt an mlc container (resolve/adopt.py, pure): only its own user, by labels and
by the uid it runs as; without consent it waits with what to do; mounts must match."""

from __future__ import annotations

from types import MappingProxyType

from ds01ctl import labels as L
from ds01ctl.model.observed import ContainerConfig, ObservedContainer
from ds01ctl.model.spec import Bind, UserAccount
from ds01ctl.resolve.adopt import Adoptable, adoption, mount_mismatch

ALICE = UserAccount("alice", 41001, 41001)


def _mlc(
    user: str = "alice", runs_as: str = "41001:41001", binds: tuple[str, ...] = ()
) -> ObservedContainer:
    labels = {L.MLC: user, L.MLC_USER: user, L.MLC_NAME: "thesis"}
    return ObservedContainer(
        id="c" * 64,
        name="thesis._.41001",
        state="running",
        labels=MappingProxyType(labels),
        image="repo:thesis._.41001",
        image_id="sha256:1",
        ownership=L.ownership(labels, "lab"),
        config=ContainerConfig(name="thesis._.41001", image_tag=None, user=runs_as, binds=binds),
    )


def test_the_owners_own_mlc_container_is_adopted_with_consent() -> None:
    assert adoption(_mlc(), ALICE, consent=True) == Adoptable("c" * 64, "thesis._.41001")


def test_without_consent_it_waits_and_says_how_to_adopt() -> None:
    reason = adoption(_mlc(), ALICE, consent=False)
    assert reason == (
        "container thesis._.41001 made by mlc holds this name; set adopt: true in the manifest "
        "or pass --adopt to make it this workspace (its writable layer is kept)"
    )


def test_another_users_container_is_never_adopted_whatever_the_consent() -> None:
    by_label = adoption(_mlc(user="bob"), ALICE, consent=True)
    assert isinstance(by_label, str) and by_label.startswith("refused: ")
    assert "labelled for bob" in by_label and "only alice's own mlc container" in by_label
    by_uid = adoption(_mlc(runs_as="41002:41002"), ALICE, consent=True)
    assert isinstance(by_uid, str) and "running as uid 41002" in by_uid
    by_name = adoption(_mlc(runs_as="alice"), ALICE, consent=True)
    assert isinstance(by_name, str) and "running as uid ?" in by_name


def test_mounts_must_be_the_manifests_but_mlcs_x11_socket_is_dropped() -> None:
    live = _mlc(binds=("/h/ws:/workspace", "/tmp/.X11-unix:/tmp/.X11-unix"))
    assert mount_mismatch(live, [Bind("/workspace", "/h/ws")]) is None
    reason = mount_mismatch(live, [Bind("/workspace", "/h/other")])
    assert reason is not None and reason.startswith("not adopted: container thesis._.41001")
    assert "mounts /h/ws:/workspace, the manifest /h/other:/workspace" in reason
