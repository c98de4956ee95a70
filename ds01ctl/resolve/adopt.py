"""Adoption: a container `mlc create` made holds the name a new workspace's container gets
(`<name>._.<uid>`); with the owner's consent it becomes the workspace, keeping their work (pure).

Only a container mlc made for the SAME user is ever adopted: its mlc/DS01 user labels name
the workspace's owner and it runs as the owner's uid. Without consent (`adopt: true` in the
manifest, or `--adopt`) it is pending with what to do; a container of anyone else keeps the
name and the workspace waits. Consent given, the mounts must be the manifest's (mlc's X11
socket aside): the adopted workspace keeps exactly the directories the user worked in, and
those are the ones the mount policy already judged. Otherwise it is pending, and nothing is
touched. The plan then snapshots the container's writable layer first, removes it and makes
the workspace from that snapshot with the manifest's shape (plan/diff.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ds01ctl import labels as L
from ds01ctl.model.observed import ObservedContainer
from ds01ctl.model.spec import Bind, UserAccount

X11_SOCKET = "/tmp/.X11-unix"  # mlc mounts it on desktops; ds01ctl never does


@dataclass(frozen=True, slots=True)
class Adoptable:
    """The container to adopt, once the manifest's mounts are known to match its own."""

    container_id: str
    name: str


def users_of(container: ObservedContainer) -> set[str]:
    """Every login its labels name as its user (mlc's and DS01's)."""
    keys = (L.MLC, L.MLC_USER, L.DS01_USER, L.DS01_OWNER)
    return {value for key in keys if (value := L.get(container.labels, key))}


def runs_as(container: ObservedContainer) -> int | None:
    """The uid it runs as (`uid[:gid]`, as mlc gives `--user`); None for a name or none."""
    user = container.config.user if container.config is not None else ""
    uid = user.partition(":")[0]
    return int(uid) if uid.isdigit() else None


def adoption(
    container: ObservedContainer,
    account: UserAccount,
    *,
    consent: bool,
) -> Adoptable | str:
    """`container` (an mlc/DS01 container holding the workspace's container name) to adopt,
    or the pending reason why not."""
    users, uid = users_of(container), runs_as(container)
    if users != {account.login} or uid != account.uid:
        whose = ", ".join(sorted(users)) or "nobody"
        return (
            f"refused: container name {container.name} is in use by a container ds01ctl does "
            f"not manage here ({container.id[:12]}, labelled for {whose}, running as uid "
            f"{uid if uid is not None else '?'}); only {account.login}'s own mlc container "
            f"(uid {account.uid}) is ever adopted: remove or rename that container, or rename "
            "the workspace"
        )
    if not consent:
        return (
            f"container {container.name} made by mlc holds this name; set adopt: true in the "
            f"manifest or pass --adopt to make it this workspace (its writable layer is kept)"
        )
    return Adoptable(container.id, container.name)


def mount_mismatch(container: ObservedContainer, binds: Iterable[Bind]) -> str | None:
    """Why the manifest's mounts are not the container's (None: they are), as a pending
    reason that says what to declare to keep the user's directories."""
    live = {b for b in (container.config.binds if container.config else ()) if X11_SOCKET not in b}
    wanted = {b.text for b in binds}
    if live == wanted:
        return None
    theirs = ", ".join(sorted(live)) or "none"
    ours = ", ".join(sorted(wanted)) or "none"
    return (
        f"not adopted: container {container.name} mounts {theirs}, the manifest {ours}; "
        "declare the container's mounts in the manifest (mounts: workspace/data/models) "
        "to adopt it with them"
    )
