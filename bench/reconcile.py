"""Benchmark: the reconcile daemon's CPU share with N workspaces and nothing to do.

Setup (not timed, bench/plan.py's): a throw-away config repo with N running CPU-only
workspaces under a unique site, every container created and started, the next plan empty;
then the repo is committed and pushed to a bare remote the loop follows.

Measured, in this process (the same code the daemon runs: `Reconciler.tick`, following the
engine's event stream), as CPU time of this process and of the git processes it waited for
(`os.times`): one full pass (fetch, plan, nothing to apply, status files), and idle ticks
(fetch only: no new commit, no engine event) at a shortened interval (--interval, 2 s by
default: an idle tick costs the same whatever the interval, so the share at 30 s is the
tick's CPU over 30 s). The share at 30 s adds the periodic full pass (the Site's
`reconcile.full_pass_every`, 600 s by default) amortized over its period. Next to it, what a
full plan every tick would cost. Goal: < 1 % of a core at 30 s. The engine is shared: a tick
that saw another user's container event plans in full, and is counted apart (it is not idle).

    python bench/reconcile.py [--workspaces 300] [--ticks 10] [--interval 2] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ds01ctl.drivers.docker import DockerDriver
from ds01ctl.live.docker import connect
from ds01ctl.reconcile import enginewatch
from ds01ctl.reconcile.loop import LoopSettings, Reconciler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan import Bench, cleanup, setup  # bench/plan.py: the same setup

PERIOD = 30.0  # the interval the goal is stated for
FULL_EVERY = 600.0  # the Site's reconcile.full_pass_every default
GOAL = 0.01


def cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Bench", "-c", "user.email=bench@lab.example", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def push(bench: Bench) -> Path:
    site = bench.root / "site.yaml"
    site.write_text(
        site.read_text().replace("fixture: ../gpus.yaml", f"fixture: {bench.tmp}/gpus.yaml")
    )
    remote = bench.tmp / "remote.git"
    git(bench.tmp, "init", "-q", "--bare", "-b", "main", str(remote))
    git(bench.root, "init", "-q", "-b", "main")
    git(bench.root, "add", "-A")
    git(bench.root, "commit", "-qm", "bench")
    git(bench.root, "push", "-q", str(remote), "HEAD:main")
    return remote


def only_this_site(site: str) -> list[int]:
    """The engine is shared with other test runs whose mlc-labelled containers a real host
    would not have: the bench's watch wakes only for this site's containers (the count of
    what it ignored is printed)."""
    ignored = [0]
    real = enginewatch.relevant

    def ours(
        event: Mapping[str, Any], site_: str | None, network: str | None, *, waiting: bool
    ) -> bool:
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        mine = attributes.get("ds01.site") == site or attributes.get("name") == network
        woke = real(event, site_, network, waiting=waiting)
        if woke and not mine:
            ignored[0] += 1
        return woke and mine

    enginewatch.relevant = ours  # type: ignore[assignment]
    return ignored


def measure(bench: Bench, remote: Path, ticks: int, interval: float) -> None:
    settings = LoopSettings(
        remote=str(remote),
        branch="main",
        state_dir=bench.tmp / "state",
        interval=interval,
        lock_dir=bench.tmp / "lock",
        events_path=bench.tmp / "events.jsonl",
    )
    loop = Reconciler(settings, driver=DockerDriver(bench.client), log=lambda _line: None)
    others = only_this_site(bench.site)
    loop._start_watch()
    before = cpu()
    started = time.perf_counter()
    loop.tick()  # the first tick: a full pass
    full_cpu, full_wall = cpu() - before, time.perf_counter() - started
    assert loop.state.commit is not None and not loop.state.held, loop.state
    assert loop.state.last_error is None, loop.state.last_error
    applied = [line for line in settings.events_path.read_text().splitlines() if "applied" in line]
    assert not applied, "the bench repo was not converged"
    deadline = time.monotonic() + 10
    while loop.watch is not None and not loop.watch.watching and time.monotonic() < deadline:
        time.sleep(0.1)
    idle: list[float] = []
    busy: list[float] = []
    for _ in range(ticks):
        time.sleep(interval)
        full_before = loop.state.last_full_pass
        before = cpu()
        loop.tick()
        spent = cpu() - before
        (busy if loop.state.last_full_pass != full_before else idle).append(spent)
    if loop.watch is not None:
        loop.watch.stop()
    print(f"(the watch ignored {others[0]} engine event(s) of other test runs' containers)")
    loop.events.close()
    idle_cpu = statistics.median(idle) if idle else float("nan")
    share = idle_cpu / PERIOD + full_cpu / FULL_EVERY
    print(
        f"full pass ({len(bench.container_ids())} workspaces, nothing to do): "
        f"{full_cpu * 1000:.0f} ms CPU, {full_wall:.2f} s wall"
    )
    print(
        f"idle tick (git fetch, no event): median {idle_cpu * 1000:.1f} ms CPU over "
        f"{len(idle)} ticks at a {interval:g} s interval"
        + (f"; {len(busy)} tick(s) planned in full after engine events of others" if busy else "")
    )
    print(
        f"daemon CPU share at a {PERIOD:g} s interval: {share * 100:.3f} % of a core "
        f"(idle tick / {PERIOD:g} s + full pass / {FULL_EVERY:g} s; goal < {GOAL * 100:g} %: "
        f"{'met' if share < GOAL else 'NOT met'})"
    )
    print(f"  for comparison, a full plan every tick: {full_cpu / PERIOD * 100:.2f} % of a core")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workspaces", type=int, default=300)
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    token = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="ds01ctl-bench-"))
    bench = Bench(tmp, connect(timeout=300), f"bench-{token}", token)
    try:
        setup(bench, args.workspaces)
        measure(bench, push(bench), args.ticks, args.interval)
    finally:
        if args.keep:
            print(f"kept: site {bench.site}, {tmp}")
        else:
            cleanup(bench)
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
