"""Images an interrupted apply leaves behind, judged against the state after the plan (pure).

Three kinds, only of this site (their labels say so), never one a container or another image
is made from, nor one a manifest names:

- **per-container tags** (`<repo>:<name>._.<uid>` on an account image) whose container is
  gone and that no removal in this plan drops: a crash between a removal and its untag, or
  between preparing an image and the create. Cleaned by every plan: a tag holds nothing.
- **account images** (`<repo>:ds01ctl-user-*`) that no container uses once the plan is
  applied and that no workspace will be made from. A cache of the base with an account
  added: removed only with `--prune` (the next create would make it again).
- **duplicate snapshots**: two snapshots of one workspace with the same content (the same
  image under two tags, or the same layers: a crash between a snapshot and the removal it
  precedes, then the snapshot again). Snapshots are people's work, so only exact duplicates
  go: one is kept (one a manifest names, else one something is made from, else the oldest),
  and every other reference to that content is removed. Cleaned by every plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ds01ctl import labels as L
from ds01ctl.model.observed import Observed, ObservedImage
from ds01ctl.model.spec import ContainerSpec
from ds01ctl.resolve.images import with_default_tag


@dataclass(frozen=True, slots=True)
class Leftover:
    target: str  # `leftover/<owner or uid>/<reference>`
    reason: str  # a `Reason` value of the plan
    reference: str  # the tag to remove
    image_id: str
    note: str


def leftovers(
    observed: Observed,
    specs: Iterable[ContainerSpec],
    *,
    removed: frozenset[str],
    untagged: frozenset[str],
    named: frozenset[str],
    prune: bool,
) -> list[Leftover]:
    """What to clean once the plan has run: `removed` are the containers it removes,
    `untagged` the tags its removals drop, `named` the images manifests name."""
    specs = list(specs)
    remaining = [c for c in observed.containers if c.id not in removed]
    used_ids = {c.image_id for c in remaining} | observed.parents
    used_tags = {c.config.image_tag for c in remaining if c.config and c.config.image_tag}
    used_tags |= {s.image_tag for s in specs} | named
    wanted = {
        f"{base}:{s.account.uid}"
        for s in specs
        if (base := observed.images.get(with_default_tag(s.image)))
    }
    found: list[Leftover] = []
    for image in observed.site_images:
        if image.snapshot_of is not None:
            continue
        owner = _uid(image)
        for tag in image.container_tags:
            if image.id in used_ids and len(image.tags) == 1:
                break  # its last name, and something is made from it: the engine refuses
            if tag not in used_tags and tag not in untagged:
                note = f"image tag {tag} was made for a container that no longer exists"
                found.append(
                    Leftover(f"leftover/{owner}/{tag}", "leftover_tag", tag, image.id, note)
                )
        account_used = (
            image.id in used_ids
            or L.get(image.labels, L.USER_SETUP) in wanted
            or any(t in named or t in used_tags for t in image.tags)
        )
        if prune and not account_used:
            for tag in image.account_tags:
                note = f"account image {tag} ({_uid(image)}) is used by no container"
                found.append(
                    Leftover(
                        f"leftover/{owner}/{tag}", "leftover_account_image", tag, image.id, note
                    )
                )
    found += _duplicate_snapshots(observed.site_images, used_ids, named)
    return sorted(found, key=lambda f: f.target)


def _uid(image: ObservedImage) -> str:
    setup = L.get(image.labels, L.USER_SETUP) or ""
    uid = setup.rpartition(":")[2]
    return f"uid-{uid}" if uid.isdigit() else "?"


def _duplicate_snapshots(
    images: Iterable[ObservedImage], used_ids: set[str], named: frozenset[str]
) -> list[Leftover]:
    groups: dict[tuple[str, tuple[str, ...]], list[tuple[ObservedImage, str]]] = {}
    for image in images:
        if image.snapshot_of is None:
            continue
        content = image.layers if image.layers is not None else (image.id,)
        for tag in image.tags:
            if tag.startswith("ds01ctl-snapshot/"):
                groups.setdefault((image.snapshot_of, content), []).append((image, tag))
    found = []
    for (of, _), group in sorted(groups.items()):
        if len(group) < 2:
            continue
        group.sort(key=lambda p: (p[1] not in named, p[0].id not in used_ids, p[0].created, p[1]))
        kept = group[0][1]
        owner = L.get(group[0][0].labels, L.SNAPSHOT_OWNER) or "?"
        for image, tag in group[1:]:
            if tag in named:
                continue  # a manifest names it: both stay
            note = f"snapshot {tag} of {of} holds exactly what {kept} holds"
            found.append(
                Leftover(f"leftover/{owner}/{tag}", "duplicate_snapshot", tag, image.id, note)
            )
    return found
