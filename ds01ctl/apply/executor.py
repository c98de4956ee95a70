"""The executor: runs a plan's steps in dependency order and makes no decisions.

Each step kind maps to one small function wrapping a driver call or two; everything it needs
is in the step and its action (the spec, the container id, the stop grace, the image tag to
drop). Before acting it checks the step's preconditions, which the world may have broken since
the plan: live sessions, moved mount sources. Independent steps run in parallel (bounded); a
failure skips only the steps that depend on it. Every step is journaled before (intent) and
after (result), so a crash leaves evidence.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar, assert_never

from ds01ctl import labels as L
from ds01ctl.apply.builds import run_build
from ds01ctl.apply.journal import Journal
from ds01ctl.apply.lock import invoker
from ds01ctl.apply.mountdirs import ensure_source
from ds01ctl.errors import Ds01Error, InternalError
from ds01ctl.manifests.site import MountRule
from ds01ctl.model.imagebuild import BuildFailed
from ds01ctl.model.spec import ContainerSpec
from ds01ctl.plan.actions import Action, Plan, Precondition, Step, StepKind

if TYPE_CHECKING:
    from ds01ctl.model.driver import Driver


class Refused(Ds01Error):
    """An action that would lose someone's work without --force."""

    code = "refused"


class MountMoved(Ds01Error):
    """A mount source that now leads somewhere the plan did not check (a swapped symlink)."""

    code = "mount_moved"


class Reporter(Protocol):
    """Progress hooks, one call per step; the executor never prints."""

    def step_started(self, action: Action, step: Step) -> None: ...
    def step_done(self, action: Action, step: Step, seconds: float, note: str | None) -> None: ...
    def step_failed(self, action: Action, step: Step, error: str) -> None: ...
    def step_skipped(self, action: Action, step: Step, because: str) -> None: ...


class NullReporter:
    def step_started(self, action: Action, step: Step) -> None:
        pass

    def step_done(self, action: Action, step: Step, seconds: float, note: str | None) -> None:
        pass

    def step_failed(self, action: Action, step: Step, error: str) -> None:
        pass

    def step_skipped(self, action: Action, step: Step, because: str) -> None:
        pass


@dataclass
class Outcome:
    """What became of each step, by step id."""

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
    force: bool  # lifts the no-live-sessions precondition
    mount_policy: list[MountRule]  # bind sources are checked again right before a create
    mount_dir_mode: int = 0o750  # a missing read-write source is made with it, as its owner
    site_network: str | None = None  # made before the first container that uses it
    inter_container: bool = False  # the site network's ICC (the Site's network.inter_container)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    # Called in the step's worker after its intent is journaled, before it acts: the shell
    # passes a test hook here (a pause, so a test can kill a real apply mid-way).
    before_step: Callable[[Action, Step], None] | None = None
    # Called while a step waits (a server loading its model): a line for the reporter.
    progress: Callable[[Action, Step, str], None] | None = None
    _image_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _made: dict[int, str] = field(default_factory=dict)  # create step id → the container
    _kept: dict[int, str] = field(default_factory=dict)  # snapshot step id → the image
    # Builds: where their logs go (`<state_dir>/builds`), and a progress line per build
    # (on a terminal) as each build reports its steps.
    build_logs: Path | None = None
    build_progress: Callable[[str, str], None] | None = None

    def image_lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._image_locks.setdefault(key, threading.Lock())

    def made(self, step: int, container: str) -> None:
        with self._guard:
            self._made[step] = container

    def kept(self, step: int, image: str) -> None:
        with self._guard:
            self._kept[step] = image

    def kept_by(self, step: int) -> str:
        with self._guard:
            if step not in self._kept:
                raise InternalError(f"step {step} kept no snapshot")
            return self._kept[step]

    def made_by(self, step: int) -> str:
        with self._guard:
            if step not in self._made:
                raise InternalError(f"step {step} made no container")
            return self._made[step]


_Item = tuple[Action, Step]


