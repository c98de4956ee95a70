"""Diff: the desired state against the observed one → an ordered plan of steps (pure).

Leftover helper containers (an interrupted account setup) are cleaned up first. For each
declared object: no container → create; a replace-forcing field or the spec hash
differs → replace; only live-updatable limits differ → update; a pinned power state differs →
start/stop. Managed containers nobody declares are orphans (deleted only with --prune), except
one stopped past its owner's container hold: that one is deleted (snapshot first) regardless.
Containers this site does not own are reported, never acted on, except its owner's mlc
container that resolve lets a workspace adopt (resolve/adopt.py): that one is snapshotted
first, then stopped, removed, and the workspace is created from the snapshot.
Images an interrupted apply left (per-container tags, duplicate snapshots; with --prune
account images no container uses) are removed last, judged as the plan leaves the engine
(plan/leftovers.py).

Each action is spelled out as steps with everything apply needs, decided here from the
observation: a removal stops the container if it runs (with its own stop grace), snapshots it
unless its manifest discards the layer, removes it and drops its per-container image tag; a
replace starts the new container if the manifest pins it running or the old one ran. Steps on
one object run in order; GPU-taking steps wait for the steps freeing those GPUs (`depends_on`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, assert_never

from ds01ctl import labels as L
from ds01ctl.model.imagebuild import ImageBuildSpec
from ds01ctl.model.inventory import GpuInventory
from ds01ctl.model.kinds import Kind, container_kind
from ds01ctl.model.observed import Observed, ObservedContainer
from ds01ctl.model.spec import ContainerSpec, Power
from ds01ctl.model.spechash import as_made_by, known, older, spec_hash
from ds01ctl.plan.actions import (
    Action,
    ActionKind,
    BudgetRow,
    Drift,
    FieldChange,
    Fingerprint,
    GpuRow,
    Plan,
    Precondition,
    Reason,
    Step,
    StepKind,
    Unmanaged,
)
from ds01ctl.plan.builds import base_update, needed
from ds01ctl.plan.fields import (
    ENDPOINT_FIELDS,
    FIELDS,
    ContainerField,
    differences,
    recorded_limits,
)
from ds01ctl.plan.leftovers import leftovers
from ds01ctl.resolve.desired import Desired
from ds01ctl.resolve.gpuaccess import how, reached
from ds01ctl.resolve.holds import ContainerHold
from ds01ctl.units import about_size, format_duration

# The plan layer's registry line per planned kind: the field table its objects are compared
# with. A container's kind label that the registry (model/kinds.py) does not plan is warned
# about and left alone.
FIELD_TABLES: Mapping[Kind, tuple[ContainerField, ...]] = {
    Kind.WORKSPACE: FIELDS,
    Kind.ENDPOINT: ENDPOINT_FIELDS,
}
UPGRADE_WHY = (
    "its confinement (no-new-privileges, capabilities dropped, GPUs chosen only by ds01ctl, "
    "the site network, the log size limit)"
)

# Execution phases: what frees resources runs before what takes them.
_PHASE = {
    ActionKind.BUILD: 0,  # first: builds are slow, and what uses them waits for them
    ActionKind.CLEANUP: 0,
    ActionKind.DELETE: 0,
    ActionKind.STOP: 1,
    ActionKind.UPDATE: 2,
    ActionKind.REPLACE: 3,
    ActionKind.ADOPT: 3,
    ActionKind.CREATE: 4,
    ActionKind.START: 5,
}


@dataclass
class _Draft:
    """An action before ids and dependencies are assigned."""

    kind: ActionKind
    target: str
    reason: Reason
    changes: tuple[FieldChange, ...] = ()
    spec: ContainerSpec | None = None
    live: ObservedContainer | None = None
    note: str | None = None
    frees: tuple[str, ...] = field(default=())
    takes: tuple[str, ...] = field(default=())
    image: str | None = None  # a leftover image reference to remove (no container)
    image_id: str | None = None  # its image: removed only after the containers made from it
    build: ImageBuildSpec | None = None  # a build action's payload


def diff(
    desired: Desired,
    observed: Observed,
    inventory: GpuInventory,
    *,
    prune: bool,
    logins: Mapping[int, str] | None = None,
    named: frozenset[str] = frozenset(),
    lifecycle_stopped: Mapping[str, str] | None = None,
) -> Plan:
    """The plan that takes `observed` to `desired`. `logins` names the owners of GPU processes
    that belong to no container (uid → login); `named` are the images manifests name.
    `lifecycle_stopped` maps a workspace key to why it is not started (the lifecycle stopped
    it, and its owner has not started it since): its manifest's `power: running` waits until
    then, so the loop never starts again what the lifecycle stopped."""
    warnings = list(desired.warnings)
    held = lifecycle_stopped or {}
    by_key, duplicates = _claimants(_plannable(observed, warnings), desired)
    drafts = _removals(duplicates, desired, observed, by_key)
    drift: list[Drift] = []
    notes = list(desired.notes)
    rebuilt = _builds(desired, observed, drafts, notes)
    devices = {d.uuid for d in inventory.devices(include_unhealthy=True)}
    by_id = {c.id: c for c in observed.containers}
    for spec in desired.specs:
        live = by_key.get(spec.key)
        adopted = by_id.get(desired.adoptions.get(spec.key, ""))
        if live is None and adopted is not None:
            drafts.append(_adopt(spec, adopted))
            continue
        if live is None:
            drafts.append(
                _Draft(ActionKind.CREATE, spec.key, Reason.NEW, spec=spec, takes=spec.gpus)
            )
            continue
        if spec.key in held and spec.power is Power.RUNNING:
            notes.append(held[spec.key])
        found, found_drift, warning = _compare(_unpinned(spec, held), live, devices)
        # Rebuilt by this plan, or since its container was made (it was held back then).
        taken = spec.key in desired.rebuilt and (
            spec.image in rebuilt or spec.image in observed.images
        )
        if taken and not any(d.kind is ActionKind.REPLACE for d in found):
            why = (
                f"its Image is rebuilt ({spec.image})"
                if spec.image in rebuilt
                else f"its Image was rebuilt since it was made ({spec.image} names a newer image)"
            )
            found = [_replace(spec, live, [], Reason.IMAGE_CHANGED, why)]
        drafts.extend(found)
        drift.extend(found_drift)
        if warning:
            warnings.append(warning)
    orphans = []
    declared = desired.keys  # computed once: it is a set built from every spec
    for key, live in sorted(by_key.items()):
        if key in declared:
            continue
        hold = desired.container_holds.get(live.id)
        if hold is not None and hold.expired:
            drafts.append(_hold_expired(key, live, hold))
        elif prune:
            drafts.append(
                _Draft(
                    ActionKind.DELETE,
                    key,
                    Reason.NO_MANIFEST,
                    live=live,
                    frees=live.gpu_ids,
                )
            )
        else:
            orphans.append(key)
            if hold is not None:
                notes.append(
                    f"{key} has no manifest and is stopped since "
                    f"{hold.stopped_since:%Y-%m-%d %H:%M} UTC; at "
                    f"{hold.expires_at:%Y-%m-%d %H:%M} UTC, past its container hold of "
                    f"{format_duration(hold.seconds)}, it is removed (its writable layer kept as "
                    "a snapshot)"
                )
    drafts += _leftover_images(drafts, desired, observed, prune=prune, named=named)
    actions = _order(drafts)
    return Plan(
        actions=actions,
        drift=tuple(sorted(drift, key=lambda d: d.target)),
        orphans=tuple(orphans),
        unmanaged=_unmanaged(
            [c for c in observed.containers if c.id not in desired.adoptions.values()], inventory
        )
        + _rogue_gpu_use(inventory, observed, logins or {}),
        pending=desired.pending,
        gpus=_gpu_rows(inventory, observed, actions),
        budgets=_budgets(desired, observed, inventory, actions, orphans),
        warnings=tuple(warnings),
        notes=tuple(notes),
    )


def _removals(
    duplicates: Sequence[ObservedContainer],
    desired: Desired,
    observed: Observed,
    by_key: Mapping[str, ObservedContainer],
) -> list[_Draft]:
    """What goes whatever the manifests say: duplicates, leftover helpers, released holds."""
    drafts = [
        _Draft(
            ActionKind.DELETE,
            dup.key,
            Reason.DUPLICATE,
            live=dup,
            note=f"container {dup.name} duplicates another for the same workspace",
            frees=dup.gpu_ids,
        )
        for dup in duplicates
    ]
    drafts.extend(_leftover_helpers(observed))
    for hold in desired.released:
        live = by_key.get(hold.key)
        if live is not None:
            drafts.append(
                _Draft(
                    ActionKind.DELETE, hold.key, Reason.GPU_RELEASED, live=live, frees=live.gpu_ids
                )
            )
    return drafts


def _hold_expired(key: str, live: ObservedContainer, hold: ContainerHold) -> _Draft:
    """An orphan stopped past its owner's container hold goes without --prune, as a prune
    would take it (snapshot first). Only orphans: a declared workspace's container would be
    made again by the next plan."""
    note = (
        f"stopped since {hold.stopped_since:%Y-%m-%d %H:%M} UTC, past its container hold of "
        f"{format_duration(hold.seconds)}; removed, its writable layer kept as a snapshot"
    )
    return _Draft(
        ActionKind.DELETE,
        key,
        Reason.CONTAINER_HOLD_EXPIRED,
        live=live,
        note=note,
        frees=live.gpu_ids,
    )


def _unpinned(spec: ContainerSpec, held: Mapping[str, str]) -> ContainerSpec:
    """A workspace the lifecycle stopped is compared as `power: any`: neither started nor
    started after a replace, until its owner starts it."""
    if spec.key in held and spec.power is Power.RUNNING:
        return dataclasses.replace(spec, power=Power.ANY)
    return spec


def _builds(
    desired: Desired, observed: Observed, drafts: list[_Draft], notes: list[str]
) -> set[str]:
    """A build for each Image whose tag is missing (or asked again); the tags rebuilt."""
    rebuilt = set()
    for build in desired.builds:
        need = needed(build, observed)
        if need is None:
            if (update := base_update(build, observed)) is not None:
                notes.append(update)
            continue
        drafts.append(
            _Draft(
                ActionKind.BUILD, build.key, need.reason, need.changes, note=need.note, build=build
            )
        )
        if build.rebuild:
            rebuilt.add(build.tag)
    return rebuilt


def _leftover_helpers(observed: Observed) -> list[_Draft]:
    """Helpers an interrupted apply left behind (apply removes its own): removed, and shown."""
    drafts = []
    for helper in observed.helpers():
        what = L.get(helper.labels, L.DS01_HELPER)
        owner = L.get(helper.labels, L.DS01_OWNER) or "?"
        note = f"container {helper.name} ({what} helper) was left by an interrupted apply"
        drafts.append(
            _Draft(
                ActionKind.CLEANUP,
                f"helper/{owner}/{helper.id[:12]}",
                Reason.LEFTOVER_HELPER,
                live=helper,
                note=note,
            )
        )
    return drafts


_REMOVALS = (ActionKind.DELETE, ActionKind.REPLACE, ActionKind.ADOPT, ActionKind.CLEANUP)


def _leftover_images(
    drafts: list[_Draft],
    desired: Desired,
    observed: Observed,
    *,
    prune: bool,
    named: frozenset[str],
) -> list[_Draft]:
    """Leftover image tags, account images (--prune) and duplicate snapshots, judged as the
    plan leaves the engine (plan/leftovers.py)."""
    gone = [d.live for d in drafts if d.live is not None and d.kind in _REMOVALS]
    untagged = {c.config.image_tag for c in gone if c.config and c.config.image_tag}
    found = leftovers(
        observed,
        desired.specs,
        removed=frozenset(c.id for c in gone),
        untagged=frozenset(untagged),
        named=named,
        prune=prune,
    )
    return [
        _Draft(
            ActionKind.CLEANUP,
            item.target,
            Reason(item.reason),
            note=item.note,
            image=item.reference,
            image_id=item.image_id,
        )
        for item in found
    ]


def _plannable(observed: Observed, warnings: list[str]) -> list[ObservedContainer]:
    """Our containers of kinds this version plans; any other kind is reported, never touched."""
    found = []
    for container in observed.ours():
        kind = container_kind(container.kind)
        if kind is not None and kind in FIELD_TABLES:
            found.append(container)
        else:
            warnings.append(
                f"container {container.name} has kind {container.kind!r}, which this version "
                "does not manage; it is left alone"
            )
    return found


def _claimants(
    ours: Iterable[ObservedContainer], desired: Desired
) -> tuple[dict[str, ObservedContainer], list[ObservedContainer]]:
    """One container per object key; the others claiming the same key are duplicates.

    The container named as the spec names it wins, then the smallest name: deterministic.
    """
    names = {s.key: s.container_name for s in desired.specs}
    groups: dict[str, list[ObservedContainer]] = {}
    for container in ours:
        groups.setdefault(container.key, []).append(container)
    chosen: dict[str, ObservedContainer] = {}
    duplicates: list[ObservedContainer] = []
    for key, group in sorted(groups.items()):
        group.sort(key=lambda c: (c.name != names.get(key), c.name, c.id))
        chosen[key] = group[0]
        duplicates.extend(group[1:])
    return chosen, duplicates


def _compare(
    spec: ContainerSpec, live: ObservedContainer, devices: set[str]
) -> tuple[list[_Draft], list[Drift], str | None]:
    assert live.config is not None, "containers of this site are always inspected"
    version = L.get(live.labels, L.DS01_HASH_VERSION)
    if version is not None and not known(version):
        return (
            [],
            [],
            (
                f"{spec.key}: made by a newer ds01ctl (hash version {version}); left as it is "
                "until ds01ctl is upgraded"
            ),
        )
    table = FIELD_TABLES[Kind(live.kind)]
    changes = differences(live, spec, table)
    if version is None or L.get(live.labels, L.DS01_SPEC_HASH) is None:
        incomplete = "its ds01 labels are incomplete (no spec hash): it was made or changed outside"
        return [_replace(spec, live, changes, Reason.CHANGED_OUTSIDE, incomplete)], [], None
    made_then = as_made_by(spec, version)
    hashed_equal = spec_hash(made_then, version) == L.get(live.labels, L.DS01_SPEC_HASH)
    if not hashed_equal or any(c.forces_replace for c in changes):
        gone = [u for u in live.gpu_ids if u not in devices]
        note: str | None = f"its GPU {', '.join(gone)} no longer exists" if gone else None
        if gone:
            reason = Reason.GPU_GONE
        elif not hashed_equal and _image_rebuilt(changes):
            reason = Reason.IMAGE_CHANGED
            note = f"its Image has a new build ({changes[0].before} → {changes[0].after})"
        elif not hashed_equal:
            reason = Reason.SPEC_CHANGED
        elif older(version):
            # Unchanged since an older ds01ctl made it: what differs is what this version
            # gives every container. A replace, shown as such, applied when the admin applies.
            reason = Reason.SECURITY_DEFAULTS
            note = f"made by an older ds01ctl (hash version {version}), before {UPGRADE_WHY}"
        else:
            reason = Reason.CHANGED_OUTSIDE
        return [_replace(spec, live, changes, reason, note)], [], None
    drafts: list[_Draft] = []
    drift: list[Drift] = []
    if changes:
        recorded = recorded_limits(live.labels)
        outside = [c for c in changes if recorded.get(c.field) != c.before]
        declared = all(recorded.get(c.field) != c.after for c in changes)
        reason = Reason.LIMITS_CHANGED if declared else Reason.CHANGED_OUTSIDE
        drafts.append(_Draft(ActionKind.UPDATE, spec.key, reason, tuple(changes), spec, live))
        if outside:
            drift.append(Drift(spec.key, tuple(outside)))
    power = _power(spec, live)
    if power is not None:
        drafts.append(power)
    return drafts, drift, None


def _image_rebuilt(changes: list[FieldChange]) -> bool:
    """The only change is the image, from one build of an Image to another of the same."""
    if [c.field for c in changes if c.field not in ("labels",)] != ["image"]:
        return False
    before, after = str(changes[0].before or ""), str(changes[0].after)
    return before.startswith("ds01-") and before.rpartition(":")[0] == after.rpartition(":")[0]


def _replace(
    spec: ContainerSpec,
    live: ObservedContainer,
    changes: list[FieldChange],
    reason: Reason,
    note: str | None,
    kind: ActionKind = ActionKind.REPLACE,
) -> _Draft:
    """A replace (or an adoption, which replaces a container it did not make) frees the GPUs
    the old container names and takes the ones the spec names."""
    return _Draft(
        kind,
        spec.key,
        reason,
        tuple(changes),
        spec,
        live,
        note,
        frees=live.gpu_ids,
        takes=spec.gpus,
    )


def _adopt(spec: ContainerSpec, live: ObservedContainer) -> _Draft:
    """Its owner's mlc container becomes the workspace: the changes are what the manifest's
    shape and ds01ctl's confinement change of what mlc made."""
    changes = differences(live, spec, FIELD_TABLES[Kind(spec.kind)])
    owner = L.get(live.labels, L.MLC_USER) or spec.owner
    note = (
        f"container {live.name} was made by mlc for {owner}: its writable layer is kept in a "
        "snapshot, and the workspace is made from it with the manifest's shape and the same "
        "mounts"
    )
    return _replace(spec, live, changes, Reason.MLC_CONTAINER, note, kind=ActionKind.ADOPT)


