"""Golden scenarios: whole plans from a config repo and one observation, with no engine.

Each directory under tests/scenarios/ is a case (layout in tests/scenarios/README.md): its
manifests are validated as `plan` validates them, its observed.yaml becomes today's
`Observed` through `tests.observed.observed_state`, and `resolve` and `diff` run as
`workflow.make_plan` runs them; the JSON document and the human text must match plan.json
and plan.txt byte for byte. `DS01CTL_UPDATE_SCENARIOS=1` (or `DS01CTL_UPDATE_GOLDEN=1`)
rewrites them. `python -m tests.unit.test_scenarios emit CASE` prints, as observed data, the
containers ds01ctl would create for the case's manifests: the start of a "no changes" entry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ds01ctl.manifests import Endpoint, Workspace
from ds01ctl.plan.actions import Plan, PlanMeta
from ds01ctl.plan.diff import diff
from ds01ctl.resolve.desired import Desired, World, resolve
from ds01ctl.resolve.endpoints import EndpointFacts
from ds01ctl.resolve.images import with_default_tag
from ds01ctl.workflow import gpu_inventory, load_repo, refuse_partial_prune
from tests.observed import (
    accounts,
    observed_container,
    observed_entry,
    observed_state,
    pending_since,
    when,
)
from tests.unit.test_render import VERSION, outputs

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = REPO_ROOT / "tests" / "scenarios"
UPDATE = "1" in (os.environ.get(f"DS01CTL_UPDATE_{w}") for w in ("SCENARIOS", "GOLDEN"))
CASES = sorted(p.name for p in SCENARIOS.iterdir() if p.is_dir())

# What an aimehub image hands down to its containers; emit adds the label of the account layer.
IMAGE_ENV = {
    "PATH": "/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:"
    "/usr/sbin:/usr/bin:/sbin:/bin",
    "NVIDIA_VISIBLE_DEVICES": "all",
    "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    "LD_LIBRARY_PATH": "/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
}
IMAGE_LABELS = {
    "org.opencontainers.image.ref.name": "ubuntu",
    "org.opencontainers.image.version": "22.04",
}


def _read(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}


def _resolved(case: Path) -> tuple[Any, Any, Any, Desired, dict[str, Any]]:
    """The case's repo, observation, inventory and desired state, as make_plan builds them."""
    observed = _read(case / "observed.yaml")
    now = when(observed["now"])
    repo = load_repo(case / "manifests", now.date())
    assert repo.site is not None and repo.catalog is not None
    site = repo.site
    state = observed_state(observed, site.metadata.name)
    # The source names the fixture as the Site does, not by this checkout's absolute path.
    inventory = dataclasses.replace(gpu_inventory(repo), source=f"fixture:{site.spec.gpus.fixture}")
    owners = {m.metadata.owner or "" for kind in (Workspace, Endpoint) for m, _ in repo.of(kind)}
    known = {k: v for k, v in accounts(observed).items() if k in owners - set(site.spec.users)}
    world = World(
        state,
        inventory,
        known,
        now,
        pending_since(observed),
        endpoint_facts=endpoint_facts(observed),
    )
    desired = resolve(repo, world, repo.catalog)
    assert not desired.errors, f"{case.name}: resolve errors {desired.errors}"
    return repo, state, inventory, desired, observed


def endpoint_facts(observed: dict[str, Any]) -> EndpointFacts:
    """What the shell reads of the host for endpoints (optional key `endpoints`):
    `cached: {model: [revision]}`, `secrets: {name: version}`, `bound_ports: [port]`."""
    raw = observed.get("endpoints") or {}
    return EndpointFacts(
        cached={k.lower(): tuple(v) for k, v in (raw.get("cached") or {}).items()},
        secrets=dict(raw.get("secrets") or {}),
        bound_ports=frozenset(raw.get("bound_ports") or ()),
    )


def scenario_plan(case: Path) -> Plan:
    """The plan `ds01ctl plan` would show for the case (no image pulls, no layer sizes)."""
    repo, state, inventory, desired, observed = _resolved(case)
    prune = bool(_read(case / "options.yaml").get("prune", False))
    if prune:
        refuse_partial_prune(repo, case / "manifests", targets=())
    logins = {a.uid: a.login for a in accounts(observed).values()}
    plan = diff(desired, state, inventory, prune=prune, logins=logins)
    meta = PlanMeta(
        ds01ctl_version=VERSION,
        site=repo.site.metadata.name,
        state_dir=repo.site.spec.state_dir,
        engine_id=state.engine.id,
        engine_version=state.engine.version,
        observed_at=when(observed["now"]).isoformat(),
        gpu_source=inventory.source,
        config_commit=None,
        config_root=f"tests/scenarios/{case.name}/manifests",
        prune=prune,
    )
    return dataclasses.replace(plan, meta=meta)


@pytest.mark.parametrize("case", CASES)
def test_scenario(case: str) -> None:
    folder = SCENARIOS / case
    for name, text in outputs(scenario_plan(folder)).items():
        path = folder / name
        if UPDATE:
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"no {case}/{name}: run with DS01CTL_UPDATE_SCENARIOS=1"
        assert text == path.read_text(encoding="utf-8"), f"{case}/{name} differs from golden"


def test_scenarios_are_each_described_in_the_readme() -> None:
    readme = (SCENARIOS / "README.md").read_text(encoding="utf-8")
    described = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")}
    assert described == set(CASES)


def test_observed_keys_fill_the_record_and_unknown_keys_are_refused() -> None:
    entry = {"name": "w._.1001", "id": "c1", "state": "running", "labels": {"aime.mlc": "al"}}
    made = observed_container({**entry, "gpus": ["GPU-b", "GPU-a"], "memory": 512}, "lab")
    assert made.config is not None
    assert (made.gpu_ids, made.config.limits.memory, made.config.stop_grace) == (
        ("GPU-a", "GPU-b"),
        512,
        10,
    )
    with pytest.raises(ValueError, match=r"unknown key.*cpu_shares"):
        observed_container({**entry, "cpu_shares": 512}, "lab")
    with pytest.raises(ValueError, match=r"unknown key.*HostConfig\.Devices"):
        observed_container({**entry, "HostConfig.Devices": []}, "lab")


def emitted(case: Path) -> list[dict[str, Any]]:
    """Observed entries for the containers the case's specs describe, as the driver makes
    them: created a week before `now` and stopped a day before, on the per-container tag."""
    _, _, _, desired, observed = _resolved(case)
    images = observed.get("images") or {}
    now = when(observed["now"])
    entries = []
    for spec in desired.specs:
        digest = "sha256:" + hashlib.sha256(spec.image_tag.encode()).hexdigest()
        base = images.get(with_default_tag(spec.image), "sha256:base")
        entries.append(
            observed_entry(
                spec,
                id=hashlib.sha256(spec.key.encode()).hexdigest(),
                image_id=images.get(spec.image_tag, digest),
                created=now - dt.timedelta(days=7),
                finished=now - dt.timedelta(days=1),
                image_env=IMAGE_ENV,
                image_labels={**IMAGE_LABELS, "ds01.user-setup": f"{base}:{spec.account.uid}"},
            )
        )
    return entries


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "emit":
        sys.exit("usage: python -m tests.unit.test_scenarios emit CASE")
    entries = emitted(SCENARIOS / sys.argv[2])
    sys.stdout.write(yaml.safe_dump({"containers": entries}, sort_keys=False, width=100))