def execute(
    plan: Plan,
    ctx: Context,
    journal: Journal,
    reporter: Reporter,
    *,
    parallelism: int = 4,
    plan_digest: str | None = None,
) -> Outcome:
    """Run every step whose dependencies succeeded; the outcome says what became of each."""
    outcome = Outcome()
    items = plan.steps()
    waiting = {step.id: (action, step) for action, step in items}
    running: dict[Future[tuple[str | None, float]], _Item] = {}
    user, command = invoker()
    journal.record(
        "apply_started",
        plan_digest=plan_digest,
        steps=len(items),
        user=user,
        command=command,
        targets=sorted({a.target for a in plan.actions}),
    )
    if ctx.progress is None and hasattr(reporter, "step_progress"):
        ctx.progress = reporter.step_progress
    slots = max(1, parallelism)
    with ThreadPoolExecutor(max_workers=slots) as pool:
        while waiting or running:
            # Submit only what starts now, so an intent in the journal means "was running".
            for action, step in _ready(waiting, outcome)[: slots - len(running)]:
                del waiting[step.id]
                blocked = _blocked_by(step, outcome)
                if blocked is not None:
                    outcome.skipped[step.id] = blocked
                    journal.record(
                        "result", step=step.id, action=action.id, result="skipped", error=blocked
                    )
                    reporter.step_skipped(action, step, blocked)
                    continue
                journal.record("intent", **_intent(action, step, plan_digest))
                reporter.step_started(action, step)
                running[pool.submit(_timed, _run_one, action, step, ctx)] = (action, step)
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                _settle(running.pop(future), future, outcome, journal, reporter)
    journal.record("apply_finished", done=len(outcome.done), failed=len(outcome.failed))
    return outcome


def _ready(waiting: dict[int, _Item], outcome: Outcome) -> list[_Item]:
    settled = outcome.done.keys() | outcome.failed.keys() | outcome.skipped.keys()
    return [item for item in waiting.values() if set(item[1].depends_on) <= settled]


def _blocked_by(step: Step, outcome: Outcome) -> str | None:
    for dep in sorted(step.depends_on):
        if dep in outcome.failed or dep in outcome.skipped:
            return f"step {dep} did not succeed"
    return None


def _intent(action: Action, step: Step, plan_digest: str | None) -> dict[str, object]:
    # A step on an existing container keeps its whole previous shape (every field of the
    # table, its hash), so that a replace or delete could be undone by hand, or rolled back.
    fp = action.fingerprint if step.container_id is not None else None
    spec = action.container if step.kind in (StepKind.CREATE, StepKind.UPDATE) else None
    return {
        "step": step.id,
        "action": action.id,
        "kind": step.kind.value,
        "action_kind": action.kind.value,
        "target": action.target,
        "reason": action.reason.value,
        "container": step.container_id,
        "spec_hash": spec.label_map.get(L.DS01_SPEC_HASH) if spec else None,
        "previous": dict(fp.fields) if fp else None,
        "previous_spec_hash": fp.spec_hash if fp else None,
        "plan_digest": plan_digest,
    }


def _timed(
    run: Callable[[Action, Step, Context], str | None], action: Action, step: Step, ctx: Context
) -> tuple[str | None, float]:
    started = time.monotonic()
    note = run(action, step, ctx)
    return note, round(time.monotonic() - started, 3)


def _settle(
    item: _Item,
    future: Future[tuple[str | None, float]],
    outcome: Outcome,
    journal: Journal,
    reporter: Reporter,
) -> None:
    action, step = item
    try:
        note, seconds = future.result()
    except Exception as exc:  # any failure of one step is reported, not fatal
        message = _error_text(exc)
        outcome.failed[step.id] = message
        journal.record("result", step=step.id, action=action.id, result="failed", error=message)
        reporter.step_failed(action, step, message)
        return
    outcome.done[step.id] = note
    journal.record(
        "result", step=step.id, action=action.id, result="ok", note=note, seconds=seconds
    )
    reporter.step_done(action, step, seconds, note)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, BuildFailed):  # its step and last lines say what went wrong
        return exc.report()
    if isinstance(exc, NotReady):
        return str(exc)[:4000]  # its last log lines are the point
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:400]


def _run_one(action: Action, step: Step, ctx: Context) -> str | None:
    if ctx.before_step is not None:
        ctx.before_step(action, step)
    _check(action, step, ctx)
    match step.kind:
        case StepKind.CREATE:
            return _create(action, step, ctx)
        case StepKind.START:
            ctx.driver.start(step.container_id or ctx.made_by(_of_step(step)))
            return None
        case StepKind.STOP:
            ctx.driver.stop(_container(step), _grace(step))
            return None
        case StepKind.SNAPSHOT:
            return _snapshot(action, step, ctx)
        case StepKind.REMOVE:
            _remove(step, ctx)
            return None
        case StepKind.UPDATE:
            ctx.driver.update(_container(step), _spec(action))
            return None
        case StepKind.REMOVE_IMAGE:
            ctx.driver.remove_image(_image(step))
            return None
        case StepKind.BUILD:
            return run_build(action, ctx)
        case StepKind.WAIT_HEALTHY:
            return _wait_healthy(action, step, ctx)
        case _:
            assert_never(step.kind)


def _remove(step: Step, ctx: Context) -> None:
    ctx.driver.remove(_container(step))
    if step.untag:
        ctx.driver.release_image(step.untag)


