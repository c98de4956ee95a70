"""Snapshots: workspaces hold people's work, so their changes are committed before removal.

Before a workspace container is removed or replaced, if its writable layer has changes
(`docker diff`), it is committed to `ds01ctl-snapshot/<owner>:<name>-<time>` with labels
saying whose, which workspace, when and why. A committed image inherits its container's
labels, and containers made from it would inherit them too: every `aime.mlc.*` and `ds01.*`
label is blanked in the snapshot, so nothing made from it is ever taken for a managed one.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ds01ctl import labels as L
from ds01ctl.model.driver import Snapshot
from ds01ctl.names import docker_safe

if TYPE_CHECKING:
    import docker

REPOSITORY = "ds01ctl-snapshot"


def take(
    client: docker.APIClient,
    container_id: str,
    *,
    target: str,
    site: str,
    reason: str,
    now: dt.datetime,
) -> Snapshot:
    """Commit the container's writable layer to a labelled, unmanaged snapshot image."""
    inspect = client.inspect_container(container_id)
    _, owner, name = target.split("/", 2)
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    repository = f"{REPOSITORY}/{docker_safe(owner)}"
    tag = f"{name}-{stamp}"
    inherited = (inspect.get("Config") or {}).get("Labels") or {}
    labels: dict[str, str] = {key: "" for key in inherited if key.startswith(("aime.mlc", "ds01."))}
    labels.update(L.blanked())
    labels.update(
        {
            L.SNAPSHOT_OF: target,
            L.SNAPSHOT_OWNER: owner,
            L.SNAPSHOT_TAKEN_AT: now.isoformat(timespec="seconds"),
            L.SNAPSHOT_REASON: reason,
            L.SNAPSHOT_SITE: site,
        }
    )
    L.check_values(labels)
    committed = client.commit(
        container_id, repository=repository, tag=tag, conf={"Labels": labels}, pause=True
    )
    image = client.inspect_image(committed["Id"])
    return _snapshot(f"{repository}:{tag}", image)


def _snapshot(reference: str, image: dict[str, Any]) -> Snapshot:
    labels = (image.get("Config") or {}).get("Labels") or {}
    return Snapshot(
        reference=reference,
        image_id=str(image["Id"]),
        of=labels.get(L.SNAPSHOT_OF, ""),
        owner=labels.get(L.SNAPSHOT_OWNER, ""),
        taken_at=labels.get(L.SNAPSHOT_TAKEN_AT, ""),
        reason=labels.get(L.SNAPSHOT_REASON, ""),
        site=labels.get(L.SNAPSHOT_SITE, ""),
        size=int(image.get("Size") or 0),
    )


def list_snapshots(client: docker.APIClient, site: str | None = None) -> list[Snapshot]:
    found = []
    for image in client.images(filters={"label": L.SNAPSHOT_OF}):
        labels = image.get("Labels") or {}
        if not labels.get(L.SNAPSHOT_OF) or (site and labels.get(L.SNAPSHOT_SITE) != site):
            continue
        for reference in image.get("RepoTags") or []:
            if reference.startswith(REPOSITORY + "/"):
                found.append(_snapshot(reference, {**image, "Config": {"Labels": labels}}))
    return sorted(found, key=lambda s: (s.of, s.taken_at, s.reference))
