"""Static validation of a whole config repo: the checks that span documents.

Runs offline (no Docker, no NVML): one Site, at most one QuotaPolicy, unique objects, owners
and their groups, references to Images and catalog frameworks, mounts against the site's
policy, and the security rules no manifest can override.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

from ds01ctl.catalog.engine_flags import ENV_OWNED, env_problem, flag_problem
from ds01ctl.catalog.frameworks import CatalogEntry, CatalogError, FrameworkCatalog
from ds01ctl.catalog.presets import catalogue
from ds01ctl.catalog.recipes import (
    Recipe,
    RecipeCatalog,
    RecipeError,
    load_site_recipes,
    no_model_hint,
    shipped,
)
from ds01ctl.confinement import ALLOWED_CAPABILITIES, RESERVED_ENV, capability_problem
from ds01ctl.diagnostics import Diagnostic, error, warning
from ds01ctl.manifests import Endpoint, Image, Manifest, QuotaPolicy, Site, Workspace
from ds01ctl.manifests.common import FrameworkRef, SecretRef
from ds01ctl.manifests.imagefiles import read_requirements
from ds01ctl.manifests.imagepolicy import IMAGE_HINT, image_problem
from ds01ctl.manifests.loader import USERS, Loaded, LoadResult, load_path
from ds01ctl.manifests.mounts import check_mount, expand_owner
from ds01ctl.manifests.packages import direct_reference
from ds01ctl.manifests.schema_errors import suggest
from ds01ctl.manifests.secrets import scope_problem, token_kind
from ds01ctl.manifests.site import SiteSpec, default_network, site_network_name
from ds01ctl.model.inventory import DEFAULT_COMPUTE_SLICES
from ds01ctl.resolve.quota import effective_limits, lifecycle_excess
from ds01ctl.units import format_cpus, format_duration, format_size

M = TypeVar("M", bound=Manifest)


@dataclass(frozen=True, slots=True)
class Invalid:
    """An object in a user's file that did not validate: pending on the server, not fatal."""

    owner: str
    file: str
    target: str | None  # kind/owner/name; None when the file names no object one can tell
    reason: str  # "invalid: " and the first diagnostic, with file:line:col


@dataclass
class ConfigRepo:
    """The manifests of a config repo that loaded, and what validation found."""

    root: Path
    loaded: list[Loaded]
    files: list[str]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    catalog: FrameworkCatalog | None = None
    recipes: RecipeCatalog | None = None  # None: the site's recipes_dir is not here
    loading: LoadResult | None = None  # where the files came from, and what was named
    invalid: list[Invalid] = field(default_factory=list)  # set aside by `set_aside_invalid`

    @property
    def partial(self) -> bool:
        """Whether a file or directory inside the repo was named, not the repo itself."""
        return self.loading is not None and self.loading.scope is not None

    @property
    def named(self) -> list[Loaded]:
        """The manifests declared in what was named (all of them for the whole repo)."""
        if self.loading is None:
            return self.loaded
        return [item for item in self.loaded if self.loading.in_scope(item.file)]

    def of(self, kind: type[M]) -> list[tuple[M, Loaded]]:
        return [(item.manifest, item) for item in self.loaded if isinstance(item.manifest, kind)]

    # The checks ask for these once per object: a scan that stops at the first keeps a large
    # repo linear (the Site and QuotaPolicy files sort before users/).
    @property
    def site(self) -> Site | None:
        return next((m for m in self._manifests() if isinstance(m, Site)), None)

    @property
    def policy(self) -> QuotaPolicy | None:
        return next((m for m in self._manifests() if isinstance(m, QuotaPolicy)), None)

    def _manifests(self) -> Iterator[Manifest]:
        return (item.manifest for item in self.loaded)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]


