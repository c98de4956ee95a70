"""The desired state of the whole site: every declared workspace as a container spec, placed
on GPUs, or pending with the reason it cannot be yet (pure).

Everything observed comes in through `World`; nothing here talks to Docker, NVML, the
clock or the host's passwd. Problems no retry can fix (a user without a uid, more CPUs than
the host has) are errors; a request that quota or free GPUs cannot satisfy now is pending.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from ds01ctl import labels as L
from ds01ctl.catalog.frameworks import CatalogEntry, FrameworkCatalog
from ds01ctl.confinement import isolates_root
from ds01ctl.images.dockerfile import BuildSources
from ds01ctl.manifests import Endpoint, Image, Site, Workspace
from ds01ctl.manifests.imagepolicy import IMAGE_HINT, image_problem
from ds01ctl.manifests.site import SiteSpec, UserPin
from ds01ctl.manifests.validate import ConfigRepo, target_of
from ds01ctl.model.imagebuild import ImageBuildSpec
from ds01ctl.model.inventory import GpuInventory
from ds01ctl.model.kinds import KINDS, Kind, not_planned_yet
from ds01ctl.model.observed import EngineInfo, Observed, ObservedContainer
from ds01ctl.model.pending import PendingItem
from ds01ctl.model.spec import ContainerSpec, UserAccount
from ds01ctl.resolve.adopt import Adoptable, adoption, mount_mismatch
from ds01ctl.resolve.allocate import Allocation, GpuRequest, allocate
from ds01ctl.resolve.endpoints import EndpointFacts, endpoint_claims, resolve_endpoints
from ds01ctl.resolve.gpuaccess import reached
from ds01ctl.resolve.holds import (
    ContainerHold,
    Hold,
    container_holds,
    release_for_waiting,
    stopped_holds,
)
from ds01ctl.resolve.imagebuilds import Built, image_builds, resolve_images, workspace_image
from ds01ctl.resolve.images import ARCH_OF_GENERATION, mirrored
from ds01ctl.resolve.placement import Claim, Placed, owner_limits
from ds01ctl.resolve.quota import LIFECYCLE_KEYS, EffectiveLimits, lifecycle_excess
from ds01ctl.resolve.workspaces import ImageChoice, Resources, workspace_spec
from ds01ctl.units import format_cpus, format_duration, format_size

# The resolve layer's registry line per kind: the manifests it reads. A planned kind's are
# resolved by its line in `RESOLVERS` (below); a kind the registry does not plan yet is only
# warned about (`_unsupported`).
MANIFESTS: Mapping[Kind, type[Workspace | Image | Endpoint]] = {
    Kind.WORKSPACE: Workspace,
    Kind.IMAGE: Image,
    Kind.ENDPOINT: Endpoint,
}


@dataclass(frozen=True)
class World:
    """What the shell observed for this plan."""

    observed: Observed
    inventory: GpuInventory
    accounts: Mapping[str, UserAccount]  # owners found in the host's passwd
    now: dt.datetime  # when it was observed: "now" for every decision here
    pending_since: Mapping[str, dt.datetime] = field(default_factory=dict)
    # Workspaces whose mount sources lead where the policy does not allow (symlinks): key →
    # reason. Read from the host's filesystem by the shell (`live/paths.py`).
    refused_mounts: Mapping[str, str] = field(default_factory=dict)
    # Workspaces whose image is neither on the host nor pullable (asked of the engine): key →
    # reason.
    refused_images: Mapping[str, str] = field(default_factory=dict)
    # Logins of the host's passwd by uid, for the uids the Site pins: a pin must not make one
    # login run as another's uid.
    uid_logins: Mapping[int, str] = field(default_factory=dict)
    # `--adopt`: every workspace may adopt its owner's mlc container (as `adopt: true` does).
    adopt: bool = False
    # What Image builds are made of, read by the shell: the Site's wheelhouse and apt
    # repository, and each Image's requirements file (Image target → its lines).
    build_sources: BuildSources | None = None
    image_requirements: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rebuild: frozenset[str] = frozenset()  # Image targets the admin asked to rebuild
    # What endpoints need of the host, read by the shell: models in the site's cache, their
    # facts, secret versions, ports in use (resolve/endpoints.py).
    endpoint_facts: EndpointFacts = field(default_factory=EndpointFacts)
    # The GPU placement of every kind at once, made by `resolve` before the resolvers run;
    # None: a resolver called on its own places everything itself (`place`).
    placed: Placed | None = None

    @property
    def today(self) -> dt.date:
        return self.now.date()

    @functools.cached_property
    def containers_by_name(self) -> Mapping[str, ObservedContainer]:
        return {c.name: c for c in self.observed.containers}


@dataclass(frozen=True)
class Desired:
    specs: tuple[ContainerSpec, ...]
    pending: tuple[PendingItem, ...]
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    allocation: Allocation
    limits: dict[str, EffectiveLimits]
    released: tuple[Hold, ...] = ()  # stopped workspaces whose GPUs go to someone waiting
    notes: tuple[str, ...] = ()
    # Workspaces made by adopting their owner's mlc container: key → that container's id.
    adoptions: Mapping[str, str] = field(default_factory=dict)
    builds: tuple[ImageBuildSpec, ...] = ()  # every buildable Image, built or not
    # Workspaces that take their Image's rebuild (`apply --rebuild`): replaced though their
    # tag is unchanged. A `rollout: manual` one is not among them.
    rebuilt: frozenset[str] = frozenset()
    # Stopped managed containers by id, with their owner's container hold: diff removes the
    # orphans among them whose hold is over (resolve/holds.py).
    container_holds: Mapping[str, ContainerHold] = field(default_factory=dict)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(s.key for s in self.specs) | {p.target for p in self.pending}


@dataclass
class _Draft:
    """A workspace on its way to a spec: everything but the GPUs."""

    ws: Workspace
    account: UserAccount
    image: ImageChoice
    resources: Resources
    request: GpuRequest
    adopt: Adoptable | None = None  # its owner's mlc container, which it replaces
    image_note: str | None = None  # an Image update held back (rollout: manual)
    rebuilt: bool = False  # takes its Image's rebuild (replaced on the same tag)


def resolve(repo: ConfigRepo, world: World, catalog: FrameworkCatalog) -> Desired:
    site = repo.site
    assert site is not None, "validate guarantees a Site"
    errors = _engine_refusals(site.spec, world.observed.engine)
    warnings = _unsupported(repo) + _engine_warnings(world.observed.engine)
    pending = _invalid(repo, world)
    # GPU placement spans kinds (one device, one holder): every kind's requests are placed
    # together first, and each resolver reads its share of that one placement.
    placed = place(repo, site, world, catalog)
    world = dataclasses.replace(world, placed=placed)
    parts = {kind: resolver(repo, site, world, catalog) for kind, resolver in RESOLVERS.items()}
    return Desired(
        tuple(s for p in parts.values() for s in p.specs),
        tuple(sorted(pending + [i for p in parts.values() for i in p.pending], key=_target)),
        (*errors, *(e for p in parts.values() for e in p.errors)),
        (*warnings, *(w for p in parts.values() for w in p.warnings)),
        placed.allocation,
        placed.limits,
        placed.released,
        tuple(n for p in parts.values() for n in p.notes),
        {k: v for p in parts.values() for k, v in p.adoptions.items()},
        tuple(b for p in parts.values() for b in p.builds),
        frozenset(k for p in parts.values() for k in p.rebuilt),
        _container_holds(repo, world, placed.limits),
    )


def _container_holds(
    repo: ConfigRepo, world: World, limits: Mapping[str, EffectiveLimits]
) -> dict[str, ContainerHold]:
    """Each stopped managed container's hold, from its owner's quota (an owner without
    manifests left still has one). The plan's limits are not extended with such owners."""
    scratch = dict(limits)
    ours = world.observed.ours()
    hold_of = {
        owner: owner_limits(repo, owner, world, scratch)["container_hold_after_stop"]
        for owner in sorted({c.owner for c in ours if c.owner})
    }
    return container_holds(ours, hold_of, world.now)


