"""The executor: walks a plan's actions in dependency order and makes no decisions.

Each action kind maps to one small function wrapping a few driver calls; everything such a
function needs is in the action (its spec, the container id). Independent actions run in
parallel (bounded); a failure skips only the actions that depend on it. Every action is
journaled before (intent) and after (result), so a crash leaves evidence.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, assert_never

from ds01ctl import labels as L
from ds01ctl.apply.journal import Journal
from ds01ctl.apply.lock import invoker
from ds01ctl.apply.mountdirs import ensure_source
from ds01ctl.errors import Ds01Error, InternalError
from ds01ctl.manifests.site import MountRule
from ds01ctl.model.spec import ContainerSpec, Power
from ds01ctl.plan.actions import Action, ActionKind, Plan
from ds01ctl.plan.retention import beyond_retention, images_in_use

if TYPE_CHECKING:
    from ds01ctl.model.driver import Driver

# Test hook: `<target>=<seconds>` sleeps inside that action, after its intent is journaled,
# so a test can kill a real apply mid-way. Unset in normal use.
SLOW_ACTION_ENV = "DS01CTL_TEST_SLOW_ACTION"


class Refused(Ds01Error):
    """An action that would lose someone's work without --force."""

    code = "refused"


class MountMoved(Ds01Error):
    """A mount source that now leads somewhere the plan did not check (a swapped symlink)."""

    code = "mount_moved"


class Reporter(Protocol):
    """Progress hooks; the executor never prints."""

    def action_started(self, action: Action) -> None: ...
    def action_done(self, action: Action, seconds: float, note: str | None) -> None: ...
    def action_failed(self, action: Action, error: str) -> None: ...
    def action_skipped(self, action: Action, because: str) -> None: ...


class NullReporter:
    def action_started(self, action: Action) -> None:
        pass

    def action_done(self, action: Action, seconds: float, note: str | None) -> None:
        pass

    def action_failed(self, action: Action, error: str) -> None:
        pass

    def action_skipped(self, action: Action, because: str) -> None:
        pass


@dataclass
class Outcome:
    done: dict[int, str | None] = field(default_factory=dict)  # id → note (e.g. a snapshot)
    failed: dict[int, str] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


@dataclass
class Context:
    driver: Driver
    site: str
    force: bool
    mount_policy: list[MountRule]  # bind sources are checked again right before a create
    mount_dir_mode: int = 0o750  # a missing read-write source is made with it, as its owner
    site_network: str | None = None  # made before the first container that uses it
    inter_container: bool = False  # the site network's ICC (the Site's network.inter_container)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    # Snapshot retention (the Site's snapshots.keep_per_workspace; None: keep all), and the
    # images the plan's containers are made from, which a prune never removes.
    keep_snapshots: int | None = None
    plan_images: frozenset[str] = frozenset()
    _image_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def image_lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._image_locks.setdefault(key, threading.Lock())


def execute(
    plan: Plan,
    ctx: Context,
    journal: Journal,
    reporter: Reporter,
    *,
    parallelism: int = 4,
    plan_digest: str | None = None,
) -> Outcome:
    """Run every action whose dependencies succeeded; the outcome says what became of each."""
    outcome = Outcome()
    deps = _dependencies(plan.actions)
    by_id = {a.id: a for a in plan.actions}
    waiting = dict(by_id)
    running: dict[Future[tuple[str | None, float]], Action] = {}
    user, command = invoker()
    journal.record(
        "apply_started",
        plan_digest=plan_digest,
        actions=len(plan.actions),
        user=user,
        command=command,
        targets=sorted({a.target for a in plan.actions}),
    )
    slots = max(1, parallelism)
    with ThreadPoolExecutor(max_workers=slots) as pool:
        while waiting or running:
            # Submit only what starts now, so an intent in the journal means "was running".
            for action in _ready(waiting, deps, outcome)[: slots - len(running)]:
                del waiting[action.id]
                blocked = _blocked_by(action, deps, outcome)
                if blocked is not None:
                    outcome.skipped[action.id] = blocked
                    journal.record("result", action=action.id, result="skipped", error=blocked)
                    reporter.action_skipped(action, blocked)
                    continue
                journal.record("intent", **_intent(action, plan_digest))
                reporter.action_started(action)
                running[pool.submit(_timed, _run_one, action, ctx)] = action
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                _settle(running.pop(future), future, outcome, journal, reporter)
    journal.record("apply_finished", done=len(outcome.done), failed=len(outcome.failed))
    return outcome