def validate_path(path: Path, *, today: dt.date) -> ConfigRepo:
    """Load the config repo around `path` and run every static check; diagnostics come sorted
    by place.

    When `path` names a file or directory inside the repo, every check still runs over the
    whole repo (the Site, the QuotaPolicy and the other manifests are its context), but only
    diagnostics about the named files are kept, plus errors in files outside `users/` (the
    Site, the QuotaPolicy: the named files cannot be judged without them). Other users' files
    are context only: their problems are theirs. `files` and `named` are the named ones;
    `loaded` keeps every manifest, for references and plans.
    """
    result = load_path(path)
    repo = ConfigRepo(result.root, [], result.files, list(result.diagnostics), loading=result)
    repo.loaded = _unique(result.loaded, repo.diagnostics)
    _check_singletons(repo)
    site_spec = repo.site.spec if repo.site else SiteSpec()
    repo.catalog = _catalog(repo, site_spec)
    _check_quota(repo, today)
    _check_owners(repo)
    _check_images(repo, site_spec)
    _check_workspaces(repo, site_spec, today)
    repo.recipes = _recipes(repo, site_spec)
    _check_endpoints(repo, site_spec)
    repo.diagnostics = [d for d in repo.diagnostics if _concerns_scope(d, result)]
    repo.diagnostics.sort(key=Diagnostic.sort_key)
    return repo


def set_aside_invalid(repo: ConfigRepo) -> list[Diagnostic]:
    """Set aside the objects that errors in files under `users/<login>/` are about, and return
    the errors that remain (in the Site, the QuotaPolicy, or anywhere outside `users/`).

    A student's broken file, or a request a lowered cap now refuses, must not stop the lab: its
    objects leave `loaded` (nothing plans them) and go to `invalid`, each with its first error
    as the reason. An error names its document by line; an unreadable file names none.
    """
    fatal: list[Diagnostic] = []
    found: dict[str, Invalid] = {}
    unnamed: dict[str, Invalid] = {}
    extra: dict[str, int] = {}
    documents = repo.loading.documents if repo.loading else []
    for diagnostic in sorted(repo.errors, key=Diagnostic.sort_key):
        owner = _user_file_owner(diagnostic.file, repo.loading)
        if owner is None or diagnostic.file is None:
            fatal.append(diagnostic)
            continue
        # Named from the config repo's root, as its users know their files.
        shown = dataclasses.replace(diagnostic, file=_from_root(diagnostic.file, repo))
        reason = f"invalid: {shown}"
        in_file = [d for d in documents if d.file == diagnostic.file]
        before = [d for d in in_file if diagnostic.line is None or d.line <= diagnostic.line]
        about = before[-1:] if diagnostic.line is not None else in_file
        targets = [d.target for d in about]
        for target in targets or [None]:
            if target is None:
                unnamed.setdefault(shown.file or "", Invalid(owner, shown.file or "", None, reason))
            elif target in found:
                extra[target] = extra.get(target, 0) + 1
            else:
                found[target] = Invalid(owner, shown.file or "", target, reason)
    for target, more in extra.items():
        bad = found[target]
        found[target] = Invalid(bad.owner, bad.file, target, f"{bad.reason} (and {more} more)")
    repo.invalid = sorted([*found.values(), *unnamed.values()], key=lambda i: (i.file, i.reason))
    repo.loaded = [item for item in repo.loaded if target_of(item.manifest) not in found]
    return fatal


def target_of(manifest: Manifest) -> str:
    """How plans name an object: kind/owner/name."""
    kind, owner, name = manifest.key
    return f"{kind.lower()}/{owner}/{name}"


def _from_root(file: str, repo: ConfigRepo) -> str:
    display_root = repo.loading.display_root if repo.loading else ""
    return os.path.relpath(file, display_root or ".")


def _user_file_owner(file: str | None, loading: LoadResult | None) -> str | None:
    if file is None or loading is None:
        return None
    relative = Path(os.path.relpath(file, loading.display_root or ".")).parts
    return relative[1] if len(relative) > 2 and relative[0] == USERS else None


def _concerns_scope(diagnostic: Diagnostic, loading: LoadResult) -> bool:
    if loading.in_scope(diagnostic.file) or diagnostic.file is None:
        return True
    if not diagnostic.is_error:
        return False
    relative = Path(os.path.relpath(diagnostic.file, loading.display_root or ".")).parts
    return relative[:1] != (USERS,)


def _unique(loaded: list[Loaded], diagnostics: list[Diagnostic]) -> list[Loaded]:
    first: dict[tuple[str, str, str], Loaded] = {}
    kept = []
    for item in loaded:
        key = item.manifest.key
        if key in first:
            other = first[key]
            diagnostics.append(
                error(
                    "object.duplicate",
                    f"{item.manifest.ref} is declared twice "
                    f"(first at {other.file}:{other.doc.start.line})",
                    hint="rename or remove one of them",
                    **item.at("metadata", "name"),
                )
            )
            continue
        first[key] = item
        kept.append(item)
    return kept