def place(repo: ConfigRepo, site: Site, world: World, catalog: FrameworkCatalog) -> Placed:
    """Every kind's GPU requests (`CLAIMS`) placed at once; expired holds released to waiters."""
    limits: dict[str, EffectiveLimits] = {}
    claims = [c for of in CLAIMS.values() for c in of(repo, site, world, catalog, limits)]
    allocation, released, notes = _allocate(claims, world, limits)
    return Placed(allocation, tuple(released), tuple(notes), limits)


@dataclass
class _Drafted:
    drafts: list[_Draft]
    pending: list[PendingItem]
    errors: list[str]
    warnings: list[str]
    notes: list[str]  # Image updates held back (rollout: manual)


def _workspace_drafts(
    repo: ConfigRepo,
    site: Site,
    world: World,
    catalog: FrameworkCatalog,
    limits: dict[str, EffectiveLimits],
) -> _Drafted:
    """Every Workspace as a draft (all but its GPUs), pending, or an error."""
    errors: list[str] = []
    warnings: list[str] = []
    pending: list[PendingItem] = []
    drafts: list[_Draft] = []
    per_owner: dict[str, int] = {}
    builds = image_builds(repo, site, world, catalog)
    image_notes: list[str] = []
    workspaces = [(m, f) for m, f in repo.of(MANIFESTS[Kind.WORKSPACE]) if isinstance(m, Workspace)]
    for ws, _ in sorted(workspaces, key=lambda p: p[0].key):
        owner = ws.metadata.owner or ""
        eff = owner_limits(repo, owner, world, limits)
        per_owner[owner] = per_owner.get(owner, 0) + 1
        outcome = _draft(ws, site, world, catalog, eff, per_owner[owner], builds)
        if isinstance(outcome, _Draft) and outcome.image_note:
            image_notes.append(outcome.image_note)
        if isinstance(outcome, _Draft):
            drafts.append(outcome)
        elif isinstance(outcome, PendingItem):
            pending.append(outcome)
        else:
            errors.append(outcome)
    warnings += [w for d in drafts for w in _clamped(d.ws, limits[d.request.owner])]
    drafts, over = _within_aggregates(drafts, limits, world)
    pending.extend(over)
    return _Drafted(drafts, pending, errors, warnings, image_notes)


