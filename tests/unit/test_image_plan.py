"""Images in the pure core: a build is planned only for a missing tag, names what changed tier
by tier, and the workspaces using it follow it (replaced because of it, held back by
`rollout: manual`, pinned to an earlier tag); a newer base is only reported."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ds01ctl import labels as L
from ds01ctl.catalog.frameworks import FrameworkCatalog
from ds01ctl.live.gpus import load_inventory_file
from ds01ctl.model.imagebuild import ImageBuildSpec
from ds01ctl.model.observed import Observed, ObservedContainer, ObservedImage
from ds01ctl.model.spec import UserAccount
from ds01ctl.plan.actions import ActionKind, Plan, Reason, StepKind
from ds01ctl.plan.builds import build_labels
from ds01ctl.plan.diff import diff
from ds01ctl.plan.render_json import dumps, plan_document, plan_from_document
from ds01ctl.resolve.desired import Desired, World, resolve
from ds01ctl.resolve.images import with_default_tag
from tests.configrepo import NOW, load, quota_doc
from tests.observed import observed_container, observed_entry
from tests.unit.test_diff import ENGINE
from tests.unit.test_resolve import _repo, _workspace

BASE_ID = "sha256:" + "b" * 64
NEWER_BASE = "sha256:" + "c" * 64


def _image(name: str, pip: list[str], owner: str = "alice") -> dict[str, Any]:
    return {
        "apiVersion": "ds01/v1",
        "kind": "Image",
        "metadata": {"name": name, "owner": owner},
        "spec": {
            "base": {"framework": {"name": "Pytorch", "version": "2.7.1"}},
            "pip_packages": pip,
        },
    }


def _uses(name: str, **spec: Any) -> dict[str, Any]:
    return _workspace("alice", "w", framework=None, image=name, **spec)


def _world(
    images: dict[str, str] | None = None,
    built: tuple[ObservedImage, ...] = (),
    containers: tuple[ObservedContainer, ...] = (),
    tmp: Path | None = None,
    rebuild: frozenset[str] = frozenset(),
) -> World:
    assert tmp is not None
    observed = Observed(ENGINE, containers, MappingProxyType(images or {}), built_images=built)
    return World(observed, load_inventory_file(tmp / "gpus.yaml"), {}, NOW, rebuild=rebuild)


def _plan(repo: Any, world: World) -> tuple[Plan, Desired]:
    desired = resolve(repo, world, FrameworkCatalog.load())
    plan = diff(desired, world.observed, world.inventory, prune=False)
    return plan, desired


def _made(build: ImageBuildSpec, base_id: str = BASE_ID, created: int = 100) -> ObservedImage:
    """The image apply's build made for `build`, as the engine lists it."""
    labels = {**build_labels(build), L.DS01_IMAGE_BASE_ID: base_id}
    return ObservedImage("sha256:" + build.content_hash, (build.tag,), labels, 10, created)


def _running(spec: Any, image_id: str = "sha256:img") -> ObservedContainer:
    return observed_container(observed_entry(spec, id="c-w", image_id=image_id), "unit")


def test_image_new_is_built_and_its_workspace_waits_for_the_build(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _image("env", ["torch==2.5"]), _uses("env"))
    plan, _ = _plan(repo, _world(tmp=tmp_path))
    build, create = plan.actions
    assert (build.kind, build.reason, build.target) == (
        ActionKind.BUILD,
        Reason.NEW,
        "image/alice/env",
    )
    assert isinstance(build.spec, ImageBuildSpec)
    assert build.spec.tag.startswith("ds01-alice/env:") and len(build.spec.tag) == 27
    assert [s.kind for s in build.steps] == [StepKind.BUILD]
    assert create.container is not None and create.container.image == build.spec.tag
    assert create.steps[0].depends_on == (build.steps[0].id,)
    # The plan document carries the build and reads it back.
    again = plan_from_document(json.loads(dumps(plan_document(plan, mask_secrets=False))))
    assert again.actions[0].spec == build.spec


