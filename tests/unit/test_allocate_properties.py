"""Properties of the GPU allocator over generated hosts (DESIGN §7, gpu.md §6).

Hosts mix whole A100/H100 GPUs with MIG GPUs cut into valid layouts (gpu.md §2.2: each profile
only at its allowed memory-slice starts, at most 7 compute slices), and MIG GPUs with no
instances at all. Existing placements may be valid, of the wrong shape, clash with each other
or name UUIDs that vanished; budgets sit at their edges (0, exactly what the owner asks, one
slice less, None, absent). Each property is checked against its own plain definition, never
against the allocator's code.

Budgets and stickiness: a placement that is still valid is kept even when its owner's budget
shrank below what they hold (DESIGN §6: releasing a GPU means deleting the container that
names it, which only the lifecycle rules may decide; the allocator must never give that device
to anyone else while the container exists). The owner then gets nothing new until they are
back within budget, so every owner ends within max(budget, what they already held).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ds01ctl.model.inventory import Device, Gpu, GpuInventory, MigInstance
from ds01ctl.resolve.allocate import Allocation, GpuRequest, allocate

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

OWNERS = ("alice", "bob", "carol", "dave")
T0 = datetime(2026, 1, 12, 8, tzinfo=UTC)
SINCE = (None, T0, T0 + timedelta(hours=1), T0 + timedelta(hours=1), T0 + timedelta(days=2))

# Per shape: (compute slices, memory slices, allowed memory-slice starts) — gpu.md §2.2.
SHAPES: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "1g": (1, 1, tuple(range(7))),
    "1g+mem": (1, 2, (0, 2, 4, 6)),
    "2g": (2, 2, (0, 2, 4)),
    "3g": (3, 4, (0, 4)),
    "4g": (4, 4, (0,)),
    "7g": (7, 8, (0,)),
}
# Profile names per model: the same shapes, the memory suffix differs (read from NVML for real).
MODELS: dict[str, tuple[int, dict[str, str]]] = {
    "NVIDIA A100-SXM4-40GB": (
        40960,
        {"1g": "1g.5gb", "1g+mem": "1g.10gb", "2g": "2g.10gb", "3g": "3g.20gb", "4g": "4g.20gb"}
        | {"7g": "7g.40gb"},
    ),
    "NVIDIA H100 80GB HBM3": (
        81559,
        {"1g": "1g.10gb", "1g+mem": "1g.20gb", "2g": "2g.20gb", "3g": "3g.40gb", "4g": "4g.40gb"}
        | {"7g": "7g.80gb"},
    ),
}
PROFILES = sorted({p for _, names in MODELS.values() for p in names.values()})
VANISHED = ("MIG-deadbeef-0000-5000-8000-000000000000", "GPU-deadbeef-0000-4000-8000-000000000000")


# --------------------------------------------------------------------------- valid MIG layouts


def pack_layout(shapes: Iterable[str]) -> list[tuple[str, int]]:
    """Place shapes in order at their first allowed free start; those that do not fit are left
    out, so the result is always a valid layout (or a valid part of one)."""
    used_memory: set[int] = set()
    compute = 0
    layout = []
    for shape in shapes:
        slices, size, starts = SHAPES[shape]
        for start in starts:
            span = set(range(start, start + size))
            if compute + slices <= 7 and not span & used_memory:
                used_memory |= span
                compute += slices
                layout.append((shape, start))
                break
    return layout


def make_gpu(index: int, model: str, layout: list[tuple[str, int]] | None) -> Gpu:
    """GPU `index` of `model`; `layout` None: MIG off, else the MIG instances (maybe none)."""
    memory, names = MODELS[model]
    uuid = f"GPU-{index:08x}-0000-4000-8000-000000000000"
    migs = tuple(
        MigInstance(
            uuid=f"MIG-{index:08x}-{k:04x}-5000-8000-000000000000",
            parent_uuid=uuid,
            profile=names[shape],
            compute_slices=SHAPES[shape][0],
            memory_mib=memory * SHAPES[shape][1] // 8,
            gi_id=k + 1,
            ci_id=0,
            placement_start=start,
        )
        for k, (shape, start) in enumerate(layout or ())
    )
    return Gpu(
        uuid=uuid,
        index=index,
        name=model,
        pci_bus_id=f"00000000:{index + 7:02X}:00.0",
        memory_total_mib=memory,
        mig_enabled=layout is not None,
        total_compute_slices=7,
        migs=migs,
    )


# --------------------------------------------------------------------------- generated inputs


@dataclass(frozen=True)
class Scenario:
    """One allocator input: a host, its demand, and what is already placed or held."""

    devices: tuple[Device, ...]
    requests: tuple[GpuRequest, ...]
    existing: dict[str, tuple[str, ...]]
    taken: frozenset[str]
    budgets: dict[str, Fraction | None]
    held: dict[str, Fraction]

    def run(self, **changes: object) -> Allocation:
        s = replace(self, **changes)  # type: ignore[arg-type]
        return allocate(
            s.devices,
            s.requests,
            existing=s.existing,
            taken=s.taken,
            budgets=s.budgets,
            held=s.held,
        )


# Strategies are built once here and drawn as plain data: building strategies inside a draw is
# what makes a generator slow, and the suite runs on 2 cores.
GPU_SPECS = st.lists(
    st.tuples(
        st.sampled_from(sorted(MODELS)),
        st.none() | st.lists(st.sampled_from(sorted(SHAPES)), max_size=8),  # None: MIG off
    ),
    min_size=1,
    max_size=4,
)
REQUEST_SPECS = st.lists(
    st.tuples(
        st.sampled_from(OWNERS),
        # whole GPUs (1 or 2), a MIG profile this host offers, any profile at all, or no GPU
        st.tuples(
            st.sampled_from(["whole", "offered", "offered", "any", "cpu"]), st.integers(0, 63)
        ),
        st.sampled_from(SINCE),
        st.sampled_from(["new", "new", "right shape", "any devices", "vanished"]),
        st.integers(0, 4095),  # which devices, when it has some
    ),
    max_size=10,
)
PICKS = st.lists(st.integers(0, 63), max_size=3)
BUDGET_KINDS = ("absent", "none", "zero", "exact", "one slice short", "one GPU", "three slices")
OWNER_SPECS = st.lists(
    st.tuples(st.sampled_from(BUDGET_KINDS), st.none() | st.integers(0, 7)),  # budget, held/7
    min_size=len(OWNERS),
    max_size=len(OWNERS),
)


def make_host(specs: list[tuple[str, list[str] | None]]) -> tuple[Device, ...]:
    made = tuple(
        make_gpu(i, model, None if shapes is None else pack_layout(shapes))
        for i, (model, shapes) in enumerate(specs)
    )
    return GpuInventory(source="test", host="h", taken_at=T0, gpus=made).devices()


def make_requests(
    specs: list[tuple[str, tuple[str, int], datetime | None, str, int]],
    devices: tuple[Device, ...],
) -> tuple[GpuRequest, ...]:
    offered = sorted({d.profile for d in devices if d.profile is not None}) or PROFILES
    found = []
    for i, (owner, (shape, n), since, *_) in enumerate(specs):
        key = f"workspace/{owner}/w{i}"
        if shape in ("whole", "cpu"):
            count = 0 if shape == "cpu" else 1 + n % 2
            found.append(GpuRequest(key, owner, count=count, pending_since=since))
            continue
        profiles = offered if shape == "offered" else PROFILES
        found.append(
            GpuRequest(key, owner, profile=profiles[n % len(profiles)], pending_since=since)
        )
    return tuple(found)


def existing_for(
    request: GpuRequest, kind: str, pick: int, devices: tuple[Device, ...]
) -> tuple[str, ...] | None:
    """None (a new request), its right shape, any devices, or UUIDs that no longer exist."""
    picks = [pick % 64, pick // 64]
    right = [d.uuid for d in devices if d.profile == request.profile]
    wanted = 1 if request.profile is not None else request.count
    if kind == "right shape" and right and len(right) >= wanted:
        first = picks[0] % len(right)
        return tuple((right[first:] + right[:first])[:wanted])
    if kind == "any devices" and devices:
        return tuple(devices[p % len(devices)].uuid for p in picks[: 1 + picks[1] % 2])
    if kind == "vanished":
        return (VANISHED[picks[0] % 2],)
    return None


def asks(request: GpuRequest) -> Fraction:
    """What a request costs in GPU units: a whole GPU is 1, a MIG profile `Ng.*` is N/7."""
    if request.profile is not None:
        return Fraction(int(request.profile.split("g.")[0]), 7)
    return Fraction(request.count)


def budget_for(kind: str, demand: Fraction, held: Fraction) -> Fraction | None:
    exact = held + demand
    return {
        "none": None,
        "zero": Fraction(0),
        "exact": exact,
        "one slice short": max(Fraction(0), exact - Fraction(1, 7)),
        "one GPU": Fraction(1),
        "three slices": Fraction(3, 7),
    }[kind]


@st.composite
def requests(draw: st.DrawFn, devices: tuple[Device, ...]) -> tuple[GpuRequest, ...]:
    return make_requests(draw(REQUEST_SPECS), devices)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    devices = make_host(draw(GPU_SPECS))
    specs = draw(REQUEST_SPECS)
    wanted = make_requests(specs, devices)
    existing = {}
    for request, (*_, kind, pick) in zip(wanted, specs, strict=True):
        uuids = existing_for(request, kind, pick, devices)
        if uuids is not None:
            existing[request.key] = uuids
    taken = {devices[p % len(devices)].uuid for p in draw(PICKS)} if devices else set()
    budgets: dict[str, Fraction | None] = {}
    held: dict[str, Fraction] = {}
    for owner, (kind, sevenths) in zip(OWNERS, draw(OWNER_SPECS), strict=True):
        if sevenths is not None:
            held[owner] = Fraction(sevenths, 7)
        if kind != "absent":
            demand = sum((asks(r) for r in wanted if r.owner == owner), Fraction(0))
            budgets[owner] = budget_for(kind, demand, held.get(owner, Fraction(0)))
    return Scenario(devices, wanted, existing, frozenset(taken), budgets, held)


# --------------------------------------------------------------------------- plain definitions


def pending_keys(a: Allocation) -> set[str]:
    return {p.key for p in a.pending}


def still_named(s: Scenario, a: Allocation) -> dict[str, tuple[str, ...]]:
    """What each container names once the plan is applied: a placed request's container has its
    placement; a pending request's container (if any) is left alone, naming what it named."""
    named = {k: p.uuids for k, p in a.placements.items()}
    named |= {k: s.existing[k] for k in pending_keys(a) if k in s.existing}
    return named