def workspace_claims(
    repo: ConfigRepo,
    site: Site,
    world: World,
    catalog: FrameworkCatalog,
    limits: dict[str, EffectiveLimits],
) -> list[Claim]:
    """The GPU requests of the workspaces that pass every other check."""
    drafted = _workspace_drafts(repo, site, world, catalog, limits)
    return [
        Claim(
            d.request,
            gpu_hold(d.ws, limits[d.request.owner]),
            adopts=None if d.adopt is None else d.adopt.container_id,
        )
        for d in drafted.drafts
    ]


def resolve_workspaces(
    repo: ConfigRepo, site: Site, world: World, catalog: FrameworkCatalog
) -> Desired:
    """Every Workspace as a spec or pending: quota, images, and its share of the placement."""
    limits: dict[str, EffectiveLimits] = {}
    drafted = _workspace_drafts(repo, site, world, catalog, limits)
    drafts, pending, errors, warnings = (
        drafted.drafts,
        drafted.pending,
        drafted.errors,
        drafted.warnings,
    )
    warnings += [f"{who}: {e} is ignored" for who, eff in limits.items() for e in eff.expired]
    placed = world.placed or place(repo, site, world, catalog)
    allocation, released = placed.allocation, list(placed.released)
    notes = list(placed.notes)
    notes += [n for d in drafts for n in _exempted(d.ws, limits[d.request.owner])]
    notes += drafted.notes
    pending.extend(placed.pending_of(Kind.WORKSPACE))
    for hold in released:
        pending.append(
            PendingItem(
                hold.key,
                f"stopped since {hold.stopped_since:%Y-%m-%d %H:%M} UTC, past its GPU hold; its "
                "GPU goes to a waiting request and it is placed again when one is free",
            )
        )
    released_keys = {h.key for h in released}
    specs = []
    adoptions: dict[str, str] = {}
    for draft in drafts:
        placement = allocation.placements.get(draft.request.key)
        if (draft.request.wants_gpu and placement is None) or draft.request.key in released_keys:
            continue
        spec = workspace_spec(
            draft.ws,
            site_name=site.metadata.name,
            site=site.spec,
            account=draft.account,
            image=draft.image,
            resources=draft.resources,
            gpus=placement.uuids if placement else (),
        )
        if draft.adopt is not None:
            mismatch = mount_mismatch(world.containers_by_name[draft.adopt.name], spec.binds)
            if mismatch is not None:
                pending.append(PendingItem(spec.key, mismatch))
                continue
            adoptions[spec.key] = draft.adopt.container_id
        specs.append(spec)
    return Desired(
        tuple(specs),
        tuple(pending),
        tuple(errors),
        tuple(warnings),
        allocation,
        placed.limits,
        tuple(released),
        tuple(notes),
        adoptions,
        rebuilt=frozenset(d.request.key for d in drafts if d.rebuilt),
    )