def _check_singletons(repo: ConfigRepo) -> None:
    sites = repo.of(Site)
    if not sites and repo.files:  # with no manifest at all, that one problem is enough
        repo.diagnostics.append(
            error(
                "site.missing",
                "the config repo has no Site manifest",
                file=str(repo.root),
                hint="add site.yaml with kind: Site at the repo's root",
            )
        )
    for _, extra in sites[1:]:
        repo.diagnostics.append(
            error(
                "site.multiple",
                f"a second Site, {extra.manifest.metadata.name!r} (the first, "
                f"{sites[0][0].metadata.name!r}, is at {sites[0][1].file})",
                hint="keep exactly one",
                **extra.at("kind"),
            )
        )
    for site, item in sites[:1]:
        where = ("spec", "container_defaults", "network")
        _check_network(repo, site.spec.container_defaults.network, site.spec, item, where)
        _check_capabilities(repo, site, item)
        _check_uid_pins(repo, site, item)
    policies = repo.of(QuotaPolicy)
    for _, extra in policies[1:]:
        repo.diagnostics.append(
            error(
                "quota.multiple",
                f"a second QuotaPolicy (first at {policies[0][1].file})",
                hint="keep one",
                **extra.at("kind"),
            )
        )


def _check_uid_pins(repo: ConfigRepo, site: Site, item: Loaded) -> None:
    """A uid is one person: two logins pinned to it would let a plan run one's workspace as
    the other (and replace containers each time the pins are reordered)."""
    first: dict[int, str] = {}
    for login, pin in site.spec.users.items():
        if pin.uid not in first:
            first[pin.uid] = login
            continue
        repo.diagnostics.append(
            error(
                "site.duplicate_uid",
                f"{login} is pinned to uid {pin.uid}, which is already {first[pin.uid]}'s",
                hint="give each login its own uid",
                **item.at("spec", "users", login, "uid"),
            )
        )


def _catalog(repo: ConfigRepo, site: SiteSpec) -> FrameworkCatalog:
    if site.catalog.path is None:
        return FrameworkCatalog.load()
    path = Path(site.catalog.path)
    if not path.is_absolute():
        path = repo.root / path
    # The host's file, absent where CI validates: fall back, and say so. (os.path.exists,
    # unlike Path.exists, answers False for a name too long to look up.)
    if not os.path.exists(path):
        where = repo.of(Site)[0][1].at("spec", "catalog", "path")
        repo.diagnostics.append(
            warning(
                "catalog.unreadable",
                f"framework catalog {site.catalog.path} is not here; "
                "checked against the catalog shipped with ds01ctl",
                **where,
            )
        )
        return FrameworkCatalog.load()
    try:
        return FrameworkCatalog.load(path)
    except CatalogError as exc:
        repo.diagnostics.append(error("catalog.unreadable", exc.message, file=str(path)))
        return FrameworkCatalog.load()


def _check_quota(repo: ConfigRepo, today: dt.date) -> None:
    policies = repo.of(QuotaPolicy)
    if not policies:
        return
    policy, item = policies[0]
    spec = policy.spec
    group_of: dict[str, str] = {}
    for group, members in sorted(spec.groups.items()):
        for index, login in enumerate(members.members):
            if login in group_of and group_of[login] != group:
                repo.diagnostics.append(
                    error(
                        "quota.two_groups",
                        f"{login} is in groups {group_of[login]} and {group}",
                        hint="a user belongs to one group; remove one membership",
                        **item.at("spec", "groups", group, "members", index),
                    )
                )
            group_of.setdefault(login, group)
    if spec.default_group is not None and spec.default_group not in spec.groups:
        repo.diagnostics.append(
            error(
                "owner.no_group",
                f"default_group {spec.default_group!r} is not a group of this policy",
                hint=f"groups: {', '.join(sorted(spec.groups)) or 'none'}",
                **item.at("spec", "default_group"),
            )
        )
    owners = {m.metadata.owner for m, _ in _owned(repo)} | set(group_of)
    for login in sorted(spec.users):
        if login not in owners:
            repo.diagnostics.append(
                warning(
                    "quota.unknown_user",
                    f"override for {login}, who owns nothing and is in no group",
                    hint=suggest(login, sorted(o for o in owners if o)) or "check the spelling",
                    **item.at("spec", "users", login, key=True),
                )
            )
    for index, exemption in enumerate(spec.exemptions):
        if exemption.expires is not None and exemption.expires < today:
            repo.diagnostics.append(
                warning(
                    "quota.exemption_expired",
                    f"exemption for {exemption.user} expired on {exemption.expires} and is ignored",
                    hint="remove it, or extend expires",
                    **item.at("spec", "exemptions", index, "expires"),
                )
            )


