"""The plan as plain data: per object an action (what happens to it and why, with field-level
changes), and in each action the steps that do it, with everything they need.

`ActionKind` is what happens to an object and `Reason` why, for people reading the plan; the
executor reads neither. It runs `Step`s: one driver operation each, with its `depends_on`
(a GPU a create takes waits for the step that frees it; steps on one object run in order), its
data (a stop's grace, the image tag a remove drops, the snapshot's reason) and its
preconditions, which are checked at apply because the world may move after the plan. Values of
the enums are the JSON vocabulary: adding a member is fine, renaming one is a format change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ds01ctl.model.kinds import AnyPayload
from ds01ctl.model.observed import LayerChanges
from ds01ctl.model.pending import PendingItem
from ds01ctl.model.spec import ContainerSpec


class ActionKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    START = "start"
    STOP = "stop"
    BUILD = "build"
    CLEANUP = "cleanup"  # remove a leftover helper container: nothing of a user's is in it
    # Make a workspace of its owner's mlc container: snapshot it, remove it, create the
    # workspace from the snapshot.
    ADOPT = "adopt"


class Reason(StrEnum):
    NEW = "new"  # declared, no container yet
    SPEC_CHANGED = "spec_changed"  # a replace-forcing field changed in the manifests
    CHANGED_OUTSIDE = "changed_outside"  # the container differs from what ds01ctl made
    LIMITS_CHANGED = "limits_changed"  # cpus/memory/pids changed in the manifests
    GPU_GONE = "gpu_gone"  # a GPU the container names no longer exists
    POWER = "power"  # the manifest pins running or stopped
    NO_MANIFEST = "no_manifest"  # an orphan, deleted with --prune
    DUPLICATE = "duplicate"  # a second container claims the same object
    GPU_RELEASED = "gpu_released"  # stopped past its GPU hold while someone waits for the GPU
    # Made by an older ds01ctl, unchanged since, without the confinement this one gives.
    SECURITY_DEFAULTS = "security_defaults"
    LEFTOVER_HELPER = "leftover_helper"  # an account-setup helper an interrupted apply left
    MLC_CONTAINER = "mlc_container"  # the owner's mlc container holds the name; adopt: true
    LEFTOVER_TAG = "leftover_tag"  # a per-container image tag whose container is gone
    LEFTOVER_ACCOUNT_IMAGE = "leftover_account_image"  # used by no container (--prune)
    DUPLICATE_SNAPSHOT = "duplicate_snapshot"  # the same content as another snapshot
    IMAGE_CHANGED = "image_changed"  # the workspace's Image has a new build
    REBUILD = "rebuild"  # an Image rebuilt as asked (apply --rebuild), on a newer base
    # An orphan (no manifest) stopped longer than its owner's container_hold_after_stop.
    CONTAINER_HOLD_EXPIRED = "container_hold_expired"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """`before` is the live value, `after` the desired one; both canonical (str, int, bool,
    None, tuples, or dicts with string keys) so that they serialize exactly."""

    field: str
    before: Any
    after: Any
    forces_replace: bool = False


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What apply checks before acting: the observed container is still as it was planned."""

    container_id: str
    spec_hash: str | None
    fields: tuple[tuple[str, Any], ...]  # the fields the action read, canonical


class StepKind(StrEnum):
    SNAPSHOT = "snapshot"  # keep the writable layer as an image, if it changed at all
    STOP = "stop"
    REMOVE = "remove"
    CREATE = "create"
    START = "start"
    UPDATE = "update"
    REMOVE_IMAGE = "remove_image"  # a leftover image reference (plan/leftovers.py)
    BUILD = "build"  # build an Image's tag (the action's payload is the build)
    # An endpoint is Ready: its server lists its model within the start timeout. On failure
    # the step reports the container's last log lines; with `rollback_to` the container it
    # replaced (kept, stopped) is brought back and waited for instead.
    WAIT_HEALTHY = "wait_healthy"


class Precondition(StrEnum):
    """What a step checks right before it acts; it fails (and its dependents are skipped)
    when the check does."""

    # Nobody has a session in the container (`docker exec` shells, their jobs): a removal
    # would end them. `apply --force` lifts it.
    NO_LIVE_SESSIONS = "no_live_sessions"
    # The spec's mount sources still lead where the plan checked (not swapped for a symlink):
    # checked before the old container of a replace goes, and again by the create.
    MOUNTS_UNMOVED = "mounts_unmoved"


