"""The GPU allocator on the example hosts: MIG packing, stickiness, taken devices, exact budgets,
fair order and pending reasons, plus DS01's allocator bugs (ds01-infra.md §3) as regressions.

`examples/gpus/ds01-4xa100.yaml`: GPU 0 and 1 whole; GPU 2 in MIG as 2g.10gb + 1g.5gb + 1g.5gb +
3g.20gb; GPU 3 as 4g.20gb + 2g.10gb + 1g.5gb. `h100-80gb-mig.yaml`: one H100 as 2g.20gb +
1g.10gb + 1g.10gb + 3g.40gb.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

from ds01ctl.live.gpus import load_inventory_file
from ds01ctl.model.inventory import Device, Gpu, GpuInventory, MigInstance
from ds01ctl.resolve.allocate import Allocation, GpuRequest, Models, Pending, allocate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "gpus"
T0 = datetime(2026, 1, 12, 8, tzinfo=UTC)

# ds01-4xa100.yaml
GPU0 = "GPU-3f6c1a2e-8b4d-4e1f-9a7c-0d2e5b6a7c81"
GPU1 = "GPU-8e2b7d41-5c3a-4f9e-b6d2-1a4c7e9f0b35"
G2_2G = "MIG-5d2e8a61-3f4b-5c7d-9e1a-2b6c8d0e4f17"
G2_1G_A = "MIG-7a1c3e95-b2d4-5f68-8a0b-4c6e9d1f3a52"
G2_1G_B = "MIG-9e4f6b23-c8a1-5d3e-b7f2-6a0d2c4e8b96"
G2_3G = "MIG-1b9f4c2a-6e3d-5a7b-8c1e-2f4d6a8b0c13"
G3_4G = "MIG-2c8e0a47-9b1d-5e3f-a6c2-8d4f0b2e6a71"
G3_2G = "MIG-4e0a2c69-d3f5-5b17-9c4e-0f6b2d8a1c38"
G3_1G = "MIG-6f2b4d8a-e5a7-5c39-b1d6-3a8c4e0f2b59"
# h100-80gb-mig.yaml
H_2G = "MIG-0d6a9c31-7e2f-5b84-a3c5-9f1e6b0d2a47"
H_1G_A = "MIG-3b7e1f58-a4c2-5d96-8e0b-1c5a7d3f9e62"
H_1G_B = "MIG-8c2d4a70-f6b1-5e38-9d7a-4e0c2b6f8a15"
H_3G = "MIG-e5a1c7b4-2d9f-5a63-b8e4-7f3d1a9c5e08"
VANISHED = "MIG-deadbeef-0000-5000-8000-000000000000"


def a100() -> tuple[Device, ...]:
    return load_inventory_file(EXAMPLES / "ds01-4xa100.yaml").devices()


def h100_mig() -> tuple[Device, ...]:
    return load_inventory_file(EXAMPLES / "h100-80gb-mig.yaml").devices()


def h100_whole() -> tuple[Device, ...]:
    return load_inventory_file(EXAMPLES / "h100-80gb.yaml").devices()


def h100s_split_in_sevenths(count: int) -> tuple[Device, ...]:
    """`count` H100s, each cut into 7 × 1g.10gb (a valid layout: one per memory slice 0..6)."""
    gpus = []
    for i in range(count):
        uuid = f"GPU-{i:08x}-0000-4000-8000-000000000000"
        migs = tuple(
            MigInstance(
                uuid=f"MIG-{i:08x}-{k:04x}-5000-8000-000000000000",
                parent_uuid=uuid,
                profile="1g.10gb",
                compute_slices=1,
                memory_mib=9984,
                gi_id=9 + k,
                ci_id=0,
                placement_start=k,
            )
            for k in range(7)
        )
        gpus.append(
            Gpu(
                uuid=uuid,
                index=i,
                name="NVIDIA H100 80GB HBM3",
                pci_bus_id=f"00000000:{i + 7:02X}:00.0",
                memory_total_mib=81559,
                mig_enabled=True,
                migs=migs,
            )
        )
    return GpuInventory(source="test", host="h", taken_at=T0, gpus=tuple(gpus)).devices()


def mig(owner: str, name: str, profile: str, since: datetime | None = None) -> GpuRequest:
    return GpuRequest(f"workspace/{owner}/{name}", owner, profile=profile, pending_since=since)


def whole(owner: str, name: str, count: int = 1, since: datetime | None = None) -> GpuRequest:
    return GpuRequest(f"workspace/{owner}/{name}", owner, count=count, pending_since=since)


def uuids_of(a: Allocation) -> dict[str, tuple[str, ...]]:
    return {key: p.uuids for key, p in a.placements.items()}


def reasons_of(a: Allocation) -> dict[str, str]:
    return {p.key: p.reason for p in a.pending}


# --------------------------------------------------------------------------- placement


def test_mig_request_gets_a_free_instance_of_its_profile() -> None:
    a = allocate(a100(), [mig("alice", "nb", "1g.5gb")])
    placement = a.placements["workspace/alice/nb"]
    assert placement.uuids == (G3_1G,)  # GPU 3 has 3 free instances, GPU 2 has 4: pack
    assert (placement.units, placement.kept) == (Fraction(1, 7), False)
    assert a.held == {"alice": Fraction(1, 7)}


def test_mig_request_packs_onto_the_partially_used_gpu() -> None:
    # Two of GPU 2's four instances are in use: it now has fewer free instances than GPU 3.
    a = allocate(a100(), [mig("alice", "nb", "1g.5gb")], taken=frozenset({G2_2G, G2_3G}))
    assert uuids_of(a) == {"workspace/alice/nb": (G2_1G_A,)}


def test_whole_gpu_request_takes_whole_gpus_in_index_order() -> None:
    a = allocate(a100(), [whole("alice", "big", 2)])
    assert uuids_of(a) == {"workspace/alice/big": (GPU0, GPU1)}
    assert a.held == {"alice": Fraction(2)}


def test_whole_gpu_request_never_lands_on_a_mig_gpu() -> None:
    # Two whole GPUs and plenty of MIG slices are free; three whole GPUs are not.
    a = allocate(a100(), [whole("alice", "big", 3)])
    assert a.placements == {}
    assert reasons_of(a) == {
        "workspace/alice/big": "no room for 3 whole GPUs; free now: 3× 1g.5gb, 2× 2g.10gb, "
        "1× 3g.20gb, 1× 4g.20gb, 2× whole GPU"
    }


def test_whole_gpu_request_on_a_mig_only_host_is_pending() -> None:
    a = allocate(h100_mig(), [whole("alice", "big")])
    assert reasons_of(a) == {
        "workspace/alice/big": "no room for 1 whole GPU; free now: 2× 1g.10gb, 1× 2g.20gb, "
        "1× 3g.40gb"
    }


def test_request_without_gpus_is_neither_placed_nor_pending() -> None:
    a = allocate(a100(), [GpuRequest("workspace/alice/cpu", "alice")])
    assert a == Allocation()


# --------------------------------------------------------------------------- stickiness


def test_sticky_mig_placement_stays_where_packing_would_not_put_it() -> None:
    existing = {"workspace/alice/nb": (G2_1G_B,)}
    a = allocate(a100(), [mig("alice", "nb", "1g.5gb")], existing=existing)
    assert a.placements["workspace/alice/nb"].uuids == (G2_1G_B,)  # not GPU 3's "better" one
    assert a.placements["workspace/alice/nb"].kept


def test_sticky_whole_gpu_stays_on_gpu1_while_gpu0_is_free() -> None:
    a = allocate(a100(), [whole("alice", "big")], existing={"workspace/alice/big": (GPU1,)})
    assert uuids_of(a) == {"workspace/alice/big": (GPU1,)}


def test_sticky_placement_is_kept_before_newcomers_are_served() -> None:
    # Bob holds less than alice, but a kept placement is not up for grabs.
    requests = [mig("alice", "nb", "1g.10gb"), mig("bob", "nb", "1g.10gb")]
    existing = {"workspace/alice/nb": (H_1G_B,)}
    a = allocate(h100_mig(), requests, existing=existing, taken=frozenset({H_1G_A}))
    assert uuids_of(a) == {"workspace/alice/nb": (H_1G_B,)}
    assert reasons_of(a)["workspace/bob/nb"].startswith("no room for one 1g.10gb MIG instance")


def test_vanished_uuid_is_re_placed() -> None:
    # After a reboot or re-partition the old MIG UUID is gone: place the request anew.
    a = allocate(
        a100(), [mig("alice", "nb", "1g.5gb")], existing={"workspace/alice/nb": (VANISHED,)}
    )
    placement = a.placements["workspace/alice/nb"]
    assert (placement.uuids, placement.kept) == ((G3_1G,), False)


def test_placement_of_the_wrong_shape_is_re_placed() -> None:
    # The manifest changed from 1g.5gb to 2g.10gb: the old instance no longer fits the request.
    existing = {"workspace/alice/nb": (G3_1G,)}
    a = allocate(a100(), [mig("alice", "nb", "2g.10gb")], existing=existing)
    assert uuids_of(a) == {"workspace/alice/nb": (G3_2G,)}
    assert not a.placements["workspace/alice/nb"].kept


def test_two_containers_naming_one_device_only_the_first_keeps_it() -> None:
    # Label drift: both containers claim G3_1G; the lower key keeps it, the other moves.
    requests = [mig("alice", "nb", "1g.5gb"), mig("bob", "nb", "1g.5gb")]
    existing = {"workspace/alice/nb": (G3_1G,), "workspace/bob/nb": (G3_1G,)}
    a = allocate(a100(), requests, existing=existing)
    assert uuids_of(a) == {"workspace/alice/nb": (G3_1G,), "workspace/bob/nb": (G2_1G_A,)}


# --------------------------------------------------------------------------- taken devices


def test_taken_devices_are_never_given() -> None:
    # Unmanaged containers or host processes use every 1g.5gb.
    taken = frozenset({G2_1G_A, G2_1G_B, G3_1G})
    a = allocate(a100(), [mig("alice", "nb", "1g.5gb")], taken=taken)
    assert reasons_of(a) == {
        "workspace/alice/nb": "no room for one 1g.5gb MIG instance; free now: 2× 2g.10gb, "
        "1× 3g.20gb, 1× 4g.20gb, 2× whole GPU"
    }


def test_existing_placement_on_a_taken_device_moves() -> None:
    existing = {"workspace/alice/nb": (G3_1G,)}
    a = allocate(
        a100(), [mig("alice", "nb", "1g.5gb")], existing=existing, taken=frozenset({G3_1G})
    )
    assert uuids_of(a) == {"workspace/alice/nb": (G2_1G_A,)}


# --------------------------------------------------------------------------- budgets


def test_budget_seven_sevenths_fit_exactly_and_the_eighth_is_pending() -> None:
    # 7 × 1/7 is exactly 1 GPU unit (in floats it is not); an 8th slice would exceed it.
    requests = [mig("alice", f"w{i}", "1g.10gb") for i in range(8)]
    a = allocate(h100s_split_in_sevenths(2), requests, budgets={"alice": Fraction(1)})
    assert len(a.placements) == 7
    assert a.held == {"alice": Fraction(1)}
    assert a.pending == (
        Pending(
            "workspace/alice/w7",
            "alice",
            "alice's GPU budget is full: holds 1 of 1 GPU units, this asks 1/7",
        ),
    )


def test_budget_counts_what_the_owner_holds_elsewhere() -> None:
    # Alice holds 6/7 outside these requests: one more 1/7 fits, a second does not.
    requests = [mig("alice", "a", "1g.10gb"), mig("alice", "b", "1g.10gb")]
    a = allocate(
        h100s_split_in_sevenths(1),
        requests,
        budgets={"alice": Fraction(1)},
        held={"alice": Fraction(6, 7)},
    )
    assert list(a.placements) == ["workspace/alice/a"]
    assert a.held == {"alice": Fraction(1)}
    assert "holds 1 of 1 GPU units, this asks 1/7" in reasons_of(a)["workspace/alice/b"]


def test_budget_zero_places_nothing() -> None:
    a = allocate(a100(), [mig("alice", "nb", "1g.5gb")], budgets={"alice": Fraction(0)})
    assert reasons_of(a) == {
        "workspace/alice/nb": "this request alone exceeds alice's GPU budget: it asks 1/7 GPU "
        "units, the budget is 0; ask for less, or for a larger gpu_budget"
    }


def test_budget_none_or_absent_is_unlimited() -> None:
    requests = [whole("alice", "big", 2), mig("bob", "nb", "4g.20gb")]
    a = allocate(a100(), requests, budgets={"alice": None})
    assert uuids_of(a) == {"workspace/alice/big": (GPU0, GPU1), "workspace/bob/nb": (G3_4G,)}


def test_budget_shrunk_below_sticky_placements_keeps_them() -> None:
    # Alice's budget was cut to 1/7 while she holds a 3g.20gb: her container keeps its GPU
    # (only the lifecycle rules may take it away), and nothing new is placed for her.
    requests = [mig("alice", "big", "3g.20gb"), mig("alice", "small", "1g.5gb")]
    existing = {"workspace/alice/big": (G2_3G,)}
    a = allocate(a100(), requests, existing=existing, budgets={"alice": Fraction(1, 7)})
    assert uuids_of(a) == {"workspace/alice/big": (G2_3G,)}
    assert a.held == {"alice": Fraction(3, 7)}
    assert reasons_of(a) == {
        "workspace/alice/small": "alice's GPU budget is full: holds 3/7 of 1/7 GPU units, "
        "this asks 1/7"
    }


def test_budget_of_one_owner_never_blocks_another() -> None:
    requests = [mig("alice", "nb", "1g.5gb"), mig("bob", "nb", "1g.5gb")]
    a = allocate(a100(), requests, budgets={"alice": Fraction(0), "bob": Fraction(1, 7)})
    assert uuids_of(a) == {"workspace/bob/nb": (G3_1G,)}


# --------------------------------------------------------------------------- fair order


def test_fair_owner_holding_less_goes_first() -> None:
    # One 1g.10gb is free. Bob already holds 2/7 and has waited longer; zed holds nothing.
    requests = [mig("bob", "more", "1g.10gb", since=T0), mig("zed", "first", "1g.10gb")]
    bob_holds = {"workspace/bob/has": (H_2G,)}
    a = allocate(
        h100_mig(),
        [*requests, mig("bob", "has", "2g.20gb")],
        existing=bob_holds,
        taken=frozenset({H_1G_A, H_3G}),
    )
    assert uuids_of(a)["workspace/zed/first"] == (H_1G_B,)
    assert "workspace/bob/more" in reasons_of(a)


def test_fair_equal_holdings_longest_waiting_first() -> None:
    # DS01 ignored priority and waiting time; here the one pending longest goes first.
    requests = [
        mig("alice", "nb", "1g.10gb", since=T0 + timedelta(hours=3)),
        mig("zed", "nb", "1g.10gb", since=T0),
    ]
    a = allocate(h100_mig(), requests, taken=frozenset({H_1G_A}))
    assert uuids_of(a) == {"workspace/zed/nb": (H_1G_B,)}


def test_fair_waiting_beats_not_waiting_and_the_key_breaks_ties() -> None:
    requests = [mig("alice", "nb", "1g.10gb"), mig("zed", "nb", "1g.10gb", since=T0)]
    a = allocate(h100_mig(), requests, taken=frozenset({H_1G_A}))
    assert list(a.placements) == ["workspace/zed/nb"]
    tied = [mig("zed", "nb", "1g.10gb"), mig("alice", "nb", "1g.10gb")]
    assert list(allocate(h100_mig(), tied, taken=frozenset({H_1G_A})).placements) == [
        "workspace/alice/nb"
    ]


def test_fair_turns_alternate_between_owners() -> None:
    # Alice asks for three slices and bob for one; two are free: one each, not two for alice.
    requests = [mig("alice", f"w{i}", "1g.10gb") for i in range(3)] + [mig("bob", "w", "1g.10gb")]
    a = allocate(h100_mig(), requests)
    assert sorted(p.owner for p in a.placements.values()) == ["alice", "bob"]


# --------------------------------------------------------------------------- pending reasons


def test_pending_reason_describes_the_state_after_allocation() -> None:
    # Alice's 1g.10gb cannot be placed; bob then takes the only (whole) GPU. The reason must
    # not offer that GPU as free, and a re-plan after apply must give the same reason.
    requests = [mig("alice", "nb", "1g.10gb"), whole("bob", "big")]
    a = allocate(h100_whole(), requests)
    assert reasons_of(a) == {
        "workspace/alice/nb": "no room for one 1g.10gb MIG instance; free now: nothing"
    }
    again = allocate(h100_whole(), requests, existing=uuids_of(a))
    assert again.pending == a.pending


def test_pending_container_keeps_its_devices_from_others() -> None:
    # Alice's workspace changed from 1g.10gb to 3g.40gb, which carol holds. Her container is
    # left as it is while she waits, so her old 1g.10gb must not go to bob.
    requests = [
        mig("alice", "nb", "3g.40gb"),
        mig("bob", "nb", "1g.10gb"),
        mig("carol", "nb", "3g.40gb"),
    ]
    existing = {"workspace/alice/nb": (H_1G_A,), "workspace/carol/nb": (H_3G,)}
    a = allocate(h100_mig(), requests, existing=existing, taken=frozenset({H_1G_B}))
    assert uuids_of(a) == {"workspace/carol/nb": (H_3G,)}
    assert reasons_of(a) == {
        "workspace/alice/nb": "no room for one 3g.40gb MIG instance; free now: 1× 1g.10gb, "
        "1× 2g.20gb",
        "workspace/bob/nb": "no room for one 1g.10gb MIG instance; free now: 1× 2g.20gb",
    }


def test_re_placed_request_frees_its_old_devices_for_others() -> None:
    # Alice's workspace went from 2 GPUs to 1; bob (waiting longer) is tried first while both
    # GPUs are still hers, then gets the one her re-placement frees.
    requests = [whole("alice", "big", 1), whole("bob", "big", 1, since=T0)]
    existing = {"workspace/alice/big": (GPU0, GPU1)}
    a = allocate(a100(), requests, existing=existing)
    assert uuids_of(a) == {"workspace/alice/big": (GPU0,), "workspace/bob/big": (GPU1,)}


# --------------------------------------------------------------------------- DS01 regressions


def test_ds01_held_mig_slices_count_their_units() -> None:
    # DS01 counted held MIG slices as 0.0 gpueq. Alice holds a 3g.20gb (3/7) of a 4/7 budget:
    # a 2g.10gb would make 5/7, a 1g.5gb makes exactly 4/7.
    existing = {"workspace/alice/big": (G2_3G,)}
    budgets = {"alice": Fraction(4, 7)}
    requests = [mig("alice", "big", "3g.20gb"), mig("alice", "mid", "2g.10gb")]
    a = allocate(a100(), requests, existing=existing, budgets=budgets)
    assert a.held == {"alice": Fraction(3, 7)}
    assert "holds 3/7 of 4/7 GPU units, this asks 2/7" in reasons_of(a)["workspace/alice/mid"]
    requests[1] = mig("alice", "small", "1g.5gb")
    assert allocate(a100(), requests, existing=existing, budgets=budgets).held == {
        "alice": Fraction(4, 7)
    }


def test_ds01_new_mig_request_is_charged_its_units_not_a_whole_gpu() -> None:
    # DS01 charged every new slot 1.0, so a budget of 1/7 could never get a 1/7 slice.
    a = allocate(a100(), [mig("alice", "nb", "1g.5gb")], budgets={"alice": Fraction(1, 7)})
    assert a.placements["workspace/alice/nb"].units == Fraction(1, 7)


def test_ds01_devices_are_uuids_never_indices() -> None:
    # DS01 slot ids ("0", "2.1") are not devices: an existing placement naming one is re-placed,
    # and every placement names inventory UUIDs only.
    requests = [whole("alice", "big"), mig("bob", "nb", "1g.5gb")]
    existing = {"workspace/alice/big": ("0",), "workspace/bob/nb": ("2.1",)}
    a = allocate(a100(), requests, existing=existing)
    assert uuids_of(a) == {"workspace/alice/big": (GPU0,), "workspace/bob/nb": (G3_1G,)}
    assert not any(p.kept for p in a.placements.values())


def test_ds01_gpu_order_is_numeric_not_string() -> None:
    # DS01 sorted slot ids as strings, so GPU "10" came before GPU "2".
    gpus = tuple(
        Gpu(
            uuid=f"GPU-{i:08x}-0000-4000-8000-000000000000",
            index=i,
            name="NVIDIA A100-SXM4-40GB",
            pci_bus_id=f"00000000:{i + 7:02X}:00.0",
            memory_total_mib=40960,
        )
        for i in (10, 2)
    )
    devices = GpuInventory(source="test", host="h", taken_at=T0, gpus=gpus).devices()
    a = allocate(devices, [whole("alice", "big")])
    assert uuids_of(a) == {"workspace/alice/big": ("GPU-00000002-0000-4000-8000-000000000000",)}


def test_ds01_mig_gpu_with_every_slice_free_is_no_whole_gpu() -> None:
    # DS01's "virtual full GPU": a MIG GPU whose slices are all free handed out whole.
    a = allocate(h100_mig(), [whole("alice", "big")])
    assert a.placements == {}


def test_ds01_mig_enabled_gpu_without_instances_offers_nothing() -> None:
    # DS01 #22: a MIG-enabled GPU with no instances is invisible to CUDA.
    empty = Gpu(
        uuid="GPU-a3d8f2c6-1e7b-4d9a-8f0c-5b2e7d4a9c13",
        index=0,
        name="NVIDIA H100 80GB HBM3",
        pci_bus_id="00000000:19:00.0",
        memory_total_mib=81559,
        mig_enabled=True,
    )
    devices = GpuInventory(source="test", host="h", taken_at=T0, gpus=(empty,)).devices()
    a = allocate(devices, [whole("alice", "big")])
    assert reasons_of(a) == {"workspace/alice/big": "no room for 1 whole GPU; free now: nothing"}


def test_ds01_multi_gpu_request_gets_all_or_nothing() -> None:
    # DS01's wrapper turned `--gpus all` or a failed multi-GPU request into 1 GPU.
    a = allocate(a100(), [whole("alice", "big", 2)], taken=frozenset({GPU1}))
    assert a.placements == {}
    assert reasons_of(a)["workspace/alice/big"].startswith("no room for 2 whole GPUs")


def test_ds01_every_request_is_budget_checked() -> None:
    # DS01 checked max_gpu_equivalents only on its single-slot path; multi-GPU slipped by.
    a = allocate(a100(), [whole("alice", "big", 2)], budgets={"alice": Fraction(1)})
    assert reasons_of(a) == {
        "workspace/alice/big": "this request alone exceeds alice's GPU budget: it asks 2 GPU "
        "units, the budget is 1; ask for less, or for a larger gpu_budget"
    }


def test_ds01_one_pass_never_gives_a_device_twice() -> None:
    # DS01's lock failed open and was released before the container existed. Here one pure
    # pass decides all requests: the only free 1g.5gb goes to one of them.
    taken = frozenset({G2_1G_A, G2_1G_B})
    requests = [mig("alice", "nb", "1g.5gb"), mig("bob", "nb", "1g.5gb")]
    a = allocate(a100(), requests, taken=taken)
    assert uuids_of(a) == {"workspace/alice/nb": (G3_1G,)}
    assert list(reasons_of(a)) == ["workspace/bob/nb"]


def test_ds01_quota_failure_never_releases_anything() -> None:
    # DS01 "self-healed" a quota failure by releasing stale allocations. Here a request over
    # budget is pending and every kept placement stays.
    requests = [mig("alice", "has", "1g.5gb"), mig("alice", "more", "2g.10gb")]
    existing = {"workspace/alice/has": (G2_1G_A,)}
    a = allocate(a100(), requests, existing=existing, budgets={"alice": Fraction(1, 7)})
    assert uuids_of(a) == {"workspace/alice/has": (G2_1G_A,)}
    assert list(reasons_of(a)) == ["workspace/alice/more"]


# --------------------------------------------------------------------------- GPU models
# mixed-a100-h100.yaml: GPU 0 an A100-SXM4-40GB, GPU 1 an H100 80GB, both whole.
MIXED_A100 = "GPU-5a7c9e1b-3d2f-4a6b-8c0e-1f3a5b7d9e24"
MIXED_H100 = "GPU-b4e6d8f0-2a1c-4e3b-9d5f-7a9c1e3b5d68"
H100_MODELS = Models("H100-80GB", frozenset({"NVIDIA H100 80GB HBM3"}))


def mixed() -> tuple[Device, ...]:
    return load_inventory_file(EXAMPLES / "mixed-a100-h100.yaml").devices()


def on_h100(owner: str, name: str, count: int = 1) -> GpuRequest:
    return GpuRequest(f"endpoint/{owner}/{name}", owner, count=count, models=H100_MODELS)


def test_devices_carry_their_gpus_model() -> None:
    assert [(d.uuid, d.model) for d in mixed()] == [
        (MIXED_A100, "NVIDIA A100-SXM4-40GB"),
        (MIXED_H100, "NVIDIA H100 80GB HBM3"),
    ]


def test_request_with_models_goes_to_its_model_not_the_first_free_gpu() -> None:
    # Without models the first free GPU in placement order (the A100) is taken; with them the
    # H100, although the A100 comes first.
    assert uuids_of(allocate(mixed(), [whole("ann", "a")])) == {"workspace/ann/a": (MIXED_A100,)}
    a = allocate(mixed(), [on_h100("ann", "chat"), whole("bob", "b")])
    assert uuids_of(a) == {"endpoint/ann/chat": (MIXED_H100,), "workspace/bob/b": (MIXED_A100,)}
    assert a.pending == ()


def test_request_waits_when_only_another_model_is_free_and_says_which_it_needs() -> None:
    a = allocate(mixed(), [on_h100("ann", "chat")], taken=frozenset({MIXED_H100}))
    assert uuids_of(a) == {}
    assert reasons_of(a) == {
        "endpoint/ann/chat": "no free H100-80GB device for 1 whole GPU; free now: "
        "1× whole GPU (NVIDIA A100-SXM4-40GB)"
    }
    # Two H100s asked on a host with one: the reason counts what is free of each model.
    two = allocate(mixed(), [on_h100("ann", "big", count=2)])
    assert reasons_of(two) == {
        "endpoint/ann/big": "no free H100-80GB devices for 2 whole GPUs; free now: "
        "1× whole GPU (NVIDIA A100-SXM4-40GB), 1× whole GPU (NVIDIA H100 80GB HBM3)"
    }


def test_request_waits_while_its_model_is_held_and_leaves_the_other_model_free() -> None:
    # The H100 is held by bob's running workspace (sticky): ann waits, the A100 stays free.
    b = allocate(
        mixed(),
        [on_h100("ann", "chat"), whole("bob", "b")],
        existing={"workspace/bob/b": (MIXED_H100,)},
    )
    assert uuids_of(b) == {"workspace/bob/b": (MIXED_H100,)}
    assert reasons_of(b)["endpoint/ann/chat"].startswith("no free H100-80GB device for 1 whole")
    assert b.held == {"bob": Fraction(1)}


def test_existing_placement_on_another_model_is_not_kept() -> None:
    # The container runs on the A100 (e.g. placed before its recipe named the H100): it moves.
    a = allocate(mixed(), [on_h100("ann", "chat")], existing={"endpoint/ann/chat": (MIXED_A100,)})
    assert a.placements["endpoint/ann/chat"].uuids == (MIXED_H100,)
    assert a.placements["endpoint/ann/chat"].kept is False
    # And on the H100 it stays put: re-allocating its own output changes nothing.
    again = allocate(mixed(), [on_h100("ann", "chat")], existing=uuids_of(a))
    assert again.placements["endpoint/ann/chat"].kept is True


def test_models_constrain_mig_instances_too() -> None:
    # 1g.10gb exists on both an H100 and an A100 80GB: only the named model's instance is used.
    h100 = load_inventory_file(EXAMPLES / "h100-80gb-mig.yaml")
    other = Models("A100-80GB", frozenset({"NVIDIA A100-SXM4-80GB"}))
    request = GpuRequest("endpoint/ann/small", "ann", profile="1g.10gb", models=other)
    a = allocate(h100.devices(), [request])
    assert uuids_of(a) == {}
    assert reasons_of(a)["endpoint/ann/small"].startswith(
        "no free A100-80GB device for one 1g.10gb MIG instance; free now: "
    )