def is_valid_for(request: GpuRequest, uuids: tuple[str, ...], s: Scenario) -> bool:
    by_uuid = {d.uuid: d for d in s.devices}
    if len(set(uuids)) != len(uuids) or any(u not in by_uuid or u in s.taken for u in uuids):
        return False
    if request.profile is not None:
        return len(uuids) == 1 and by_uuid[uuids[0]].profile == request.profile
    return len(uuids) == request.count and all(by_uuid[u].profile is None for u in uuids)


def fits(request: GpuRequest, free: list[Device], holds: Fraction, budget: Fraction | None) -> bool:
    """Could `request` be given devices from `free` within `budget`?"""
    if request.profile is not None:
        costs = [d.units for d in free if d.profile == request.profile]
        return bool(costs) and (budget is None or holds + min(costs) <= budget)
    whole = [d for d in free if d.profile is None]
    return len(whole) >= request.count and (budget is None or holds + request.count <= budget)


# --------------------------------------------------------------------------- found bugs
# The smallest cases of the allocator bugs these properties found, checked on every run.

TWO_WHOLE = make_host([("NVIDIA A100-SXM4-40GB", None)] * 2)
G0, G1 = (d.uuid for d in TWO_WHOLE)

# Alice's container has both GPUs but asks for 2 while GPU 0 is taken: she is pending and her
# container stays, naming GPU 1; bob was given GPU 1 as well.
DOUBLE_BOOKED = Scenario(
    TWO_WHOLE,
    (GpuRequest("workspace/alice/w0", "alice", count=2), GpuRequest("workspace/bob/w1", "bob", 1)),
    {"workspace/alice/w0": (G0, G1)},
    frozenset({G0}),
    {},
    {},
)
# Bob (waiting longer) is tried while both GPUs are still named by alice's container; alice's
# re-placement then frees GPU 1, which bob must get rather than stay pending.
FREED_LATE = Scenario(
    TWO_WHOLE,
    (
        GpuRequest("workspace/alice/w0", "alice", count=1),
        GpuRequest("workspace/bob/w1", "bob", count=1, pending_since=T0),
    ),
    {"workspace/alice/w0": (G0, G1)},
    frozenset(),
    {},
    {},
)
# Alice's 1g.10gb was pending "free now: 1× whole GPU", a GPU then given to her other request;
# the re-plan said "free now: nothing".
STALE_REASON = Scenario(
    TWO_WHOLE[:1],
    (
        GpuRequest("workspace/alice/w0", "alice", profile="1g.10gb"),
        GpuRequest("workspace/alice/w1", "alice", count=1),
    ),
    {},
    frozenset(),
    {},
    {},
)