def _owned(repo: ConfigRepo) -> list[tuple[Manifest, Loaded]]:
    return [(item.manifest, item) for item in repo.loaded if item.manifest.OWNED]


def _check_owners(repo: ConfigRepo) -> None:
    policy = repo.policy
    members = {m for g in policy.spec.groups.values() for m in g.members} if policy else set()
    has_default = policy is not None and policy.spec.default_group in policy.spec.groups
    for manifest, item in _owned(repo):
        owner = manifest.metadata.owner
        if owner is None:
            repo.diagnostics.append(
                error(
                    "owner.missing",
                    f"{manifest.ref} has no owner",
                    hint="set metadata.owner, or put the file under users/<login>/",
                    **item.at("metadata"),
                )
            )
        elif owner not in members and not has_default:
            hint = (
                "add a QuotaPolicy with a default_group"
                if policy is None
                else f"add {owner} to a group, or set default_group"
            )
            repo.diagnostics.append(
                error(
                    "owner.no_group",
                    f"{owner} is in no group and there is no default group",
                    hint=hint,
                    **item.at("metadata", "owner"),
                )
            )


def _check_framework(
    repo: ConfigRepo, what: str, ref: FrameworkRef, site: SiteSpec, where: dict[str, object]
) -> CatalogEntry | None:
    assert repo.catalog is not None
    found = repo.catalog.lookup(ref.name, ref.version, site.catalog.architecture)
    if isinstance(found, CatalogEntry):
        return found
    repo.diagnostics.append(error(found.code, f"{what}: {found.message}", hint=found.hint, **where))
    return None


def _check_images(repo: ConfigRepo, site: SiteSpec) -> None:
    for image, item in repo.of(Image):
        if image.spec.base.framework is not None:
            where = item.at("spec", "base")
            _check_framework(repo, image.ref, image.spec.base.framework, site, where)
        if image.spec.base.image is not None:
            path = ("spec", "base", "image")
            _check_image_ref(repo, image, image.spec.base.image, site, item, path)
        _check_presets(repo, image, item, site)
        for index, requirement in enumerate(image.spec.pip_packages):
            where = item.at("spec", "pip_packages", index)
            _check_direct_reference(repo, image, requirement, site, where)
        if image.spec.requirements_file is not None:
            _check_requirements_file(repo, image, item, site)
        _check_reserved_env(repo, image, item)


def _check_presets(repo: ConfigRepo, image: Image, item: Loaded, site: SiteSpec) -> None:
    known = catalogue(site.images.presets)
    for index, preset in enumerate(image.spec.presets):
        if preset not in known:
            close = suggest(preset, sorted(known))
            repo.diagnostics.append(
                error(
                    "image.unknown_preset",
                    f"{image.ref} names preset {preset!r}, which neither ds01ctl nor the Site "
                    "defines",
                    hint=close or f"presets: {', '.join(sorted(known))}",
                    **item.at("spec", "presets", index),
                )
            )


def _check_direct_reference(
    repo: ConfigRepo, image: Image, requirement: str, site: SiteSpec, where: dict[str, object]
) -> None:
    url = direct_reference(requirement)
    if url is None or site.images.allow_direct_references:
        return
    repo.diagnostics.append(
        error(
            "image.direct_reference",
            f"{image.ref} installs {requirement!r} from a URL, which this Site does not allow",
            hint="name the package and version from the Site's index, or ask an admin to set "
            "images.allow_direct_references",
            **where,
        )
    )


