"""Benchmark: one lifecycle pass (`ds01ctl.lifecycle.enforce.run_pass`) over N running managed
workspaces on the real Docker engine, next to what `docker stats --no-stream` costs for the
same containers.

Setup (not timed): the throw-away config repo and containers of `bench/plan.py` (a unique
site, 30 users, CPU-only Pytorch workspaces pinned running, each with `max_runtime` from the
quota's defaults, all created and started as apply does), and one observation.

Timed (medians of --runs, a second apart):
- a pass with `--dry-run` from the loop's observation: read every container's activity from
  its cgroup files (CPU time, exec sessions, keep-alive), run the policy, write nothing;
  cold (the first of a process: each cgroup dir found through /proc/<pid>/cgroup) and warm;
- a pass that acts: the same, plus the timers and stop records written to the state dir
  (nothing is due, so nobody is warned or stopped);
- for scale, the observation the loop shares with its plan (`Driver.observe`: list and
  inspect of every container), which the pass does not repeat when given one;
- `docker stats --no-stream` over the same containers (DS01's CPU signal).
Goal: a pass < 0.5 s for 300.

The workspaces hold no GPU (the engine here has none): the idle clock, which only watches GPU
workspaces, costs a few comparisons per container more on a GPU host; its readings are the
same cgroup files.

    python bench/lifecycle.py [--workspaces 300] [--runs 3] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/plan.py's setup

from plan import Bench, cleanup, setup

from ds01ctl.drivers.docker import DockerDriver
from ds01ctl.lifecycle.enforce import run_pass
from ds01ctl.live.activity import ActivityReader, detect_layout
from ds01ctl.live.docker import connect
from ds01ctl.workflow import gpu_inventory, load_repo


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    client = connect(timeout=300)
    token = uuid.uuid4().hex[:8]
    bench = Bench(
        Path(tempfile.mkdtemp(prefix="ds01ctl-bench-lc-")), client, f"bench-{token}", token
    )
    print(f"lifecycle bench {token}: {args.workspaces} workspaces, load {os.getloadavg()}")
    try:
        setup(bench, args.workspaces)
        driver = DockerDriver(client)
        repo = load_repo(bench.root, dt.date.today())
        inventory = gpu_inventory(repo)
        state_dir = bench.tmp / "state"
        t0 = time.perf_counter()
        observed = driver.observe(bench.site)
        observe_s = time.perf_counter() - t0
        running = [c for c in observed.ours() if c.running]
        layout = detect_layout()
        assert layout is not None, "no cgroup hierarchy with CPU accounting"

        def one(reader: ActivityReader, *, dry_run: bool) -> tuple[float, int]:
            result = run_pass(
                driver, repo, state_dir, observed=observed, inventory=inventory,
                dry_run=dry_run, reader=reader,
            )  # fmt: skip
            unreadable = sum(
                1
                for c in running
                if result.outcomes[c.id].activity.startswith("CPU time unreadable")
            )
            return result.duration_s, unreadable

        cold, _ = one(ActivityReader(layout), dry_run=True)
        reader = ActivityReader(layout)
        one(reader, dry_run=False)  # timers for the next passes to compare with
        dry, acting = [], []
        unreadable = 0
        for _ in range(args.runs):
            time.sleep(1)
            seconds, unreadable = one(reader, dry_run=True)
            dry.append(seconds)
            acting.append(one(reader, dry_run=False)[0])
        names = [c.name for c in running]
        t1 = time.perf_counter()
        done = subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}", *names],
            capture_output=True, text=True, check=False, timeout=1800,
        )  # fmt: skip
        stats_s = time.perf_counter() - t1
        warm = statistics.median(dry)
        print(f"running workspaces: {len(running)}; lifecycle pass --dry-run, cold: {ms(cold)}")
        print(
            f"lifecycle pass --dry-run, warm (median of {args.runs}): {ms(warm)}"
            f"  ({warm / len(running) * 1e6:.0f} µs a container; goal < 500 ms for 300)"
        )
        print(
            f"lifecycle pass writing timers (median of {args.runs}): "
            f"{ms(statistics.median(acting))}"
        )
        print(f"workspaces whose cgroup could not be read: {unreadable}")
        print(f"the observation it shares with the plan (Driver.observe): {ms(observe_s)}")
        rows = len(done.stdout.splitlines())
        print(
            f"docker stats --no-stream, same containers: {stats_s:.1f} s "
            f"({rows} rows, exit {done.returncode})"
        )
        print(f"ratio: docker stats / warm pass = {stats_s / warm:.0f}×")
    finally:
        if not args.keep:
            cleanup(bench)
    return 0


if __name__ == "__main__":
    sys.exit(main())