def _power(spec: ContainerSpec, live: ObservedContainer) -> _Draft | None:
    if spec.power is Power.RUNNING and not live.running:
        return _Draft(ActionKind.START, spec.key, Reason.POWER, spec=spec, live=live)
    if spec.power is Power.STOPPED and live.running:
        return _Draft(ActionKind.STOP, spec.key, Reason.POWER, spec=spec, live=live)
    return None


def _order(drafts: list[_Draft]) -> tuple[Action, ...]:
    """Ids in execution order, each action's steps numbered after the previous action's.

    Steps on one object run in plan order; a step taking a GPU depends on the step freeing it.
    """
    # Leftover images last: each waits for the removal of every container made from it.
    drafts.sort(key=lambda d: (d.image is not None, _PHASE[d.kind], d.target))
    numbers = _Numbers()
    freed_by: dict[str, int] = {}
    image_freed: dict[str, set[int]] = {}
    last_on: dict[str, int] = {}
    built_by: dict[str, int] = {}  # tag → the step building it
    actions = []
    for number, draft in enumerate(drafts, start=1):
        after = last_on.get(draft.target)
        waits = tuple(sorted({freed_by[u] for u in draft.takes if u in freed_by}))
        if draft.image_id is not None:
            waits = tuple(sorted(image_freed.get(draft.image_id, set())))
        # What uses a tag being built waits for it before it touches anything: a failed
        # build leaves the old container as it was.
        image = draft.spec.image if draft.spec is not None else None
        first = (built_by[image],) if image in built_by else ()
        steps = _steps(draft, numbers, after, waits, first)
        if draft.build is not None:
            built_by[draft.build.tag] = steps[-1].id
        for uuid in draft.frees:
            freed_by.setdefault(uuid, _removing(steps))
        if draft.live is not None and draft.kind in _REMOVALS:
            image_freed.setdefault(draft.live.image_id, set()).add(_removing(steps))
        last_on[draft.target] = steps[-1].id
        actions.append(
            Action(
                id=number,
                kind=draft.kind,
                target=draft.target,
                reason=draft.reason,
                changes=draft.changes,
                spec=draft.build or draft.spec,
                container_id=draft.live.id if draft.live else None,
                fingerprint=_fingerprint(draft.live) if draft.live else None,
                note=_with_layer_note(draft),
                steps=steps,
            )
        )
    return tuple(actions)