def _check_requirements_file(repo: ConfigRepo, image: Image, item: Loaded, site: SiteSpec) -> None:
    assert image.spec.requirements_file is not None
    display_root = repo.loading.display_root if repo.loading else ""
    found = read_requirements(
        repo.root, item, display_root, image.spec.requirements_file, image.metadata.owner or ""
    )
    if found.refused is not None:
        repo.diagnostics.append(
            error(
                "image.requirements_file",
                f"{image.ref}: requirements_file {found.refused}",
                hint="name a regular file in your own users/<login>/ directory, relative to "
                "this manifest",
                **item.at("spec", "requirements_file"),
            )
        )
        return
    for problem in found.problems:
        repo.diagnostics.append(
            error(
                "image.requirement",
                f"{image.ref}: {problem.message}",
                hint="one requirement per line, such as numpy==2.1.0",
                file=found.shown,
                line=problem.line,
                col=problem.col,
            )
        )
    for line in found.lines:
        where = {"file": found.shown, "line": line.line, "col": line.col}
        _check_direct_reference(repo, image, line.text, site, where)


def _check_image_ref(
    repo: ConfigRepo,
    manifest: Manifest,
    reference: str,
    site: SiteSpec,
    item: Loaded,
    where: tuple[str, ...],
) -> None:
    """The image policy where it can be decided offline: a per-container tag needs the
    owner's uid, which only a Site pin gives here (plan decides the rest)."""
    assert repo.catalog is not None
    owner = manifest.metadata.owner or ""
    pin = site.users.get(owner)
    problem = image_problem(
        reference,
        owner,
        uid=pin.uid if pin else None,
        allowed=site.allowed_images,
        catalog=(e.image for e in repo.catalog.entries),
    )
    if problem is not None:
        repo.diagnostics.append(
            error(
                "security.image_not_allowed",
                f"{manifest.ref}: {problem}",
                hint=IMAGE_HINT,
                **item.at(*where),
            )
        )


def _check_workspaces(repo: ConfigRepo, site: SiteSpec, today: dt.date) -> None:
    images = {(m.metadata.owner, m.metadata.name) for m, _ in repo.of(Image)}
    per_owner: dict[str, int] = {}
    # The order plan counts them in, so that validate and plan refuse the same ones.
    for ws, item in sorted(repo.of(Workspace), key=lambda pair: pair[0].key):
        owner = ws.metadata.owner or ""
        spec = ws.spec
        if spec.image_name is not None and (owner, spec.image_name) not in images:
            repo.diagnostics.append(
                error(
                    "ref.image",
                    f"{ws.ref} uses image {spec.image_name!r}, which {owner} does not declare",
                    hint="declare an Image of that name under the same owner",
                    **item.at("spec", "image"),
                )
            )
        if spec.framework is not None:
            _check_framework(repo, ws.ref, spec.framework, site, item.at("spec", "framework"))
        if spec.image_ref is not None:
            _check_image_ref(repo, ws, spec.image_ref, site, item, ("spec", "image_ref"))
        _check_lifecycle(repo, ws, item, today)
        per_owner[owner] = per_owner.get(owner, 0) + 1
        _check_requests(repo, ws, item, today, per_owner[owner])
        _check_network(repo, spec.network, site, item)
        _check_reserved_env(repo, ws, item)
        _check_workspace_mounts(repo, ws, item, site)


def _check_reserved_env(repo: ConfigRepo, ws: Workspace | Image, item: Loaded) -> None:
    for name in ws.spec.env:
        if name in RESERVED_ENV:
            repo.diagnostics.append(
                error(
                    "security.reserved_env",
                    f"{ws.ref} sets {name}, which selects GPUs; ds01ctl alone sets it",
                    hint="remove it; ask for GPUs with gpus or mig, and CUDA numbers them from 0",
                    **item.at("spec", "env", name, key=True),
                )
            )


def _check_capabilities(repo: ConfigRepo, site: Site, item: Loaded) -> None:
    for index, name in enumerate(site.spec.container_defaults.capabilities):
        problem = capability_problem(name)
        if problem is not None:
            repo.diagnostics.append(
                error(
                    "security.capability",
                    problem,
                    hint=f"a Site may add only {', '.join(sorted(ALLOWED_CAPABILITIES))}",
                    **item.at("spec", "container_defaults", "capabilities", index),
                )
            )


