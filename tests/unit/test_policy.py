"""Site policy on what a user's manifest may ask for: networks, images, lifecycle values.

Files under users/<login>/ are untrusted. Each case puts one workspace beside a Site and a
QuotaPolicy and checks the one diagnostic validate gives, with its place in the file, or that
the manifest passes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import yaml

from ds01ctl.diagnostics import Diagnostic
from ds01ctl.manifests.imagepolicy import image_problem
from ds01ctl.manifests.validate import validate_path
from ds01ctl.names import docker_safe

TODAY = dt.date(2026, 1, 1)

SITE = {
    "apiVersion": "ds01/v1",
    "kind": "Site",
    "metadata": {"name": "lab"},
    "spec": {
        "catalog": {"architecture": "CUDA_AMPERE"},
        "allowed_networks": ["labnet"],
        "allowed_images": ["registry.lab.example/*", "ubuntu:24.04"],
        "users": {"mal": {"uid": 1666, "gid": 1666}, "vic": {"uid": 1777, "gid": 1777}},
    },
}
QUOTA = {
    "apiVersion": "ds01/v1",
    "kind": "QuotaPolicy",
    "metadata": {"name": "lab"},
    "spec": {
        "default_group": "students",
        "groups": {"students": {"members": ["mal", "vic", "h.baker"]}},
        "defaults": {"gpu_hold_after_stop": "15m", "idle_timeout": "1h", "max_runtime": "24h"},
        "exemptions": [
            {
                "user": "vic",
                "limits": {"gpu_hold_after_stop": "7d"},
                "expires": "2025-12-01",
                "reason": "thesis deadline",
            }
        ],
    },
}
CATALOG_IMAGE = "aimehub/pytorch-2.7.1-cuda12.6.3"


def _validate(tmp_path: Path, owner: str, spec_yaml: str) -> list[Diagnostic]:
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(SITE))
    (tmp_path / "quota.yaml").write_text(yaml.safe_dump(QUOTA))
    folder = tmp_path / "users" / owner
    folder.mkdir(parents=True)
    (folder / "ws.yaml").write_text(
        "apiVersion: ds01/v1\nkind: Workspace\nmetadata: {name: ws}\nspec:\n" + spec_yaml
    )
    diagnostics = validate_path(tmp_path, today=TODAY).diagnostics
    # vic's exemption has expired: that warning on quota.yaml is not what these tests are about
    return [
        dataclasses.replace(d, file=str(Path(d.file).relative_to(tmp_path)) if d.file else None)
        for d in diagnostics
        if d.code != "quota.exemption_expired"
    ]


def _one(diagnostics: list[Diagnostic]) -> Diagnostic:
    assert len(diagnostics) == 1, [str(d) for d in diagnostics]
    return diagnostics[0]


FRAMEWORK = "  framework: {name: Pytorch, version: 2.7.1}\n"


# network: container:<x> would put mal inside vic's network namespace (its ports, its traffic).
@pytest.mark.parametrize("network", ["container:vic-ws", "container:0123abcd", "other-net"])
def test_policy_network_not_allowed_is_refused_with_its_place(tmp_path: Path, network: str) -> None:
    found = _one(_validate(tmp_path, "mal", FRAMEWORK + f"  network: '{network}'\n"))
    assert found.code == "security.network_not_allowed" and found.is_error
    assert (found.file, found.line, found.col) == ("users/mal/ws.yaml", 6, 12)
    assert network in found.message


@pytest.mark.parametrize("network", ["none", "labnet", "ds01-lab"])
def test_policy_network_site_none_and_allowed_pass(tmp_path: Path, network: str) -> None:
    assert _validate(tmp_path, "mal", FRAMEWORK + f"  network: {network}\n") == []


def test_policy_network_host_still_needs_the_site(tmp_path: Path) -> None:
    found = _one(_validate(tmp_path, "mal", FRAMEWORK + "  network: host\n"))
    assert found.code == "security.host_network"


IMAGE_CASES = {
    "other's snapshot": ("ds01ctl-snapshot/vic:ws-20261124T1200Z", "snapshot of another"),
    "other's snapshot, Hub spelling": (
        "docker.io/ds01ctl-snapshot/vic:ws-20261124T1200Z",
        "snapshot of another",
    ),
    "other's container tag": (f"{CATALOG_IMAGE}:ws._.1777", "another user's container"),
    "other's tag, allow-listed registry": (
        "registry.lab.example/x:ws._.1777",
        "another user's container",
    ),
    "account image": (f"{CATALOG_IMAGE}:ds01ctl-user-0123456789abcdef", "one user's account"),
    "image id": ("3f2a1b", "image ID"),
    "not allowed": ("evil.example/miner:1", "not a catalog image"),
}


@pytest.mark.parametrize("reference, why", IMAGE_CASES.values(), ids=IMAGE_CASES)
def test_policy_image_refused_with_its_place(tmp_path: Path, reference: str, why: str) -> None:
    found = _one(_validate(tmp_path, "mal", f"  image_ref: {reference}\n"))
    assert found.code == "security.image_not_allowed" and found.is_error
    assert (found.file, found.line, found.col) == ("users/mal/ws.yaml", 5, 14)
    assert why in found.message


@pytest.mark.parametrize(
    "reference",
    [
        "ds01ctl-snapshot/mal:ws-20261124T1200Z",  # mal's own snapshot
        CATALOG_IMAGE,
        f"{CATALOG_IMAGE}:latest",
        "registry.lab.example/team/img:3",
        "ubuntu:24.04",
        f"{CATALOG_IMAGE}:ws._.1666",  # mal's own container tag (catalog repository)
    ],
)
def test_policy_image_allowed(tmp_path: Path, reference: str) -> None:
    diagnostics = _validate(tmp_path, "mal", f"  image_ref: '{reference}'\n")
    if reference.endswith("._.1666"):  # not catalog and not allow-listed: refused, not as vic's
        assert "another user's" not in _one(diagnostics).message
    else:
        assert diagnostics == []


# Without a uid pin, the uid is only known on the server: plan decides (see resolve).
def test_policy_container_tag_without_pin_is_left_to_plan() -> None:
    ref = "registry.lab.example/x:ws._.1777"
    allowed, catalog = ["registry.lab.example/*"], [CATALOG_IMAGE]
    assert image_problem(ref, "h.baker", uid=None, allowed=allowed, catalog=catalog) is None
    refused = image_problem(ref, "h.baker", uid=1234, allowed=allowed, catalog=catalog)
    assert "another user's container" in (refused or "")
    assert image_problem(ref, "h.baker", uid=1777, allowed=allowed, catalog=catalog) is None


# Snapshots are filed under the Docker-safe form of the login (names.docker_safe).
def test_policy_snapshot_of_a_login_docker_must_rewrite() -> None:
    login = "228755@uni.example"
    own = f"ds01ctl-snapshot/{docker_safe(login)}:ws-1"
    assert image_problem(own, login, uid=None, allowed=[], catalog=[]) is None
    other = image_problem(own, "228755-uni-example", uid=None, allowed=[], catalog=[])
    assert "snapshot of another" in (other or "")


# gpu_hold_after_stop: 3650d would keep a GPU for ten years while others wait.
@pytest.mark.parametrize("key", ["gpu_hold_after_stop", "idle_timeout", "max_runtime"])
def test_policy_lifecycle_above_quota_is_refused(tmp_path: Path, key: str) -> None:
    found = _one(_validate(tmp_path, "mal", FRAMEWORK + f"  lifecycle: {{{key}: 3650d}}\n"))
    assert found.code == "quota.lifecycle" and found.is_error
    assert (found.file, found.line) == ("users/mal/ws.yaml", 6)
    assert f"asks {key} 3650d" in found.message and "quota allows" in found.message


def test_policy_lifecycle_stricter_than_quota_passes(tmp_path: Path) -> None:
    spec = FRAMEWORK + "  lifecycle: {gpu_hold_after_stop: 5m, idle_timeout: 10m}\n"
    assert _validate(tmp_path, "mal", spec) == []


# An exemption allowed it and has expired: a warning (plan clamps), not an error that would
# stop the whole site's plan on the day it expires.
def test_policy_lifecycle_allowed_by_an_expired_exemption_warns(tmp_path: Path) -> None:
    diagnostics = _validate(tmp_path, "vic", FRAMEWORK + "  lifecycle: {gpu_hold_after_stop: 2d}\n")
    lifecycle = [d for d in diagnostics if d.code == "quota.lifecycle"]
    assert len(lifecycle) == 1 and not lifecycle[0].is_error
    assert "expired exemption" in lifecycle[0].message
    assert not [d for d in diagnostics if d.is_error]


# An Image's build (`ds01-<owner>/<name>:<hash>`) holds its owner's packages, env and
# account: like a snapshot, another owner's is refused whatever the allow-list says.
@pytest.mark.parametrize(
    "reference",
    ["ds01-vic/env:0123456789ab", "docker.io/ds01-vic/env:0123456789ab", "ds01-vic/env"],
)
def test_policy_other_owners_image_build_refused_even_when_allow_listed(reference: str) -> None:
    refused = image_problem(reference, "mal", uid=1666, allowed=["*"], catalog=[CATALOG_IMAGE])
    assert "Image built for another user" in (refused or ""), refused
    own = image_problem("ds01-mal/env:0123456789ab", "mal", uid=1666, allowed=["*"], catalog=[])
    assert own is None
    hashed = f"ds01-{docker_safe('h.baker')}/env:0123456789ab"  # a login Docker cannot spell
    assert image_problem(hashed, "h.baker", uid=1234, allowed=["*"], catalog=[]) is None
    assert image_problem(hashed, "mal", uid=1666, allowed=["*"], catalog=[]) is not None


def test_policy_image_base_of_another_owners_build_refused_with_its_place(tmp_path: Path) -> None:
    site = {**SITE, "spec": {**SITE["spec"], "allowed_images": ["*"]}}  # type: ignore[dict-item]
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    (tmp_path / "quota.yaml").write_text(yaml.safe_dump(QUOTA))
    (tmp_path / "users" / "mal").mkdir(parents=True)
    (tmp_path / "users" / "mal" / "img.yaml").write_text(
        "apiVersion: ds01/v1\nkind: Image\nmetadata:\n  name: img\nspec:\n"
        "  base:\n    image: ds01-vic/env:0123456789ab\n"
    )
    diagnostics = validate_path(tmp_path, today=TODAY).diagnostics
    found = _one([d for d in diagnostics if d.is_error])
    assert found.code == "security.image_not_allowed"
    assert (found.file, found.line, found.col) == (str(tmp_path / "users/mal/img.yaml"), 7, 12)
    assert "Image built for another user" in found.message