def _dependencies(actions: tuple[Action, ...]) -> dict[int, set[int]]:
    """Declared dependencies, plus: actions on one object run in plan order."""
    deps: dict[int, set[int]] = {}
    last_on: dict[str, int] = {}
    for action in actions:
        deps[action.id] = set(action.depends_on)
        if action.target in last_on:
            deps[action.id].add(last_on[action.target])
        last_on[action.target] = action.id
    return deps


def _ready(waiting: dict[int, Action], deps: dict[int, set[int]], outcome: Outcome) -> list[Action]:
    settled = outcome.done.keys() | outcome.failed.keys() | outcome.skipped.keys()
    return [a for a in waiting.values() if deps[a.id] <= settled]


def _blocked_by(action: Action, deps: dict[int, set[int]], outcome: Outcome) -> str | None:
    for dep in sorted(deps[action.id]):
        if dep in outcome.failed or dep in outcome.skipped:
            return f"action {dep} did not succeed"
    return None


def _intent(action: Action, plan_digest: str | None) -> dict[str, object]:
    previous = dict(action.fingerprint.fields) if action.fingerprint else None
    return {
        "action": action.id,
        "kind": action.kind.value,
        "target": action.target,
        "reason": action.reason.value,
        "container": action.container_id,
        "spec_hash": action.spec.label_map.get(L.DS01_SPEC_HASH) if action.spec else None,
        "previous": previous,
        "plan_digest": plan_digest,
    }


def _timed(
    run: Callable[[Action, Context], str | None], action: Action, ctx: Context
) -> tuple[str | None, float]:
    started = time.monotonic()
    note = run(action, ctx)
    return note, round(time.monotonic() - started, 3)


def _settle(
    action: Action,
    future: Future[tuple[str | None, float]],
    outcome: Outcome,
    journal: Journal,
    reporter: Reporter,
) -> None:
    try:
        note, seconds = future.result()
    except Exception as exc:  # any failure of one action is reported, not fatal
        message = _error_text(exc)
        outcome.failed[action.id] = message
        journal.record("result", action=action.id, result="failed", error=message)
        reporter.action_failed(action, message)
        return
    outcome.done[action.id] = note
    journal.record("result", action=action.id, result="ok", note=note, seconds=seconds)
    reporter.action_done(action, seconds, note)


def _error_text(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:400]


def _run_one(action: Action, ctx: Context) -> str | None:
    _test_delay(action)
    match action.kind:
        case ActionKind.CREATE:
            return _create(action, ctx)
        case ActionKind.UPDATE:
            return _update(action, ctx)
        case ActionKind.REPLACE:
            return _replace(action, ctx)
        case ActionKind.DELETE:
            return _delete(action, ctx)
        case ActionKind.START:
            ctx.driver.start(_container(action))
            return None
        case ActionKind.STOP:
            ctx.driver.stop(_container(action), _spec(action).stop_grace)
            return None
        case ActionKind.CLEANUP:
            ctx.driver.remove(_container(action))
            return None
        case ActionKind.BUILD | ActionKind.SNAPSHOT:
            raise InternalError(f"{action.kind.value} actions are not planned by this version")
        case _:
            assert_never(action.kind)


def _test_delay(action: Action) -> None:
    hook = os.environ.get(SLOW_ACTION_ENV, "")
    target, _, seconds = hook.rpartition("=")
    if target and target == action.target:
        time.sleep(float(seconds))


def _spec(action: Action) -> ContainerSpec:
    if action.spec is None:
        raise InternalError(f"action {action.id} ({action.kind.value}) carries no spec")
    return action.spec


def _container(action: Action) -> str:
    if action.container_id is None:
        raise InternalError(f"action {action.id} ({action.kind.value}) names no container")
    return action.container_id


