"""Confinement policy: what validate refuses, what resolve gives every container, and when a
Site's sudo setting is refused (the engine is read through `EngineInfo`, no Docker needed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from ds01ctl.catalog.frameworks import FrameworkCatalog
from ds01ctl.confinement import RESERVED_ENV, capability_problem, isolates_root
from ds01ctl.live.gpus import load_inventory_file
from ds01ctl.manifests.validate import validate_path
from ds01ctl.model.observed import EngineInfo, Observed
from ds01ctl.resolve.desired import Desired, World, resolve
from tests.configrepo import NOW, site_doc
from tests.conftest import SITE_YAML
from tests.unit.test_bad_input import TODAY
from tests.unit.test_resolve import _repo, _workspace

ENGINE = EngineInfo("engine", "host", "20.10", "1.41", 8, 32 * 1024**3)
USERNS = ("name=seccomp,profile=default", "name=userns")


def _resolve(repo: Any, tmp_path: Path, engine: EngineInfo = ENGINE) -> Desired:
    docker = Observed(engine, (), MappingProxyType({}))
    world = World(docker, load_inventory_file(tmp_path / "gpus.yaml"), {}, NOW)
    return resolve(repo, world, FrameworkCatalog.load())


def _site_repo(tmp_path: Path, **spec: Any) -> Any:
    """test_resolve's repo with Site settings added."""
    site = site_doc(**spec)
    repo = _repo(tmp_path, _workspace("alice", "w"))
    (repo.root / "site.yaml").write_text(yaml.safe_dump(site))
    repo = validate_path(repo.root, today=NOW.date())
    assert not repo.errors, repo.errors
    return repo


def test_every_container_is_confined_by_default(tmp_path: Path) -> None:
    [spec] = _resolve(_repo(tmp_path, _workspace("alice", "w")), tmp_path).specs
    assert spec.cap_drop == ("ALL",) and spec.cap_add == ()
    assert spec.security_opt == ("no-new-privileges",)
    assert spec.user == "1001:1001"
    assert dict(spec.environment)["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_site_capabilities_are_added_back_and_nothing_else(tmp_path: Path) -> None:
    repo = _site_repo(tmp_path, container_defaults={"capabilities": ["NET_BIND_SERVICE"]})
    [spec] = _resolve(repo, tmp_path).specs
    assert (spec.cap_drop, spec.cap_add) == (("ALL",), ("NET_BIND_SERVICE",))


def test_sudo_is_refused_on_an_engine_where_root_inside_is_root_outside(tmp_path: Path) -> None:
    repo = _site_repo(tmp_path, allow_sudo=True)
    desired = _resolve(repo, tmp_path)
    [error] = desired.errors
    assert "allow_sudo" in error and "userns-remap or rootless" in error
    assert "\n" not in error


@pytest.mark.parametrize("option", ["name=userns", "name=rootless"])
def test_sudo_is_allowed_where_root_inside_is_not_root_outside(tmp_path: Path, option: str) -> None:
    repo = _site_repo(tmp_path, allow_sudo=True)
    engine = dataclasses.replace(ENGINE, security_options=("name=seccomp,profile=default", option))
    desired = _resolve(repo, tmp_path, engine)
    assert desired.errors == ()
    [spec] = desired.specs
    # sudo needs the setuid bit to work: no no-new-privileges, the engine's default
    # capabilities less device nodes and raw packets; seccomp and AppArmor stay the engine's.
    assert spec.security_opt == ()
    assert spec.cap_drop == ("MKNOD", "NET_RAW")


def test_nvidia_default_runtime_is_warned_about(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w"))
    engine = dataclasses.replace(ENGINE, default_runtime="nvidia")
    assert any("default runtime is nvidia" in w for w in _resolve(repo, tmp_path, engine).warnings)
    assert not any("nvidia" in w for w in _resolve(repo, tmp_path).warnings)


def test_isolates_root_reads_docker_info_security_options() -> None:
    assert isolates_root(USERNS)
    assert isolates_root(["name=rootless"])
    assert not isolates_root(["name=seccomp,profile=default", "name=apparmor"])
    assert not isolates_root(["name=usernsx"])


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("SYS_ADMIN", "more than its user's own uid"),
        ("SYS_PTRACE", "more than its user's own uid"),
        ("NET_ADMIN", "more than its user's own uid"),
        ("DAC_READ_SEARCH", "more than its user's own uid"),
        ("CAP_KILL", "is spelled 'KILL'"),
        ("FLY", "not a Linux capability"),
    ],
)
def test_capability_problems(name: str, why: str) -> None:
    problem = capability_problem(name)
    assert problem is not None and why in problem


def test_validate_refuses_a_dangerous_capability_at_its_place(site_repo: Path) -> None:
    site = SITE_YAML + "  container_defaults:\n    capabilities: [KILL, SYS_ADMIN]\n"
    (site_repo / "site.yaml").write_text(site)
    [diag] = validate_path(site_repo, today=TODAY).diagnostics
    assert diag.code == "security.capability" and diag.is_error
    assert (Path(diag.file or "").name, diag.line, diag.col) == ("site.yaml", 11, 26)
    assert "SYS_ADMIN" in diag.message


@pytest.mark.parametrize("name", sorted(RESERVED_ENV))
def test_validate_refuses_device_selecting_env_at_its_key(site_repo: Path, name: str) -> None:
    users = site_repo / "users" / "alice"
    users.mkdir(parents=True)
    (users / "w.yaml").write_text(
        "apiVersion: ds01/v1\nkind: Workspace\nmetadata: {name: w}\nspec:\n"
        "  framework: {name: Pytorch, version: 2.7.1}\n"
        f"  env:\n    HF_HOME: /workspace/.hf\n    {name}: all\n"
    )
    [diag] = validate_path(site_repo, today=TODAY).diagnostics
    assert diag.code == "security.reserved_env" and diag.is_error
    assert (Path(diag.file or "").name, diag.line, diag.col) == ("w.yaml", 8, 5)
    assert name in diag.message
