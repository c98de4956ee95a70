"""GPU placement over every kind at once: the records the kinds' resolvers share (pure).

One device has one holder and one owner has one GPU budget, whatever kind of object asks:
`resolve/desired.py: place` gathers every kind's `Claim`s and runs the allocator once; each
kind's resolver then reads its share of the `Placed` result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ds01ctl.model.kinds import Kind
from ds01ctl.model.pending import PendingItem
from ds01ctl.resolve.allocate import Allocation, GpuRequest
from ds01ctl.resolve.holds import Hold
from ds01ctl.resolve.quota import EffectiveLimits, effective_limits

if TYPE_CHECKING:
    from ds01ctl.manifests.validate import ConfigRepo
    from ds01ctl.resolve.desired import World


@dataclass(frozen=True, slots=True)
class Claim:
    """One object's GPU request, and how long it keeps its GPUs once stopped (seconds; None:
    for as long as it exists)."""

    request: GpuRequest
    hold: int | None
    adopts: str | None = None  # the container it takes over (adoption): what that holds is free


@dataclass(frozen=True)
class Placed:
    """The one placement: devices per request, what waits, holds released to waiters."""

    allocation: Allocation
    released: tuple[Hold, ...]  # stopped containers whose GPUs go to someone waiting
    notes: tuple[str, ...]
    limits: dict[str, EffectiveLimits]  # every owner with a claim

    def pending_of(self, kind: Kind) -> list[PendingItem]:
        """The requests of `kind` that could not be placed, with why."""
        prefix = f"{kind.value}/"
        return [
            PendingItem(p.key, p.reason)
            for p in self.allocation.pending
            if p.key.startswith(prefix)
        ]


def owner_limits(
    repo: ConfigRepo, owner: str, world: World, limits: dict[str, EffectiveLimits]
) -> EffectiveLimits:
    """`owner`'s effective limits, computed once per owner into `limits`."""
    if owner not in limits:
        policy = repo.policy.spec if repo.policy else None
        limits[owner] = effective_limits(policy, owner, world.today)
    return limits[owner]
