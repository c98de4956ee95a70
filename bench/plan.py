"""Benchmark: a no-op `ds01ctl plan` over N managed workspaces on the real Docker engine.

Setup (not timed): a throw-away config repo with a unique site `bench-<hex>` (30 users with
pinned uids, CPU-only Pytorch workspaces with cpus 0.1 and memory 64m, power pinned to
running), one plan, every container created and started with the apply driver, a few plain
unlabelled containers made by hand (--foreign; one asks for a GPU by UUID: any of them may
hold one, so a plan inspects them too), and a check that the next plan is empty.

Timed, in this one process (medians of 3, or --runs): loading the manifests on its own line, then
`make_plan` from the already-loaded repo plus the human rendering, split into phases by
wrapping the functions make_plan calls (observe, resolve, diff; `other` is the rest), next to
(a) the floor, the bare low-level list + inspect of every container on the engine (ours, the
foreign ones, whatever else runs there) with a plain docker-py client, interleaved with the
plan runs, and (b) DS01's way, one `docker inspect` process per container of this site (one
run: it is slow). Also: the API requests of one plan (as
Observed counts them and as HTTP requests on the wire) and the wall time of a whole
`python -m ds01ctl plan` process. Goal: plan ≤ 1.3× the floor.

Then a `docker update` made outside ds01ctl must show in the very next plan (no caching).
Everything this run made is removed at the end unless --keep.

    python bench/plan.py [--workspaces 300] [--foreign 30] [--runs 3] [--keep] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import functools
import importlib
import math
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml

from ds01ctl.drivers.docker import DockerDriver
from ds01ctl.drivers.docker import containers as driver
from ds01ctl.live.docker import connect
from ds01ctl.manifests.validate import ConfigRepo, validate_path
from ds01ctl.model.spec import ContainerSpec
from ds01ctl.plan import render_human, render_json
from ds01ctl.plan.actions import ActionKind
from ds01ctl.workflow import PlanResult, make_plan

REPO_ROOT = Path(__file__).resolve().parents[1]
GPU_FIXTURE = REPO_ROOT / "examples" / "gpus" / "h100-80gb.yaml"
USERS = 30
RUNS = 3
GOAL = 1.3
THREADS = 4
UID_BASE = 62000  # pinned uids; the per-user account images are reused across runs


# --- the throw-away config repo ----------------------------------------------------------


def site_yaml(site: str, tmp: Path, users: Iterable[str]) -> str:
    pins = "".join(
        f"    {login}: {{uid: {UID_BASE + i}, gid: {UID_BASE + i}}}\n"
        for i, login in enumerate(users)
    )
    return f"""\
