"""An Endpoint manifest → the container that serves its model (pure).

Each endpoint goes through: its owner's account and `max_endpoints`; the recipe (pinned or
selected, every rejected candidate with its reason: `resolve/recipes.py`); the memory fit of
the model on the recipe's devices (`resolve/memfit.py`); the model in the site's cache (one
that is not is pending with the command that fetches it); its secrets on the server; its
resources within quota; a host port from the Site's pool. What passes asks the one GPU
placement of every kind for its devices (`endpoint_claims`), and gets a container:

- the engine image as it is (no account added; it runs as its owner's uid:gid, with the
  confinement every container gets), never an `aime.mlc.*` label (mlc would list and remove it);
- ds01ctl's flags first (`--model --served-model-name --host --port --tensor-parallel-size`,
  `--revision`), then the recipe's engine args with the endpoint's own over them;
- GPUs by UUID (NVIDIA), or `/dev/kfd` and the placed GPUs' render nodes (AMD);
- the model cache read-only at /models, the hub offline: a container never downloads;
- secrets as environment variables filled by the driver at create from the Site's root-only
  store: the spec holds the file and a hash of its content (its version), never the value;
- a host port on 127.0.0.1 (or the Site's lab address), kept across applies: the port a
  container already has (its label) stays its own.

The shell reads what this needs of the host into `EndpointFacts` (live/endpoints.py).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ds01ctl import labels as L
from ds01ctl.catalog.engine_flags import normalise
from ds01ctl.catalog.frameworks import FrameworkCatalog
from ds01ctl.catalog.modelfacts import shipped_facts
from ds01ctl.catalog.recipes import EngineArg, Recipe
from ds01ctl.confinement import container_confinement
from ds01ctl.manifests import Endpoint, Site
from ds01ctl.manifests.common import SecretRef
from ds01ctl.manifests.secrets import full_name, scope_problem
from ds01ctl.manifests.site import SiteSpec, default_network
from ds01ctl.model.inventory import GpuInventory
from ds01ctl.model.kinds import Kind
from ds01ctl.model.pending import PendingItem
from ds01ctl.model.spec import Bind, ContainerSpec, Power, UserAccount, limits_label
from ds01ctl.model.spechash import CURRENT_VERSION, spec_hash
from ds01ctl.resolve.allocate import GpuRequest, Models
from ds01ctl.resolve.images import mirrored
from ds01ctl.resolve.memfit import Fit, ModelFacts, estimate
from ds01ctl.resolve.placement import Claim, Placed, owner_limits
from ds01ctl.resolve.quota import EffectiveLimits
from ds01ctl.resolve.recipes import Device, Request, Selection, select, sku_of
from ds01ctl.resolve.workspaces import log_options
from ds01ctl.units import format_cpus, format_size

if TYPE_CHECKING:
    from ds01ctl.manifests.validate import ConfigRepo
    from ds01ctl.resolve.desired import Desired, World

CONTAINER_PORT = 8000  # where the server listens inside its container (--port)
LISTEN = "0.0.0.0"  # --host: every interface of its own network namespace, to be published
LOCAL = "127.0.0.1"
MODEL_MOUNT = "/models"  # the site's model cache, read-only
WORKDIR = "/tmp"
STOP_SIGNAL = "SIGTERM"
API_KEY_ENV = "VLLM_API_KEY"
TOKEN_ENV = "HF_TOKEN"


@dataclass(frozen=True)
class EndpointFacts:
    """What endpoints need of the host, read by the shell (never a secret's value)."""

    # Model id (lower-case) → the revisions (snapshot ids) the site's cache holds.
    cached: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Model id (lower-case) → its facts, read from its snapshot in the cache.
    facts: Mapping[str, ModelFacts] = field(default_factory=dict)
    # Secret name (`<login>/<name>`) → its version: a hash of the file's content.
    secrets: Mapping[str, str] = field(default_factory=dict)
    # Host TCP ports something listens on now (ours included).
    bound_ports: frozenset[int] = frozenset()


@dataclass(frozen=True)
class _Draft:
    """An endpoint on its way to a spec: everything but its GPUs and port."""

    ep: Endpoint
    account: UserAccount
    recipe: Recipe
    request: GpuRequest
    args: tuple[tuple[str, EngineArg], ...]  # merged engine args, normalised names, sorted
    secret_env: tuple[tuple[str, str, str], ...]
    secret_labels: tuple[tuple[str, str], ...]  # variable → `<secret>@<version>`
    nano_cpus: int
    memory: int
    shm_size: int
    pids: int

    @property
    def key(self) -> str:
        return target(self.ep)


@dataclass
class _Drafted:
    drafts: list[_Draft] = field(default_factory=list)
    pending: list[PendingItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _endpoints(repo: ConfigRepo) -> list[Endpoint]:
    found = [m for m, _ in repo.of(Endpoint) if isinstance(m, Endpoint)]
    return sorted(found, key=target)


def target(ep: Endpoint) -> str:
    """`endpoint/<owner>/<name>`: the plan's target and the container's key."""
    return f"{Kind.ENDPOINT.value}/{ep.metadata.owner}/{ep.metadata.name}"


def endpoint_claims(
    repo: ConfigRepo,
    site: Site,
    world: World,
    catalog: FrameworkCatalog,
    limits: dict[str, EffectiveLimits],
) -> list[Claim]:
    """The GPU requests of the endpoints that pass every other check. A server keeps its
    GPUs for as long as it exists (no hold: it is not stopped and started by hand)."""
    drafted = _draft_all(repo, site, world, limits)
    return [Claim(d.request, None) for d in drafted.drafts]


def resolve_endpoints(
    repo: ConfigRepo, site: Site, world: World, catalog: FrameworkCatalog
) -> Desired:
    """Every Endpoint as a spec or pending, with the plan's lines on its recipe and fit."""
    from ds01ctl.resolve.desired import Desired, place  # the registry module imports this one

    limits: dict[str, EffectiveLimits] = {}
    drafted = _draft_all(repo, site, world, limits)
    placed: Placed = world.placed or place(repo, site, world, catalog)
    pending = drafted.pending + placed.pending_of(Kind.ENDPOINT)
    notes = list(drafted.notes)
    ports, port_pending, port_notes = _ports(drafted.drafts, site.spec, world)
    pending += port_pending
    notes += port_notes
    specs = []
    for draft in drafted.drafts:
        placement = placed.allocation.placements.get(draft.key)
        port = ports.get(draft.key)
        if (draft.request.wants_gpu and placement is None) or port is None:
            continue
        specs.append(
            endpoint_spec(
                draft,
                site_name=site.metadata.name,
                site=site.spec,
                inventory=world.inventory,
                gpus=placement.uuids if placement else (),
                port=port,
            )
        )
    return Desired(
        tuple(specs),
        tuple(pending),
        tuple(drafted.errors),
        (),
        placed.allocation,
        placed.limits,
        (),
        tuple(notes),
    )


# --- drafting --------------------------------------------------------------------------------


def _draft_all(
    repo: ConfigRepo, site: Site, world: World, limits: dict[str, EffectiveLimits]
) -> _Drafted:
    out = _Drafted()
    per_owner: dict[str, int] = {}
    devices = site_devices(world.inventory)
    for ep in _endpoints(repo):
        owner = ep.metadata.owner or ""
        eff = owner_limits(repo, owner, world, limits)
        per_owner[owner] = per_owner.get(owner, 0) + 1
        outcome = _draft(ep, repo, site.spec, world, eff, per_owner[owner], devices, out.notes)
        if isinstance(outcome, _Draft):
            out.drafts.append(outcome)
        elif isinstance(outcome, PendingItem):
            out.pending.append(outcome)
        else:
            out.errors.append(outcome)
    return out


def site_devices(inventory: GpuInventory) -> tuple[Device, ...]:
    """The site's accelerators as recipes name them: per (SKU, MIG profile), how many and how
    much memory each (the smallest, where they differ)."""
    groups: dict[tuple[str, str | None], list[int]] = {}
    for device in inventory.devices():
        gpu = inventory.gpu(device.gpu_uuid)
        name = gpu.name if gpu is not None else ""
        groups.setdefault((sku_of(name) or name, device.profile), []).append(device.memory_mib)
    return tuple(
        Device(sku, len(memory), min(memory), mig=profile)
        for (sku, profile), memory in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or ""))
    )