def _check_lifecycle(repo: ConfigRepo, ws: Workspace, item: Loaded, today: dt.date) -> None:
    """Lifecycle values above the owner's quota are errors; above it only because an exemption
    expired, a warning (plan clamps them: one expiry must not stop the whole site's plan)."""
    policy = repo.policy.spec if repo.policy else None
    owner = ws.metadata.owner or ""
    lifecycle = ws.spec.lifecycle
    now_allowed = effective_limits(policy, owner, today)
    ever_allowed = effective_limits(policy, owner, dt.date.min)  # expired exemptions too
    ever = {e.key for e in lifecycle_excess(lifecycle, ever_allowed)}
    for excess in lifecycle_excess(lifecycle, now_allowed):
        asked, cap = format_duration(excess.asked), format_duration(excess.cap)
        where = item.at("spec", "lifecycle", excess.key)
        if excess.key in ever:
            repo.diagnostics.append(
                error(
                    "quota.lifecycle",
                    f"{ws.ref} asks {excess.key} {asked}; {owner}'s quota allows {cap} "
                    f"({excess.source})",
                    hint=f"use at most {cap}, or leave it unset (the quota's value)",
                    **where,
                )
            )
        else:
            repo.diagnostics.append(
                warning(
                    "quota.lifecycle",
                    f"{ws.ref} asks {excess.key} {asked}, which only an expired exemption "
                    f"allowed; plan uses {cap} ({excess.source})",
                    hint=f"use at most {cap}, or extend the exemption",
                    **where,
                )
            )


def _check_requests(
    repo: ConfigRepo, ws: Workspace, item: Loaded, today: dt.date, nth: int
) -> None:
    """What one workspace asks for against its owner's quota, as far as the manifests decide
    it: plan would leave it pending for ever, so CI refuses it here."""
    policy = repo.policy.spec if repo.policy else None
    owner = ws.metadata.owner or ""
    limits = effective_limits(policy, owner, today)
    spec = ws.spec

    def refuse(code: str, message: str, hint: str, *where: str) -> None:
        repo.diagnostics.append(error(code, f"{ws.ref} {message}", hint=hint, **item.at(*where)))

    for key in ("cpus", "memory", "shm_size", "pids"):
        asked, cap = getattr(spec, key), limits[key]
        if asked is not None and cap is not None and asked > cap:
            show = format_cpus if key == "cpus" else str if key == "pids" else format_size
            refuse(
                "quota.request",
                f"asks {key} {show(asked)}; {owner}'s quota allows {show(cap)} "
                f"({limits.sources[key]})",
                f"use at most {show(cap)}, or leave it unset (the quota's value)",
                "spec",
                key,
            )
    gpu_field = "gpus" if spec.gpus else "mig"
    if spec.gpus and limits["allow_whole_gpus"] is False:
        refuse(
            "quota.gpus",
            f"asks {spec.gpus} whole GPU(s); {owner} may not use whole GPUs "
            f"({limits.sources['allow_whole_gpus']})",
            "ask for one MIG instance instead (mig: 1g.10gb)",
            "spec",
            "gpus",
        )
    devices = spec.gpus or (1 if spec.mig else 0)
    cap = limits["max_gpus_per_container"]
    if cap is not None and devices > cap:
        refuse(
            "quota.gpus",
            f"asks {devices} GPU device(s); {owner} may use {cap} per container "
            f"({limits.sources['max_gpus_per_container']})",
            f"ask for at most {cap}",
            "spec",
            gpu_field,
        )
    units = request_units(spec.gpus, spec.mig)
    budget = limits["gpu_budget"]
    if budget is not None and units > budget:
        refuse(
            "quota.gpus",
            f"asks {units} GPU units; {owner}'s whole GPU budget is {budget} "
            f"({limits.sources['gpu_budget']})",
            "ask for a smaller MIG profile or fewer GPUs",
            "spec",
            gpu_field,
        )
    max_ws = limits["max_workspaces"]
    if max_ws is not None and nth > max_ws:
        refuse(
            "quota.workspaces",
            f"is {owner}'s workspace number {nth} (in name order); {owner} may have {max_ws} "
            f"({limits.sources['max_workspaces']})",
            "remove a workspace, or ask an admin for a higher max_workspaces",
            "metadata",
            "name",
        )


def request_units(gpus: int, mig: str | None) -> Fraction:
    """GPU units of one request, as the allocator counts them: a whole GPU is 1, a MIG profile
    `Ng.…` is N compute slices over the 7 of an A100/H100 (the inventory's default; offline
    there is no inventory to ask)."""
    if mig is not None:
        return Fraction(int(mig.split("g.", 1)[0]), DEFAULT_COMPUTE_SLICES)
    return Fraction(gpus)


