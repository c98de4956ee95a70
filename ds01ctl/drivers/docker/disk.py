"""Disk use per owner: writable layers, snapshots and account images, measured by the engine.

Two calls: one container listing with sizes and one image listing. An image's listed size
counts every layer beneath it, so a snapshot or an account image is charged only what it adds
to the image it was made from (its parent, or the base its account label names); the shared
base is nobody's own.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ds01ctl import labels as L
from ds01ctl.drivers.docker.containers import USER_SETUP_LABEL
from ds01ctl.errors import Ds01Error
from ds01ctl.model.driver import DiskUse

if TYPE_CHECKING:
    import docker


def disk_use(client: docker.APIClient, site: str) -> DiskUse:
    """`size=True` makes the engine walk every container's writable layer to total it (slow
    with many files), which is why this is read only for `ds01ctl limits`, never by a plan."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    try:
        return _disk_use(client, site)
    except (DockerException, RequestException) as exc:
        raise Ds01Error(
            f"the engine did not report disk use ({type(exc).__name__})",
            code="disk_use_unavailable",
            hint="try again when the engine is less busy, or pass --offline",
        ) from None


def _disk_use(client: docker.APIClient, site: str) -> DiskUse:
    writable: dict[str, int] = defaultdict(int)
    for container in client.containers(
        all=True, size=True, filters={"label": f"{L.DS01_SITE}={site}"}
    ):
        owner = (container.get("Labels") or {}).get(L.DS01_OWNER)
        if owner:
            writable[owner] += int(container.get("SizeRw") or 0)
    images = client.images(all=True)
    sizes = {str(image["Id"]): int(image.get("Size") or 0) for image in images}
    snapshots: dict[str, int] = defaultdict(int)
    accounts: dict[int, int] = defaultdict(int)
    for image in images:
        labels = image.get("Labels") or {}
        if labels.get(L.SNAPSHOT_OF) and labels.get(L.SNAPSHOT_SITE) == site:
            owner = labels.get(L.SNAPSHOT_OWNER)
            if owner:
                snapshots[owner] += _added(image, sizes, str(image.get("ParentId") or ""))
        elif setup := labels.get(USER_SETUP_LABEL):
            base, _, uid = setup.rpartition(":")
            if uid.isdigit() and _is_account_image(image):
                accounts[int(uid)] += _added(image, sizes, base)
    return DiskUse(dict(writable), dict(snapshots), dict(accounts))


def _is_account_image(image: dict[str, Any]) -> bool:
    """Tagged `…:ds01ctl-user-*`: a snapshot or user build inherits the label, but not the tag."""
    tags = image.get("RepoTags") or []
    return any(t.rpartition(":")[2].startswith("ds01ctl-user-") for t in tags)


def _added(image: dict[str, Any], sizes: dict[str, int], parent: str) -> int:
    size = int(image.get("Size") or 0)
    return max(size - sizes[parent], 0) if parent in sizes else size
