"""Benchmark: choosing an endpoint's recipe over a catalogue of 1,000 recipes.

Pure and in-process (no Docker, no GPU): a catalogue generated from the shipped recipes'
shapes (50 model families × every SKU, MIG profile, precision, TP size and metric, plus
maturity levels and older versions, 1,000 recipes in all), a site with A100-40GB (whole and
MIG), H100-80GB and MI300X, and 20 endpoints asking for different models and shapes. Timed:
`select` per endpoint, median of `--runs` passes over all 20 (goal < 20 ms per endpoint);
the catalogue's parse and schema check, once, is printed beside it, and the worst case:
one model with all 1,000 recipes. Beside it, the plan time of 20 endpoints with no change:
a config repo of 20 endpoints on that catalogue (a Site recipes_dir) and a host of 24 H100s,
their containers observed as apply made them, then `resolve` + `diff` (the pure plan: what an
endpoint adds to `ds01ctl plan`; the engine's part is bench/plan.py's), median of `--runs`.

    .venv/bin/python bench/recipe_select.py [--runs 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.observed, as tests use it

from ds01ctl.catalog.recipes import GPU_SLUG, RecipeCatalog, parse_recipes
from ds01ctl.resolve.recipes import Device, Request, select

SHAPES = [
    ("A100-40GB", None, (1, 2, 4)),
    ("A100-40GB", "3g.20gb", (1,)),
    ("A100-40GB", "2g.10gb", (1,)),
    ("A100-80GB", None, (1, 2, 4)),
    ("H100-80GB", None, (1, 2, 4, 8)),
    ("H100-80GB", "3g.40gb", (1,)),
    ("H200", None, (1, 2)),
    ("MI300X", None, (1, 2, 8)),
]
TYPES = ("optimized", "preview", "unoptimized")


def generate(total: int = 1000, families: int = 50) -> str:
    docs = []
    combos = itertools.cycle(
        (sku, mig, n, precision, metric)
        for sku, mig, counts in SHAPES
        for n in counts
        for precision in ("bf16", "fp8", "int4")
        for metric in ("latency", "throughput")
    )
    for index in range(total):
        sku, mig, count, precision, metric = next(combos)
        family = f"org/model-{index % families}"
        gpu = GPU_SLUG[sku] + (f"-mig{mig}" if mig else "")
        docs.append(
            {
                "id": f"vllm-{gpu}-{precision}-tp{count}-{metric}",
                "version": 1 + index // 700,  # some recipes have an older version
                "model": {"family": family, "id": family},
                "engine": "vllm",
                "engine_version": "0.10.2",
                "image": "vllm/vllm-openai:v0.10.2",
                "gpu": sku,
                "mig": mig,
                "count": count,
                "precision": precision,
                "metric": metric,
                "type": TYPES[index % 3],
                "min_vram_gib": 8,
                "engine_args": {"max-model-len": 8192, "gpu-memory-utilization": 0.9},
            }
        )
    return "---\n".join(yaml.safe_dump(d) for d in docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    text = generate()
    started = time.perf_counter()
    catalog = RecipeCatalog(parse_recipes(text, "generated.yaml", "shipped"))
    load_ms = (time.perf_counter() - started) * 1000
    devices = [
        Device("A100-40GB", 2, 40960),
        Device("A100-40GB", 2, 19968, mig="3g.20gb"),
        Device("H100-80GB", 4, 81559),
        Device("MI300X", 8, 196592),
    ]
    requests = [
        Request(
            f"org/model-{i * 2}",
            precision=("auto", "bf16", "fp8")[i % 3],
            metric=("latency", "throughput")[i % 2],
            min_type=("optimized", "preview", "unoptimized")[i % 3],
            count=(1, 2, 4)[i % 3] if i % 5 else 1,
            mig="3g.20gb" if i % 5 == 0 else None,
        )
        for i in range(20)
    ]
    passes = []
    outcomes = {"chosen": 0, "no recipe": 0, "ambiguous": 0}
    for run in range(args.runs):
        started = time.perf_counter()
        results = [select(r, catalog, devices) for r in requests]
        passes.append((time.perf_counter() - started) * 1000 / len(requests))
        if run == 0:
            for result in results:
                if result.chosen is not None:
                    outcomes["chosen"] += 1
                elif (result.error or "").startswith("ambiguous"):
                    outcomes["ambiguous"] += 1
                else:
                    outcomes["no recipe"] += 1
    per = statistics.median(passes)
    print(f"catalogue: {len(catalog.recipes)} recipes, parsed and checked in {load_ms:.0f} ms")
    print(f"endpoints: {len(requests)} ({', '.join(f'{k} {v}' for k, v in outcomes.items())})")
    print(
        f"select: median {per:.2f} ms per endpoint over {args.runs} passes "
        f"(min {min(passes):.2f}, max {max(passes):.2f}); goal < 20 ms: "
        f"{'met' if per < 20 else 'MISSED'}"
    )
    # Worst case: one model with all 1,000 recipes (the index by family no longer helps).
    one = RecipeCatalog(parse_recipes(generate(families=1), "one.yaml", "shipped"))
    worst = []
    for _ in range(args.runs):
        started = time.perf_counter()
        result = select(Request("org/model-0", min_type="unoptimized"), one, devices)
        worst.append((time.perf_counter() - started) * 1000)
    print(
        f"worst case, one model with {len(one.recipes)} recipes: median "
        f"{statistics.median(worst):.2f} ms ({len(result.rejected)} rejections explained)"
    )

    plan_ms, planned, pending = endpoint_plan_ms(args.runs)
    print(
        f"plan of 20 endpoints with no change (resolve + diff, {planned} running, "
        f"{pending} pending): median {plan_ms:.1f} ms, {plan_ms / 20:.2f} ms per endpoint"
    )


def _fixture(gpus: int) -> str:
    rows = [
        f"  - {{uuid: GPU-00000000-0000-4000-8000-{i:012d}, index: {i}, "
        f'name: NVIDIA H100 80GB HBM3, pci_bus_id: "0000:{i:02x}:00.0", memory_total_mib: 81559}}'
        for i in range(gpus)
    ]
    return "host: bench\ntaken_at: 2026-01-01T00:00:00Z\ngpus:\n" + "\n".join(rows) + "\n"


def endpoint_plan_ms(runs: int) -> tuple[float, int, int]:
    from ds01ctl.model.observed import EngineInfo, Observed
    from ds01ctl.plan.diff import diff
    from ds01ctl.resolve.desired import World, resolve
    from ds01ctl.resolve.endpoints import EndpointFacts
    from ds01ctl.workflow import gpu_inventory, load_repo
    from tests.observed import observed_container, observed_entry

    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp)
        (top / "gpus.yaml").write_text(_fixture(24))
        (top / "recipes").mkdir()
        (top / "recipes" / "generated.yaml").write_text(generate())
        root = top / "config"
        users = [f"user{i:02d}" for i in range(20)]
        pins = "".join(
            f"    {u}: {{uid: {50000 + i}, gid: {50000 + i}}}\n" for i, u in enumerate(users)
        )
        (root / "users").mkdir(parents=True)
        (root / "site.yaml").write_text(
            "apiVersion: ds01/v1\nkind: Site\nmetadata: {name: bench}\nspec:\n"
            "  gpus: {source: fixture, fixture: ../gpus.yaml}\n"
            f"  recipes_dir: {top / 'recipes'}\n  model_cache: /srv/models\n  users:\n{pins}"
        )
        (root / "quota.yaml").write_text(
            "apiVersion: ds01/v1\nkind: QuotaPolicy\nmetadata: {name: bench}\nspec:\n"
            "  default_group: bench\n"
            "  defaults: {gpu_budget: 4, max_gpus_per_container: 4, max_endpoints: 1}\n"
            f"  groups: {{bench: {{members: [{', '.join(users)}]}}}}\n"
        )
        for i, user in enumerate(users):
            (root / "users" / user).mkdir()
            (root / "users" / user / "ep.yaml").write_text(
                "apiVersion: ds01/v1\nkind: Endpoint\nmetadata: {name: chat}\nspec:\n"
                f"  model: {{id: org/model-{i * 2}}}\n"
                "  recipe: {select: {min_type: unoptimized}}\n"
            )
        now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
        repo = load_repo(root, now.date())
        assert repo.catalog is not None
        engine = EngineInfo("bench", "bench", "27.0", "1.47", 64, 512 * 1024**3)
        facts = EndpointFacts(cached={f"org/model-{i * 2}": ("r1",) for i in range(20)})
        inventory = gpu_inventory(repo)
        empty = World(Observed(engine, (), {}), inventory, {}, now, endpoint_facts=facts)
        made = resolve(repo, empty, repo.catalog)
        containers = tuple(
            observed_container(observed_entry(s, id=f"{n:064x}", state="running"), "bench")
            for n, s in enumerate(made.specs)
        )
        world = World(Observed(engine, containers, {}), inventory, {}, now, endpoint_facts=facts)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            desired = resolve(repo, world, repo.catalog)
            plan = diff(desired, world.observed, inventory, prune=False)
            times.append((time.perf_counter() - started) * 1000)
            assert not plan.actions, plan.debug_text()
        return statistics.median(times), len(made.specs), len(made.pending)


if __name__ == "__main__":
    main()
