"""The imperative shell around the pure core: validate, observe, resolve, diff.

This is the only place that wires I/O (Docker, NVML or a fixture, passwd, git) to the
pure functions; commands in `cli.py` call one function here and render what it returns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ds01ctl import __version__
from ds01ctl.errors import Ds01Error, PlanRejected, StalePlan, ValidationFailed
from ds01ctl.manifests import Endpoint, Image, Site, Workspace
from ds01ctl.manifests.site import site_network_name
from ds01ctl.manifests.validate import ConfigRepo, set_aside_invalid, validate_path
from ds01ctl.model.inventory import GpuInventory
from ds01ctl.plan.actions import Action, ActionKind, Plan, PlanMeta, Step, StepKind

if TYPE_CHECKING:
    from ds01ctl.apply.executor import Outcome, Reporter
    from ds01ctl.apply.journal import Journal
    from ds01ctl.apply.lock import OnWait
    from ds01ctl.images.dockerfile import BuildSources
    from ds01ctl.lifecycle.stops import StopsRead
    from ds01ctl.model.driver import Driver
    from ds01ctl.model.observed import Observed
    from ds01ctl.resolve.desired import Desired, World


@dataclass(frozen=True)
class PlanResult:
    repo: ConfigRepo
    plan: Plan
    desired: Desired
    observed: Observed


def load_repo(path: Path, today: dt.date) -> ConfigRepo:
    """The validated config repo; objects in users' files that did not validate are set aside
    (they are pending in the plan), and only other errors stop it."""
    repo = validate_path(path, today=today)
    if set_aside_invalid(repo):
        raise ValidationFailed(repo.diagnostics)
    return repo


def gpu_inventory(repo: ConfigRepo) -> GpuInventory:
    from ds01ctl.live.gpus import load_inventory_file
    from ds01ctl.live.nvml import NvmlSource

    assert repo.site is not None
    source = repo.site.spec.gpus
    if source.source == "fixture":
        assert source.fixture is not None
        path = Path(source.fixture)
        if not path.is_absolute():
            path = Path(os.path.normpath(repo.root / path))
        return load_inventory_file(path)
    return NvmlSource().snapshot()


def make_plan(
    path: Path,
    *,
    prune: bool = False,
    driver: Driver | None = None,
    now: dt.datetime | None = None,
    repo: ConfigRepo | None = None,
    state_dir: Path | None = None,
    targets: tuple[str, ...] = (),
    adopt: bool = False,
    rebuild: tuple[str, ...] = (),
) -> PlanResult:
    """Validate, observe, resolve and diff: the plan for the config repo at `path`; with
    `targets`, only the actions on them (and what those depend on)."""
    from ds01ctl.drivers.docker import DockerDriver
    from ds01ctl.ledger import read_ledger
    from ds01ctl.live.accounts import lookup_accounts, uid_logins
    from ds01ctl.live.endpoints import endpoint_facts
    from ds01ctl.live.paths import mount_problems
    from ds01ctl.plan.diff import diff, removed_containers
    from ds01ctl.plan.staleness import restrict
    from ds01ctl.resolve.desired import World
    from ds01ctl.statedir import existing_state_dir

    now = now or dt.datetime.now(dt.UTC)
    repo = repo or load_repo(path, now.date())
    assert repo.site is not None and repo.catalog is not None
    targets = tuple(_spelled(t) for t in targets)
    if prune:
        refuse_partial_prune(repo, path, targets=())
    # Read before Docker is asked anything: a misplaced state dir is one line, at once.
    ledger = read_ledger(existing_state_dir(state_dir_of(repo, state_dir)))
    driver = driver or DockerDriver.connect()
    inventory = gpu_inventory(repo)
    state = driver.observe(repo.site.metadata.name)
    kinds = (Workspace, Endpoint, Image)
    owners = {m.metadata.owner or "" for kind in kinds for m, _ in repo.of(kind)}
    accounts = lookup_accounts(owners - set(repo.site.spec.users))
    pinned = uid_logins(pin.uid for pin in repo.site.spec.users.values())
    sources, requirements = image_inputs(repo)
    world = World(
        state,
        inventory,
        accounts,
        now,
        ledger.pending_since,
        mount_problems(repo),
        uid_logins=pinned,
        adopt=adopt,
        build_sources=sources,
        image_requirements=requirements,
        rebuild=rebuild_targets(repo, rebuild),
        endpoint_facts=endpoint_facts(repo),
    )
    desired = _resolve_available(repo, world, driver)
    if desired.errors:
        raise PlanRejected(list(desired.errors))
    logins = uid_logins(p.uid for p in inventory.processes if p.uid is not None)
    stops = _lifecycle_stops(state_dir_of(repo, state_dir))

    def planned(observed: Observed) -> Plan:
        plan = diff(
            desired,
            observed,
            inventory,
            prune=prune,
            logins=logins,
            named=manifest_images(repo),
            lifecycle_stopped=stops.in_force(observed.ours()),
        )
        plan = _with_mkdir_notes(_with_demand_note(plan, desired), repo)
        if repo.partial:
            plan = restrict(plan, _named_targets(repo), why=f"only what {path} declares")
        if targets:
            plan = restrict(plan, known_targets(repo, plan, targets))
        return plan

    plan = planned(state)
    removed = removed_containers(plan)
    if removed:
        # How much each removed container's writable layer changed is costly to read (the
        # engine walks the layer): read it only for those, then diff again to show it.
        state = driver.with_layer_changes(state, removed)
        plan = planned(state)
    meta = PlanMeta(
        ds01ctl_version=__version__,
        site=repo.site.metadata.name,
        state_dir=str(state_dir_of(repo, state_dir)),
        engine_id=state.engine.id,
        engine_version=state.engine.version,
        observed_at=now.isoformat(),
        gpu_source=inventory.source,
        config_commit=_git_commit(repo.root),
        config_root=str(repo.root.resolve()),
        prune=prune,
        targets=tuple(targets),
        adopt=adopt,
    )
    warnings = (
        *plan.warnings,
        *_session_warnings(plan, state, driver),
        *filter(None, [ledger.problem, stops.problem]),
    )
    return PlanResult(
        repo,
        dataclasses.replace(plan, meta=meta, warnings=warnings),
        desired,
        state,
    )


def _resolve_available(repo: ConfigRepo, world: World, driver: Driver) -> Desired:
    """Resolve, asking the engine for the images the result needs.

    An image that cannot be had makes its workspaces pending; that may free GPUs for others,
    whose images are then checked in turn (each reference is asked once). A build's base is
    asked the same way (the Image is pending), and a tag this plan builds is not asked at all.
    """
    from ds01ctl.resolve.desired import resolve

    assert repo.catalog is not None
    desired = resolve(repo, world, repo.catalog)
    asked: dict[str, str | None] = {}
    while unasked := _images_to_ask(desired, world.observed) - set(asked):
        unavailable = driver.unavailable_images(sorted(unasked))
        asked.update({reference: unavailable.get(reference) for reference in unasked})
        refused = _refusals(desired, asked)
        if not refused:
            break
        world = dataclasses.replace(world, refused_images={**world.refused_images, **refused})
        desired = resolve(repo, world, repo.catalog)
    return desired


def _lifecycle_stops(state_dir: Path) -> StopsRead:
    from ds01ctl.lifecycle.stops import read_stops

    return read_stops(state_dir)


def _with_demand_note(plan: Plan, desired: Desired) -> Plan:
    """High-demand mode (shorter idle timeouts) lasts while a request waits for a GPU: the
    plan says so."""
    from ds01ctl.lifecycle.policy import demand_note, gpu_demand

    note = demand_note(gpu_demand(desired.allocation.pending))
    return plan if note is None else dataclasses.replace(plan, notes=(*plan.notes, note))


def _with_mkdir_notes(plan: Plan, repo: ConfigRepo) -> Plan:
    """Say on each create and replace which missing mount sources apply will make, as whom."""
    from ds01ctl.live.paths import missing_source

    assert repo.site is not None
    site = repo.site.spec
    actions = []
    for action in plan.actions:
        spec = action.container
        kinds = (ActionKind.CREATE, ActionKind.REPLACE)
        if spec is not None and spec.kind == "workspace" and action.kind in kinds:
            made = [
                f"+ mkdir {path} (as {spec.account.login}, {site.mount_dir_mode})"
                for bind in spec.binds
                if (path := missing_source(bind, spec.owner, site.mount_policy)) is not None
            ]
            if made:
                note = "; ".join(filter(None, [action.note, *made]))
                actions.append(dataclasses.replace(action, note=note))
                continue
        actions.append(action)
    return dataclasses.replace(plan, actions=tuple(actions))


def _session_warnings(plan: Plan, observed: Observed, driver: Driver) -> list[str]:
    """Live `docker exec` sessions in the running containers the plan replaces or deletes:
    apply refuses those without --force, so the plan says so first (a costly read, made
    only for those containers)."""
    from ds01ctl.plan.actions import ActionKind

    running = {c.id for c in observed.containers if c.running}
    warnings = []
    for action in plan.actions:
        if action.kind not in (ActionKind.REPLACE, ActionKind.DELETE):
            continue
        if action.container_id not in running:
            continue
        count = driver.sessions(action.container_id)
        if count:
            verb = "replace" if action.kind is ActionKind.REPLACE else "delete"
            warnings.append(
                f"{action.target} has {count} live `docker exec` session(s) (processes besides "
                f"its shell); apply will refuse to {verb} it without --force"
            )
    return warnings


def _named_targets(repo: ConfigRepo) -> set[str]:
    """The plan targets of the objects declared in the files named on the command line."""
    return {
        f"{type(m).__name__.lower()}/{m.metadata.owner or ''}/{m.metadata.name}"
        for m in (item.manifest for item in repo.named)
    }


def known_targets(repo: ConfigRepo, plan: Plan, targets: tuple[str, ...]) -> tuple[str, ...]:
    """`--target`s as the plan spells them (the kind in lower case); one that names nothing
    declared and nothing in the plan is an error naming the nearest targets, never a silent
    empty plan."""
    import difflib

    declared = {
        f"{type(item.manifest).__name__.lower()}/{item.manifest.metadata.owner or ''}/"
        f"{item.manifest.metadata.name}"
        for item in repo.loaded
    }
    known = (
        declared
        | {a.target for a in plan.actions}
        | set(plan.orphans)
        | {p.target for p in plan.pending}
    )
    spelled = []
    for target in targets:
        name = _spelled(target)
        if name not in known:
            near = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.5)
            hint = f"nearest: {', '.join(near)}" if near else "targets are KIND/OWNER/NAME"
            raise Ds01Error(
                f"--target {target} matches nothing declared or planned",
                hint=hint,
                code="unknown_target",
            )
        spelled.append(name)
    return tuple(spelled)


def _spelled(target: str) -> str:
    """A target as the plan spells it: the kind in lower case (`Workspace/a/b` is typed too)."""
    kind, slash, rest = target.partition("/")
    return f"{kind.lower()}{slash}{rest}"


def _refusals(desired: Desired, asked: dict[str, str | None]) -> dict[str, str]:
    refused = {
        s.key: _image_refusal(s.image, why)
        for s in desired.specs
        if (why := asked.get(s.image)) is not None
    }
    return refused | {
        b.key: _image_refusal(b.base, why).replace("refused: image", "refused: base image")
        for b in desired.builds
        if (why := asked.get(b.base)) is not None
    }


def _images_to_ask(desired: Desired, observed: Observed) -> set[str]:
    """The images the plan's containers and builds need that no build of this plan makes."""
    built = {b.tag for b in desired.builds}
    bases = {b.base for b in desired.builds if b.tag not in observed.images or b.rebuild}
    return {s.image for s in desired.specs if s.image not in built} | bases