def test_image_up_to_date_means_no_build(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _image("env", ["torch==2.5"]), _uses("env"))
    _, desired = _plan(repo, _world(tmp=tmp_path))
    made = _made(desired.builds[0])
    world = _world({desired.builds[0].tag: made.id}, (made,), tmp=tmp_path)
    plan, _ = _plan(repo, world)
    assert [a.kind for a in plan.actions] == [ActionKind.CREATE]
    assert plan.actions[0].steps[0].depends_on == ()


def test_image_changed_package_names_the_tier_change_and_replaces_the_workspace(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path, _image("env", ["torch==2.5"]), _uses("env"))
    first, desired = _plan(repo, _world(tmp=tmp_path))
    old = desired.builds[0]
    made = _made(old)
    assert first.actions[1].container is not None
    live = _running(first.actions[1].container)
    (tmp_path / "config").rename(tmp_path / "old")
    repo = _repo(tmp_path, _image("env", ["torch==2.5", "transformers==4.47"]), _uses("env"))
    plan, _ = _plan(repo, _world({old.tag: made.id}, (made,), (live,), tmp=tmp_path))
    build, replace = plan.actions
    assert (build.kind, build.reason) == (ActionKind.BUILD, Reason.SPEC_CHANGED)
    assert "+ pip: transformers==4.47" in (build.note or "")
    assert [c.field for c in build.changes] == ["pip"]
    assert (replace.kind, replace.reason) == (ActionKind.REPLACE, Reason.IMAGE_CHANGED)
    assert [s.kind for s in replace.steps][:3] == [
        StepKind.SNAPSHOT,
        StepKind.REMOVE,
        StepKind.CREATE,
    ]
    # Nothing of the old container is touched before the build succeeded.
    assert replace.steps[0].depends_on == (build.steps[0].id,)


def test_image_rollout_manual_keeps_the_running_build_and_says_so(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _image("env", ["torch==2.5"]), _uses("env", rollout="manual"))
    first, desired = _plan(repo, _world(tmp=tmp_path))
    old = desired.builds[0]
    made = _made(old)
    assert first.actions[1].container is not None
    live = _running(first.actions[1].container)
    (tmp_path / "config").rename(tmp_path / "old")
    repo = _repo(tmp_path, _image("env", ["torch==2.6"]), _uses("env", rollout="manual"))
    plan, _ = _plan(repo, _world({old.tag: made.id}, (made,), (live,), tmp=tmp_path))
    assert [a.kind for a in plan.actions] == [ActionKind.BUILD]
    assert any("image update available" in n for n in plan.notes)


def test_image_pin_runs_an_earlier_tag_or_waits_when_it_is_gone(tmp_path: Path) -> None:
    pin = {"name": "env", "tag": "0123456789ab"}
    repo = _repo(tmp_path, _image("env", ["torch==2.5"]), _uses(pin))  # type: ignore[arg-type]
    plan, _ = _plan(repo, _world({"ds01-alice/env:0123456789ab": "sha256:1"}, tmp=tmp_path))
    create = next(a for a in plan.actions if a.kind is ActionKind.CREATE)
    assert create.container is not None
    assert create.container.image == "ds01-alice/env:0123456789ab"
    assert create.steps[0].depends_on == ()  # the pinned tag exists: it waits for no build
    gone, _ = _plan(repo, _world(tmp=tmp_path))
    assert [p.target for p in gone.pending] == ["workspace/alice/w"]
    assert "pinned build ds01-alice/env:0123456789ab is not on this host" in gone.pending[0].reason


def test_image_newer_base_is_reported_and_rebuilt_only_when_asked(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _image("env", ["torch==2.5"]), _uses("env"))
    first, desired = _plan(repo, _world(tmp=tmp_path))
    build = desired.builds[0]
    made = _made(build, base_id=BASE_ID)
    images = {build.tag: made.id, with_default_tag(build.base): NEWER_BASE}
    assert first.actions[1].container is not None
    live = _running(first.actions[1].container, image_id=made.id)  # made from the build
    plan, _ = _plan(repo, _world(images, (made,), (live,), tmp=tmp_path))
    assert plan.actions == ()
    assert any("base update available" in n and "--rebuild alice/env" in n for n in plan.notes)
    asked = _world(images, (made,), (live,), tmp=tmp_path, rebuild=frozenset({"image/alice/env"}))
    plan, _ = _plan(repo, asked)
    assert [(a.kind, a.reason) for a in plan.actions] == [
        (ActionKind.BUILD, Reason.REBUILD),
        (ActionKind.REPLACE, Reason.IMAGE_CHANGED),
    ]


