"""Benchmark: one lifecycle pass over N running containers on the real Docker engine, next to
what `docker stats --no-stream` costs for the same containers.

Setup (not timed): N tiny containers of the local base image (`sleep`), uniquely named
`ds01ctl-bench-lc-<hex>-<i>` and labelled with the run's token, one list + inspect for their
init pids and /workspace (the loop has both from its observation anyway).

Timed (medians of --runs): a lifecycle pass = detect the cgroup layout, read each
container's activity from its cgroup files (CPU time, exec sessions, keep-alive) and run the
policy for each, from a previous pass's timers. Cold = the first pass of a process (cgroup
dirs found through /proc/<pid>/cgroup); warm = later passes. Goal: < 0.5 s for 300. Then
one `docker stats --no-stream` over the same containers (DS01's CPU signal).

Everything this run made is removed at the end unless --keep.

    python bench/lifecycle.py [--containers 300] [--runs 3] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ds01ctl.lifecycle.policy import Limits, Observation, Timers, decide
from ds01ctl.live.activity import ActivityReader, detect_layout, workspace_dir
from ds01ctl.live.docker import connect

IMAGE = "ds01ctl-local/base:latest"
GPU = ("GPU-00000000-0000-0000-0000-0000000000b0",)  # the policy's idle clock needs one
LIMITS = Limits(1800, 86400, 900)


def setup(client: object, count: int, token: str) -> list[tuple[str, str, int, Path | None]]:
    def make(i: int) -> str:
        name = f"ds01ctl-bench-lc-{token}-{i:03d}"
        container = client.create_container(  # type: ignore[attr-defined]
            IMAGE,
            ["sleep", "86400"],
            name=name,
            labels={"ds01ctl.bench": token},
            host_config=client.create_host_config(mem_limit=32 * 2**20),  # type: ignore[attr-defined]
        )
        client.start(container["Id"])  # type: ignore[attr-defined]
        return str(container["Id"])

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(make, range(count)))
    found = []
    for cid in ids:
        inspect = client.inspect_container(cid)  # type: ignore[attr-defined]
        found.append((cid, inspect["Name"].lstrip("/"), int(inspect["State"]["Pid"]),
                      workspace_dir(inspect)))  # fmt: skip
    return found


def one_pass(
    containers: list[tuple[str, str, int, Path | None]],
    previous: dict[str, Timers],
    reader: ActivityReader | None,
) -> tuple[float, dict[str, Timers], ActivityReader]:
    start = time.perf_counter()
    if reader is None:
        layout = detect_layout()
        assert layout is not None, "no cgroup hierarchy with CPU accounting"
        reader = ActivityReader(layout)
    now = dt.datetime.now(dt.UTC)
    timers = {}
    for cid, _name, pid, workspace in containers:
        activity = reader.read(cid, pid, workspace)
        obs = Observation(
            cid, f"workspace/bench/{cid[:8]}", "bench", gpu_ids=GPU,
            cpu_seconds=activity.cpu_seconds, sessions=activity.sessions,
            newest_session=activity.newest_session, keep_alive=activity.keep_alive,
        )  # fmt: skip
        outcome = decide(obs, previous.get(cid), LIMITS, now)
        if outcome.timers is not None:
            timers[cid] = outcome.timers
    return time.perf_counter() - start, timers, reader


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    client = connect(timeout=300)
    token = uuid.uuid4().hex[:8]
    print(f"lifecycle bench {token}: {args.containers} containers, load {os.getloadavg()}")
    t0 = time.perf_counter()
    try:
        containers = setup(client, args.containers, token)
        print(f"setup: {time.perf_counter() - t0:.1f} s")
        cold, timers, reader = one_pass(containers, {}, None)
        warm = []
        for _ in range(args.runs):
            time.sleep(1)
            seconds, timers, reader = one_pass(containers, timers, reader)
            warm.append(seconds)
        unreadable = sum(1 for t in timers.values() if t.cpu_seconds is None)
        names = [name for _cid, name, _pid, _ws in containers]
        t1 = time.perf_counter()
        done = subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}", *names],
            capture_output=True, text=True, check=False, timeout=1800,
        )  # fmt: skip
        stats_s = time.perf_counter() - t1
        rows = len(done.stdout.splitlines())
        print(f"lifecycle pass, cold (first of a process): {cold * 1000:.0f} ms")
        print(
            f"lifecycle pass, warm (median of {args.runs}): {statistics.median(warm) * 1000:.0f} ms"
            f"  ({statistics.median(warm) / len(containers) * 1e6:.0f} µs a container;"
            f" goal < 500 ms for 300)"
        )
        print(f"containers whose cgroup could not be read: {unreadable}")
        print(f"docker stats --no-stream, same containers: {stats_s:.1f} s ({rows} rows,"
              f" exit {done.returncode})")  # fmt: skip
        print(f"ratio: docker stats / warm pass = {stats_s / statistics.median(warm):.0f}×")
    finally:
        if not args.keep:
            made = client.containers(all=True, filters={"label": f"ds01ctl.bench={token}"})
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda c: client.remove_container(c["Id"], force=True), made))
            print(f"removed {len(made)} containers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