def _target(item: PendingItem) -> str:
    return item.target


Resolver = Callable[[ConfigRepo, Site, World, FrameworkCatalog], Desired]

# The resolve layer's registry line per planned kind: its manifests to its share of the
# desired state (specs, pending, errors); `resolve` walks it and joins the shares. A kind
# `KINDS` does not plan has no line: it is only warned about (`_unsupported`).
RESOLVERS: Mapping[Kind, Resolver] = {
    Kind.WORKSPACE: resolve_workspaces,
    Kind.IMAGE: resolve_images,
    Kind.ENDPOINT: resolve_endpoints,
}

ClaimsOf = Callable[
    [ConfigRepo, Site, World, FrameworkCatalog, dict[str, EffectiveLimits]], list[Claim]
]

# Per kind that takes GPUs: its requests, for the one placement over all kinds (`place`).
CLAIMS: Mapping[Kind, ClaimsOf] = {
    Kind.WORKSPACE: workspace_claims,
    Kind.ENDPOINT: endpoint_claims,
}


def _invalid(repo: ConfigRepo, world: World) -> list[PendingItem]:
    """Objects in users' files that did not validate: pending with their first error. Their
    containers are left alone (a pending target is no orphan); a file naming no object one can
    tell keeps every container of its owner that nothing else declares."""
    declared = {target_of(item.manifest) for item in repo.loaded}
    found = {bad.target: bad.reason for bad in repo.invalid if bad.target is not None}
    for bad in repo.invalid:
        if bad.target is not None:
            continue
        found.setdefault(bad.file, bad.reason)
        for live in world.observed.ours():
            if live.owner == bad.owner and live.key not in declared:
                found.setdefault(live.key, f"{bad.reason} (it may be what declares this)")
    return [PendingItem(target, reason) for target, reason in sorted(found.items())]


def _engine_refusals(site: SiteSpec, engine: EngineInfo) -> list[str]:
    """Site settings this engine cannot honour safely: the plan is refused."""
    if site.allow_sudo and not isolates_root(engine.security_options):
        return [
            "the Site allows sudo in containers (allow_sudo), but this Docker engine has no "
            "user-namespace remapping and is not rootless, so root in a container would be root "
            "on the host: run dockerd with --userns-remap or rootless, or set allow_sudo: false"
        ]
    return []


def _engine_warnings(engine: EngineInfo) -> list[str]:
    if engine.default_runtime != "nvidia":
        return []
    return [
        "the engine's default runtime is nvidia: any container's environment can select GPUs "
        "(NVIDIA_VISIBLE_DEVICES); ds01ctl's containers get only theirs, but containers made "
        "outside ds01ctl can take every GPU; make runc the default runtime"
    ]