def test_image_whose_base_cannot_be_had_is_pending_and_so_are_its_workspaces(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path, _image("env", ["torch==2.5"]), _uses("env"))
    world = dataclasses.replace(
        _world(tmp=tmp_path), refused_images={"image/alice/env": "refused: base image gone"}
    )
    plan, _ = _plan(repo, world)
    assert plan.actions == ()
    assert {p.target: p.reason for p in plan.pending} == {
        "image/alice/env": "refused: base image gone",
        "workspace/alice/w": "its Image image/alice/env cannot be built: refused: base image gone",
    }


def test_image_build_request_carries_the_sites_network_and_limits(tmp_path: Path) -> None:
    from ds01ctl.drivers.docker.build import build_params

    repo = _repo(tmp_path, _image("env", ["torch==2.5"]))
    _, desired = _plan(repo, _world(tmp=tmp_path))
    build = dataclasses.replace(
        desired.builds[0], network="none", memory=512 * 1024**2, nano_cpus=1_500_000_000
    )
    params = build_params(build, build_labels(build))
    assert params["networkmode"] == "none"
    assert params["memory"] == params["memswap"] == 512 * 1024**2  # no swap beyond it
    assert params["cpuquota"] * 10**9 // params["cpuperiod"] == 1_500_000_000
    assert params["pull"] == "0" and params["forcerm"] == "1"
    labels = json.loads(params["labels"])
    assert labels["ds01.image.of"] == "image/alice/env"
    assert not {"mlc", "ds01.managed", "ds01.site", "ds01.spec-hash"} & set(labels)


# validate cannot tell whose a per-container tag is without a uid pin; plan can, for an
# Image's base as for a workspace's image.
def test_image_base_of_another_users_container_tag_is_refused_at_plan(tmp_path: Path) -> None:
    from tests.configrepo import load, site_doc, write_repo

    def image(name: str, base: str) -> dict[str, Any]:
        doc = _image(name, ["torch==2.5"], owner="carol")
        doc["spec"]["base"] = {"image": base}
        return doc

    docs = [
        image("stolen", "registry.lab.example/a:x._.1001"),
        image("mine", "registry.lab.example/a:y._.3000"),
    ]
    site = site_doc(allowed_images=["registry.lab.example/*"])
    repo = load(write_repo(tmp_path, docs, site=site))
    assert not repo.errors, repo.errors
    carol = {"carol": UserAccount("carol", 3000, 3000)}
    plan, desired = _plan(repo, dataclasses.replace(_world(tmp=tmp_path), accounts=carol))
    assert [b.name for b in desired.builds] == ["mine"]
    assert [p.target for p in plan.pending] == ["image/carol/stolen"]
    assert "another user's container (uid 1001)" in plan.pending[0].reason
    # Without the owner's uid nobody can say whose container it is: refused too.
    nobody = _world(tmp=tmp_path)
    plan, desired = _plan(repo, nobody)
    assert desired.builds == ()  # user_setup needs the account anyway; and so:
    no_setup = [dict(d, spec={**d["spec"], "user_setup": False}) for d in docs]
    (tmp_path / "again").mkdir()
    repo = load(write_repo(tmp_path / "again", no_setup, site=site))
    plan, desired = _plan(repo, nobody)
    assert desired.builds == ()
    assert all("has no account here" in p.reason for p in plan.pending), plan.pending