def _create(action: Action, ctx: Context) -> str | None:
    spec = _spec(action)
    note = _network(ctx, spec)
    _prepare(ctx, spec)
    _check_mounts(ctx, spec)
    container = ctx.driver.create(spec)
    if spec.power is Power.RUNNING:
        ctx.driver.start(container)
    return note


def _network(ctx: Context, spec: ContainerSpec) -> str | None:
    """The site network exists before a container is created on it (idempotent)."""
    if ctx.site_network is None or spec.network != ctx.site_network:
        return None
    with ctx.image_lock(f"network:{spec.network}"):  # one create when several run at once
        made = ctx.driver.ensure_network(
            spec.network, site=ctx.site, inter_container=ctx.inter_container
        )
    return f"network {spec.network} created" if made else None


def _prepare(ctx: Context, spec: ContainerSpec) -> None:
    # One account setup per (image, uid) even when several creates run at once.
    with ctx.image_lock(f"{spec.image}:{spec.account.uid}"):
        ctx.driver.prepare_image(spec)


def _check_mounts(ctx: Context, spec: ContainerSpec) -> None:
    """The plan checked where each mount source leads; the user may have moved it since. A
    missing read-write source is made now, as its owner (never by the engine, as root)."""
    for bind in spec.binds:
        mode = ctx.mount_dir_mode
        problem = ensure_source(bind, spec.account, spec.owner, ctx.mount_policy, mode)
        if problem is not None:
            raise MountMoved(
                f"{spec.key} is not created: {problem}",
                hint="plan again once the source is a real directory",
            )


def _update(action: Action, ctx: Context) -> str | None:
    ctx.driver.update(_container(action), _spec(action))
    return None


def _replace(action: Action, ctx: Context) -> str | None:
    spec, old = _spec(action), _container(action)
    _check_mounts(ctx, spec)  # before the old container goes, too
    was_running = _running(ctx, old)
    note = _retire(action, ctx, old, snapshot=spec.snapshot_on_replace, reason="replace")
    made = _network(ctx, spec)
    note = "; ".join(n for n in (note, made) if n) or None
    _prepare(ctx, spec)
    _check_mounts(ctx, spec)
    container = ctx.driver.create(spec)
    if spec.power is Power.RUNNING or (was_running and spec.power is Power.ANY):
        ctx.driver.start(container)
    return note


def _delete(action: Action, ctx: Context) -> str | None:
    return _retire(action, ctx, _container(action), snapshot=True, reason=action.reason.value)


def _retire(
    action: Action, ctx: Context, container: str, *, snapshot: bool, reason: str
) -> str | None:
    """Stop, snapshot the writable layer if it changed, remove: nothing of the user's is lost."""
    sessions = ctx.driver.sessions(container)
    if sessions and not ctx.force:
        raise Refused(
            f"{action.target} has {sessions} process(es) besides its shell "
            "(live `docker exec` sessions)",
            hint="ask its owner to close them, or run apply with --force",
        )
    made_from = ctx.driver.made_from(container)
    if ctx.driver.running(container):
        ctx.driver.stop(container, ctx.driver.stop_grace(container))
    note = None
    if snapshot and not ctx.driver.layer_changes(container).empty:
        taken = ctx.driver.snapshot(
            container, target=action.target, site=ctx.site, reason=reason, now=ctx.clock()
        )
        note = f"snapshot {taken.reference}"
        pruned = _prune_snapshots(ctx, action.target)
        if pruned:
            note += f", {pruned} older pruned"
    ctx.driver.remove(container)
    if made_from:
        ctx.driver.release_image(made_from)
    return note


def _prune_snapshots(ctx: Context, target: str) -> int:
    """Remove the target's snapshots beyond retention (never one in use); how many."""
    if ctx.keep_snapshots is None:
        return 0
    observed = ctx.driver.observe(ctx.site)  # only after a snapshot: rare, and must be fresh
    in_use = images_in_use(observed) | ctx.plan_images
    doomed = beyond_retention(ctx.driver.snapshots(ctx.site), ctx.keep_snapshots, in_use, target)
    for snap in doomed:
        ctx.driver.remove_snapshot(snap.reference)
    return len(doomed)


def _running(ctx: Context, container: str) -> bool:
    return ctx.driver.running(container)
