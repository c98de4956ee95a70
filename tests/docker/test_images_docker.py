"""Images on the real engine: plan builds, apply runs them, workspaces follow their Image.

One lab for the module (real builds cost CI time): an Image on the cached Debian base
(scripts/debian-root) installing a wheel from the Site's wheelhouse with no network at all
(build_network: none), used by a running workspace of `228755@uni.example` (a login that is
not Docker-safe). The tests run in file order: the first apply builds, the next finds nothing
to build (from the engine's own event stream), the last changes one pip package and adds an
Image that cannot build.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest
import yaml

from ds01ctl.images.dockerfile import image_repository
from tests.docker.conftest import GPU_FIXTURE
from tests.docker.dockerlab import QUOTA_YAML, UIDS, Lab, site_yaml
from tests.docker.test_image_build import _wheel

pytestmark = pytest.mark.docker

OWNER = "228755@uni.example"
UID = UIDS[OWNER]


@pytest.fixture(scope="module")
def images_lab(
    tmp_path_factory: pytest.TempPathFactory, client: docker.APIClient, debian_base: str
) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("images")
    token = uuid.uuid4().hex[:8]
    site = f"t-{token}"
    root = tmp / "config"
    root.mkdir()
    wheels = tmp / "wheels"
    wheels.mkdir()
    _wheel(wheels, "1.0")
    _wheel(wheels, "2.0")
    document = yaml.safe_load(site_yaml(site, token))
    document["spec"]["images"] = {
        "wheelhouse": str(wheels),
        "build_network": "none",  # air-gapped: the wheelhouse only
        "build_timeout": "300s",
        "build_memory": "512m",
        "build_cpus": 1,
    }
    (root / "site.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    (root / "quota.yaml").write_text(QUOTA_YAML)
    shutil.copy(GPU_FIXTURE, tmp / "gpus.yaml")
    lab = Lab(root, client, site, token)
    lab.make_host_dirs()
    lab.private_gpus()
    try:
        yield lab
    finally:
        lab.cleanup()
        for image in client.images(filters={"label": f"ds01.image.site={site}"}):
            for tag in image.get("RepoTags") or [image["Id"]]:
                with contextlib.suppress(docker.errors.APIError):
                    client.remove_image(tag, force=True)


def _image(lab: Lab, name: str, pip: list[str]) -> str:
    name = lab.name(name)
    folder = lab.root / "users" / OWNER
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "apiVersion": "ds01/v1",
        "kind": "Image",
        "metadata": {"name": name},
        "spec": {"base": {"image": "ds01ctl-local/debian:bookworm"}, "pip_packages": pip},
    }
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return name


def _events(client: docker.APIClient, since: float, until: float) -> list[dict[str, Any]]:
    """Every image event the engine reported in the window (its own record, not ours)."""
    return list(
        client.events(
            since=int(since), until=int(until) + 1, filters={"type": "image"}, decode=True
        )
    )


def _mentions(events: list[dict[str, Any]], repository: str) -> list[dict[str, Any]]:
    return [e for e in events if repository in json.dumps(e.get("Actor") or {})]


def _exec(lab: Lab, container: str, script: str) -> str:
    done = lab.docker("exec", "-u", f"{UID}:{UID}", container, "sh", "-c", script)
    return done.stdout


def _running(lab: Lab, name: str) -> dict[str, Any]:
    found = lab.containers_of(OWNER, name)
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def first_apply(images_lab: Lab, client: docker.APIClient) -> dict[str, Any]:
    lab = images_lab
    env = _image(lab, "env", ["ds01hello==1.0"])
    ws = lab.workspace(OWNER, "ws", framework=None, image=env, power="running")
    since = time.time()
    done = lab.apply()
    until = time.time()
    assert done.code == 0, done.output
    return {"env": env, "ws": ws, "events": _events(client, since, until), "output": done.output}


def test_images_first_apply_builds_and_bakes_the_user(
    images_lab: Lab, first_apply: dict[str, Any]
) -> None:
    lab = images_lab
    repository = image_repository(OWNER, first_apply["env"])
    assert repository.startswith("ds01-228755-uni-example-")  # the login made Docker-safe
    tags = [e for e in _mentions(first_apply["events"], repository) if e.get("Action") == "tag"]
    assert tags, "the build's tag event is in the engine's stream"
    container = _running(lab, first_apply["ws"])
    assert container["Image"].startswith(repository + ":")
    # `mlc open`-style access: exec as uid:gid lands as the login, in /workspace, and the pip
    # tier's package imports as the user.
    out = _exec(
        lab,
        container["Id"],
        'id -un; pwd; python -c "import ds01hello; print(ds01hello.VERSION)"',
    )
    assert out.splitlines() == [OWNER, "/workspace", "1.0"]
    # The image carries the build's record, and nothing that marks a managed container.
    built = lab.client.images(filters={"label": f"ds01.image.site={lab.site}"})
    assert len(built) == 1
    labels = built[0]["Labels"]
    assert (
        labels["ds01.image.base-id"]
        == lab.client.inspect_image("ds01ctl-local/debian:bookworm")["Id"]
    )
    assert json.loads(labels["ds01.image.tiers"])["pip"] == ["ds01hello==1.0"]
    assert not any(labels.get(k) for k in ("mlc", "ds01.managed", "ds01.site", "ds01.spec-hash"))
    # Its log is kept under the state directory.
    logs = list((lab.state_dir / "builds").glob("*.log"))
    assert len(logs) == 1 and "Step" in logs[0].read_text()


def test_images_second_apply_builds_nothing(
    images_lab: Lab, first_apply: dict[str, Any], client: docker.APIClient
) -> None:
    lab = images_lab
    time.sleep(1.1)  # the event window starts after the first apply's last second
    since = time.time()
    plan = lab.plan_cli()
    done = lab.apply()
    until = time.time()
    assert plan.code == 0 and done.code == 0, plan.output + done.output
    assert "build" not in plan.stdout.lower().replace("builds/", "")
    repository = image_repository(OWNER, first_apply["env"])
    assert _mentions(_events(client, since, until), repository) == []
    lab.assert_converged()


def test_images_changed_package_rebuilds_replaces_and_a_failed_build_skips_only_its_own(
    images_lab: Lab, first_apply: dict[str, Any], client: docker.APIClient
) -> None:
    lab = images_lab
    old = _running(lab, first_apply["ws"])
    _exec(lab, old["Id"], f"echo kept > /home/{OWNER}/notes.txt")  # in the writable layer
    _image(lab, "env", ["ds01hello==2.0"])
    bad = _image(lab, "bad", ["ds01-missing==9.9"])
    ws_bad = lab.workspace(OWNER, "wsbad", framework=None, image=bad, power="running")
    ws_cpu = lab.workspace(OWNER, "plain", power="running")  # no Image: not held back

    plan = lab.plan_cli()
    assert "- pip: ds01hello==1.0" in plan.stdout and "+ pip: ds01hello==2.0" in plan.stdout
    assert "must be replaced: its Image has a new build" in plan.stdout
    assert "snapshot" in plan.stdout

    done = lab.apply()
    assert done.code != 0, done.output
    # The failed build names its step and shows its last lines (pip's own complaint).
    assert f"image {OWNER}/{bad} (build): build of" in done.output
    assert "failed at Step" in done.output and "ds01-missing" in done.output
    assert f"skipped  workspace {OWNER}/{ws_bad}" in done.output
    assert lab.containers_of(OWNER, ws_bad) == []
    assert len(lab.containers_of(OWNER, ws_cpu)) == 1
    # The changed Image was rebuilt and its workspace replaced, its layer snapshotted.
    new = _running(lab, first_apply["ws"])
    assert new["Id"] != old["Id"]
    out = _exec(lab, new["Id"], 'python -c "import ds01hello; print(ds01hello.VERSION)"')
    assert out.strip() == "2.0"
    assert len(lab.snapshot_images()) == 1
    listed = lab.cli("images", "list", "-C", str(lab.root))
    assert listed.code == 0, listed.output
    assert listed.stdout.count(image_repository(OWNER, first_apply["env"])) == 2
    assert f"workspace/{OWNER}/{first_apply['ws']}" in listed.stdout


def test_images_base_that_cannot_be_had_makes_the_image_pending(lab: Lab) -> None:
    folder = lab.root / "users" / "alice"
    folder.mkdir(parents=True)
    name = lab.name("nobase")
    document = {
        "apiVersion": "ds01/v1",
        "kind": "Image",
        "metadata": {"name": name},
        "spec": {"base": {"image": f"ds01ctl-local/absent-{lab.token}:1"}},
    }
    (folder / "img.yaml").write_text(yaml.safe_dump(document))
    ws = lab.workspace("alice", "uses", framework=None, image=name)
    done = lab.plan_cli()
    assert done.code == 0, done.output
    assert f"image alice/{name}: refused: base image ds01ctl-local/absent-" in done.stdout
    assert f"workspace alice/{ws}: its Image image/alice/{name} cannot be built" in done.stdout