# An image's labels are its author's to write: a base image alice pulls can claim to be a
# newer build of bob's Image. Only a tag in bob's repository (which only ds01ctl makes) says
# that an image is one of bob's builds, so the claim neither pushes bob's builds out of
# retention nor becomes the build bob's plan compares against.
def test_image_labels_alone_never_make_an_image_another_owners_build(tmp_path: Path) -> None:
    from ds01ctl.images.retention import builds

    repo = _repo(tmp_path, _image("env", ["torch==2.5"], owner="bob"))
    _, desired = _plan(repo, _world(tmp=tmp_path))
    (build,) = desired.builds
    real = _made(build, created=100)
    forged = [
        ObservedImage(
            f"sha256:{n:064x}",
            (f"registry.lab.example/alice/base:{n}",),
            {**real.labels, L.DS01_IMAGE_HASH: f"{n:064x}"},
            10,
            4_000_000_000 + n,  # "newer" than bob's
        )
        for n in range(3)
    ]
    observed = Observed(ENGINE, (), MappingProxyType({}), built_images=(*forged, real))
    rows = builds(observed, build.site, keep=1)
    assert [(r.tag, r.keep) for r in rows] == [(build.tag, "among the newest 1")]
    assert observed.builds_of(build.key, build.site) == (real,)


# `image: <name>` names an Image of the workspace's own owner: another owner's Image of that
# name is not it, and a pin only picks among the owner's own builds.
def test_image_of_another_owner_is_never_a_workspaces(tmp_path: Path) -> None:
    from tests.configrepo import load, write_repo

    repo = load(write_repo(tmp_path, [_image("env", ["torch==2.5"], owner="bob"), _uses("env")]))
    assert any("env" in d.message for d in repo.errors), repo.errors
    pinned = _workspace("alice", "w", framework=None, image={"name": "env", "tag": "0123456789ab"})
    bobs = "ds01-bob/env:0123456789ab"
    (tmp_path / "pin").mkdir()
    repo = load(write_repo(tmp_path / "pin", [_image("env", ["torch==2.5"], owner="bob"), pinned]))
    assert any("env" in d.message for d in repo.errors), repo.errors
    (tmp_path / "own").mkdir()
    docs = [_image("env", ["torch==2.5"], owner="bob"), _image("env", ["x==1"]), pinned]
    repo = load(write_repo(tmp_path / "own", docs))
    assert not repo.errors, repo.errors
    plan, _ = _plan(repo, _world({bobs: "sha256:" + "e" * 64}, tmp=tmp_path / "own"))
    assert [p.target for p in plan.pending] == ["workspace/alice/w"]
    assert "ds01-alice/env:0123456789ab is not on this host" in plan.pending[0].reason


def _small_quota(**alice: Any) -> dict[str, Any]:
    policy = quota_doc()
    policy["spec"]["users"] = {"alice": alice}
    return policy


def test_image_build_is_charged_to_its_owners_quota(tmp_path: Path) -> None:
    from ds01ctl.drivers.docker.build import build_params

    policy = _small_quota(memory="1g", cpus=0.5)
    repo = _repo(tmp_path, _image("env", ["torch==2.5"]), policy=policy)
    plan, desired = _plan(repo, _world(tmp=tmp_path))
    build = desired.builds[0]
    # Below the Site's 4g and 2 CPUs: a user's setup.py gets no more than one container.
    assert (build.memory, build.nano_cpus) == (1024**3, 500_000_000)
    assert build.capped_by == "alice's quota: memory (user alice), cpus (user alice)"
    assert plan.actions[0].note is not None
    assert plan.actions[0].note.endswith(
        "runs with memory 1g, 0.5 CPUs, up to 1h "
        "(alice's quota: memory (user alice), cpus (user alice))"
    )
    params = build_params(build, build_labels(build))
    assert params["memory"] == params["memswap"] == 1024**3
    assert params["cpuquota"] * 10**9 // params["cpuperiod"] == 500_000_000
    # The limits are plan data: a saved plan builds with the same ones.
    again = plan_from_document(json.loads(dumps(plan_document(plan, mask_secrets=False))))
    assert again.actions[0].spec == build


