"""Which builds of each Image are kept: the newest N (the Site's images.keep_tags), and always
one a container or a snapshot was made from, or a workspace pins (pure).

A container of a workspace runs its per-container tag, which names the build's image ID (the
account is baked in, nothing is committed on top), and a snapshot's parent is that ID: so
"in use" is by image ID, whatever tag points at it now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ds01ctl import labels as L
from ds01ctl.model.observed import Observed, ObservedImage


@dataclass(frozen=True)
class BuildRow:
    of: str  # `image/<owner>/<name>`
    tag: str
    image_id: str
    size: int
    created: int
    used_by: tuple[str, ...]  # workspaces (`workspace/o/n`) and snapshots (their references)
    keep: str | None  # why it is kept, or None: prune removes it


def builds(observed: Observed, site: str, keep: int, pinned: Iterable[str] = ()) -> list[BuildRow]:
    """Every build of this site, newest first per Image, with what uses it and whether kept."""
    pins = set(pinned)
    users: dict[str, list[str]] = {}
    for container in observed.containers:
        users.setdefault(container.image_id, []).append(container.key)
    for image in observed.built_images:
        if L.get(image.labels, L.SNAPSHOT_OF) and image.parent:
            users.setdefault(image.parent, []).append(
                image.tags[0] if image.tags else image.id[:19]
            )
    per_image: dict[str, list[ObservedImage]] = {}
    for image in observed.built_images:
        if image.build_tag and L.get(image.labels, L.DS01_IMAGE_SITE) == site and image.of:
            per_image.setdefault(image.of, []).append(image)
    rows = []
    for of, found in sorted(per_image.items()):
        for nth, image in enumerate(found):  # newest first (as observed)
            used = tuple(sorted(set(users.get(image.id, []))))
            short = (image.content_hash or "")[:12]
            tags = [t for t in image.tags if t.rpartition(":")[2] == short]
            tag = tags[0] if tags else (image.tags[0] if image.tags else image.id[:19])
            if used:
                why: str | None = "in use"
            elif tag in pins:
                why = "pinned by a workspace"
            elif nth < keep:
                why = f"among the newest {keep}"
            else:
                why = None
            rows.append(BuildRow(of, tag, image.id, image.size, image.created, used, why))
    return rows
