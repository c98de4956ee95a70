"""`ds01ctl render image OWNER/NAME`: the build of one declared Image, as apply would make it.

The shell around the pure generator: the base comes from the catalog for the site's
architecture (or the manifest's reference) through the Site's mirrors, as `resolve/desired.py`
resolves a workspace's; the owner's uid/gid from the Site's pins, else the host's passwd; the
requirements file and the Site's build directories are read here. The base is not pinned to
a digest: rendering needs no engine (plan pins it when it observes the base).
"""

from __future__ import annotations

from ds01ctl.catalog.frameworks import CatalogEntry
from ds01ctl.catalog.presets import catalogue
from ds01ctl.errors import Ds01Error
from ds01ctl.images.dockerfile import BuildSources, ImageBuild, generate
from ds01ctl.live.accounts import lookup_accounts
from ds01ctl.live.buildfiles import read_directory
from ds01ctl.manifests import Image
from ds01ctl.manifests.imagefiles import read_requirements
from ds01ctl.manifests.site import SiteImages
from ds01ctl.manifests.validate import ConfigRepo
from ds01ctl.resolve.images import mirrored
from ds01ctl.resolve.spec import UserAccount


def render_image(repo: ConfigRepo, owner: str, name: str) -> ImageBuild:
    assert repo.site is not None and repo.catalog is not None
    site = repo.site.spec
    found = next(
        ((image, item) for image, item in repo.of(Image) if image.key == ("Image", owner, name)),
        None,
    )
    if found is None:
        declared = sorted(f"{i.metadata.owner}/{i.metadata.name}" for i, _ in repo.of(Image))
        raise Ds01Error(
            f"no Image {owner}/{name} in the config repo",
            hint=f"declared: {', '.join(declared)}" if declared else "declare one under users/",
        )
    image, item = found
    account = _account(repo, owner) if image.spec.user_setup else None
    requirements: tuple[str, ...] = ()
    if image.spec.requirements_file is not None:
        display_root = repo.loading.display_root if repo.loading else ""
        read = read_requirements(repo.root, item, display_root, image.spec.requirements_file, owner)
        requirements = read.requirements
    return generate(
        image.spec,
        owner=owner,
        name=name,
        base=_base(repo, image),
        account=account,
        presets=catalogue(site.images.presets),
        requirements=requirements,
        sources=build_sources(site.images),
    )


def build_sources(images: SiteImages) -> BuildSources:
    """The Site's package sources, with the host directories they name read."""
    return BuildSources(
        pip_index_url=images.pip_index_url,
        wheelhouse=read_directory(images.wheelhouse) if images.wheelhouse else {},
        apt_sources=None if images.apt_sources is None else tuple(images.apt_sources),
        apt_repo=read_directory(images.apt_repo) if images.apt_repo else {},
    )


def _base(repo: ConfigRepo, image: Image) -> str:
    assert repo.site is not None and repo.catalog is not None
    site = repo.site.spec
    base = image.spec.base
    if base.image is not None:
        return mirrored(base.image, site.image_mirrors)
    assert base.framework is not None
    arch: str | None = site.catalog.architecture
    if arch is None:
        from ds01ctl.resolve.desired import site_architecture
        from ds01ctl.workflow import gpu_inventory

        arch = site_architecture(None, gpu_inventory(repo))
    entry = repo.catalog.lookup(base.framework.name, base.framework.version, arch)
    if not isinstance(entry, CatalogEntry):
        raise Ds01Error(f"{image.ref}: {entry.message}", hint=entry.hint)
    return mirrored(entry.image, site.image_mirrors)


def _account(repo: ConfigRepo, owner: str) -> UserAccount:
    assert repo.site is not None
    pin = repo.site.spec.users.get(owner)
    if pin is not None:
        return UserAccount(owner, pin.uid, pin.gid)
    account = lookup_accounts([owner]).get(owner)
    if account is None:
        raise Ds01Error(
            f"{owner} has no uid: not in the Site's users pins nor the host's passwd",
            hint=f"pin it in the Site (users: {{{owner}: {{uid: …, gid: …}}}}) or add the account",
        )
    return account