def test_image_build_under_a_large_quota_gets_the_sites_limits(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _image("env", ["torch==2.5"]), policy=_small_quota(memory="1g"))
    plan, desired = _plan(repo, _world(tmp=tmp_path))
    build = desired.builds[0]
    assert (build.memory, build.nano_cpus) == (1024**3, 2 * 10**9)  # CPUs: the Site's 2
    assert build.capped_by == "alice's quota: memory (user alice)"
    (tmp_path / "config").rename(tmp_path / "old")
    repo = _repo(tmp_path, _image("env", ["torch==2.5"]))  # built-in quota: 32g, 32 CPUs
    plan, desired = _plan(repo, _world(tmp=tmp_path))
    assert (desired.builds[0].memory, desired.builds[0].nano_cpus) == (4 * 1024**3, 2 * 10**9)
    assert desired.builds[0].capped_by is None
    assert plan.actions[0].note is not None
    assert plan.actions[0].note.endswith("runs with memory 4g, 2 CPUs, up to 1h")


def test_image_rebuild_leaves_a_rollout_manual_workspace_and_says_so(tmp_path: Path) -> None:
    docs = (
        _image("env", ["torch==2.5"]),
        _uses("env"),
        _workspace("alice", "m", framework=None, image="env", rollout="manual"),
    )
    repo = _repo(tmp_path, *docs)
    first, desired = _plan(repo, _world(tmp=tmp_path))
    build = desired.builds[0]
    made = _made(build, base_id=BASE_ID)
    images = {build.tag: made.id, with_default_tag(build.base): NEWER_BASE}
    live = tuple(
        observed_container(
            observed_entry(a.container, id=f"c-{a.target}", image_id=made.id), "unit"
        )
        for a in first.actions
        if a.container is not None
    )
    asked = _world(images, (made,), live, tmp=tmp_path, rebuild=frozenset({"image/alice/env"}))
    plan, desired = _plan(repo, asked)
    assert [(a.kind, a.reason, a.target) for a in plan.actions] == [
        (ActionKind.BUILD, Reason.REBUILD, "image/alice/env"),
        (ActionKind.REPLACE, Reason.IMAGE_CHANGED, "workspace/alice/w"),
    ]
    assert desired.rebuilt == {"workspace/alice/w"}
    held = [n for n in plan.notes if n.startswith("workspace/alice/m: image update available")]
    assert len(held) == 1 and "rollout is manual" in held[0], plan.notes


def test_image_rebuilt_since_a_manual_workspace_was_made_is_offered_then_taken_on_auto(
    tmp_path: Path,
) -> None:
    # After `apply --rebuild`, the tag names the new image; the manual workspace still runs the
    # old one. Later plans keep saying so, and switching it to auto replaces it, once.
    docs = [_image("env", ["torch==2.5"]), _uses("env", rollout="manual")]
    repo = _repo(tmp_path, *docs)
    first, desired = _plan(repo, _world(tmp=tmp_path))
    build = desired.builds[0]
    old, new = _made(build, created=100), _made(build, created=200)
    new = dataclasses.replace(new, id="sha256:" + "9" * 64)
    assert first.actions[1].container is not None
    live = _running(first.actions[1].container, image_id=old.id)
    plan, _ = _plan(repo, _world({build.tag: new.id}, (new,), (live,), tmp=tmp_path))
    assert plan.actions == ()
    [note] = [n for n in plan.notes if "image update available" in n]
    assert "was rebuilt since its container was made" in note and "rollout is manual" in note
    (tmp_path / "config" / "ws.yaml").write_text(
        (tmp_path / "config" / "ws.yaml").read_text().replace("rollout: manual", "rollout: auto")
    )
    repo = load(tmp_path / "config")
    plan, _ = _plan(repo, _world({build.tag: new.id}, (new,), (live,), tmp=tmp_path))
    assert [(a.kind, a.reason) for a in plan.actions] == [
        (ActionKind.REPLACE, Reason.IMAGE_CHANGED)
    ]
    # Made from the new image: nothing more to do (no replace loop).
    current = _running(first.actions[1].container, image_id=new.id)
    plan, _ = _plan(repo, _world({build.tag: new.id}, (new,), (current,), tmp=tmp_path))
    assert plan.actions == ()