def image_inputs(
    repo: ConfigRepo,
) -> tuple[BuildSources | None, dict[str, tuple[str, ...]]]:
    """What Image builds are made of, read from the host and the config repo (only when the
    repo declares Images): the Site's package sources and each requirements file's lines."""
    from ds01ctl.images.render import build_sources
    from ds01ctl.manifests.imagefiles import read_requirements

    assert repo.site is not None
    images = repo.of(Image)
    if not images:
        return None, {}
    display_root = repo.loading.display_root if repo.loading else ""
    requirements = {}
    for image, item in images:
        if image.spec.requirements_file is not None:
            owner = image.metadata.owner or ""
            read = read_requirements(
                repo.root, item, display_root, image.spec.requirements_file, owner
            )
            requirements[f"image/{owner}/{image.metadata.name}"] = read.requirements
    return build_sources(repo.site.spec.images), requirements


def _spelled_image(reference: str) -> str:
    """`OWNER/NAME` or `image/OWNER/NAME` as `OWNER/NAME`."""
    return reference.removeprefix("image/").removeprefix("Image/")


def rebuild_targets(repo: ConfigRepo, rebuild: tuple[str, ...]) -> frozenset[str]:
    """`--rebuild`s as Image targets; one naming no declared Image is an error."""
    declared = {f"{i.metadata.owner or ''}/{i.metadata.name}" for i, _ in repo.of(Image)}
    for reference in rebuild:
        if _spelled_image(reference) not in declared:
            raise Ds01Error(
                f"--rebuild {reference} names no declared Image",
                hint=f"declared: {', '.join(sorted(declared))}" if declared else "declare one",
                code="unknown_target",
            )
    return frozenset(f"image/{_spelled_image(r)}" for r in rebuild)


