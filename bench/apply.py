"""Benchmark: `ds01ctl apply` of N new workspaces for U users on the real Docker engine.

Next to it, in the same run, a sequential script making the same Docker calls through the
raw SDK (per (image, uid): an account-setup container committed to an image; per workspace:
tag, create, start). That is what a careful imperative script does; apply runs independent
actions in parallel and journals each one (intent + result, fsync'd). Goal: apply ≥ 1.5×
faster than the script, journal included.

    python bench/apply.py [--workspaces 50] [--users 10] [--parallelism 4]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

import docker
import yaml

from ds01ctl.apply.executor import NullReporter
from ds01ctl.drivers.docker import DockerDriver
from ds01ctl.drivers.docker.containers import _setup_script, user_image_tag
from ds01ctl.live.docker import connect
from ds01ctl.model.spec import ContainerSpec
from ds01ctl.resolve.images import with_default_tag
from ds01ctl.workflow import ApplySettings, apply_changes, make_plan

REPO_ROOT = Path(__file__).resolve().parents[1]
UID_BASE = 63000


def make_repo(root: Path, site: str, workspaces: int, users: int) -> None:
    root.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "examples/gpus/h100-80gb.yaml", root.parent / "gpus.yaml")
    pins = {f"bu{u:02d}": {"uid": UID_BASE + u, "gid": UID_BASE + u} for u in range(users)}
    site_doc = {
        "apiVersion": "ds01/v1",
        "kind": "Site",
        "metadata": {"name": site},
        "spec": {
            "gpus": {"source": "fixture", "fixture": "../gpus.yaml"},
            "catalog": {"architecture": "CUDA_ADA"},
            "image_mirrors": [
                {
                    "prefix": "aimehub/pytorch-2.7.1-cuda12.6.3",
                    "replacement": "ds01ctl-local/pytorch:2.7.1",
                }
            ],
            "container_defaults": {"shm_size": "64m", "stop_grace_period": "1s"},
            "mount_policy": [{"path": f"/tmp/{site}/{{owner}}/**"}],
            "default_workspace_mount": f"/tmp/{site}/{{owner}}/workspace",
            "users": pins,
        },
    }
    quota = {
        "apiVersion": "ds01/v1",
        "kind": "QuotaPolicy",
        "metadata": {"name": site},
        "spec": {
            "default_group": "all",
            "groups": {"all": {}},
            "defaults": {"cpus": 1, "memory": "256m", "max_workspaces": workspaces},
        },
    }
    (root / "site.yaml").write_text(yaml.safe_dump(site_doc))
    (root / "quota.yaml").write_text(yaml.safe_dump(quota))
    for n in range(workspaces):
        owner = f"bu{n % users:02d}"
        doc = {
            "apiVersion": "ds01/v1",
            "kind": "Workspace",
            "metadata": {"name": f"b{n:03d}-{site[-8:]}", "owner": owner},
            "spec": {
                "framework": {"name": "Pytorch", "version": "2.7.1"},
                "cpus": 0.1,
                "memory": "64m",
                "power": "running",
            },
        }
        (root / f"w{n:03d}.yaml").write_text(yaml.safe_dump(doc))


def sequential_script(client: docker.APIClient, specs: list[ContainerSpec]) -> None:
    """The same Docker calls, one after another, through the raw SDK."""
    prepared: dict[tuple[str, int], str] = {}
    for spec in specs:
        key = (spec.image, spec.account.uid)
        if key not in prepared:
            base = client.inspect_image(with_default_tag(spec.image))
            helper = client.create_container(
                base["Id"],
                command=["/bin/sh", "-c", _setup_script(spec.account)],
                user="0:0",
                host_config=client.create_host_config(network_mode="none"),
            )
            client.start(helper)
            client.wait(helper)
            tag = user_image_tag(base["Id"], spec.image, spec.account)
            repo, _, name = tag.rpartition(":")
            prepared[key] = client.commit(helper, repository=repo, tag=name)["Id"]
            client.remove_container(helper, force=True)
        repo, _, name = spec.image_tag.rpartition(":")
        client.tag(prepared[key], repo, name)
        container = client.create_container(
            spec.image_tag,
            command=list(spec.command),
            name=spec.container_name,
            user=spec.user,
            working_dir=spec.working_dir,
            tty=True,
            stdin_open=True,
            labels=spec.label_map,
            stop_signal=spec.stop_signal,
            host_config=client.create_host_config(
                binds=[b.text for b in spec.binds],
                nano_cpus=spec.nano_cpus,
                mem_limit=spec.memory,
                memswap_limit=spec.memory_swap,
                pids_limit=spec.pids,
                shm_size=spec.shm_size,
            ),
        )
        client.start(container)


def cleanup(client: docker.APIClient, site: str, specs: list[ContainerSpec]) -> None:
    for entry in client.containers(all=True, filters={"label": f"ds01.site={site}"}):
        client.remove_container(entry["Id"], force=True)
    for tag in {s.image_tag for s in specs}:
        with suppress(docker.errors.APIError):
            client.remove_image(tag)


def remove_user_images(client: docker.APIClient, specs: list[ContainerSpec]) -> None:
    base = client.inspect_image(with_default_tag(specs[0].image))["Id"]
    for account in {s.account for s in specs}:
        with suppress(docker.errors.APIError):
            client.remove_image(user_image_tag(base, specs[0].image, account))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--parallelism", type=int, default=4)
    args = parser.parse_args()
    client = connect()
    site = f"bench-apply-{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp())
    root = tmp / "config"
    make_repo(root, site, args.workspaces, args.users)
    specs: list[ContainerSpec] = []
    try:
        plan = make_plan(root, driver=DockerDriver(client)).plan
        specs = [a.container for a in plan.actions if a.container is not None]
        assert len(specs) == args.workspaces, plan.debug_text()
        started = time.perf_counter()
        sequential_script(client, specs)
        script_s = time.perf_counter() - started
        cleanup(client, site, specs)
        remove_user_images(client, specs)

        settings = ApplySettings(
            state_dir=tmp / "state", lock_dir=tmp / "lock", parallelism=args.parallelism
        )
        started = time.perf_counter()
        result = apply_changes(
            root,
            settings,
            confirm=lambda _plan: True,
            reporter=NullReporter(),
            driver=DockerDriver(client),
        )
        apply_s = time.perf_counter() - started
        assert result.outcome is not None and result.outcome.ok, result.outcome
        again = make_plan(root, driver=DockerDriver(client)).plan
        assert again.actions == (), again.debug_text()
        rows: list[tuple[str, Any]] = [
            ("workspaces / users", f"{args.workspaces} / {args.users}"),
            ("sequential raw-SDK script", f"{script_s:.2f} s"),
            (f"ds01ctl apply (parallelism {args.parallelism}, journal)", f"{apply_s:.2f} s"),
            ("speed-up", f"{script_s / apply_s:.2f}× (goal ≥ 1.5×)"),
            ("plan after apply", "empty"),
        ]
        width = max(len(r[0]) for r in rows)
        for label, value in rows:
            print(f"{label:<{width}}  {value}")
    finally:
        cleanup(client, site, specs)
        if specs:
            remove_user_images(client, specs)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(f"/tmp/{site}", ignore_errors=True)


if __name__ == "__main__":
    main()
