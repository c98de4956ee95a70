"""GPU placement: a pure, deterministic, sticky, MIG-aware allocator with per-owner budgets.

Input is everything it needs (devices, requests, existing placements, what others hold,
budgets); output is placements and pending requests with reasons. No I/O, no clock, no
randomness, and every choice is broken by a total order, so the same inputs always give the
same plan and re-allocating with its own output as the existing placements changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from ds01ctl.live.inventory import Device


@dataclass(frozen=True, slots=True)
class GpuRequest:
    """What one container asks for: `count` whole GPUs, or one MIG instance of `profile`."""

    key: str  # `<kind>/<owner>/<name>`: unique, and the last tie-breaker
    owner: str
    count: int = 0
    profile: str | None = None
    pending_since: datetime | None = None  # from the ledger: waiting longer goes first

    @property
    def wants_gpu(self) -> bool:
        return self.count > 0 or self.profile is not None

    def describe(self) -> str:
        if self.profile is not None:
            return f"one {self.profile} MIG instance"
        return f"{self.count} whole GPU{'s' if self.count != 1 else ''}"


@dataclass(frozen=True, slots=True)
class Placement:
    key: str
    owner: str
    uuids: tuple[str, ...]
    units: Fraction
    kept: bool  # True: an existing placement left where it is


@dataclass(frozen=True, slots=True)
class Pending:
    key: str
    owner: str
    reason: str


@dataclass(frozen=True, slots=True)
class Allocation:
    placements: dict[str, Placement] = field(default_factory=dict)
    pending: tuple[Pending, ...] = ()
    held: dict[str, Fraction] = field(default_factory=dict)  # units per owner afterwards


def allocate(
    devices: Sequence[Device],
    requests: Sequence[GpuRequest],
    *,
    existing: Mapping[str, tuple[str, ...]] | None = None,
    taken: frozenset[str] = frozenset(),
    budgets: Mapping[str, Fraction | None] | None = None,
    held: Mapping[str, Fraction] | None = None,
) -> Allocation:
    """Place every request that fits; the rest are pending with a reason.

    `existing`: key → UUIDs its container has now (kept when still valid: stickiness).
    `taken`: UUIDs held by containers or processes that are not among the requests.
    `budgets`: owner → GPU units (None or absent: unlimited). `held`: units owners already
    hold outside these requests. Cost: O(R·D) for R requests and D devices.
    """
    existing = existing or {}
    budgets = budgets or {}
    free = {d.uuid: d for d in devices if d.uuid not in taken}
    units: dict[str, Fraction] = {}
    for owner, amount in (held or {}).items():
        units[owner] = units.get(owner, Fraction(0)) + amount
    placements: dict[str, Placement] = {}
    asking = sorted((r for r in requests if r.wants_gpu), key=lambda r: r.key)

    for request in asking:  # stickiness first: a valid placement never moves
        uuids = existing.get(request.key, ())
        if uuids and _still_fits(request, uuids, free):
            amount = sum((free.pop(u).units for u in uuids), Fraction(0))
            units[request.owner] = units.get(request.owner, Fraction(0)) + amount
            placements[request.key] = Placement(request.key, request.owner, uuids, amount, True)

    pending: list[Pending] = []
    waiting = [r for r in asking if r.key not in placements]
    while waiting:
        request = min(waiting, key=lambda r: _fair_order(r, units))
        waiting.remove(request)
        chosen = _choose(request, free)
        if chosen is None:
            pending.append(Pending(request.key, request.owner, _no_room(request, free)))
            continue
        amount = sum((d.units for d in chosen), Fraction(0))
        budget = budgets.get(request.owner)
        holds = units.get(request.owner, Fraction(0))
        if budget is not None and holds + amount > budget:
            pending.append(
                Pending(
                    request.key,
                    request.owner,
                    f"{request.owner}'s GPU budget is full: holds {holds} of "
                    f"{budget} GPU units, this asks {amount}",
                )
            )
            continue
        for device in chosen:
            del free[device.uuid]
        units[request.owner] = holds + amount
        uuids = tuple(d.uuid for d in chosen)
        placements[request.key] = Placement(request.key, request.owner, uuids, amount, False)
    pending.sort(key=lambda p: p.key)
    return Allocation(placements, tuple(pending), units)


def _fair_order(request: GpuRequest, units: Mapping[str, Fraction]) -> tuple[object, ...]:
    # Owners holding fewer GPU units go first, then whoever has waited longest, then the key.
    since = request.pending_since.timestamp() if request.pending_since else float("inf")
    return (units.get(request.owner, Fraction(0)), since, request.key)


def _still_fits(request: GpuRequest, uuids: tuple[str, ...], free: Mapping[str, Device]) -> bool:
    if len(set(uuids)) != len(uuids) or any(u not in free for u in uuids):
        return False
    devices = [free[u] for u in uuids]
    if request.profile is not None:
        return len(devices) == 1 and devices[0].profile == request.profile
    return len(devices) == request.count and all(d.profile is None for d in devices)


def _choose(request: GpuRequest, free: Mapping[str, Device]) -> list[Device] | None:
    if request.profile is not None:
        # Pack: the GPU with the fewest free instances first, keeping other GPUs open.
        per_gpu = Counter(d.gpu_uuid for d in free.values() if d.profile is not None)
        fits = [d for d in free.values() if d.profile == request.profile]
        fits.sort(key=lambda d: (per_gpu[d.gpu_uuid], d))
        return fits[:1] or None
    whole = sorted(d for d in free.values() if d.profile is None)
    return whole[: request.count] if len(whole) >= request.count else None


def _no_room(request: GpuRequest, free: Mapping[str, Device]) -> str:
    counts = Counter(d.profile or "whole GPU" for d in free.values())
    described = ", ".join(f"{n}× {p}" for p, n in sorted(counts.items())) or "nothing"
    return f"no room for {request.describe()}; free now: {described}"