def _unsupported(repo: ConfigRepo) -> list[str]:
    """A warning per declared object of a kind this version does not plan yet."""
    return [
        not_planned_yet(m.ref)
        for kind, manifest in MANIFESTS.items()
        if not KINDS[kind].planned
        for m, _ in repo.of(manifest)
    ]


def _draft(
    ws: Workspace,
    site: Site,
    world: World,
    catalog: FrameworkCatalog,
    limits: EffectiveLimits,
    nth: int,
    builds: Mapping[str, Built] | None = None,
) -> _Draft | PendingItem | str:
    key = f"workspace/{ws.metadata.owner}/{ws.metadata.name}"
    owner = ws.metadata.owner or ""
    account = _account(owner, site.spec.users, world.accounts)
    if account is None:
        return (
            f"{key}: {owner} has no passwd entry on this host and no uid pin in the Site "
            "(add spec.users in the Site, or create the account)"
        )
    pin = site.spec.users.get(owner)
    holder = world.uid_logins.get(pin.uid) if pin is not None else None
    if pin is not None and holder is not None and holder != owner:
        return PendingItem(
            key,
            f"refused: the Site pins {owner} to uid {pin.uid}, which is {holder}'s on this host "
            f"(pin {owner} to their own uid, or remove the pin to use the host's account)",
        )
    adopt = _holder(key, ws, account, world)
    if isinstance(adopt, PendingItem):
        return adopt
    refused_mount = world.refused_mounts.get(key) or world.refused_images.get(key)
    if refused_mount is not None:
        return PendingItem(key, refused_mount)
    refused = _image_policy(ws, site.spec, catalog, account)
    if refused is not None:
        return PendingItem(key, refused)
    image, image_note, rebuilt = _chosen_image(ws, site.spec, world, catalog, builds or {})
    if isinstance(image, NotYet | PendingItem):
        return PendingItem(key, image.reason)
    if isinstance(image, str):
        return f"{key}: {image}"
    resources = _resources(ws, limits, site.spec.container_defaults.shm_size)
    if isinstance(resources, str):
        return PendingItem(key, resources)
    if resources.nano_cpus > world.observed.engine.cpus * 10**9 > 0:
        # The engine would refuse it; refusing it here keeps everyone else's plan going.
        return PendingItem(
            key,
            f"refused: asks {format_cpus(resources.nano_cpus)} CPUs; this host has "
            f"{world.observed.engine.cpus} (lower cpus in the manifest)",
        )
    max_ws = limits["max_workspaces"]
    if max_ws is not None and nth > max_ws:
        return PendingItem(
            key, f"{owner} may have {max_ws} workspace(s) ({limits.sources['max_workspaces']})"
        )
    request = GpuRequest(key, owner, ws.spec.gpus, ws.spec.mig, world.pending_since.get(key))
    refused = _gpu_policy(request, limits, world.inventory)
    if refused is not None:
        return PendingItem(key, refused)
    return _Draft(ws, account, image, resources, request, adopt, image_note, rebuilt)


def _holder(
    key: str, ws: Workspace, account: UserAccount, world: World
) -> Adoptable | PendingItem | None:
    """What holds the workspace's container name: nothing, its owner's mlc container to
    adopt, or something that makes it wait (resolve/adopt.py)."""
    name = f"{ws.metadata.name}._.{account.uid}"
    found = world.containers_by_name.get(name)
    if found is not None and found.ownership is L.Ownership.ADOPTABLE:
        outcome = adoption(found, account, consent=ws.spec.adopt or world.adopt)
        return PendingItem(key, outcome) if isinstance(outcome, str) else outcome
    in_use = _name_in_use(key, name, world)
    return None if in_use is None else PendingItem(key, in_use)