def _check_workspace_mounts(repo: ConfigRepo, ws: Workspace, item: Loaded, site: SiteSpec) -> None:
    owner = ws.metadata.owner or ""
    mounts = ws.spec.mounts
    declared = {"workspace": mounts.workspace, "data": mounts.data, "models": mounts.models}
    for slot, mount in declared.items():
        if mount is None and slot != "workspace":
            continue
        if mount is None:
            path, read_only, where = site.default_workspace_mount, False, item.at("metadata")
        else:
            path, read_only = mount.path, mount.read_only
            where = item.at("spec", "mounts", slot)
        problem = check_mount(expand_owner(path, owner), read_only, owner, site.mount_policy)
        if problem is not None:
            repo.diagnostics.append(
                error(problem.code, f"{ws.ref}: {problem.message}", hint=problem.hint, **where)
            )


def _check_network(
    repo: ConfigRepo,
    network: str | None,
    site: SiteSpec,
    item: Loaded,
    where: tuple[str, ...] = ("spec", "network"),
) -> None:
    if network is None:
        return
    if network == "host":
        if not site.allow_host_network:
            repo.diagnostics.append(
                error(
                    "security.host_network",
                    f"{item.manifest.ref} asks for host networking, which this site does not allow",
                    hint="leave network unset to use the site network, or set allow_host_network "
                    "in the Site",
                    **item.at(*where),
                )
            )
        return
    problem = network_problem(network, repo.site, site, is_site=item.manifest is repo.site)
    if problem is not None:
        repo.diagnostics.append(
            error(
                "security.network_not_allowed",
                f"{item.manifest.ref}: {problem}",
                hint="leave network unset to use the site network, or ask an admin to add it to "
                "the Site's allowed_networks",
                **item.at(*where),
            )
        )


def network_problem(
    network: str, site: Site | None, spec: SiteSpec, *, is_site: bool = False
) -> str | None:
    """Why a manifest may not use `network` (host aside), or None.

    Joining another container's namespace would hand over its traffic and ports, so container:
    modes are never allowed; other names must be the site network, none, or allow-listed. The
    Site's own default is the admin's choice and needs no listing.
    """
    if network.startswith("container:"):
        return f"network {network!r} joins another container's network namespace: never allowed"
    if is_site or network == "none" or network in spec.allowed_networks:
        return None
    if site is not None and network in {
        site_network_name(site.metadata.name, spec),
        default_network(site.metadata.name, spec),
    }:
        return None
    return f"network {network!r} is not allowed by the Site"


def _recipes(repo: ConfigRepo, site: SiteSpec) -> RecipeCatalog | None:
    """The shipped recipes plus the site's; None when the site's directory is not here (CI
    without the host's files: checks that need every recipe are then skipped, and it says so)."""
    if site.recipes_dir is None:
        return shipped()
    path = Path(site.recipes_dir)
    if not path.is_absolute():
        path = repo.root / path
    where = repo.of(Site)[0][1].at("spec", "recipes_dir")
    if not os.path.isdir(path):
        repo.diagnostics.append(
            warning(
                "recipe.invalid",
                f"recipes directory {site.recipes_dir} is not here; endpoint recipe refs are "
                "not checked",
                **where,
            )
        )
        return None
    try:
        return shipped().merged(load_site_recipes(path))
    except RecipeError as exc:
        repo.diagnostics.append(error("recipe.invalid", exc.message, hint=exc.hint, **where))
        return None


# Owned environment names an endpoint may still fill with a secret reference.
SECRET_ENV = frozenset({"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"})