def recipe_models(recipe: Recipe, selection: Selection, inventory: GpuInventory) -> Models | None:
    """The GPU models the endpoint may be placed on: those of the SKU its recipe was chosen
    for (the memory fit was checked on them). A generic recipe may go on any GPU that passed
    its checks; None (any GPU) when that is every GPU of the host, or the recipe runs on CPUs."""
    if recipe.spec.gpu == "cpu":
        return None
    skus = {d.sku for d in selection.devices}
    names = frozenset(g.name for g in inventory.gpus if (sku_of(g.name) or g.name) in skus)
    if recipe.spec.gpu == "generic" and names == {g.name for g in inventory.gpus}:
        return None
    label = recipe.spec.gpu if recipe.spec.gpu != "generic" else " or ".join(sorted(skus))
    return Models(label, names)


def _draft(
    ep: Endpoint,
    repo: ConfigRepo,
    site: SiteSpec,
    world: World,
    limits: EffectiveLimits,
    nth: int,
    devices: tuple[Device, ...],
    notes: list[str],
) -> _Draft | PendingItem | str:
    key, spec = target(ep), ep.spec
    owner = ep.metadata.owner or ""
    pin = site.users.get(owner)
    account = UserAccount(owner, pin.uid, pin.gid) if pin else world.accounts.get(owner)
    if account is None:
        return (
            f"{key}: {owner} has no passwd entry on this host and no uid pin in the Site "
            "(add spec.users in the Site, or create the account)"
        )
    cap = limits["max_endpoints"]
    if cap is not None and nth > cap:
        return PendingItem(
            key, f"{owner} may have {cap} endpoint(s) ({limits.sources['max_endpoints']})"
        )
    if repo.recipes is None:
        return PendingItem(key, "the Site's recipes_dir is not on this host; no recipe is chosen")
    selection = select(Request.of(spec), repo.recipes, devices)
    notes.extend(f"{key}: {line.strip()}" for line in selection.lines())
    if selection.chosen is None:
        return PendingItem(key, _selection_reason(selection))
    recipe = selection.chosen
    args = _merged_args(recipe, ep)
    fit = _fit(recipe, ep, selection, world)
    if fit.startswith("refused:"):
        return PendingItem(key, fit)
    notes.append(f"{key}: {fit}")
    missing = _model_missing(recipe, ep, site, world)
    if missing is not None:
        return PendingItem(key, missing)
    secrets = _secrets(ep, owner, site, world)
    if isinstance(secrets, str):
        return PendingItem(key, secrets)
    if spec.expose == "lab" and site.endpoint_lab_address is None:
        return PendingItem(
            key,
            "refused: expose: lab, but the Site sets no endpoint_lab_address (use expose: "
            "local, or ask an admin to set one)",
        )
    resources = _resources(ep, limits, site)
    if isinstance(resources, str):
        return PendingItem(key, resources)
    nano_cpus, memory, shm = resources
    request = GpuRequest(
        key,
        owner,
        count=0 if spec.accelerator.mig or recipe.spec.gpu == "cpu" else recipe.spec.count,
        profile=spec.accelerator.mig,
        pending_since=world.pending_since.get(key),
        models=recipe_models(recipe, selection, world.inventory),
    )
    env, labels = secrets
    return _Draft(
        ep, account, recipe, request, args, env, labels, nano_cpus, memory, shm, limits["pids"] or 0
    )


