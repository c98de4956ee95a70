"""GPU placement: a pure, deterministic, sticky, MIG-aware allocator with per-owner budgets.

Input is everything it needs (devices, requests, existing placements, what others hold,
budgets); output is placements and pending requests with reasons. No I/O, no clock, no
randomness, and every choice is broken by a total order, so the same inputs always give the
same plan and re-allocating with its own output as the existing placements changes nothing.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from ds01ctl.model.inventory import Device


@dataclass(frozen=True, slots=True)
class Models:
    """The GPU models a request may be placed on: `names` as the driver reports them (each
    device's `model`), `label` as reasons name them (e.g. the SKU an endpoint's recipe and its
    memory-fit check were chosen for)."""

    label: str
    names: frozenset[str]


@dataclass(frozen=True, slots=True)
class GpuRequest:
    """What one container asks for: `count` whole GPUs, or one MIG instance of `profile`, on
    devices of `models` (None: any model)."""

    key: str  # `<kind>/<owner>/<name>`: unique, and the last tie-breaker
    owner: str
    count: int = 0
    profile: str | None = None
    pending_since: datetime | None = None  # from the ledger: waiting longer goes first
    models: Models | None = None

    @property
    def wants_gpu(self) -> bool:
        return self.count > 0 or self.profile is not None

    def admits(self, device: Device) -> bool:
        """True when `device` is of a model this request may be placed on."""
        return self.models is None or device.model in self.models.names

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


@dataclass(slots=True)
class _Pool:
    """The devices not given out yet, and which of them containers of unplaced requests still
    name. A pending request's container is left as it is, so the devices it names are nobody
    else's; they become free once every container naming them is being re-placed."""

    free: dict[str, Device]
    claims: dict[str, set[str]]  # uuid → keys of unplaced requests whose container names it

    def usable_by(self, key: str) -> dict[str, Device]:
        """The free devices that no other unplaced request's container names."""
        return {u: d for u, d in self.free.items() if self.claims.get(u, set()) <= {key}}

    def take(self, uuids: Sequence[str]) -> None:
        for uuid in uuids:
            del self.free[uuid]
            self.claims.pop(uuid, None)

    def release(self, key: str, uuids: Sequence[str]) -> bool:
        """`key` was placed, so its old container goes; True when some claim got smaller."""
        released = False
        for uuid in uuids:
            holders = self.claims.get(uuid)
            if holders is not None and key in holders:
                holders.discard(key)
                released = True
                if not holders:
                    del self.claims[uuid]
        return released


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

    `existing`: key → UUIDs its container has now (kept when still valid: stickiness; when a
    request cannot be placed, its container stays, so the UUIDs it names go to nobody else).
    `taken`: UUIDs held by containers or processes that are not among the requests.
    `budgets`: owner → GPU units (None or absent: unlimited). `held`: units owners already
    hold outside these requests. A valid existing placement is kept even when its owner's
    budget has since shrunk below what they hold (taking a GPU away means deleting the
    container that names it: lifecycle policy decides that, not placement); such an owner
    gets nothing new until back within budget. A request with `models` goes only on devices
    of those models (an existing placement on another model is not kept). Cost:
    O(R·(D + log R)) for R requests and D devices, times the rounds that freed devices make
    necessary (one unless requests moved).
    """
    existing = existing or {}
    budgets = budgets or {}
    units: dict[str, Fraction] = {}
    for owner, amount in (held or {}).items():
        units[owner] = units.get(owner, Fraction(0)) + amount
    asking = sorted((r for r in requests if r.wants_gpu), key=lambda r: r.key)
    free = {d.uuid: d for d in devices if d.uuid not in taken}
    placements = _keep_sticky(asking, existing, free, units)
    waiting = [r for r in asking if r.key not in placements]
    pool = _Pool(free, _claims(waiting, existing, free))
    # Placing a request frees what its old container named; those still waiting get a
    # new round then, so no request stays pending while a device it could use is free.
    while _place_round(waiting, pool, existing, budgets, units, placements):
        pass
    pending = tuple(
        Pending(r.key, r.owner, _why_pending(r, pool.usable_by(r.key), units, budgets))
        for r in waiting
    )
    return Allocation(placements, pending, units)


def _keep_sticky(
    asking: Sequence[GpuRequest],
    existing: Mapping[str, tuple[str, ...]],
    free: dict[str, Device],
    units: dict[str, Fraction],
) -> dict[str, Placement]:
    # Stickiness first, in key order: a valid placement never moves.
    placements: dict[str, Placement] = {}
    for request in asking:
        uuids = existing.get(request.key, ())
        if uuids and _still_fits(request, uuids, free):
            amount = sum((free.pop(u).units for u in uuids), Fraction(0))
            units[request.owner] = units.get(request.owner, Fraction(0)) + amount
            placements[request.key] = Placement(request.key, request.owner, uuids, amount, True)
    return placements


def _claims(
    waiting: Sequence[GpuRequest],
    existing: Mapping[str, tuple[str, ...]],
    free: Mapping[str, Device],
) -> dict[str, set[str]]:
    claims: dict[str, set[str]] = {}
    for request in waiting:
        for uuid in existing.get(request.key, ()):
            if uuid in free:
                claims.setdefault(uuid, set()).add(request.key)
    return claims


def _place_round(
    waiting: list[GpuRequest],
    pool: _Pool,
    existing: Mapping[str, tuple[str, ...]],
    budgets: Mapping[str, Fraction | None],
    units: dict[str, Fraction],
    placements: dict[str, Placement],
) -> bool:
    """One pass over `waiting` in fair order, placing what fits; `waiting` keeps the rest.
    True when a placement released devices that those still waiting may now use."""
    # Fair order: owners holding fewer GPU units first, then whoever has waited longest, then
    # the key. Holdings only grow, so a queued entry whose owner got more since it was queued
    # goes back in line with what they hold now (a lazy heap: O(R log R), not O(R²)).
    # (The index keeps the heap from ever comparing two requests.)
    queue = [
        (units.get(r.owner, Fraction(0)), _since(r), r.key, i, r) for i, r in enumerate(waiting)
    ]
    heapq.heapify(queue)
    released = False
    waiting.clear()
    while queue:
        holds, since, key, i, request = heapq.heappop(queue)
        if units.get(request.owner, Fraction(0)) != holds:
            heapq.heappush(queue, (units[request.owner], since, key, i, request))
            continue
        chosen = _choose(request, pool.usable_by(request.key))
        if chosen is None or _over_budget(request, chosen, units, budgets):
            waiting.append(request)
            continue
        uuids = tuple(d.uuid for d in chosen)
        pool.take(uuids)
        released |= pool.release(request.key, existing.get(request.key, ()))
        amount = sum((d.units for d in chosen), Fraction(0))
        units[request.owner] = holds + amount
        placements[request.key] = Placement(request.key, request.owner, uuids, amount, False)
    waiting.sort(key=lambda r: r.key)
    return released and bool(waiting)


def _since(request: GpuRequest) -> float:
    # Not waiting yet sorts after every waiting request.
    return request.pending_since.timestamp() if request.pending_since else float("inf")


def _still_fits(request: GpuRequest, uuids: tuple[str, ...], free: Mapping[str, Device]) -> bool:
    if len(set(uuids)) != len(uuids) or any(u not in free for u in uuids):
        return False
    devices = [free[u] for u in uuids]
    if not all(request.admits(d) for d in devices):
        return False  # e.g. its recipe now names another GPU model: it moves
    if request.profile is not None:
        return len(devices) == 1 and devices[0].profile == request.profile
    return len(devices) == request.count and all(d.profile is None for d in devices)


def _choose(request: GpuRequest, free: Mapping[str, Device]) -> list[Device] | None:
    free = {u: d for u, d in free.items() if request.admits(d)}
    if request.profile is not None:
        # Pack: the GPU with the fewest free instances first, keeping other GPUs open.
        per_gpu = Counter(d.gpu_uuid for d in free.values() if d.profile is not None)
        fits = [d for d in free.values() if d.profile == request.profile]
        fits.sort(key=lambda d: (per_gpu[d.gpu_uuid], d))
        return fits[:1] or None
    whole = sorted(d for d in free.values() if d.profile is None)
    return whole[: request.count] if len(whole) >= request.count else None


def _over_budget(
    request: GpuRequest,
    chosen: Sequence[Device],
    units: Mapping[str, Fraction],
    budgets: Mapping[str, Fraction | None],
) -> bool:
    budget = budgets.get(request.owner)
    amount = sum((d.units for d in chosen), Fraction(0))
    return budget is not None and units.get(request.owner, Fraction(0)) + amount > budget


def _why_pending(
    request: GpuRequest,
    usable: Mapping[str, Device],
    units: Mapping[str, Fraction],
    budgets: Mapping[str, Fraction | None],
) -> str:
    # Worded from the final state, so a re-plan after apply gives the same reason.
    chosen = _choose(request, usable)
    if chosen is None and request.models is not None:
        # Name the model it waits for, and what is free of each model (the wrong one, often).
        counts = Counter(f"{d.profile or 'whole GPU'} ({d.model})" for d in usable.values())
        described = ", ".join(f"{n}× {p}" for p, n in sorted(counts.items())) or "nothing"
        plural = "s" if request.count > 1 else ""
        return (
            f"no free {request.models.label} device{plural} for {request.describe()}; "
            f"free now: {described}"
        )
    if chosen is None:
        counts = Counter(d.profile or "whole GPU" for d in usable.values())
        described = ", ".join(f"{n}× {p}" for p, n in sorted(counts.items())) or "nothing"
        return f"no room for {request.describe()}; free now: {described}"
    amount = sum((d.units for d in chosen), Fraction(0))
    budget = budgets.get(request.owner)
    if budget is not None and amount > budget:
        # Nothing to wait for: freeing everything the owner holds would not make it fit.
        return (
            f"this request alone exceeds {request.owner}'s GPU budget: it asks {amount} GPU "
            f"units, the budget is {budget}; ask for less, or for a larger gpu_budget"
        )
    return (
        f"{request.owner}'s GPU budget is full: holds {units.get(request.owner, Fraction(0))} "
        f"of {budget} GPU units, this asks {amount}"
    )
