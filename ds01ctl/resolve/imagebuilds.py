"""Images: each declared Image as the build that makes it, or pending with why it cannot be
built; and the image a workspace that uses an Image runs (pure).

The build is the generator's (`images/dockerfile.py`): the tag is a hash of everything that
goes in (Dockerfile, context files, the base's reference), so an unchanged Image has the same
tag and `plan/diff.py` plans no build for a tag that exists. The base is named by its
reference, not pinned by ID: a newer image under the same reference is "base update
available" (diff compares the base ID the build recorded) and is rebuilt only when the admin
asks (`apply --rebuild`), never by itself.

What the shell read for this plan comes in through `World`: the Site's wheelhouse and apt
repository (`build_sources`), each Image's requirements file (`image_requirements`), bases
that are neither local nor pullable (`refused_images`, keyed by the Image's target).
This module is not `resolve/images.py` (image references) because it needs `World` and
`Desired`, which `resolve/desired.py` defines and which imports that one.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ds01ctl import labels as L
from ds01ctl.catalog.frameworks import CatalogEntry, FrameworkCatalog
from ds01ctl.catalog.presets import catalogue
from ds01ctl.images.dockerfile import BuildSources, ImageBuild, generate, image_repository
from ds01ctl.manifests import Image, Site, Workspace
from ds01ctl.manifests.imagepolicy import IMAGE_HINT, container_tag_uid, image_problem
from ds01ctl.manifests.validate import ConfigRepo
from ds01ctl.manifests.workspace import ImagePin
from ds01ctl.model.imagebuild import ContextFile, ImageBuildSpec
from ds01ctl.model.pending import PendingItem
from ds01ctl.model.spec import UserAccount
from ds01ctl.resolve.allocate import Allocation
from ds01ctl.resolve.images import mirrored
from ds01ctl.resolve.placement import owner_limits
from ds01ctl.resolve.quota import EffectiveLimits

if TYPE_CHECKING:
    from ds01ctl.model.observed import ObservedContainer
    from ds01ctl.resolve.desired import Desired, World

Built = ImageBuildSpec | PendingItem
_WHEELS, _APT_REPO = "ds01/pip/wheels/", "ds01/apt/repo/"


def image_key(owner: str, name: str) -> str:
    return f"image/{owner}/{name}"


def resolve_images(
    repo: ConfigRepo, site: Site, world: World, catalog: FrameworkCatalog
) -> Desired:
    """Every Image as its build (diff plans it only if its tag is missing) or pending."""
    from ds01ctl.resolve.desired import Desired

    found = image_builds(repo, site, world, catalog)
    return Desired(
        specs=(),
        pending=tuple(b for b in found.values() if isinstance(b, PendingItem)),
        errors=(),
        warnings=(),
        allocation=Allocation(),
        limits={},
        builds=tuple(b for b in found.values() if isinstance(b, ImageBuildSpec)),
    )


# One plan resolves the Images once, though both kinds' resolvers ask (a workspace needs its
# Image's tag): the last answer, kept with the objects it was computed from.
_last: list[tuple[object, object, object, dict[str, Built]]] = []


def image_builds(
    repo: ConfigRepo, site: Site, world: World, catalog: FrameworkCatalog
) -> dict[str, Built]:
    """Image target → its build or why it is pending."""
    if _last and _last[0][0] is repo and _last[0][1] is world and _last[0][2] is catalog:
        return _last[0][3]
    found: dict[str, Built] = {}
    for image, _ in sorted(repo.of(Image), key=lambda p: p[0].key):
        if not isinstance(image, Image):
            continue
        owner, name = image.metadata.owner or "", image.metadata.name
        key = image_key(owner, name)
        found[key] = _build(image, key, repo, site, world, catalog)
    _last[:] = [(repo, world, catalog, found)]
    return found


def _build(
    image: Image, key: str, repo: ConfigRepo, site: Site, world: World, catalog: FrameworkCatalog
) -> Built:
    from ds01ctl.resolve.desired import site_architecture

    spec, images = image.spec, site.spec.images
    owner, name = image.metadata.owner or "", image.metadata.name
    refused = world.refused_images.get(key)
    if refused is not None:
        return PendingItem(key, refused)
    account: UserAccount | None = None
    if spec.user_setup:
        pin = site.spec.users.get(owner)
        account = UserAccount(owner, pin.uid, pin.gid) if pin else world.accounts.get(owner)
        if account is None:
            return PendingItem(
                key,
                f"{owner} has no passwd entry on this host and no uid pin in the Site, so the "
                "user cannot be baked in (add spec.users in the Site, or create the account)",
            )
    if spec.base.image is not None:
        refusal = _base_policy(spec.base.image, owner, site, world, catalog)
        if refusal is not None:
            return PendingItem(key, refusal)
        base = mirrored(spec.base.image, site.spec.image_mirrors)
    else:
        assert spec.base.framework is not None
        arch = site_architecture(site.spec.catalog.architecture, world.inventory)
        entry = catalog.lookup(spec.base.framework.name, spec.base.framework.version, arch)
        if not isinstance(entry, CatalogEntry):
            return PendingItem(key, entry.message + (f" ({entry.hint})" if entry.hint else ""))
        base = mirrored(entry.image, site.spec.image_mirrors)
    memory, nano_cpus, capped_by = _charged(site, owner_limits(repo, owner, world, {}))
    requirements = world.image_requirements.get(key, ())
    made = generate(
        spec,
        owner=owner,
        name=name,
        base=base,
        account=account,
        presets=catalogue(images.presets),
        requirements=requirements,
        sources=world.build_sources or BuildSources(),
    )
    tiers = (
        ("base", (base,)),
        ("apt", tuple(spec.apt_packages)),
        ("presets", tuple(spec.presets)),
        ("requirements", requirements),
        ("pip", tuple(spec.pip_packages)),
        ("env", tuple(f"{k}={v}" for k, v in sorted(spec.env.items()))),
        ("user", (f"{account.login} {account.uid}:{account.gid}",) if account else ()),
    )
    return ImageBuildSpec(
        owner=owner,
        name=name,
        tag=made.tag,
        content_hash=made.content_hash,
        base=base,
        dockerfile=made.dockerfile,
        context=_context(made, images.wheelhouse, images.apt_repo),
        tiers=tiers,
        site=site.metadata.name,
        network=images.build_network,
        memory=memory,
        nano_cpus=nano_cpus,
        timeout=images.build_timeout,
        rebuild=key in world.rebuild and made.tag in world.observed.images,
        capped_by=capped_by,
    )


def _charged(site: Site, limits: EffectiveLimits) -> tuple[int, int, str | None]:
    """The build's memory and CPUs: the Site's build limits, never above what the owner's
    quota allows one container (a user's setup.py runs in the build), and which the quota
    lowered. 0 (no limit) on either side yields to the other."""
    images = site.spec.images
    found: dict[str, int] = {}
    lowered = []
    for key, site_limit in (("memory", images.build_memory), ("cpus", images.build_cpus)):
        cap = limits[key] or 0
        found[key] = min(site_limit, cap) if site_limit and cap else site_limit or cap
        if found[key] != site_limit:
            lowered.append(f"{key} ({limits.sources[key]})")
    why = f"{limits.login}'s quota: {', '.join(lowered)}" if lowered else None
    return found["memory"], found["cpus"], why


def _base_policy(
    reference: str, owner: str, site: Site, world: World, catalog: FrameworkCatalog
) -> str | None:
    """What validate could not decide without the owner's uid (another user's per-container
    tag, for an owner with no Site pin): the same image policy as a workspace's image."""
    pin = site.spec.users.get(owner)
    account = world.accounts.get(owner)
    uid = pin.uid if pin is not None else account.uid if account is not None else None
    if uid is None and container_tag_uid(reference) is not None:
        return (
            f"refused: base image {reference!r} is a container's image and {owner} has no "
            "account here to say whose (add spec.users in the Site, or create the account)"
        )
    problem = image_problem(
        reference,
        owner,
        uid=uid,
        allowed=site.spec.allowed_images,
        catalog=(e.image for e in catalog.entries),
    )
    return None if problem is None else f"refused: base {problem} ({IMAGE_HINT})"


