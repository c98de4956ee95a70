"""Benchmark: what 50 up-to-date Images add to a no-op plan, on the real Docker engine.

Setup (not timed): bench/plan.py's throw-away config repo (--workspaces managed CPU-only
workspaces over up to 30 users, created and started), then --images Images spread over the
same users (the cached Debian base of scripts/debian-root, one pip package from a small local
wheelhouse, the user baked in), each built once through the driver, as apply builds them
(network none): about 10 min on 2 busy cores, 30 users each with their own venv layer.

Timed, in this one process (medians of --runs), each plan from the already-loaded repo plus
the human rendering: the same repo without its Images and with them; the goal is no build
call (the Images are up to date) and ≤ 1.2× the plan without them. Also: the hash cost per
Image (the generator and the content hash, as resolve runs them), and the time of a no-change
rebuild request through the engine (every layer cached), which is what a plan saves by not
asking. Everything this run made is removed at the end unless --keep.

    python bench/images.py [--images 50] [--workspaces 50] [--runs 5] [--keep]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import statistics
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import docker
import yaml
from plan import Bench, cleanup, ms, setup  # bench/plan.py: a script's folder is on sys.path

from ds01ctl.drivers.docker import DockerDriver
from ds01ctl.live.docker import connect
from ds01ctl.manifests.validate import validate_path
from ds01ctl.model.imagebuild import ImageBuildSpec
from ds01ctl.plan import render_human, render_json
from ds01ctl.plan.builds import build_labels
from ds01ctl.resolve import imagebuilds
from ds01ctl.resolve.desired import World
from ds01ctl.workflow import gpu_inventory, image_inputs, make_plan

GOAL = 1.2


class CountingDriver(DockerDriver):
    """The Docker driver, counting build calls (a no-change plan must make none)."""

    builds = 0

    def build_image(
        self,
        spec: ImageBuildSpec,
        *,
        labels: Mapping[str, str],
        log: Path | None,
        progress: Callable[[str], None] | None = None,
    ) -> str:
        CountingDriver.builds += 1
        return super().build_image(spec, labels=labels, log=log, progress=progress)


def wheel(folder: Path) -> None:
    name, version = "benchpkg", "1.0"
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"VALUE = 1\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [
        f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},"
        f"{len(d)}"
        for p, d in files.items()
    ]
    files[f"{dist}/RECORD"] = ("\n".join([*record, f"{dist}/RECORD,,"]) + "\n").encode()
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), data)


def site_images(bench: Bench) -> None:
    """The Site's wheelhouse (one small wheel) and build policy (no network)."""
    wheels = bench.tmp / "wheels"
    wheels.mkdir()
    wheel(wheels)
    site = yaml.safe_load((bench.root / "site.yaml").read_text())
    site["spec"]["images"] = {"wheelhouse": str(wheels), "build_network": "none"}
    site["spec"]["allowed_images"] = ["ds01ctl-local/debian:*"]  # scripts/debian-root
    (bench.root / "site.yaml").write_text(yaml.safe_dump(site, sort_keys=False))


def add_images(bench: Bench, count: int) -> None:
    """`count` Images over the repo's users."""
    users = sorted(p.name for p in (bench.root / "users").iterdir())
    for n in range(count):
        owner = users[n % len(users)]
        document = {
            "apiVersion": "ds01/v1",
            "kind": "Image",
            "metadata": {"name": f"img{n:02d}-{bench.token}"},
            "spec": {
                "base": {"image": "ds01ctl-local/debian:bookworm"},
                "pip_packages": ["benchpkg==1.0"],
                "env": {"IMAGE_NUMBER": str(n)},
            },
        }
        path = bench.root / "users" / owner / f"img{n:02d}-{bench.token}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))


def remove_images(bench: Bench) -> None:
    for path in (bench.root / "users").glob(f"*/img*-{bench.token}.yaml"):
        path.unlink()


def timed_plans(root: Path, driver: DockerDriver, runs: int) -> tuple[float, object]:
    repo = validate_path(root, today=dt.date.today())
    times, plan = [], None
    for _ in range(runs):
        started = time.perf_counter()
        plan = make_plan(root, driver=driver, repo=repo).plan
        render_human.render(render_json.plan_document(plan))
        times.append(time.perf_counter() - started)
    return statistics.median(times), plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    client = connect()
    token = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="ds01ctl-bench-images-"))
    bench = Bench(tmp, client, f"bench-{token}", token)
    driver = CountingDriver(client)
    try:
        setup(bench, args.workspaces)
        site_images(bench)
        add_images(bench, args.images)
        started = time.perf_counter()
        first = make_plan(bench.root, driver=driver).plan
        builds = [a.spec for a in first.actions if isinstance(a.spec, ImageBuildSpec)]
        assert len(builds) == len(first.actions) == args.images, first.debug_text()

        def build(spec: ImageBuildSpec) -> str:
            return driver.build_image(spec, labels=build_labels(spec), log=None)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(build, builds))
        print(f"setup: built {len(builds)} Images in {time.perf_counter() - started:.1f} s")

        CountingDriver.builds = 0
        with_images, plan = timed_plans(bench.root, driver, args.runs)
        assert plan.actions == (), plan.debug_text()  # type: ignore[attr-defined]
        assert CountingDriver.builds == 0
        remove_images(bench)
        without, plan = timed_plans(bench.root, driver, args.runs)
        assert plan.actions == (), plan.debug_text()  # type: ignore[attr-defined]
        add_images(bench, args.images)  # back, for the hash cost below
        ratio = with_images / without
        print(
            f"plan, {args.workspaces} workspaces, no Images:     {ms(without)} "
            f"(median of {args.runs})"
        )
        print(
            f"plan, same + {args.images} up-to-date Images: {ms(with_images)} = {ratio:.2f}× "
            f"(goal ≤ {GOAL}×: {'met' if ratio <= GOAL else 'NOT met'}); build calls: "
            f"{CountingDriver.builds}"
        )
        hash_cost(bench, args)
        rebuild = []
        for _ in range(3):
            t = time.perf_counter()
            build(builds[0])
            rebuild.append(time.perf_counter() - t)
        print(
            f"no-change rebuild request through the engine (all layers cached): "
            f"{ms(statistics.median(rebuild))} per Image (median of 3)"
        )
    finally:
        if not args.keep:
            for image in client.images(filters={"label": f"ds01.image.site={bench.site}"}):
                for tag in image.get("RepoTags") or [image["Id"]]:
                    with suppress(docker.errors.APIError):
                        client.remove_image(tag, force=True)
            cleanup(bench)
    return 0


def hash_cost(bench: Bench, args: argparse.Namespace) -> None:
    """The generator and the content hash of every Image, as resolve runs them (a fresh World
    each run: one plan resolves its Images once)."""
    repo = validate_path(bench.root, today=dt.date.today())
    assert repo.site is not None and repo.catalog is not None
    sources, requirements = image_inputs(repo)
    observed = DockerDriver(bench.client).observe(bench.site)
    inventory = gpu_inventory(repo)
    times = []
    for _ in range(args.runs):
        now = dt.datetime.now(dt.UTC)
        world = World(
            observed,
            inventory,
            {},
            now,
            build_sources=sources,
            image_requirements=requirements,
        )
        t = time.perf_counter()
        found = imagebuilds.image_builds(repo, repo.site, world, repo.catalog)
        times.append(time.perf_counter() - t)
        assert len(found) == args.images
    per = statistics.median(times) / args.images
    print(f"hash cost per Image (generate + content hash): {per * 1e6:,.0f} µs")


if __name__ == "__main__":
    raise SystemExit(main())
