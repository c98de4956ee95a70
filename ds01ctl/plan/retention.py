"""Snapshot retention: which snapshots of a workspace are beyond the Site's `keep_per_workspace`.

Pure: given the snapshots and the images something still names (a container made from one,
a manifest's `image_ref`), the ones to remove, oldest first. A snapshot in use is never
removed, and it counts toward what is kept: a restored workspace keeps its source.
"""

from __future__ import annotations

from collections.abc import Iterable

from ds01ctl import labels as L
from ds01ctl.model.driver import Snapshot
from ds01ctl.model.observed import Observed


def beyond_retention(
    snapshots: Iterable[Snapshot], keep: int, in_use: frozenset[str], of: str | None = None
) -> list[Snapshot]:
    """The snapshots (of workspace `of`, or of each) older than its newest `keep`, not in use."""
    by_object: dict[str, list[Snapshot]] = {}
    for snap in snapshots:
        if of is None or snap.of == of:
            by_object.setdefault(snap.of, []).append(snap)
    doomed: list[Snapshot] = []
    for group in by_object.values():
        group.sort(key=lambda s: (s.taken_at, s.reference))
        older = group[: max(len(group) - keep, 0)]
        doomed.extend(s for s in older if s.reference not in in_use and s.image_id not in in_use)
    return sorted(doomed, key=lambda s: (s.of, s.taken_at, s.reference))


def images_in_use(observed: Observed) -> frozenset[str]:
    """What every container on the engine was made from: its reference, its image id, and for
    ds01ctl's containers the image their manifest names (a snapshot under an account tag)."""
    used: set[str] = set()
    for c in observed.containers:
        used.update(x for x in (c.image, c.image_id, L.get(c.labels, L.DS01_IMAGE)) if x)
    return frozenset(used)