def _context(
    made: ImageBuild, wheelhouse: str | None, apt_repo: str | None
) -> tuple[ContextFile, ...]:
    files = []
    for name, data in sorted(made.context.items()):
        digest = hashlib.sha256(data).hexdigest()
        if name.startswith(_WHEELS) and wheelhouse:
            source = posixpath.join(wheelhouse, name.removeprefix(_WHEELS))
            files.append(ContextFile(name, digest, source=source))
        elif name.startswith(_APT_REPO) and apt_repo:
            source = posixpath.join(apt_repo, name.removeprefix(_APT_REPO))
            files.append(ContextFile(name, digest, source=source))
        else:
            files.append(ContextFile(name, digest, text=data.decode()))
    return tuple(files)


@dataclass(frozen=True)
class UsedImage:
    """What a workspace that uses an Image runs: a tag, and a note when it is held back."""

    tag: str
    note: str | None = None
    # Its container is replaced though the tag stays: the admin asked to rebuild its Image.
    rebuilt: bool = False


def workspace_image(
    ws: Workspace, builds: Mapping[str, Built], world: World
) -> UsedImage | PendingItem:
    """The tag a workspace using an Image runs: a pinned earlier build, the Image's current
    build, or (rollout: manual) the build its container runs now, with a note."""
    owner, name = ws.metadata.owner or "", ws.spec.image_name or ""
    target = f"workspace/{owner}/{ws.metadata.name}"
    key = image_key(owner, name)
    pin = ws.spec.image
    if isinstance(pin, ImagePin):
        tag = f"{image_repository(owner, name)}:{pin.tag}"
        if tag not in world.observed.images:
            return PendingItem(
                target,
                f"refused: pinned build {tag} is not on this host (see `ds01ctl images list`; "
                "pin a tag that exists, or drop the pin)",
            )
        return UsedImage(tag)
    build = builds.get(key)
    if build is None or isinstance(build, PendingItem):
        why = build.reason if build is not None else "not declared"
        return PendingItem(target, f"its Image {key} cannot be built: {why}")
    stale = _runs_an_older_build(ws, build, world)
    if ws.spec.rollout == "manual":
        running = _running_build(ws, build, world)
        if running is not None and running != build.tag:
            return UsedImage(
                running,
                f"{target}: image update available ({running} → {build.tag}); rollout is "
                "manual: set rollout: auto, or pin the new tag, to move to it",
            )
        if running is not None and build.rebuild:
            # The same tag, on a newer base: its container keeps the build it was made from.
            return UsedImage(
                running,
                f"{target}: image update available ({build.tag} is rebuilt on its base's "
                "newest image); rollout is manual: it keeps the build it runs (set rollout: "
                "auto and rebuild again to move it)",
            )
        if stale:
            return UsedImage(
                build.tag,
                f"{target}: image update available ({build.tag} was rebuilt since its container "
                "was made); rollout is manual: set rollout: auto to move to it",
            )
    return UsedImage(build.tag, rebuilt=build.rebuild or stale)


