"""The imperative shell around the pure core: validate, observe, resolve, diff.

This is the only place that wires I/O (Docker, NVML or a fixture, passwd, git) to the
pure functions; commands in `cli.py` call one function here and render what it returns.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ds01ctl import __version__
from ds01ctl.errors import PlanRejected, ValidationFailed
from ds01ctl.live.inventory import GpuInventory
from ds01ctl.manifests import Workspace
from ds01ctl.manifests.validate import ConfigRepo, validate_path
from ds01ctl.plan.actions import Plan
from ds01ctl.resolve.images import with_default_tag

if TYPE_CHECKING:
    import docker

    from ds01ctl.live.docker import DockerState
    from ds01ctl.resolve.desired import Desired


@dataclass(frozen=True)
class PlanResult:
    repo: ConfigRepo
    plan: Plan
    desired: Desired
    docker: DockerState


def load_repo(path: Path, today: dt.date) -> ConfigRepo:
    repo = validate_path(path, today=today)
    if repo.errors:
        raise ValidationFailed(repo.diagnostics)
    return repo


def gpu_inventory(repo: ConfigRepo) -> GpuInventory:
    from ds01ctl.live.gpus import NvmlSource, load_inventory_file

    assert repo.site is not None
    source = repo.site.spec.gpus
    if source.source == "fixture":
        assert source.fixture is not None
        path = Path(source.fixture)
        return load_inventory_file(path if path.is_absolute() else Path(os.path.normpath(repo.root / path)))
    return NvmlSource().snapshot()


def make_plan(
    path: Path,
    *,
    prune: bool = False,
    client: docker.APIClient | None = None,
    now: dt.datetime | None = None,
) -> PlanResult:
    from ds01ctl.live.accounts import lookup_accounts
    from ds01ctl.live.docker import connect, observe_docker
    from ds01ctl.plan.diff import diff
    from ds01ctl.resolve.desired import World, resolve

    now = now or dt.datetime.now(dt.UTC)
    repo = load_repo(path, now.date())
    assert repo.site is not None and repo.catalog is not None
    client = client or connect()
    inventory = gpu_inventory(repo)
    state = observe_docker(client, repo.site.metadata.name)
    owners = {w.metadata.owner or "" for w, _ in repo.of(Workspace)}
    world = World(state, inventory, lookup_accounts(owners - set(repo.site.spec.users)), now.date())
    desired = resolve(repo, world, repo.catalog)
    problems = list(desired.errors) + _missing_images(desired, state, client)
    if problems:
        raise PlanRejected(problems)
    plan = diff(desired, state, inventory, prune=prune)
    meta = {
        "ds01ctl_version": __version__,
        "site": repo.site.metadata.name,
        "state_dir": repo.site.spec.state_dir,
        "engine_id": state.engine.id,
        "engine_version": state.engine.version,
        "observed_at": now.isoformat(),
        "gpu_source": inventory.source,
        "config_commit": _git_commit(repo.root),
        "prune": prune,
    }
    return PlanResult(repo, Plan(**{**plan.__dict__, "meta": meta}), desired, state)


def _missing_images(desired: Desired, state: DockerState, client: docker.APIClient) -> list[str]:
    """Images neither on this host nor pullable: a plan error, not an apply-time surprise."""
    from docker.errors import DockerException

    problems = []
    for reference in sorted({s.image for s in desired.specs}):
        if with_default_tag(reference) in state.images:
            continue
        try:
            client.inspect_distribution(reference)
        except DockerException as exc:
            reason = str(exc).splitlines()[0][:160]
            users = ", ".join(s.key for s in desired.specs if s.image == reference)
            problems.append(
                f"image {reference} (for {users}) is not on this host and cannot be pulled: "
                f"{reason}; build or load it, or map it to a local mirror in the Site's "
                "image_mirrors"
            )
    return problems


def _git_commit(root: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