def _check(action: Action, step: Step, ctx: Context) -> None:
    """The step's preconditions, as the world is now."""
    for condition in step.preconditions:
        match condition:
            case Precondition.NO_LIVE_SESSIONS:
                sessions = ctx.driver.sessions(_container(step))
                if sessions and not ctx.force:
                    raise Refused(
                        f"{action.target} has {sessions} process(es) besides its shell "
                        "(live `docker exec` sessions)",
                        hint="ask its owner to close them, or run apply with --force",
                    )
            case Precondition.MOUNTS_UNMOVED:
                _check_mounts(ctx, _spec(action))
            case _:
                assert_never(condition)


def _spec(action: Action) -> ContainerSpec:
    if action.container is None:
        raise InternalError(f"action {action.id} ({action.kind.value}) carries no spec")
    return action.container


_T = TypeVar("_T")


def _required(step: Step, value: _T | None, what: str) -> _T:
    """A field the planner gives every step of this kind; its absence is a bug, not input."""
    if value is None:
        raise InternalError(f"step {step.id} ({step.kind.value}) names no {what}")
    return value


def _grace(step: Step) -> int:
    return _required(step, step.grace, "stop grace")


def _image(step: Step) -> str:
    return _required(step, step.image, "image")


def _container(step: Step) -> str:
    return _required(step, step.container_id, "container")


def _of_step(step: Step) -> int:
    return _required(step, step.of_step, "create step")


def _create(action: Action, step: Step, ctx: Context) -> str | None:
    spec = _spec(action)
    note = _network(ctx, spec)
    # An adopted container's workspace is made from the snapshot of its writable layer.
    base = ctx.kept_by(step.from_step) if step.from_step is not None else None
    _prepare(ctx, spec, base)
    _check_mounts(ctx, spec)
    ctx.made(step.id, ctx.driver.create(spec))
    return note


class NotReady(Ds01Error):
    """A server that did not become Ready (rolled back or not: the message says)."""

    code = "not_ready"


def _wait_healthy(action: Action, step: Step, ctx: Context) -> str | None:
    """Ready, or the failure with the container's last log lines; with `rollback_to`, the
    failed replacement is removed and the container it replaced started and waited for."""
    spec = _spec(action)
    container = step.container_id or ctx.made_by(_of_step(step))

    def progress(text: str) -> None:
        if ctx.progress is not None:
            ctx.progress(action, step, text)

    try:
        ctx.driver.wait_healthy(container, spec, progress)
    except Exception as exc:
        failed = str(exc)
        if step.rollback_to is None:
            raise NotReady(f"{action.target} is Failed: {failed}") from None
        progress(f"rolling back to the container it replaced ({step.rollback_to[:12]})")
        ctx.driver.remove(container)
        ctx.driver.start(step.rollback_to)
        try:
            ctx.driver.wait_healthy(step.rollback_to, spec, progress)
        except Exception as again:
            raise NotReady(
                f"{action.target} is Failed: {failed}; the rollback failed too: {again}"
            ) from None
        raise NotReady(
            f"{action.target}: its replacement failed, rolled back (the previous container "
            f"is Ready again): {failed}"
        ) from None
    return f"ready at {spec.url}" if spec.url else "ready"


def _snapshot(action: Action, step: Step, ctx: Context) -> str | None:
    """Keep the writable layer as it is now (it may have changed since the plan)."""
    taken = ctx.driver.snapshot(
        _container(step),
        target=action.target,
        site=ctx.site,
        reason=step.reason or action.reason.value,
        now=ctx.clock(),
        keep_empty=step.keep_empty,
    )
    if taken is None:
        return None
    ctx.kept(step.id, taken.reference)
    return f"snapshot {taken.reference}"


def _network(ctx: Context, spec: ContainerSpec) -> str | None:
    """The site network exists before a container is created on it (idempotent)."""
    if ctx.site_network is None or spec.network != ctx.site_network:
        return None
    with ctx.image_lock(f"network:{spec.network}"):  # one create when several run at once
        made = ctx.driver.ensure_network(
            spec.network, site=ctx.site, inter_container=ctx.inter_container
        )
    return f"network {spec.network} created" if made else None


def _prepare(ctx: Context, spec: ContainerSpec, base: str | None = None) -> None:
    if spec.image_tag == spec.image and base is None:
        return  # run as it is (an endpoint's engine image): no account to add
    # One account setup per (image, uid) even when several creates run at once.
    with ctx.image_lock(f"{base or spec.image}:{spec.account.uid}"):
        ctx.driver.prepare_image(spec, base)


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