apiVersion: ds01/v1
kind: Site
metadata: {{name: {site}}}
spec:
  state_dir: {tmp}/state
  gpus: {{source: fixture, fixture: ../gpus.yaml}}
  catalog: {{architecture: CUDA_ADA}}
  image_mirrors:
    - {{prefix: aimehub/pytorch-2.7.1-cuda12.6.3, replacement: "ds01ctl-local/pytorch:2.7.1"}}
    - {{prefix: aimehub/tensorflow-2.16.1-cuda12.3, replacement: "ds01ctl-local/tensorflow:2.16.1"}}
  container_defaults: {{shm_size: 64m, stop_grace_period: 2s}}
  mount_policy:
    - path: {tmp}/mounts/{{owner}}/**
  default_workspace_mount: {tmp}/mounts/{{owner}}/workspace
  users:
{pins}"""


def quota_yaml(per_user: int) -> str:
    return f"""\
apiVersion: ds01/v1
kind: QuotaPolicy
metadata: {{name: bench}}
spec:
  default_group: users
  defaults: {{cpus: 1, memory: 64m, memory_swap: 64m, shm_size: 64m, pids: 256,
             gpu_budget: 0, max_workspaces: {per_user}}}
  groups:
    users: {{members: []}}
"""


def workspace_yaml(name: str) -> str:
    document = {
        "apiVersion": "ds01/v1",
        "kind": "Workspace",
        "metadata": {"name": name},
        "spec": {
            "framework": {"name": "Pytorch", "version": "2.7.1"},
            "cpus": 0.1,
            "memory": "64m",
            "power": "running",
        },
    }
    return yaml.safe_dump(document, sort_keys=False)


@dataclass
class Bench:
    """What this run made: removed by `cleanup` unless --keep."""

    tmp: Path
    client: Any  # docker.APIClient
    site: str
    token: str
    made_tags: set[str] = field(default_factory=set)
    made_networks: set[str] = field(default_factory=set)
    made_containers: list[str] = field(default_factory=list)  # foreign: no site label
    bare: Any = field(default_factory=lambda: docker.APIClient(**docker.utils.kwargs_from_env()))
    # ↑ a plain client for the floor: what a bare script gets, whatever `connect` does

    @property
    def root(self) -> Path:
        return self.tmp / "config"

    @property
    def label(self) -> str:
        return f"ds01.site={self.site}"

    def container_ids(self) -> list[str]:
        found = self.client.containers(all=True, filters={"label": self.label})
        return sorted(entry["Id"] for entry in found)


def write_repo(bench: Bench, workspaces: int) -> tuple[int, int]:
    """The config repo for `workspaces` spread over at most USERS users; (users, per user)."""
    users = [f"bench-u{i:02d}" for i in range(min(USERS, workspaces))]
    per_user = math.ceil(workspaces / len(users))
    bench.root.mkdir(parents=True)
    shutil.copy(GPU_FIXTURE, bench.tmp / "gpus.yaml")  # beside the repo, not in it
    (bench.root / "site.yaml").write_text(site_yaml(bench.site, bench.tmp, users))
    (bench.root / "quota.yaml").write_text(quota_yaml(per_user))
    for n in range(workspaces):
        owner = users[n % len(users)]
        folder = bench.root / "users" / owner
        folder.mkdir(parents=True, exist_ok=True)
        name = f"w{n // len(users):02d}-{bench.token}"
        (folder / f"{name}.yaml").write_text(workspace_yaml(name))
    return len(users), per_user


def create_all(bench: Bench, specs: list[ContainerSpec]) -> None:
    """Create and start every container as apply does; one account image per user first, so
    that parallel workers never prepare the same one twice."""
    bench.made_tags.update(s.image_tag for s in specs)
    for network in sorted({s.network for s in specs}):  # the site network, as apply makes it
        if driver.ensure_network(bench.client, network, site=bench.site, inter_container=False):
            bench.made_networks.add(network)
    first = {s.account.login: s for s in reversed(specs)}
    for spec in first.values():
        driver.prepare_image(bench.client, spec)

    def make(spec: ContainerSpec) -> None:
        driver.prepare_image(bench.client, spec)
        driver.start(bench.client, driver.create(bench.client, spec))

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(make, specs))


def create_foreign(bench: Bench, count: int) -> None:
    """Plain containers made by hand, unlabelled (created, not started); the first asks for
    the fixture's GPU by UUID, as `docker create --gpus device=<uuid>` does."""
    gpu = yaml.safe_load(GPU_FIXTURE.read_text())["gpus"][0]["uuid"]
    for n in range(count):
        host = None
        if n == 0:
            request = docker.types.DeviceRequest(device_ids=[gpu], capabilities=[["gpu"]])
            host = bench.client.create_host_config(device_requests=[request])
        made = bench.client.create_container(
            "ds01ctl-local/base:latest",
            ["true"],
            name=f"bench-foreign-{bench.token}-{n:02d}",
            host_config=host,
        )
        bench.made_containers.append(made["Id"])


def setup(bench: Bench, workspaces: int, foreign: int = 0) -> None:
    users, per_user = write_repo(bench, workspaces)
    print(f"setup: site {bench.site}, {workspaces} workspaces ({users} users × ≤{per_user})")
    started = time.perf_counter()
    plan = make_plan(bench.root, driver=DockerDriver(bench.client)).plan
    specs = [
        a.container for a in plan.actions if a.kind is ActionKind.CREATE and a.container is not None
    ]
    assert len(plan.actions) == len(specs) == workspaces, plan.debug_text()
    create_all(bench, specs)
    create_foreign(bench, foreign)
    again = make_plan(bench.root, driver=DockerDriver(bench.client)).plan
    assert again.actions == () and again.drift == (), again.debug_text()
    print(
        f"setup: created and started {workspaces} containers, {foreign} foreign, in "
        f"{seconds(started)}; plan empty"
    )


def cleanup(bench: Bench) -> None:
    ids = bench.container_ids() + bench.made_containers
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda c: bench.client.remove_container(c, force=True), ids))
    for tag in sorted(bench.made_tags):
        with suppress(docker.errors.APIError):
            bench.client.remove_image(tag)
    for network in sorted(bench.made_networks):
        with suppress(docker.errors.APIError):
            bench.client.remove_network(network)
    shutil.rmtree(bench.tmp, ignore_errors=True)
    print(f"cleanup: removed {len(ids)} containers, {len(bench.made_tags)} tags, the temp dir")


# --- the plan, phase by phase --------------------------------------------------------------

# What make_plan calls, timed by wrapping: it imports them from their modules at each call.
TIMED_CALLS = {
    "observe": ("ds01ctl.live.docker", "observe_docker"),
    "resolve": ("ds01ctl.resolve.desired", "resolve"),
    "diff": ("ds01ctl.plan.diff", "diff"),
}


@dataclass
class Phases:
    """One plan from the loaded repo: `other` is the rest of make_plan (GPU inventory,
    accounts, ledger, image check, git commit, meta)."""

    observe: float
    resolve: float
    diff: float
    other: float
    render: float
    result: PlanResult

    @property
    def total(self) -> float:
        return self.observe + self.resolve + self.diff + self.other + self.render


@contextmanager
def phase_timers() -> Iterator[dict[str, float]]:
    """Seconds spent in each of TIMED_CALLS while the block runs."""
    spent = dict.fromkeys(TIMED_CALLS, 0.0)
    originals = []
    for phase, (module_name, name) in TIMED_CALLS.items():
        module = importlib.import_module(module_name)
        original = getattr(module, name)
        originals.append((module, name, original))
        setattr(module, name, timing(original, spent, phase))
    try:
        yield spent
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


def timing(fn: Callable[..., Any], spent: dict[str, float], phase: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def timed_fn(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[phase] += time.perf_counter() - start

    return timed_fn


def plan_phases(repo: ConfigRepo, client: Any) -> Phases:
    """What `ds01ctl plan` does after loading: make_plan, then the human rendering."""
    with phase_timers() as spent:
        start = time.perf_counter()
        result = make_plan(repo.root, driver=DockerDriver(client), repo=repo)
        planned = time.perf_counter()
        render_human.render(render_json.plan_document(result.plan), colour=False)
        rendered = time.perf_counter()
    assert all(spent.values()), f"make_plan no longer calls each of {list(TIMED_CALLS)}: {spent}"
    other = planned - start - sum(spent.values())
    return Phases(**spent, other=other, render=rendered - planned, result=result)


# --- what the plan is measured against -----------------------------------------------------


def floor(bench: Bench) -> None:
    """(a) The least any plan must do: one list, one inspect per container on the engine (any
    of them may hold a GPU, and only inspect shows how), with a plain docker-py client (not
    ds01ctl's `connect`), as a bare script would."""
    for entry in bench.bare.containers(all=True):
        with suppress(docker.errors.NotFound):  # another user's container, gone since
            bench.bare.inspect_container(entry["Id"])


def ds01_loop(ids: list[str]) -> None:
    """(b) DS01's way: one `docker inspect` process per container."""
    for container in ids:
        subprocess.run(["docker", "inspect", container], capture_output=True, check=True)


def plan_process(bench: Bench) -> None:
    """The whole `ds01ctl plan` command: interpreter start, imports, connect, load, plan."""
    done = subprocess.run(
        [sys.executable, "-m", "ds01ctl", "plan", str(bench.root)],
        cwd=bench.tmp,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@contextmanager
def counting_http(client: Any) -> Iterator[list[float]]:
    """The duration of each HTTP request `client` sends (docker-py's APIClient is a requests
    Session, so every call goes through its `request`)."""
    durations: list[float] = []
    original = client.request

    def request(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - start)

    client.request = request
    try:
        yield durations
    finally:
        del client.request  # the instance attribute goes, the class's method is back


def check_no_caching(bench: Bench, repo: ConfigRepo) -> None:
    """A `docker update` made outside ds01ctl between two plans shows in the second."""
    container = bench.container_ids()[0]
    url = bench.client._url("/containers/{0}/update", container)
    body = {"Memory": 96 * 1024**2, "MemorySwap": 96 * 1024**2}
    bench.client._raise_for_status(bench.client._post_json(url, data=body))
    plan = plan_phases(repo, bench.client).result.plan
    assert [a.kind for a in plan.actions] == [ActionKind.UPDATE], plan.debug_text()
    print("no caching: ok (a docker update between two runs shows as 1 update action)")


# --- timing and the report -----------------------------------------------------------------


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def seconds(start: float) -> str:
    return f"{time.perf_counter() - start:.1f} s"


def ms(value: float) -> str:
    return f"{value * 1000:,.0f} ms"


def row(name: str, times: list[float], note: str = "") -> str:
    runs = ", ".join(f"{t * 1000:.0f}" for t in times)
    return f"{name:<32} {ms(statistics.median(times)):>9}   {note:<42} {runs}"


@dataclass
class Results:
    load: list[float]
    phases: list[Phases]
    floor: list[float]
    ds01: list[float]
    process: list[float]
    containers: int
    http_plan: list[float]
    http_floor: list[float]
    counted: PlanResult


def measure(bench: Bench, repo: ConfigRepo, runs: int) -> Results:
    client = bench.client
    today = dt.datetime.now(dt.UTC).date()
    load = timed(lambda: validate_path(bench.root, today=today), runs)
    phases, base = [], []
    for _ in range(runs):  # interleaved: the engine is shared, its load drifts
        phases.append(plan_phases(repo, client))
        assert phases[-1].result.plan.actions == (), phases[-1].result.plan.debug_text()
        base += timed(lambda: floor(bench), runs=1)
    ids = bench.container_ids()
    ds01 = timed(lambda: ds01_loop(ids), runs=1)
    process = timed(lambda: plan_process(bench), runs)
    with counting_http(client) as http_plan:
        counted = plan_phases(repo, client).result
    with counting_http(bench.bare) as http_floor:
        floor(bench)
    return Results(load, phases, base, ds01, process, len(ids), http_plan, http_floor, counted)


def report(r: Results) -> None:
    def phase(name: str) -> list[float]:
        return [getattr(p, name) for p in r.phases]

    total = phase("total")
    print()
    print(f"{'':<32} {'median':>9}   {'':<42} runs (ms)")
    print(row("load (validate_path)", r.load, "timed on its own"))
    print(row("  observe", phase("observe"), "info, list, inspects, images"))
    print(row("  resolve", phase("resolve"), "quota, images, GPUs, specs"))
    print(row("  diff", phase("diff"), "field table, GPU rows"))
    print(row("  other", phase("other"), "GPUs, accounts, ledger, images, git, meta"))
    print(row("  render", phase("render"), "JSON document + human text"))
    print(row("plan (observe..render)", total, "manifests already loaded"))
    print(row("(a) floor: list + inspect each", r.floor, "every container on the engine"))
    print(row("(b) DS01: docker inspect × N", r.ds01, f"one run, {r.containers} of this site"))
    print(row("ds01ctl plan process (wall)", r.process, "python -m ds01ctl plan"))
    print()
    state = r.counted.observed
    print(
        f"API requests of one plan: {state.requests} (Observed), {len(r.http_plan)} HTTP "
        f"(slowest {ms(max(r.http_plan))}); floor: {len(r.http_floor)} HTTP "
        f"(slowest {ms(max(r.http_floor))})"
    )
    print(
        f"the engine holds {len(state.containers)} containers, {len(state.ours())} of this site, "
        f"{sum(c.config is not None for c in state.containers)} inspected by the plan"
    )
    ratio = statistics.median(total) / statistics.median(r.floor)
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"plan / floor = {ratio:.2f}× (goal ≤ {GOAL}×: {verdict})")
    load = os.getloadavg()[0]
    print(f"host: {os.cpu_count()} CPUs, load average {load:.1f} (a busy host makes this noisy)")


def profile_plan(bench: Bench) -> None:
    """cProfile of one plan from the loaded repo: the top 15 by cumulative time."""
    repo = validate_path(bench.root, today=dt.datetime.now(dt.UTC).date())
    profiler = cProfile.Profile()
    profiler.runcall(plan_phases, repo, bench.client)
    print()
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workspaces", type=int, default=300, help="managed workspaces")
    parser.add_argument("--foreign", type=int, default=30, help="plain unlabelled containers")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per median")
    parser.add_argument("--keep", action="store_true", help="keep the containers and the repo")
    parser.add_argument("--profile", action="store_true", help="cProfile one plan, top 15")
    args = parser.parse_args(argv)
    if args.workspaces < 1 or args.runs < 1 or args.foreign < 0:
        parser.error("--workspaces and --runs must be at least 1, --foreign at least 0")
    token = uuid.uuid4().hex[:8]
    bench = Bench(
        Path(tempfile.mkdtemp(prefix="ds01ctl-bench-")), connect(), f"bench-{token}", token
    )
    try:
        setup(bench, args.workspaces, args.foreign)
        repo = validate_path(bench.root, today=dt.datetime.now(dt.UTC).date())
        report(measure(bench, repo, args.runs))
        check_no_caching(bench, repo)
        if args.profile:
            profile_plan(bench)
    finally:
        if args.keep:
            print(f"kept: site {bench.site}, config repo {bench.root}")
        else:
            cleanup(bench)
    return 0


if __name__ == "__main__":
    sys.exit(main())