class _Numbers:
    """Step ids, unique over the whole plan."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> int:
        self.last += 1
        return self.last


def _steps(
    draft: _Draft,
    numbers: _Numbers,
    after: int | None,
    waits: tuple[int, ...],
    first: tuple[int, ...] = (),
) -> tuple[Step, ...]:
    """The steps that carry out `draft`, chained; the first waits for `after` (the previous
    action on the object), the create for `waits` (the steps freeing its GPUs)."""
    live, spec = draft.live, draft.spec
    planned: list[Step] = []

    def add(kind: StepKind, *, gpu_wait: bool = False, **data: Any) -> Step:
        previous = planned[-1].id if planned else after
        deps = {previous} if previous is not None else set()
        if not planned:
            deps |= set(first)
        if gpu_wait:
            deps |= set(waits)
        step = Step(numbers.next(), kind, tuple(sorted(deps)), **data)
        planned.append(step)
        return step

    if spec is not None and spec.ready_path and draft.kind is not ActionKind.UPDATE:
        return _served_steps(draft, add)
    match draft.kind:
        case ActionKind.CREATE:
            assert spec is not None
            _creation(add, spec)
        case ActionKind.CLEANUP if draft.image is not None:
            add(StepKind.REMOVE_IMAGE, gpu_wait=True, image=draft.image)
        case ActionKind.UPDATE | ActionKind.START | ActionKind.STOP | ActionKind.CLEANUP:
            assert live is not None
            kind = _ONE_STEP[draft.kind]  # a cleanup removes a helper: nothing of a user's
            grace = _grace(live) if kind is StepKind.STOP else None
            add(kind, container_id=live.id, grace=grace)
        case ActionKind.DELETE:
            assert live is not None
            _removal(add, live, snapshot_reason=draft.reason.value, checks=())
        case ActionKind.REPLACE:
            assert live is not None and spec is not None
            _replacement(add, live, spec)
        case ActionKind.ADOPT:
            assert live is not None and spec is not None
            _adoption(add, live, spec)
        case ActionKind.BUILD:
            add(StepKind.BUILD)
        case _:
            assert_never(draft.kind)
    return tuple(planned)


def _served_steps(draft: _Draft, add: Callable[..., Step]) -> tuple[Step, ...]:
    """The steps of a server that must become Ready (an endpoint): after its start, a health
    wait. A replace stops the old container first (its GPUs and port are the new one's) but
    removes it only once the new one is Ready, so that a replacement that never is can give
    way to it again (`rollback`), on the image it ran."""
    live, spec = draft.live, draft.spec
    assert spec is not None
    steps: list[Step] = []
    match draft.kind:
        case ActionKind.CREATE:
            made = add(StepKind.CREATE, gpu_wait=True)
            steps += [made, add(StepKind.START, of_step=made.id)]
            steps.append(add(StepKind.WAIT_HEALTHY, of_step=made.id))
        case ActionKind.START:
            assert live is not None
            steps.append(add(StepKind.START, container_id=live.id))
            steps.append(add(StepKind.WAIT_HEALTHY, container_id=live.id))
        case ActionKind.REPLACE:
            assert live is not None
            checks = (Precondition.NO_LIVE_SESSIONS,)
            if live.running:
                steps.append(
                    add(
                        StepKind.STOP,
                        container_id=live.id,
                        grace=_grace(live),
                        preconditions=checks,
                    )
                )
            made = add(StepKind.CREATE, gpu_wait=True)
            steps += [made, add(StepKind.START, of_step=made.id)]
            back = live.id if spec.rollback and live.running else None
            steps.append(add(StepKind.WAIT_HEALTHY, of_step=made.id, rollback_to=back))
            steps.append(add(StepKind.REMOVE, container_id=live.id))
        case _:
            raise AssertionError(f"{draft.kind} is not a server's action")
    return tuple(steps)


_ONE_STEP = {
    ActionKind.UPDATE: StepKind.UPDATE,
    ActionKind.START: StepKind.START,
    ActionKind.STOP: StepKind.STOP,
    ActionKind.CLEANUP: StepKind.REMOVE,
}


def _creation(add: Callable[..., Step], spec: ContainerSpec) -> None:
    made = add(StepKind.CREATE, gpu_wait=True)
    if spec.power is Power.RUNNING:
        add(StepKind.START, of_step=made.id)


def _replacement(add: Callable[..., Step], live: ObservedContainer, spec: ContainerSpec) -> None:
    keep = "replace" if spec.snapshot_on_replace else None
    _removal(add, live, snapshot_reason=keep, checks=(Precondition.MOUNTS_UNMOVED,))
    made = add(StepKind.CREATE, gpu_wait=True)
    if spec.power is Power.RUNNING or (spec.power is Power.ANY and live.running):
        add(StepKind.START, of_step=made.id)  # as it was, unless the manifest pins it


def _removal(
    add: Callable[..., Step],
    live: ObservedContainer,
    *,
    snapshot_reason: str | None,
    checks: tuple[Precondition, ...],
) -> None:
    """Stop (if running), snapshot (unless discarded), remove and drop its image tag. Live
    sessions refuse the first step, whatever it is: they are checked when it runs."""
    checks = (Precondition.NO_LIVE_SESSIONS, *checks)
    if live.running:
        add(StepKind.STOP, container_id=live.id, grace=_grace(live), preconditions=checks)
        checks = ()
    if snapshot_reason is not None:
        # Planned even when the layer looked empty: it may change before apply, and the step
        # keeps whatever is there when it runs.
        add(
            StepKind.SNAPSHOT,
            container_id=live.id,
            reason=snapshot_reason,
            layer=live.layer,
            preconditions=checks,
        )
        checks = ()
    untag = live.config.image_tag if live.config is not None else None
    add(StepKind.REMOVE, container_id=live.id, untag=untag, preconditions=checks)


def _adoption(add: Callable[..., Step], live: ObservedContainer, spec: ContainerSpec) -> None:
    """Snapshot first (whatever else an interrupted apply got to, the work is kept), then
    stop, remove (dropping mlc's per-container tag, which the snapshot holds on to), create
    from the snapshot, and start as it was unless the manifest pins it."""
    kept = add(
        StepKind.SNAPSHOT,
        container_id=live.id,
        reason="adopt",
        layer=live.layer,
        keep_empty=True,
        preconditions=(Precondition.NO_LIVE_SESSIONS,),
    )
    if live.running:
        add(StepKind.STOP, container_id=live.id, grace=_grace(live))
    untag = live.config.image_tag if live.config is not None else None
    add(StepKind.REMOVE, container_id=live.id, untag=untag)
    made = add(StepKind.CREATE, gpu_wait=True, from_step=kept.id)
    if spec.power is Power.RUNNING or (spec.power is Power.ANY and live.running):
        add(StepKind.START, of_step=made.id)


def _grace(live: ObservedContainer) -> int:
    return live.config.stop_grace if live.config is not None else 10


def _removing(steps: tuple[Step, ...]) -> int:
    """The step after which the action's old container no longer holds anything."""
    return next(s.id for s in steps if s.kind is StepKind.REMOVE)


def _with_layer_note(draft: _Draft) -> str | None:
    """A replace that discards its container's writable layer says how much is lost (known
    only where the shell read the layer: for containers a draft plan removes); a snapshot
    step says how much it keeps."""
    layer = draft.live.layer if draft.live else None
    discards = draft.kind is ActionKind.REPLACE and not (
        draft.spec and (draft.spec.snapshot_on_replace or draft.spec.ready_path)
    )  # a server's layer holds nothing of anyone's (its model is mounted, read-only)
    if not discards or layer is None or layer.empty:
        return draft.note
    text = (
        f"its container has {layer.paths} changed path(s), {about_size(layer.size)}, "
        "outside its mounts; they are discarded (on_replace: discard)"
    )
    return "; ".join(filter(None, [draft.note, text]))


def removed_containers(plan: Plan) -> tuple[str, ...]:
    """The containers `plan` removes (replaces or deletes): whose layers are worth reading."""
    kinds = (ActionKind.REPLACE, ActionKind.DELETE, ActionKind.ADOPT)
    return tuple(a.container_id for a in plan.actions if a.kind in kinds and a.container_id)


def _fingerprint(live: ObservedContainer) -> Fingerprint:
    """The container as observed: id, hash, and every field of the table (none volatile)."""
    assert live.config is not None
    table = FIELD_TABLES[Kind(live.kind)] if container_kind(live.kind) else FIELDS  # a helper
    values = tuple((row.name, _jsonable(row.live(live))) for row in table)
    state = ("running", live.running)
    return Fingerprint(live.id, L.get(live.labels, L.DS01_SPEC_HASH), (*values, state))


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _jsonable(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_jsonable(v) for v in value)
    return value


def _unmanaged(
    containers: Iterable[ObservedContainer], inventory: GpuInventory
) -> tuple[Unmanaged, ...]:
    """mlc/DS01 containers one by one (candidates for adoption); other sites' by count; any
    other container that holds a GPU, by name."""
    found = []
    other_sites: dict[str, int] = {}
    for c in containers:
        if c.ownership is L.Ownership.ADOPTABLE:
            why = "looks like an mlc or DS01 container; ds01ctl does not manage it"
            held = c.gpu_ids or reached(c.gpu_access, inventory)
            if held:
                why += f"; it holds GPU {', '.join(held)}"
            found.append(Unmanaged(c.name, c.owner, why))
        elif c.ownership is L.Ownership.FOREIGN and (held := reached(c.gpu_access, inventory)):
            why = f"holds GPU {', '.join(held)} outside ds01ctl ({how(c.gpu_access)})"
            found.append(Unmanaged(c.name, None, why))
        elif c.ownership is L.Ownership.OTHER_SITE:
            site = L.get(c.labels, L.DS01_SITE) or "?"
            other_sites[site] = other_sites.get(site, 0) + 1
    for site, count in other_sites.items():
        found.append(
            Unmanaged(f"{count} container(s)", None, f"managed by ds01ctl for site {site}")
        )
    return tuple(sorted(found, key=lambda u: u.container))


_MAKES = (ActionKind.CREATE, ActionKind.REPLACE, ActionKind.ADOPT)


def _holder_removed(action: Action, names: Mapping[str, str]) -> str | None:
    """The GPU holder an action removes: ours by target, an adopted mlc container by name."""
    if not action.container_id:
        return None
    if action.kind in (ActionKind.DELETE, ActionKind.REPLACE):
        return action.target
    return names.get(action.container_id) if action.kind is ActionKind.ADOPT else None


def _gpu_rows(
    inventory: GpuInventory, observed: Observed, actions: tuple[Action, ...]
) -> tuple[GpuRow, ...]:
    before: dict[str, str] = {}
    for c in observed.containers:
        for uuid in c.gpu_ids:
            before[uuid] = c.key if c.ownership is L.Ownership.OURS else c.name
    for c in observed.containers:  # however else a container reaches a device
        for uuid in reached(c.gpu_access, inventory):
            before.setdefault(uuid, c.key if c.ownership is L.Ownership.OURS else c.name)
    for process in inventory.processes:
        before.setdefault(process.device_uuid, f"pid {process.pid}")
    after = dict(before)
    names = {c.id: c.name for c in observed.containers}
    for action in actions:
        gone = _holder_removed(action, names)
        for uuid, holder in list(after.items()):
            if gone is not None and holder == gone:
                del after[uuid]
        if action.container is not None and action.kind in _MAKES:
            for uuid in action.container.gpus:
                after[uuid] = action.target
    return tuple(
        GpuRow(d.uuid, d.gpu_index, d.profile, before.get(d.uuid), after.get(d.uuid))
        for d in inventory.devices(include_unhealthy=True)
    )


def _rogue_gpu_use(
    inventory: GpuInventory, observed: Observed, logins: Mapping[int, str]
) -> tuple[Unmanaged, ...]:
    """GPU processes outside ds01ctl's containers: a raw `docker run --gpus`, bare metal."""
    ours = {c.id for c in observed.ours()}
    by_id = {c.id: c for c in observed.containers}
    found = []
    for process in inventory.processes:
        if process.container_id in ours:
            continue
        container = by_id.get(process.container_id or "")
        if container is not None:
            where, owner = f"container {container.name}", container.owner
        else:
            where = f"pid {process.pid} ({process.name or 'unknown'}) on the host"
            owner = logins.get(process.uid) if process.uid is not None else None
        why = f"uses GPU {process.device_uuid} outside ds01ctl (unmanaged GPU use)"
        found.append(Unmanaged(where, owner, why))
    return tuple(sorted(found, key=lambda u: (u.container, u.why)))


def _budgets(
    desired: Desired,
    observed: Observed,
    inventory: GpuInventory,
    actions: tuple[Action, ...],
    orphans: list[str],
) -> tuple[BudgetRow, ...]:
    """GPU units per owner the plan touches: held now, and held once it is applied."""

    def units(uuids: Iterable[str]) -> Fraction:
        return sum((inventory.units_of(u) for u in uuids if inventory.device(u)), Fraction(0))

    before: dict[str, Fraction] = {}
    after: dict[str, Fraction] = {}
    for container in observed.ours():
        owner = container.owner or ""
        before[owner] = before.get(owner, Fraction(0)) + units(container.gpu_ids)
        if container.key in orphans:  # not pruned: it keeps what it holds
            after[owner] = after.get(owner, Fraction(0)) + units(container.gpu_ids)
    for spec in desired.specs:
        after[spec.owner] = after.get(spec.owner, Fraction(0)) + units(spec.gpus)
    touched = {a.target.split("/")[1] for a in actions}
    touched |= {p.target.split("/")[1] for p in desired.pending}
    rows = []
    for owner in sorted(touched):
        held, then = before.get(owner, Fraction(0)), after.get(owner, Fraction(0))
        limits = desired.limits.get(owner)
        budget = limits["gpu_budget"] if limits is not None else None
        if held or then:
            rows.append(
                BudgetRow(owner, str(held), str(then), None if budget is None else str(budget))
            )
    return tuple(rows)