def _image_refusal(reference: str, why: str) -> str:
    return (
        f"refused: image {reference} is not on this host and cannot be pulled ({why}); build "
        "or load it, or map it to a local mirror in the Site's image_mirrors"
    )


def _git_commit(root: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None  # not a git checkout: the plan records no commit
    return done.stdout.strip() or None


@dataclass(frozen=True)
class ApplySettings:
    state_dir: Path | None = None  # overrides the Site's
    lock_dir: Path | None = None
    lock_timeout: float = 0.0
    parallelism: int = 4
    force: bool = False
    prune: bool = False
    targets: tuple[str, ...] = ()
    adopt: bool = False  # --adopt
    rebuild: tuple[str, ...] = ()  # Images (OWNER/NAME) to build again (a newer base)
    build_progress: Callable[[str, str], None] | None = None  # (tag, step line), on a TTY


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    outcome: Outcome | None  # None: nothing to do, or not confirmed
    apply_id: str | None
    pruned: tuple[str, ...] = ()  # older snapshots removed by the Site's retention


def state_dir_of(repo: ConfigRepo, override: Path | None) -> Path:
    """`--state-dir` (from the working directory), else the Site's state_dir: a relative one
    is taken from the config repo's root, the directory of the Site manifest, so that every
    command finds the same state wherever it is run from."""
    assert repo.site is not None
    if override is not None:
        return override.absolute()
    site_dir = Path(repo.of(Site)[0][1].file).parent.absolute()
    return Path(os.path.normpath(site_dir / repo.site.spec.state_dir))


def manifest_images(repo: ConfigRepo) -> frozenset[str]:
    """The image_ref of every declared workspace: a snapshot one names is in use."""
    return frozenset(ws.spec.image_ref for ws, _ in repo.of(Workspace) if ws.spec.image_ref)


def apply_changes(
    path: Path,
    settings: ApplySettings,
    *,
    confirm: Callable[[Plan], bool],
    reporter: Reporter,
    plan_file: Path | None = None,
    driver: Driver | None = None,
    on_lock_wait: OnWait | None = None,
    select: Callable[[Plan], Plan] | None = None,
    before_step: Callable[[Action, Step], None] | None = None,
) -> ApplyResult:
    """Lock the engine, plan (or load and re-check a saved plan), confirm, execute.

    `select` narrows the plan made under the lock to what may run (the reconcile loop's
    auto-apply policy); `before_step` runs before each step acts (a stop request abandons
    the steps not started yet by raising there: they are journaled as failed)."""
    from ds01ctl.apply.executor import Context, execute
    from ds01ctl.apply.journal import Journal
    from ds01ctl.apply.lock import engine_lock, lock_dir_default
    from ds01ctl.drivers.docker import DockerDriver
    from ds01ctl.ledger import load_pending_since, record_pending
    from ds01ctl.live.endpoints import cache_rules
    from ds01ctl.statedir import writable_state_dir

    now = dt.datetime.now(dt.UTC)
    repo = load_repo(path, now.date())
    assert repo.site is not None
    if plan_file is not None and (settings.targets or settings.prune or settings.adopt):
        raise Ds01Error(
            "--target, --prune and --adopt shape a new plan; a saved plan is applied whole, "
            "as saved",
            hint="make the plan with them: `ds01ctl plan --out FILE --prune` (or without)",
            code="plan_file_options",
        )
    if settings.prune:
        refuse_partial_prune(repo, path, targets=settings.targets)
    # Checked before Docker is asked anything: an apply that could not journal stops here.
    state_dir = writable_state_dir(state_dir_of(repo, settings.state_dir))
    driver = driver or DockerDriver.connect()
    with engine_lock(
        settings.lock_dir or lock_dir_default(),
        driver.backend_id,
        timeout=settings.lock_timeout,
        on_wait=on_lock_wait,
    ):
        plan, digest = _plan_to_apply(path, repo, settings, driver, state_dir, plan_file)
        if select is not None:
            from ds01ctl.plan.render_json import dumps, plan_document

            plan = select(plan)
            digest = _digest(dumps(plan_document(plan, mask_secrets=False)))
        # Waiting times feed the fair order of GPU placement: apply, the writer, keeps them.
        record_pending(
            state_dir, (p.target for p in plan.pending), now, load_pending_since(state_dir)
        )
        if not plan.actions or not confirm(plan):
            return ApplyResult(plan, None, None)
        apply_id = uuid.uuid4().hex[:12]
        journal = Journal(state_dir, apply_id)
        try:
            site = repo.site
            ctx = Context(
                driver,
                site.metadata.name,
                settings.force,
                cache_rules(site.spec),  # the mount policy, and endpoints' model cache
                int(site.spec.mount_dir_mode, 8),
                site_network=site_network_name(site.metadata.name, site.spec),
                inter_container=site.spec.network.inter_container,
                before_step=_chained(before_step, _slow_steps_hook()),
                build_logs=state_dir / "builds",
                build_progress=settings.build_progress,
            )
            outcome = execute(
                plan, ctx, journal, reporter, parallelism=settings.parallelism, plan_digest=digest
            )
            pruned = _keep_snapshots(repo, plan, outcome, driver, journal)
        finally:
            journal.close()
    return ApplyResult(plan, outcome, apply_id, pruned)


def _keep_snapshots(
    repo: ConfigRepo, plan: Plan, outcome: Outcome, driver: Driver, journal: Journal
) -> tuple[str, ...]:
    """After the plan ran, the Site's retention (snapshots.keep_per_workspace) for the
    workspaces it snapshotted: older snapshots beyond it go, never one in use. Shell work on a
    fresh observation, so the executor stays a dispatcher of plan data."""
    from ds01ctl.plan.retention import beyond_retention, images_in_use

    assert repo.site is not None
    keep = repo.site.spec.snapshots.keep_per_workspace
    snapshotted = sorted(
        {
            action.target
            for action in plan.actions
            for step in action.steps
            if step.kind is StepKind.SNAPSHOT and outcome.done.get(step.id)
        }
    )
    if keep is None or not snapshotted:
        return ()
    site = repo.site.metadata.name
    in_use = (
        images_in_use(driver.observe(site))
        | manifest_images(repo)
        | frozenset(a.container.image for a in plan.actions if a.container is not None)
    )
    removed: list[str] = []
    for target in snapshotted:
        for snap in beyond_retention(driver.snapshots(site), keep, in_use, target):
            driver.remove_snapshot(snap.reference)
            removed.append(snap.reference)
    if removed:
        journal.record("snapshots_pruned", removed=removed, keep_per_workspace=keep)
    return tuple(removed)


# Test hook: `<target>=<seconds>` pauses every step of that object after its intent is
# journaled, so a test can kill a real apply mid-way. Unset in normal use.
SLOW_ACTION_ENV = "DS01CTL_TEST_SLOW_ACTION"


def _slow_steps_hook() -> Callable[[Action, Step], None] | None:
    target, _, seconds = os.environ.get(SLOW_ACTION_ENV, "").rpartition("=")
    if not target:
        return None
    pause = float(seconds)

    def hook(action: Action, step: Step) -> None:
        if action.target == target:
            time.sleep(pause)

    return hook


def _chained(
    *hooks: Callable[[Action, Step], None] | None,
) -> Callable[[Action, Step], None] | None:
    present = [hook for hook in hooks if hook is not None]
    if not present:
        return None

    def hook(action: Action, step: Step) -> None:
        for each in present:
            each(action, step)

    return hook


def _plan_to_apply(
    path: Path,
    repo: ConfigRepo,
    settings: ApplySettings,
    driver: Driver,
    state_dir: Path,
    plan_file: Path | None,
) -> tuple[Plan, str]:
    from ds01ctl.plan.planfile import load_plan
    from ds01ctl.plan.render_json import dumps, plan_document
    from ds01ctl.plan.staleness import differences, stale_reasons

    if plan_file is None:
        plan = make_plan(
            path,
            prune=settings.prune,
            driver=driver,
            repo=repo,
            state_dir=state_dir,
            targets=settings.targets,
            adopt=settings.adopt,
            rebuild=settings.rebuild,
        ).plan
        return plan, _digest(dumps(plan_document(plan, mask_secrets=False)))
    saved = load_plan(plan_file, state_dir=state_dir)
    fresh = make_plan(
        path,
        prune=saved.meta.prune,
        driver=driver,
        repo=repo,
        state_dir=state_dir,
        targets=saved.meta.targets,
        adopt=saved.meta.adopt,
    ).plan
    reasons = stale_reasons(saved, fresh)
    if reasons:
        raise StalePlan(
            f"the saved plan is stale: {'; '.join(reasons)}",
            hint="make a new plan with `ds01ctl plan --out FILE`",
        )
    differs = differences(saved, fresh)
    if differs:
        raise StalePlan(
            f"the saved plan is not what {repo.root} plans now: {'; '.join(differs)}",
            hint="make a new plan with `ds01ctl plan --out FILE`, or name its config repo "
            "with -C PATH",
        )
    return saved, _digest(plan_file.read_text())


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def refuse_partial_prune(repo: ConfigRepo, path: Path, *, targets: tuple[str, ...]) -> None:
    """--prune deletes what the manifests do not declare: only with the whole repo in view."""
    site_file = Path(repo.of(Site)[0][1].file)
    whole = path.is_dir() and site_file.parent.resolve() == path.resolve()
    if targets or not whole:
        raise Ds01Error(
            "--prune needs the whole config repo: without --target, and with PATH its root "
            "(the directory of the Site manifest)",
            hint=f"run it on {site_file.parent}",
            code="partial_prune",
        )