def _chosen_image(
    ws: Workspace,
    site: SiteSpec,
    world: World,
    catalog: FrameworkCatalog,
    builds: Mapping[str, Built],
) -> tuple[ImageChoice | NotYet | PendingItem | str, str | None, bool]:
    """The image to run (a build of the owner's Image, or `_image`'s), a note, and whether
    it takes its Image's rebuild."""
    if ws.spec.image is None:
        return _image(ws, site, catalog, world.inventory), None, False
    used = workspace_image(ws, builds, world)
    if isinstance(used, PendingItem):
        return used, None, False
    return ImageChoice(used.tag, used.tag, L.NO_ARCH, custom=True), used.note, used.rebuilt


def _name_in_use(key: str, name: str, world: World) -> str | None:
    """A container by another hand already has the name this workspace's would get: the
    engine would refuse the create, so it waits (and a saved plan to create it is stale)."""
    found = world.containers_by_name.get(name)
    if found is None or (found.ownership is L.Ownership.OURS and found.key == key):
        return None
    return (
        f"refused: container name {name} is in use by a container ds01ctl does not manage "
        f"here ({found.id[:12]}); remove or rename that container, or rename the workspace"
    )


def _account(
    owner: str, pins: Mapping[str, UserPin], accounts: Mapping[str, UserAccount]
) -> UserAccount | None:
    pin = pins.get(owner)
    if pin is not None:
        return UserAccount(owner, pin.uid, pin.gid)
    return accounts.get(owner)


def _image_policy(
    ws: Workspace, site: SiteSpec, catalog: FrameworkCatalog, account: UserAccount
) -> str | None:
    """What validate could not decide without the owner's uid (a per-container tag of an
    owner with no Site pin): refused here, with the reason, and the rest of the plan goes on."""
    if ws.spec.image_ref is None:
        return None
    problem = image_problem(
        ws.spec.image_ref,
        account.login,
        uid=account.uid,
        allowed=site.allowed_images,
        catalog=(e.image for e in catalog.entries),
    )
    return None if problem is None else f"refused: {problem} ({IMAGE_HINT})"


def site_architecture(configured: str | None, inventory: GpuInventory) -> str | None:
    if configured is not None:
        return configured
    generations = sorted({g.architecture for g in inventory.gpus})
    return ARCH_OF_GENERATION.get(generations[0]) if len(generations) == 1 else None


@dataclass(frozen=True)
class NotYet:
    """A request this version cannot serve yet (an image build): pending, not an error."""

    reason: str


def _image(
    ws: Workspace, site: SiteSpec, catalog: FrameworkCatalog, inventory: GpuInventory
) -> ImageChoice | NotYet | str:
    """The image to run, a request not served yet, or an error (a text no retry fixes)."""
    spec = ws.spec
    if spec.image_ref is not None:
        reference = mirrored(spec.image_ref, site.image_mirrors)
        return ImageChoice(reference, spec.image_ref, L.NO_ARCH, custom=True)
    assert spec.framework is not None
    arch = site_architecture(site.catalog.architecture, inventory)
    found = catalog.lookup(spec.framework.name, spec.framework.version, arch)
    if not isinstance(found, CatalogEntry):
        return found.message + (f" ({found.hint})" if found.hint else "")
    reference = mirrored(found.image, site.image_mirrors)
    return ImageChoice(reference, found.label, arch or found.architectures[0], custom=False)


def _memory_swap(memory: int, memory_cap: int | None, swap_cap: int | None) -> int:
    """Memory plus swap for a container with `memory` (DS01's `memory_swap`: the total, as
    Docker's --memory-swap). The quota's swap cap less its memory cap is the swap it allows;
    a container gets that much swap on top of its own memory, so a small workspace does not
    get the whole cap as swap (256m of memory, a 32g cap: 256m, not 31.75g of swap), never
    more in total than the cap, and never less than its memory (Docker refuses that). With no
    memory cap to measure the allowance against, no swap: swap past an unlimited memory is
    no one's intent."""
    if not memory or not swap_cap:
        return memory
    allowance = max(swap_cap - memory_cap, 0) if memory_cap else 0
    return max(memory, min(swap_cap, memory + allowance))


