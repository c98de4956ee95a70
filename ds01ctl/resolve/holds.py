"""GPU holds: a stopped workspace keeps its GPUs for its owner's hold time, then gives them
up, but only to someone who is waiting for them (pure).

Releasing a GPU must never leave a container that names it (`mlc open` would start it on a
GPU given to someone else, and DeviceRequests cannot be changed), so a released workspace's
container is snapshotted and deleted, and the workspace is pending until a GPU is free.
With nobody waiting, nothing is released: recreating it would only churn.

Container holds (`container_hold_after_stop`) apply to orphans only: a managed container whose
manifest is gone, stopped longer than its owner's hold, is snapshotted and deleted. A declared
workspace's container is never removed by it: the next plan would only create it again (a
loop), its GPUs already go to waiters by the GPU hold, and stopped it costs only disk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ds01ctl.model.observed import ObservedContainer
from ds01ctl.resolve.allocate import Allocation, GpuRequest


@dataclass(frozen=True, slots=True)
class Hold:
    key: str
    owner: str
    uuids: tuple[str, ...]
    stopped_since: dt.datetime
    expires_at: dt.datetime


def stopped_holds(
    containers: Iterable[ObservedContainer], hold_of: Mapping[str, int | None]
) -> list[Hold]:
    """Stopped containers that name GPUs, with when their hold ends.

    `hold_of` maps a workspace key (`workspace/<owner>/<name>`) to its hold in seconds: each
    workspace has its own (a lifecycle value stricter than its owner's quota). A container not
    in it, or with None, has no hold known and keeps its GPUs.
    """
    holds = []
    for container in containers:
        made = container.config
        if container.running or not container.gpu_ids or made is None:
            continue
        since = made.finished or made.created
        seconds = hold_of.get(container.key)
        if since is None or seconds is None:
            continue  # no stop time known, or an unlimited hold: it keeps its GPUs
        expires = since + dt.timedelta(seconds=seconds)
        holds.append(Hold(container.key, container.owner or "", container.gpu_ids, since, expires))
    return sorted(holds, key=lambda h: (h.stopped_since, h.key))


@dataclass(frozen=True, slots=True)
class ContainerHold:
    """How long a stopped container is kept, and whether that time is over at `now`."""

    key: str
    container_id: str
    stopped_since: dt.datetime
    seconds: int
    expires_at: dt.datetime
    expired: bool


def container_holds(
    containers: Iterable[ObservedContainer],
    hold_of: Mapping[str, int | None],
    now: dt.datetime,
) -> dict[str, ContainerHold]:
    """Stopped containers with a known stop time, by container id, with when their owner's
    container hold (`hold_of`: owner → seconds; None or absent: kept forever) ends.

    Only a container that has run and stopped counts (its `finished` time): one made and never
    started has no stop time, and is kept."""
    holds = {}
    for container in containers:
        made = container.config
        if container.running or made is None or made.finished is None:
            continue
        seconds = hold_of.get(container.owner or "")
        if seconds is None:
            continue
        expires = made.finished + dt.timedelta(seconds=seconds)
        holds[container.id] = ContainerHold(
            container.key, container.id, made.finished, seconds, expires, expires <= now
        )
    return holds


def release_for_waiting(
    place: Callable[[Mapping[str, tuple[str, ...]], frozenset[str]], Allocation],
    requests: Iterable[GpuRequest],
    existing: Mapping[str, tuple[str, ...]],
    holds: Iterable[Hold],
    now: dt.datetime,
) -> tuple[Allocation, list[Hold]]:
    """Allocate; then, longest-stopped first, release an expired hold when that lets a
    waiting request be placed. `place(existing, excluded_keys)` runs the allocator."""
    excluded: frozenset[str] = frozenset()
    current = dict(existing)
    allocation = place(current, excluded)
    released = []
    wanted = {r.key for r in requests}
    for hold in holds:
        if hold.expires_at > now or hold.key not in current or not allocation.pending:
            continue
        trial_existing = {k: v for k, v in current.items() if k != hold.key}
        trial = place(trial_existing, excluded | {hold.key})
        waiting_before = {p.key for p in allocation.pending}
        placed_now = {k for k in trial.placements if k in waiting_before and k in wanted}
        if placed_now:
            allocation, current, excluded = trial, trial_existing, excluded | {hold.key}
            released.append(hold)
    return allocation, released