def _check_endpoints(repo: ConfigRepo, site: SiteSpec) -> None:
    for endpoint, item in repo.of(Endpoint):
        spec = endpoint.spec
        recipe = _check_recipe_ref(repo, endpoint, item)
        version = recipe.spec.engine_version if recipe else None
        vendor = recipe.spec.vendor if recipe else None
        for key in spec.engine.args:
            problem = flag_problem(key, version)
            if problem is not None:
                repo.diagnostics.append(
                    error(
                        "security.owned_flag" if problem.owned else "endpoint.engine_arg",
                        f"{endpoint.ref}: {problem.message}",
                        hint=problem.hint,
                        **item.at("spec", "engine", "args", key, key=True),
                    )
                )
        for name, value in spec.engine.env.items():
            where = item.at("spec", "engine", "env", name, key=True)
            by_reference = isinstance(value, SecretRef) and name in SECRET_ENV
            if name in ENV_OWNED and not by_reference:
                repo.diagnostics.append(
                    error(
                        "security.reserved_env",
                        f"{endpoint.ref} sets {name}, which ds01ctl sets",
                        hint="GPUs follow from spec.accelerator; tokens are secret references "
                        "(spec.model.token)",
                        **where,
                    )
                )
            elif (env_why := env_problem(name, vendor)) is not None and name not in ENV_OWNED:
                repo.diagnostics.append(
                    error(
                        "endpoint.env",
                        f"{endpoint.ref}: {env_why}",
                        hint="ask an admin to allow it, or leave it to the recipe",
                        **where,
                    )
                )
            if isinstance(value, str) and (kind := token_kind(value)) is not None:
                repo.diagnostics.append(
                    error(
                        "security.literal_secret",
                        f"{endpoint.ref}: the value of {name} looks like {kind}",
                        hint="never commit a token: put it in the site's secret store and write "
                        f"{name}: {{secret: <name>}}",
                        **item.at("spec", "engine", "env", name),
                    )
                )
        _check_endpoint_exposure(repo, endpoint, item, site)
        refs: list[tuple[SecretRef, tuple[str, ...]]] = []
        if spec.model.token is not None:
            refs.append((spec.model.token, ("spec", "model", "token", "secret")))
        if spec.api_key is not None:
            refs.append((spec.api_key, ("spec", "api_key", "secret")))
        refs += [
            (value, ("spec", "engine", "env", name, "secret"))
            for name, value in spec.engine.env.items()
            if isinstance(value, SecretRef)
        ]
        owner = endpoint.metadata.owner or ""
        for ref, path in refs:
            scope_why = scope_problem(ref.secret, owner, site.secret_grants)
            if scope_why is not None:
                repo.diagnostics.append(
                    error(
                        "secret.scope",
                        f"{endpoint.ref}: {scope_why}",
                        hint=f"use one of your own secrets ({owner}/<name>), or ask an admin to "
                        "grant it in the Site's secret_grants",
                        **item.at(*path),
                    )
                )


def _check_endpoint_exposure(
    repo: ConfigRepo, endpoint: Endpoint, item: Loaded, site: SiteSpec
) -> None:
    """A fixed port inside the Site's pool; the lab network only where the Site allows it."""
    spec, pool = endpoint.spec, site.endpoint_ports
    if isinstance(spec.port, int) and not pool.start <= spec.port <= pool.end:
        repo.diagnostics.append(
            error(
                "endpoint.port",
                f"{endpoint.ref}: port {spec.port} is outside the Site's endpoint pool "
                f"{pool.start}-{pool.end}",
                hint=f"use a port from {pool.start} to {pool.end}, or port: auto",
                **item.at("spec", "port"),
            )
        )
    if spec.expose == "lab" and site.endpoint_lab_address is None:
        repo.diagnostics.append(
            error(
                "endpoint.expose",
                f"{endpoint.ref}: expose: lab, but the Site sets no endpoint_lab_address",
                hint="use expose: local (127.0.0.1), or ask an admin to set one in the Site",
                **item.at("spec", "expose"),
            )
        )


def _check_recipe_ref(repo: ConfigRepo, endpoint: Endpoint, item: Loaded) -> Recipe | None:
    """The pinned recipe, or None; an error when the pin or the model names no recipe."""
    catalog = repo.recipes
    if catalog is None:
        return None
    spec = endpoint.spec
    if spec.recipe.ref is not None:
        found = catalog.find(spec.model.id, spec.recipe.ref)
        if isinstance(found, Recipe):
            return found
        repo.diagnostics.append(
            error(
                "ref.recipe",
                f"{endpoint.ref}: {found.message}",
                hint=found.hint,
                **item.at("spec", "recipe", "ref"),
            )
        )
        return None
    fallback = spec.recipe.select is not None and spec.recipe.select.allow_fallback
    serves = any(r.spec.model.family != "*" for r in catalog.for_model(spec.model.id))
    if not serves and not fallback:
        repo.diagnostics.append(
            error(
                "ref.recipe",
                f"{endpoint.ref}: no recipe serves {spec.model.id}",
                hint=no_model_hint(spec.model.id, catalog.families())
                + "; or set recipe.select.allow_fallback: true for a generic recipe",
                **item.at("spec", "model", "id"),
            )
        )
    return None