# --------------------------------------------------------------------------- the properties


@PROPERTY
@given(scenarios())
def test_allocate_outcome_covers_every_gpu_request_once(s: Scenario) -> None:
    a = s.run()
    asking = {r.key for r in s.requests if r.wants_gpu}
    assert set(a.placements) | pending_keys(a) == asking
    assert not set(a.placements) & pending_keys(a)
    assert len(a.pending) == len(pending_keys(a))


@PROPERTY
@given(scenarios())
@example(DOUBLE_BOOKED)
def test_allocate_never_gives_a_uuid_twice(s: Scenario) -> None:
    a = s.run()
    given_out = [u for p in a.placements.values() for u in p.uuids]
    assert len(given_out) == len(set(given_out))
    assert not set(given_out) & s.taken
    assert set(given_out) <= {d.uuid for d in s.devices}  # UUIDs only, never an index
    # A pending request's container stays as it is, so what it names is nobody else's.
    kept_by_pending = {u for k in pending_keys(a) for u in s.existing.get(k, ())}
    new = {u for p in a.placements.values() if not p.kept for u in p.uuids}
    assert not new & kept_by_pending


@PROPERTY
@given(scenarios())
def test_allocate_gives_each_request_its_shape(s: Scenario) -> None:
    # Whole-GPU requests never land on a MIG GPU; MIG requests get one instance of their profile.
    a = s.run()
    by_uuid = {d.uuid: d for d in s.devices}
    by_key = {r.key: r for r in s.requests}
    for key, placement in a.placements.items():
        request = by_key[key]
        got = [by_uuid[u] for u in placement.uuids]
        if request.profile is not None:
            assert [d.profile for d in got] == [request.profile]
        else:
            assert len(got) == request.count and all(d.profile is None for d in got)
        assert placement.units == sum((d.units for d in got), Fraction(0))
        assert placement.owner == request.owner