def _runs_an_older_build(ws: Workspace, build: ImageBuildSpec, world: World) -> bool:
    """Its container was made from this tag when the tag named an earlier image (an
    `apply --rebuild` since, while it was held back by `rollout: manual`). A container made
    from an account image on top of the build (not from the build itself) is never judged
    by its image ID: that ID always differs."""
    current = world.observed.images.get(build.tag)
    if current is None or build.rebuild:
        return False  # built by this plan: the rebuild itself decides
    accounts = {i.id for i in world.observed.site_images if i.account_tags}
    for container in _containers_of(ws, world):
        if L.get(container.labels, L.DS01_IMAGE) == build.tag:
            return container.image_id != current and container.image_id not in accounts
    return False


def _running_build(ws: Workspace, build: ImageBuildSpec, world: World) -> str | None:
    """The build of the same Image its container was made from, if that build still exists."""
    for container in _containers_of(ws, world):
        made_from = L.get(container.labels, L.DS01_IMAGE) or ""
        if made_from.rpartition(":")[0] == build.repository and made_from in world.observed.images:
            return made_from
    return None


def _containers_of(ws: Workspace, world: World) -> Iterator[ObservedContainer]:
    """Our containers of the workspace (one, unless the plan is about to remove a duplicate)."""
    key = f"workspace/{ws.metadata.owner}/{ws.metadata.name}"
    return (c for c in world.observed.ours() if c.key == key)
