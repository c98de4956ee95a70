"""The plan as plain data: actions with a kind, a reason and field-level changes.

`ActionKind` is what happens; `Reason` is why, for people reading the plan. The executor
dispatches on the kind and never on the reason. Values of both enums are the JSON vocabulary:
adding a member is fine, renaming one is a format change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

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
    SNAPSHOT = "snapshot"
    CLEANUP = "cleanup"  # remove a leftover helper container: nothing of a user's is in it


class Reason(StrEnum):
    NEW = "new"  # declared, no container yet
    SPEC_CHANGED = "spec_changed"  # a replace-forcing field changed in the manifests
    CHANGED_OUTSIDE = "changed_outside"  # the container differs from what ds01ctl made
    LIMITS_CHANGED = "limits_changed"  # cpus/memory/pids changed in the manifests
    GPU_GONE = "gpu_gone"  # a GPU the container names no longer exists
    HASH_VERSION_UNKNOWN = "hash_version_unknown"  # made by a newer ds01ctl
    POWER = "power"  # the manifest pins running or stopped
    NO_MANIFEST = "no_manifest"  # an orphan, deleted with --prune
    DUPLICATE = "duplicate"  # a second container claims the same object
    GPU_RELEASED = "gpu_released"  # stopped past its GPU hold while someone waits for the GPU
    # Made by an older ds01ctl, unchanged since, without the confinement this one gives.
    SECURITY_DEFAULTS = "security_defaults"
    LEFTOVER_HELPER = "leftover_helper"  # an account-setup helper an interrupted apply left


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


@dataclass(frozen=True, slots=True)
class Action:
    id: int
    kind: ActionKind
    target: str  # `<kind>/<owner>/<name>`
    reason: Reason
    changes: tuple[FieldChange, ...] = ()
    depends_on: tuple[int, ...] = ()
    spec: ContainerSpec | None = None  # create / replace / update: the container as it must be
    container_id: str | None = None  # every action on an existing container
    fingerprint: Fingerprint | None = None
    note: str | None = None  # one line shown under the header (e.g. why a delete)


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
    meta: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in ActionKind}
        for action in self.actions:
            counts[action.kind.value] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    def debug_text(self) -> str:
        """One line per action (deps, id, target, kind, reason): for tests and debugging."""
        lines = []
        for a in self.actions:
            deps = ",".join(str(d) for d in a.depends_on) or "-"
            lines.append(f"{a.id} [{deps}] {a.target} {a.kind.value} ({a.reason.value})")
        for p in self.pending:
            lines.append(f"pending {p.target}: {p.reason}")
        return "\n".join(lines)
