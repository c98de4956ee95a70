"""Snapshot retention: which snapshots a prune removes, and which it never does."""

from __future__ import annotations

from ds01ctl.model.driver import Snapshot
from ds01ctl.plan.retention import beyond_retention


def _snap(of: str, day: int) -> Snapshot:
    name = of.rsplit("/", 1)[1]
    return Snapshot(
        reference=f"ds01ctl-snapshot/alice:{name}-202611{day:02d}",
        image_id=f"sha256:{name}{day}",
        of=of,
        owner="alice",
        taken_at=f"2026-11-{day:02d}T00:00:00+00:00",
        reason="replace",
        site="lab",
        size=1,
    )


def _refs(snaps: list[Snapshot]) -> list[str]:
    return [s.reference.split(":", 1)[1] for s in snaps]


SNAPS = [_snap("workspace/alice/a", d) for d in (4, 1, 3, 2)] + [_snap("workspace/alice/b", 1)]


def test_retention_removes_the_oldest_beyond_keep_per_workspace() -> None:
    assert _refs(beyond_retention(SNAPS, 2, frozenset())) == ["a-20261101", "a-20261102"]
    assert _refs(beyond_retention(SNAPS, 1, frozenset())) == [
        "a-20261101",
        "a-20261102",
        "a-20261103",
    ]
    assert beyond_retention(SNAPS, 4, frozenset()) == []


def test_retention_never_removes_a_snapshot_in_use_by_reference_or_image_id() -> None:
    in_use = frozenset({"ds01ctl-snapshot/alice:a-20261101", "sha256:a2"})
    assert _refs(beyond_retention(SNAPS, 1, in_use)) == ["a-20261103"]


def test_retention_of_one_workspace_leaves_the_others() -> None:
    assert beyond_retention(SNAPS, 0, frozenset(), "workspace/alice/b") == [SNAPS[-1]]
