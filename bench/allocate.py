"""Benchmark: the GPU allocator on a busy host, next to DS01's way of reaching the same decision.

The host: 8 H100 80GB, each cut into 7 × 1g.10gb (56 MIG devices). The demand: 500 requests
from 60 users (mostly 1g.10gb; some 2g.20gb and whole GPUs that this layout cannot serve),
half of them with an existing placement: 48 still valid, the rest naming MIG UUIDs that a
re-partition removed. Budgets: most users 2/7 of a GPU, some unlimited.

Timed in this one process:
  - ds01ctl: `allocate` alone (pure; median of 5; goal < 50 ms), and with the Docker reads a
    plan needs: one filtered list plus one API inspect per container, over one connection;
  - DS01 (ds01-infra.md §3.3): `docker ps -a`, then one `docker inspect` process per container
    to read its GPU label, then a first-free decision; median of 3.

Setup (not timed): one small stopped container per existing placement (250), made with the
local image ds01ctl-local/base:latest from 4 threads, labelled with its owner and GPU UUID as
DS01 labels them. They are all removed at the end, whatever happens.

    bash scripts/docker-engine            # a Docker engine and the local images
    python bench/allocate.py [--runs 5] [--ds01-runs 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from ds01ctl.errors import DockerUnavailable
from ds01ctl.live.docker import connect
from ds01ctl.model.inventory import Device, Gpu, GpuInventory, MigInstance
from ds01ctl.resolve.allocate import Allocation, GpuRequest, allocate

GPUS = 8
SLICES = 7
REQUESTS = 500
USERS = 60
STILL_VALID = 48
GOAL_MS = 50.0
THREADS = 4
IMAGE = "ds01ctl-local/base:latest"
BENCH_LABEL = "ds01ctl.bench"  # marks what this script made, so that it removes only that
GPU_LABEL = "ds01.gpu.uuids"  # DS01's label (ds01-infra.md §3.3)
USER_LABEL = "ds01.user"
T0 = datetime(2026, 1, 12, 8, tzinfo=UTC)


# --- the host and its demand ---------------------------------------------------------------


def host() -> tuple[Device, ...]:
    """8 H100s, each split into 7 × 1g.10gb: one instance on each memory slice 0..6."""
    gpus = []
    for i in range(GPUS):
        gpu_uuid = f"GPU-{i:08x}-b00c-4000-8000-000000000000"
        migs = tuple(
            MigInstance(
                uuid=f"MIG-{i:08x}-{k:04x}-5000-8000-000000000000",
                parent_uuid=gpu_uuid,
                profile="1g.10gb",
                compute_slices=1,
                memory_mib=9984,
                gi_id=9 + k,
                ci_id=0,
                placement_start=k,
            )
            for k in range(SLICES)
        )
        gpus.append(
            Gpu(
                uuid=gpu_uuid,
                index=i,
                name="NVIDIA H100 80GB HBM3",
                pci_bus_id=f"00000000:{0x19 + i:02X}:00.0",
                memory_total_mib=81559,
                mig_enabled=True,
                migs=migs,
            )
        )
    inventory = GpuInventory(source="bench", host="bench", taken_at=T0, gpus=tuple(gpus))
    return inventory.devices()


@dataclass(frozen=True)
class Demand:
    requests: tuple[GpuRequest, ...]
    existing: dict[str, tuple[str, ...]]
    budgets: dict[str, Fraction | None]


def demand(devices: Sequence[Device], seed: int = 1) -> Demand:
    rng = random.Random(seed)
    users = [f"user{u:02d}" for u in range(USERS)]
    requests = []
    for i in range(REQUESTS):
        owner = rng.choice(users)
        shape = rng.choices(["1g.10gb", "2g.20gb", "whole"], weights=[85, 10, 5])[0]
        since = T0 + timedelta(minutes=rng.randrange(600)) if rng.random() < 0.3 else None
        key = f"workspace/{owner}/w{i:03d}"
        if shape == "whole":
            requests.append(GpuRequest(key, owner, count=1, pending_since=since))
        else:
            requests.append(GpuRequest(key, owner, profile=shape, pending_since=since))
    with_gpus = [r for r in requests if r.profile == "1g.10gb"]
    placed = rng.sample(with_gpus, REQUESTS // 2)
    valid = rng.sample(list(devices), STILL_VALID)
    existing: dict[str, tuple[str, ...]] = {
        r.key: (dev.uuid,) for r, dev in zip(placed[:STILL_VALID], valid, strict=True)
    }
    for n, r in enumerate(placed[STILL_VALID:]):  # named UUIDs a re-partition removed
        existing[r.key] = (f"MIG-{n:08x}-dead-5000-8000-000000000000",)
    budgets: dict[str, Fraction | None] = {
        u: (None if rng.random() < 0.2 else Fraction(2, 7)) for u in users
    }
    return Demand(tuple(requests), existing, budgets)


def ds01ctl_allocate(devices: Sequence[Device], d: Demand) -> Allocation:
    return allocate(devices, d.requests, existing=d.existing, budgets=d.budgets)


# --- the containers DS01 would inspect -----------------------------------------------------


@contextmanager
def containers(client: Any, d: Demand, run_id: str) -> Iterator[list[str]]:
    """One stopped container per existing placement, removed again on the way out."""
    made: list[str] = []
    lock = threading.Lock()

    def create(item: tuple[str, tuple[str, ...]]) -> None:
        key, uuids = item
        created = client.create_container(
            IMAGE,
            command=["true"],
            labels={
                BENCH_LABEL: run_id,
                USER_LABEL: key.split("/")[1],
                "ds01.name": key.split("/")[2],
                GPU_LABEL: ";".join(uuids),
            },
        )
        with lock:
            made.append(created["Id"])

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(create, sorted(d.existing.items())))
        yield made
    finally:
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda cid: client.remove_container(cid, force=True), made))


def ds01ctl_observe_and_allocate(
    client: Any, devices: Sequence[Device], d: Demand, run_id: str
) -> Allocation:
    """What a ds01ctl plan reads: one filtered list and one API inspect per container."""
    existing: dict[str, tuple[str, ...]] = {}
    for entry in client.containers(all=True, filters={"label": f"{BENCH_LABEL}={run_id}"}):
        labels = client.inspect_container(entry["Id"])["Config"]["Labels"]
        key = f"workspace/{labels[USER_LABEL]}/{labels['ds01.name']}"
        existing[key] = tuple(labels[GPU_LABEL].split(";"))
    return allocate(devices, d.requests, existing=existing, budgets=d.budgets)


def ds01_loop(devices: Sequence[Device], d: Demand, run_id: str) -> int:
    """DS01's way: `docker ps -a`, one `docker inspect` process per container for its GPU
    label, then each request in turn keeps its slot if free or takes the lowest free one
    (no profiles, budgets or fairness: DS01's decision is cheaper than ours, not dearer)."""
    listed = subprocess.run(
        ["docker", "ps", "-a", "-q", "--no-trunc", "--filter", f"label={BENCH_LABEL}={run_id}"],
        capture_output=True,
        text=True,
        check=True,
    )
    held: dict[str, str] = {}
    for container in listed.stdout.split():
        shown = subprocess.run(
            ["docker", "inspect", container], capture_output=True, text=True, check=True
        )
        labels = json.loads(shown.stdout)[0]["Config"]["Labels"]
        key = f"workspace/{labels[USER_LABEL]}/{labels['ds01.name']}"
        held[key] = labels[GPU_LABEL]
    free = sorted(dev.uuid for dev in devices)
    placed = 0
    for request in d.requests:  # arrival order; a slot is a slot, whatever was asked
        mine = held.get(request.key)
        if mine in free:
            free.remove(mine)
        elif free:
            free.pop(0)
        else:
            continue
        placed += 1
    return placed


# --- timing and report ---------------------------------------------------------------------


def median_s(runs: int, call: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def show(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms" if seconds < 1 else f"{seconds:9.2f} s "


def report_allocation(devices: Sequence[Device], d: Demand, a: Allocation) -> None:
    kept = sum(p.kept for p in a.placements.values())
    print(
        f"host: {GPUS} × H100 80GB as {SLICES} × 1g.10gb = {len(devices)} MIG devices; "
        f"{len(d.requests)} requests from {USERS} users; {len(d.existing)} existing placements "
        f"({STILL_VALID} still valid)"
    )
    print(f"allocation: {len(a.placements)} placed ({kept} kept), {len(a.pending)} pending\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="runs of each ds01ctl row")
    parser.add_argument("--ds01-runs", type=int, default=3, help="runs of the DS01 row")
    args = parser.parse_args(argv)
    devices = host()
    d = demand(devices)
    report_allocation(devices, d, ds01ctl_allocate(devices, d))
    pure = median_s(args.runs, lambda: ds01ctl_allocate(devices, d))
    verdict = "met" if pure * 1000 < GOAL_MS else "MISSED"
    print(f"{'':44}{'median':>12}  runs")
    print(f"{'ds01ctl: allocate (pure)':44}{show(pure)}  {args.runs}   goal < 50 ms: {verdict}")
    try:
        client = connect()
    except DockerUnavailable as exc:
        print(f"\nno DS01 comparison: {exc} (run `bash scripts/docker-engine`)", file=sys.stderr)
        return 1
    if not client.images(name=IMAGE):
        print(f"\nno DS01 comparison: image {IMAGE} is missing", file=sys.stderr)
        print("build it with `bash scripts/docker-engine`", file=sys.stderr)
        return 1
    run_id = uuid.uuid4().hex[:12]
    with containers(client, d, run_id) as made:
        observed = median_s(
            args.runs, lambda: ds01ctl_observe_and_allocate(client, devices, d, run_id)
        )
        ds01 = median_s(args.ds01_runs, lambda: ds01_loop(devices, d, run_id))
    n = len(made)
    print(f"{f'ds01ctl: list + {n} API inspects + allocate':44}{show(observed)}  {args.runs}")
    print(f"{f'DS01: docker ps + {n} × docker inspect + pick':44}{show(ds01)}  {args.ds01_runs}")
    print(f"\nDS01 / ds01ctl allocate: {ds01 / pure:,.0f}×")
    print(f"DS01 / ds01ctl with its Docker reads: {ds01 / observed:,.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