@dataclass(frozen=True, slots=True)
class Step:
    """One operation of the driver, with the data it needs and nothing to decide."""

    id: int
    kind: StepKind
    depends_on: tuple[int, ...] = ()
    container_id: str | None = None  # the existing container it acts on
    of_step: int | None = None  # start: the container that create step made
    grace: int | None = None  # stop: seconds between the stop signal and the kill
    reason: str | None = None  # snapshot: recorded on the snapshot image
    layer: LayerChanges | None = None  # snapshot: the change as planned (None: not read)
    untag: str | None = None  # remove: the per-container image reference to drop after
    # snapshot: commit even an unchanged layer (the container is made from the snapshot)
    keep_empty: bool = False
    from_step: int | None = None  # create: made from the image that snapshot step kept
    image: str | None = None  # remove_image: the reference
    rollback_to: str | None = None  # wait_healthy: the replaced container to bring back
    preconditions: tuple[Precondition, ...] = ()


@dataclass(frozen=True, slots=True)
class Action:
    id: int
    kind: ActionKind
    target: str  # `<kind>/<owner>/<name>`
    reason: Reason
    changes: tuple[FieldChange, ...] = ()
    # create / replace / update: what the object must be (a container spec: `payload_tag` says
    # which member of the union it is)
    spec: AnyPayload | None = None
    container_id: str | None = None  # every action on an existing container
    fingerprint: Fingerprint | None = None
    note: str | None = None  # one line shown under the header (e.g. why a delete)
    steps: tuple[Step, ...] = ()

    @property
    def container(self) -> ContainerSpec | None:
        """The container spec it carries; None for a build or an action with no payload."""
        return self.spec if isinstance(self.spec, ContainerSpec) else None

    @property
    def depends_on(self) -> tuple[int, ...]:
        """The steps of other actions this one waits for."""
        own = {s.id for s in self.steps}
        return tuple(sorted({d for s in self.steps for d in s.depends_on} - own))


@dataclass(frozen=True, slots=True)
class Drift:
    """A live container differs from what ds01ctl made, in a field nobody declared a change."""

    target: str
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True, slots=True)
class Unmanaged:
    """A container that looks like mlc's or DS01's but that ds01ctl does not manage."""

    container: str
    owner: str | None
    why: str


@dataclass(frozen=True, slots=True)
class GpuRow:
    """One allocatable device: who holds it before the plan and after."""

    uuid: str
    gpu_index: int
    profile: str | None
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """An owner's GPU units held before the plan and after it (exact fractions as text)."""

    owner: str
    before: str
    after: str
    budget: str | None  # None: unlimited


@dataclass(frozen=True, slots=True)
class PlanMeta:
    """Where and when a plan was made (the shell fills it; diff leaves it empty)."""

    ds01ctl_version: str | None = None
    site: str | None = None
    state_dir: str | None = None
    engine_id: str | None = None  # a saved plan applies only to the same engine
    engine_version: str | None = None
    observed_at: str | None = None  # ISO 8601
    gpu_source: str | None = None
    config_commit: str | None = None
    config_root: str | None = None
    prune: bool = False  # a saved plan is checked against a fresh plan made the same way
    targets: tuple[str, ...] = ()  # --target: what the plan was narrowed to
    adopt: bool = False  # --adopt: every workspace may adopt its owner's mlc container


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    drift: tuple[Drift, ...] = ()
    orphans: tuple[str, ...] = ()  # managed objects with no manifest (not pruned)
    unmanaged: tuple[Unmanaged, ...] = ()
    pending: tuple[PendingItem, ...] = ()
    gpus: tuple[GpuRow, ...] = ()
    budgets: tuple[BudgetRow, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # facts worth knowing that need no action (GPU hold times)
    meta: PlanMeta = field(default_factory=PlanMeta)

    def counts(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in ActionKind}
        for action in self.actions:
            counts[action.kind.value] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    def steps(self) -> tuple[tuple[Action, Step], ...]:
        """Every step with the action it belongs to, in plan order (ids ascending)."""
        return tuple((a, s) for a in self.actions for s in a.steps)

    def debug_text(self) -> str:
        """One line per action (id, target, kind, reason) and its steps (id, deps, kind)."""
        lines = []
        for a in self.actions:
            lines.append(f"{a.id} {a.target} {a.kind.value} ({a.reason.value})")
            for s in a.steps:
                deps = ",".join(str(d) for d in s.depends_on) or "-"
                lines.append(f"  {s.id} [{deps}] {s.kind.value}")
        for p in self.pending:
            lines.append(f"pending {p.target}: {p.reason}")
        return "\n".join(lines)