@PROPERTY
@given(scenarios())
def test_allocate_never_exceeds_a_budget(s: Scenario) -> None:
    a = s.run()
    for owner in OWNERS:
        before = s.held.get(owner, Fraction(0))
        mine = [p for p in a.placements.values() if p.owner == owner]
        kept = sum((p.units for p in mine if p.kept), Fraction(0))
        after = a.held.get(owner, Fraction(0))
        assert after == before + sum((p.units for p in mine), Fraction(0))
        budget = s.budgets.get(owner)
        if budget is None:
            continue
        assert after <= max(budget, before + kept)  # a shrunk budget keeps what is held
        if any(not p.kept for p in mine):
            assert after <= budget  # nothing new beyond the budget, exactly (Fractions)


@PROPERTY
@given(scenarios())
@example(FREED_LATE)
def test_allocate_is_work_conserving(s: Scenario) -> None:
    # No pending request could be served by what is left free, within its owner's budget.
    a = s.run()
    placed = {u for p in a.placements.values() for u in p.uuids}
    for pending in a.pending:
        request = next(r for r in s.requests if r.key == pending.key)
        others = {u for k in pending_keys(a) - {pending.key} for u in s.existing.get(k, ())}
        free = [d for d in s.devices if d.uuid not in s.taken | placed | others]
        holds = a.held.get(request.owner, Fraction(0))
        assert not fits(request, free, holds, s.budgets.get(request.owner)), pending