def _resources(ws: Workspace, limits: EffectiveLimits, default_shm: int) -> Resources | str:
    spec = ws.spec
    asked = {
        "cpus": spec.cpus,
        "memory": spec.memory,
        "shm_size": spec.shm_size,
        "pids": spec.pids,
    }
    for key, value in asked.items():
        cap = limits[key]
        if value is not None and cap is not None and value > cap:
            show = format_cpus if key == "cpus" else format_size if key != "pids" else str
            return (
                f"asks {key} {show(value)}; {ws.metadata.owner}'s quota allows {show(cap)} "
                f"({limits.sources[key]})"
            )
    cpus = spec.cpus or limits["cpus"] or 0
    memory = spec.memory or limits["memory"] or 0
    memory_swap = _memory_swap(memory, limits["memory"], limits["memory_swap"])
    shm = spec.shm_size or limits["shm_size"] or default_shm  # the quota is DS01's default too
    return Resources(cpus, memory, memory_swap, shm, spec.pids or limits["pids"] or 0)


def _gpu_policy(
    request: GpuRequest, limits: EffectiveLimits, inventory: GpuInventory
) -> str | None:
    if request.count and limits["allow_whole_gpus"] is False:
        return (
            f"whole GPUs are not allowed for {request.owner} ({limits.sources['allow_whole_gpus']})"
        )
    cap = limits["max_gpus_per_container"]
    devices = request.count if request.count else (1 if request.profile else 0)
    if cap is not None and devices > cap:
        return f"asks {devices} GPU devices; {request.owner} may use {cap} per container"
    if request.profile is not None and request.profile not in inventory.mig_profiles():
        offered = ", ".join(sorted(inventory.mig_profiles())) or "none"
        return f"no GPU on this host offers MIG profile {request.profile} (offered: {offered})"
    return None


def _allocate(
    claims: list[Claim], world: World, limits: Mapping[str, EffectiveLimits]
) -> tuple[Allocation, list[Hold], list[str]]:
    """Place GPU requests of every kind; release expired holds of stopped containers only
    for waiters."""
    asking = {c.request.key for c in claims}
    ours = {c.key: c.gpu_ids for c in world.observed.ours() if c.gpu_ids and c.key in asking}
    ours_ids = {c.id for c in world.observed.ours()}
    # A container being adopted goes before its workspace is made: what it holds is free.
    adopted = {c.adopts for c in claims if c.adopts is not None}
    # Taken: devices named by any container that is not a request here (others', ours that
    # are orphaned or set aside as pending), and devices a stray process uses, unless one of
    # our containers names it (that one keeps it; the process is reported as GPU misuse).
    named_by_ours = {u for c in world.observed.ours() for u in c.gpu_ids}
    # Any container reaches a device however it asked (a `--gpus` by hand, a privileged
    # one, an NVIDIA runtime): what it reaches is nobody else's to take.
    taken = {
        u
        for c in world.observed.containers
        if (c.id not in ours_ids or c.key not in asking) and c.id not in adopted
        for u in (*c.gpu_ids, *reached(c.gpu_access, world.inventory))
    }
    for process in world.inventory.processes:
        outside = process.container_id is None or process.container_id not in ours_ids
        if outside and process.device_uuid not in named_by_ours:
            taken.add(process.device_uuid)
    budgets: dict[str, Fraction | None] = {
        owner: eff["gpu_budget"] for owner, eff in limits.items()
    }
    requests = [c.request for c in claims]
    hold_of = {c.request.key: c.hold for c in claims}

    def place(existing: Mapping[str, tuple[str, ...]], excluded: frozenset[str]) -> Allocation:
        return allocate(
            world.inventory.devices(),
            [r for r in requests if r.key not in excluded],
            existing=existing,
            taken=frozenset(taken),
            budgets=budgets,
        )

    holds = stopped_holds(world.observed.ours(), hold_of)
    allocation, released = release_for_waiting(place, requests, ours, holds, world.now)
    notes = [
        f"{h.key} is not running and keeps its GPU until {h.expires_at:%Y-%m-%d %H:%M} UTC; "
        "after that it gives it up to whoever is waiting"
        for h in holds
        if h.expires_at > world.now
    ]
    return allocation, released, notes