def _selection_reason(selection: Selection) -> str:
    text = selection.error or "no recipe"
    return f"no recipe: {text}" + (f" ({selection.hint})" if selection.hint else "")


def _merged_args(recipe: Recipe, ep: Endpoint) -> tuple[tuple[str, EngineArg], ...]:
    """The recipe's engine args with the endpoint's own over them, by vLLM's reading of the
    name (validate refused owned and unknown flags, however spelled)."""
    merged: dict[str, EngineArg] = {normalise(k): v for k, v in recipe.spec.engine_args.items()}
    merged.update({normalise(k): v for k, v in ep.spec.engine.args.items()})
    return tuple(sorted(merged.items()))


def _fit(recipe: Recipe, ep: Endpoint, selection: Selection, world: World) -> str:
    """The memory-fit line the plan prints, or why it is refused (pending: `refused: …`)."""
    spec = recipe.spec
    family = ep.spec.model.id if spec.model.family == "*" else spec.model.family
    facts = world.endpoint_facts.facts.get(family.lower()) or shipped_facts().get(family.lower())
    if facts is None:
        return (
            f"memory fit not checked: no facts for {family} (neither in the site's cache nor "
            "in the shipped table)"
        )
    if spec.gpu == "cpu":
        return "memory fit not checked: it runs on CPUs (no GPU memory to fit)"
    args = dict(_merged_args(recipe, ep))
    chosen = min(selection.devices, key=lambda d: d.memory_mib) if selection.devices else None
    if chosen is None:
        return "memory fit not checked: no device of this site fits the recipe"
    tp = spec.count
    where = f"{tp} × {chosen.shape}" if chosen.mig is None else f"one {chosen.shape}"
    result = estimate(
        facts,
        precision=spec.precision,
        tp=tp,
        memory_per_gpu=chosen.memory_mib * 1024 * 1024,
        devices=where,
        max_model_len=_int(args.get("max-model-len")),
        gpu_memory_utilization=_float(args.get("gpu-memory-utilization"), 0.9),
        kv_cache_dtype=str(args.get("kv-cache-dtype") or "auto"),
    )
    if isinstance(result, Fit):
        return result.message
    return f"refused: {result.message} ({result.hint})"