@PROPERTY
@given(scenarios())
def test_allocate_keeps_every_valid_placement(s: Scenario) -> None:
    a = s.run()
    wanting = [r for r in s.requests if r.wants_gpu]
    for request in wanting:
        uuids = s.existing.get(request.key)
        if uuids is None or not is_valid_for(request, uuids, s):
            continue
        rivals = {u for r in wanting if r.key != request.key for u in s.existing.get(r.key, ())}
        if set(uuids) & rivals:
            continue  # two containers claim one device: only one of them can keep it
        placement = a.placements[request.key]
        assert placement.uuids == uuids and placement.kept


@PROPERTY
@given(scenarios(), st.randoms(use_true_random=False))
def test_allocate_ignores_input_order(s: Scenario, rng: random.Random) -> None:
    shuffled_requests = list(s.requests)
    shuffled_devices = list(s.devices)
    rng.shuffle(shuffled_requests)
    rng.shuffle(shuffled_devices)
    shuffled_existing = dict(sorted(s.existing.items(), key=lambda _: rng.random()))
    again = s.run(
        requests=tuple(shuffled_requests),
        devices=tuple(shuffled_devices),
        existing=shuffled_existing,
    )
    assert again == s.run()
    assert list(again.placements) == list(s.run().placements)  # the same order, too


@PROPERTY
@given(scenarios())
@example(STALE_REASON)
@example(DOUBLE_BOOKED)
def test_allocate_is_idempotent(s: Scenario) -> None:
    # Apply the plan, then plan again: nothing moves, nothing else gets placed, same reasons.
    first = s.run()
    second = s.run(existing=still_named(s, first))
    assert {k: p.uuids for k, p in second.placements.items()} == {
        k: p.uuids for k, p in first.placements.items()
    }
    assert all(p.kept for p in second.placements.values())
    assert second.pending == first.pending
    assert second.held == first.held


@PROPERTY
@given(scenarios())
def test_allocate_pending_always_says_why(s: Scenario) -> None:
    for pending in s.run().pending:
        assert pending.reason.strip()
        assert "free now:" in pending.reason or f"{pending.owner}'s GPU budget" in pending.reason


@PROPERTY
@given(scenarios(), st.data())
def test_allocate_unrelated_request_moves_nothing(s: Scenario, data: st.DataObject) -> None:
    # After an apply, any number of new requests (new keys) leaves every placement where it is.
    extra = data.draw(requests(s.devices))
    first = s.run()
    newcomers = tuple(replace(r, key=f"{r.key}-new") for r in extra)
    second = s.run(requests=s.requests + newcomers, existing=still_named(s, first))
    for key, placement in first.placements.items():
        assert second.placements[key].uuids == placement.uuids


def test_generated_layouts_are_valid() -> None:
    # The generator's own check: every layout it can make obeys gpu.md §2.2.
    rng = random.Random(7)
    for _ in range(2000):
        layout = pack_layout(rng.choices(sorted(SHAPES), k=rng.randint(0, 9)))
        memory: Counter[int] = Counter()
        for shape, start in layout:
            assert start in SHAPES[shape][2]
            memory.update(range(start, start + SHAPES[shape][1]))
        assert sum(SHAPES[shape][0] for shape, _ in layout) <= 7
        assert all(n == 1 for n in memory.values()) and max(memory, default=0) < 8