def gpu_hold(ws: Workspace, limits: EffectiveLimits) -> int | None:
    """A workspace's GPU hold: its own value where it is stricter than its owner's, else the
    owner's (validate refuses looser values; an expired exemption's are clamped here)."""
    asked, cap = ws.spec.lifecycle.gpu_hold_after_stop, limits["gpu_hold_after_stop"]
    if asked is None:
        return cap  # type: ignore[no-any-return]
    return asked if cap is None else min(asked, cap)


_SHOW: dict[str, Callable[[int], str]] = {
    "cpus": format_cpus,
    "memory": format_size,
    "shm_size": format_size,
    "pids": str,
}


def _exempted(ws: Workspace, limits: EffectiveLimits) -> list[str]:
    """A note for each value a workspace asks that only an exemption allows: when it expires,
    the request is refused, and the plan says why it is allowed now."""
    asked: dict[str, int | None] = {
        "cpus": ws.spec.cpus,
        "memory": ws.spec.memory,
        "shm_size": ws.spec.shm_size,
        "pids": ws.spec.pids,
    }
    asked |= {key: getattr(ws.spec.lifecycle, key) for key in LIFECYCLE_KEYS}
    notes = []
    for key, value in asked.items():
        below = limits.unexempted.get(key)
        if key not in limits.reasons or value is None or below is None or value <= below:
            continue
        show = _SHOW.get(key, format_duration)
        notes.append(
            f"workspace/{ws.metadata.owner}/{ws.metadata.name}: {key} {show(value)} is above "
            f"{ws.metadata.owner}'s quota ({show(below)}); allowed by the "
            f"{limits.sources[key]}: {limits.reasons[key]}"
        )
    return notes


def _clamped(ws: Workspace, limits: EffectiveLimits) -> list[str]:
    return [
        f"workspace/{ws.metadata.owner}/{ws.metadata.name}: lifecycle {e.key} "
        f"{format_duration(e.asked)} is above {ws.metadata.owner}'s quota (an exemption that "
        f"allowed it has expired); {format_duration(e.cap)} ({e.source}) is used"
        for e in lifecycle_excess(ws.spec.lifecycle, limits)
    ]


def _within_aggregates(
    drafts: list[_Draft], limits: Mapping[str, EffectiveLimits], world: World
) -> tuple[list[_Draft], list[PendingItem]]:
    """An owner's containers together stay within aggregate CPUs and memory; workspaces that
    exist keep their place, and the newest declared ones wait."""
    existing = {c.key for c in world.observed.ours()}
    kept: list[_Draft] = []
    pending: list[PendingItem] = []
    used: dict[str, tuple[int, int]] = {}
    for draft in sorted(drafts, key=lambda d: (d.request.key not in existing, d.request.key)):
        owner = draft.request.owner
        cpus, memory = used.get(owner, (0, 0))
        cpus, memory = cpus + draft.resources.nano_cpus, memory + draft.resources.memory
        cap_cpus, cap_memory = limits[owner]["aggregate_cpus"], limits[owner]["aggregate_memory"]
        if cap_cpus is not None and cpus > cap_cpus:
            reason = (
                f"{owner}'s workspaces would use {format_cpus(cpus)} CPUs together; "
                f"the aggregate limit is {format_cpus(cap_cpus)}"
            )
        elif cap_memory is not None and memory > cap_memory:
            reason = (
                f"{owner}'s workspaces would use {format_size(memory)} memory together; "
                f"the aggregate limit is {format_size(cap_memory)}"
            )
        else:
            used[owner] = (cpus, memory)
            kept.append(draft)
            continue
        pending.append(PendingItem(draft.request.key, reason))
    kept.sort(key=lambda d: d.request.key)
    return kept, pending