def _int(value: EngineArg) -> int | None:
    return int(value) if isinstance(value, int | float | str) and str(value).isdigit() else None


def _float(value: EngineArg, default: float) -> float:
    try:
        return float(value) if isinstance(value, int | float | str) else default
    except ValueError:
        return default


def fetch_command(model: str, revision: str | None, cache: str) -> str:
    """The admin's command that puts `model` into the site's cache (hub layout). The model and
    revision are the owner's text and an admin pastes this into a root shell: quoted."""
    pinned = ["--revision", revision] if revision else []
    return shlex.join(["huggingface-cli", "download", model, *pinned, "--cache-dir", cache])


def _model_missing(recipe: Recipe, ep: Endpoint, site: SiteSpec, world: World) -> str | None:
    weights = _weights(recipe, ep)
    revision = ep.spec.model.revision
    if site.model_cache is None:
        return (
            "the Site sets no model_cache: endpoints serve models only from the site's cache "
            "(set spec.model_cache in the Site)"
        )
    held = world.endpoint_facts.cached.get(weights.lower(), ())
    if held and (revision is None or any(r.startswith(revision) for r in held)):
        return None
    what = f"{weights}@{revision}" if revision else weights
    return (
        f"model {what} is not in the site's model cache {site.model_cache}; an admin fetches "
        f"it with: {fetch_command(weights, revision, site.model_cache)} (a gated model needs "
        "HF_TOKEN in that shell), then plans again"
    )


def _weights(recipe: Recipe, ep: Endpoint) -> str:
    """The weights the server loads: the recipe's checkpoint, or the model asked for."""
    return ep.spec.model.id if recipe.spec.model.id == "*" else recipe.spec.model.id


def _secrets(
    ep: Endpoint, owner: str, site: SiteSpec, world: World
) -> tuple[tuple[tuple[str, str, str], ...], tuple[tuple[str, str], ...]] | str:
    """(variable, file, version) per secret the endpoint names, and its labels; or why not."""
    refs: dict[str, SecretRef] = {}
    if ep.spec.model.token is not None:
        refs[TOKEN_ENV] = ep.spec.model.token
    if ep.spec.api_key is not None:
        refs[API_KEY_ENV] = ep.spec.api_key
    refs.update({k: v for k, v in ep.spec.engine.env.items() if isinstance(v, SecretRef)})
    if not refs:
        return (), ()
    env, labels = [], []
    for variable, ref in sorted(refs.items()):
        name = full_name(ref.secret, owner)
        scope = scope_problem(ref.secret, owner, site.secret_grants)
        if scope is not None:
            return f"refused: {scope}"
        if site.secrets_dir is None:
            return (
                f"secret {name} is named, but the Site sets no secrets_dir (an admin sets it to "
                "a root-only directory holding <login>/<name> files)"
            )
        version = world.endpoint_facts.secrets.get(name)
        path = f"{site.secrets_dir.rstrip('/')}/{name}"
        if version is None:
            return (
                f"secret {name} does not exist on this server (an admin writes it to {path}, "
                "mode 0600, owned by root)"
            )
        env.append((variable, path, version))
        labels.append((variable, f"{name}@{version}"))
    return tuple(env), tuple(labels)


def _resources(ep: Endpoint, limits: EffectiveLimits, site: SiteSpec) -> tuple[int, int, int] | str:
    asked = ep.spec.resources
    for key, value, show in (
        ("cpus", asked.cpus, format_cpus),
        ("memory", asked.memory, format_size),
        ("shm_size", asked.shm_size, format_size),
    ):
        cap = limits[key]
        if value is not None and cap is not None and value > cap:
            return (
                f"asks {key} {show(value)}; {ep.metadata.owner}'s quota allows {show(cap)} "
                f"({limits.sources[key]})"
            )
    cpus = asked.cpus or limits["cpus"] or 0
    memory = asked.memory or limits["memory"] or 0
    shm = asked.shm_size or limits["shm_size"] or site.container_defaults.shm_size
    return cpus, memory, shm


# --- ports -----------------------------------------------------------------------------------


def _ports(
    drafts: list[_Draft], site: SiteSpec, world: World
) -> tuple[dict[str, int], list[PendingItem], list[str]]:
    """A host port per endpoint: its manifest's, else the one its container has (sticky),
    else the lowest free one of the pool. A port something else listens on is skipped (and
    said); one of our own containers publishes is that container's."""
    pool = site.endpoint_ports
    ours: dict[str, int] = {}
    published: set[int] = set()
    for container in world.observed.ours():
        made = container.config
        if made is not None:
            published |= {host for _, _, host in made.ports}
        label = L.get(container.labels, L.DS01_PORT)
        if container.kind == Kind.ENDPOINT.value and label and label.isdigit():
            ours.setdefault(container.key, int(label))
    foreign = set(world.endpoint_facts.bound_ports) - published
    given: dict[str, int] = {}
    pending: list[PendingItem] = []
    taken: set[int] = set()
    auto: list[_Draft] = []
    for draft in drafts:
        asked = draft.ep.spec.port
        port = asked if isinstance(asked, int) else ours.get(draft.key)
        if port is None or not (isinstance(asked, int) or pool.start <= port <= pool.end):
            auto.append(draft)  # none yet, or its old one is no longer in the Site's pool
            continue
        if port in taken or port in foreign:
            if isinstance(asked, int):
                who = "another endpoint" if port in taken else "something else on the host"
                pending.append(
                    PendingItem(draft.key, f"port {port} is in use by {who} (choose another)")
                )
                continue
            auto.append(draft)  # its old port went to someone else meanwhile: a new one
            continue
        given[draft.key] = port
        taken.add(port)
    skipped = _auto_ports(auto, range(pool.start, pool.end + 1), taken, foreign, given, pending)
    notes: list[str] = []
    notes += [
        f"endpoint port {p} of the pool is in use by something else on the host: skipped"
        for p in sorted(skipped)
    ]
    return given, pending, notes


def _auto_ports(
    auto: list[_Draft],
    pool: range,
    taken: set[int],
    foreign: set[int],
    given: dict[str, int],
    pending: list[PendingItem],
) -> set[int]:
    """The lowest free pool port per endpoint, in key order; the ports skipped as in use."""
    skipped: set[int] = set()
    candidates = iter(pool)
    for draft in auto:
        port = None
        for candidate in candidates:
            if candidate in taken:
                continue
            if candidate in foreign:
                skipped.add(candidate)
                continue
            port = candidate
            break
        if port is None:
            pending.append(
                PendingItem(
                    draft.key,
                    f"no free port in the Site's endpoint pool {pool.start}-{pool.stop - 1} "
                    "(widen endpoint_ports, or remove an endpoint)",
                )
            )
            continue
        given[draft.key] = port
        taken.add(port)
    return skipped


# --- the container ---------------------------------------------------------------------------


def endpoint_spec(
    draft: _Draft,
    *,
    site_name: str,
    site: SiteSpec,
    inventory: GpuInventory,
    gpus: tuple[str, ...],
    port: int,
) -> ContainerSpec:
    ep, recipe = draft.ep, draft.recipe
    owner = ep.metadata.owner or ""
    served = ep.spec.model.served_name or ep.metadata.name
    weights = _weights(recipe, ep)
    image = mirrored(ep.spec.engine.image or recipe.spec.image, site.image_mirrors)
    vendor, nodes = _vendor_nodes(gpus, inventory)
    env = {k: v for k, v in recipe.spec.env.items()}
    env.update({k: v for k, v in ep.spec.engine.env.items() if isinstance(v, str)})
    env.update(
        {
            "HF_HUB_CACHE": MODEL_MOUNT,
            "HF_HUB_OFFLINE": "1",  # never download: the model is in the site's cache
            "HOME": WORKDIR,
            "USER": owner,  # the uid has no passwd entry in the image; getpass asks $USER
        }
    )
    if vendor == "amd":
        # The container sees only its own render nodes: ROCm numbers them 0…n-1 inside.
        env["HIP_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(gpus)))
    cap_drop, cap_add, security_opt = container_confinement(
        site.container_defaults.capabilities, False
    )
    address = site.endpoint_lab_address if ep.spec.expose == "lab" else LOCAL
    assert address is not None  # `_draft` refused expose: lab without an address
    binds = (Bind(MODEL_MOUNT, site.model_cache or "", True),)
    spec = ContainerSpec(
        kind=Kind.ENDPOINT.value,
        owner=owner,
        name=ep.metadata.name,
        container_name="",
        image=image,
        image_tag=image,  # run as it is: nothing of the owner is added to an engine image
        account=draft.account,
        command=_command(weights, served, recipe.spec.count, ep.spec.model.revision, draft.args),
        working_dir=WORKDIR,
        env=tuple(sorted(env.items())),
        binds=binds,
        network=default_network(site_name, site),
        network_defaulted=site.container_defaults.network is None,
        shm_size=draft.shm_size,
        ulimits=tuple(sorted(site.container_defaults.ulimits.items())),
        stop_signal=STOP_SIGNAL,
        stop_grace=site.container_defaults.stop_grace_period,
        gpus=tuple(sorted(gpus)),
        nano_cpus=draft.nano_cpus,
        memory=draft.memory,
        memory_swap=draft.memory,  # no swap: a server paging its weights is no server
        pids=draft.pids,
        restart_policy="no",
        tty=False,
        power=Power.RUNNING,
        snapshot_on_replace=False,
        cap_drop=cap_drop,
        cap_add=cap_add,
        security_opt=security_opt,
        log_options=log_options(site),
        ports=((CONTAINER_PORT, address, port),),
        devices=nodes,
        gpu_vendor=vendor,
        secret_env=draft.secret_env,
        ready_path=ep.spec.health.path,
        served_name=served,
        start_timeout=ep.spec.health.start_timeout,
        rollback=ep.spec.rollback == "auto",
    )
    # A new shape, a new name: the replaced container is kept (stopped) beside its
    # replacement until that one is Ready, to come back if it never is.
    shape = spec_hash(spec)[:8]
    spec = dataclasses.replace(spec, container_name=f"ep.{owner}.{ep.metadata.name}.{shape}")
    return _with_labels(spec, site_name, site, draft, weights, port)


def _vendor_nodes(gpus: tuple[str, ...], inventory: GpuInventory) -> tuple[str, tuple[str, ...]]:
    """Whose GPUs these are, and the device nodes an AMD container is given."""
    found = [inventory.device(u) for u in gpus]
    physical = [inventory.gpu(d.gpu_uuid) for d in found if d is not None]
    amd = [g for g in physical if g is not None and g.vendor == "amd"]
    if not amd:
        return "nvidia", ()
    nodes = sorted({g.render_node for g in amd if g.render_node})
    return "amd", tuple(sorted({"/dev/kfd", *nodes}))


def _command(
    weights: str,
    served: str,
    tp: int,
    revision: str | None,
    args: tuple[tuple[str, EngineArg], ...],
) -> tuple[str, ...]:
    """ds01ctl's flags first, then the merged engine args (validate kept owned ones out),
    each `--name=value`."""
    command = [
        "--model",
        weights,
        "--served-model-name",
        served,
        "--host",
        LISTEN,
        "--port",
        str(CONTAINER_PORT),
        "--tensor-parallel-size",
        str(tp),
    ]
    if revision:
        command += ["--revision", revision]
    for name, value in args:
        if value is False:
            continue
        # One word per flag: a value on its own word would be read as a flag (`--api-key=…`)
        # or as the positional model if it followed a flag that takes none.
        bare = value is None or value is True
        command.append(f"--{name}" if bare else f"--{name}={value}")
    return tuple(command)


def _with_labels(
    spec: ContainerSpec, site_name: str, site: SiteSpec, draft: _Draft, weights: str, port: int
) -> ContainerSpec:
    labels = dict(site.container_defaults.labels)
    labels.update(
        {
            L.DS01_INTERFACE: L.INTERFACE,
            L.DS01_SITE: site_name,
            L.DS01_KIND: spec.kind,
            L.DS01_OWNER: spec.owner,
            L.DS01_NAME: spec.name,
            L.DS01_IMAGE: spec.image,
            L.DS01_HASH_VERSION: CURRENT_VERSION,
            L.DS01_GPU_UUIDS: L.encode_list(spec.gpus),
            L.DS01_RECIPE: draft.recipe.spec.ref,
            L.DS01_PORT: str(port),
            L.DS01_SERVED: spec.served_name,
            L.DS01_MODEL: weights,
        }
    )
    if draft.secret_labels:
        labels[L.DS01_SECRET_ENV] = L.encode_list(v for v, _ in draft.secret_labels)
        labels[L.DS01_SECRETS] = L.encode_pairs(dict(draft.secret_labels))
    spec = dataclasses.replace(spec, labels=tuple(sorted(labels.items())))
    labels[L.DS01_SPEC_HASH] = spec_hash(spec)
    labels[L.DS01_LIMITS] = limits_label(spec)
    L.check_values(labels)
    return dataclasses.replace(spec, labels=tuple(sorted(labels.items())))
