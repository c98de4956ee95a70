"""The reconcile loop (shell): fetch, validate, plan, apply what the policy allows, hold the
rest for approval, run the lifecycle pass, write the status files, sleep, repeat.

A tick always fetches the branch; a new commit is checked out fresh and validated, and only
a commit whose Site and QuotaPolicy validate comes into force (users' bad files are pending
objects, as in `plan`); a rejected commit applies nothing, an event says why, and the one in
force stays. A full pass (plan, apply, status) runs when the commit in force changed, the
engine reported an event that can change this site's plan, an admin approved a plan, or the
Site's `reconcile.full_pass_every` ran out (which also retries failures); otherwise the tick
costs a `git fetch`.

SIGTERM sets a flag: the sleep ends at once, a plan under way applies nothing, and during an
apply the steps not started yet are abandoned (journaled as failed, with why) while those
running finish; then the loop exits 0. A second loop, or an admin's apply, waits for the
engine lock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ds01ctl.errors import Ds01Error, StalePlan, ValidationFailed
from ds01ctl.events import EventLog, event
from ds01ctl.exporter import LoopStatus
from ds01ctl.fsutil import write_atomically
from ds01ctl.lifecycle.policy import Demand, gpu_demand
from ds01ctl.loopstatus import write_loop_status
from ds01ctl.manifests.site import site_network_name
from ds01ctl.plan.actions import Action, Plan, Step
from ds01ctl.reconcile import policy, userstatus
from ds01ctl.reconcile.gitsource import GitSource
from ds01ctl.reconcile.held import HeldPlans, plan_id
from ds01ctl.reconcile.hooks import LifecycleContext, LifecycleHook, LifecycleReport
from ds01ctl.reconcile.schedule import full_pass_reason

if TYPE_CHECKING:
    from ds01ctl.apply.lock import LockInfo
    from ds01ctl.manifests.validate import ConfigRepo
    from ds01ctl.model.driver import Driver
    from ds01ctl.reconcile.enginewatch import EngineWatch
    from ds01ctl.workflow import ApplyResult, PlanResult

STATE_VERSION = 1
LOG_TAIL_LINES = 20


class Abandoned(Ds01Error):
    """A step not started when the loop was told to stop."""

    code = "abandoned"


@dataclass(frozen=True)
class LoopSettings:
    remote: str
    branch: str
    state_dir: Path
    interval: float = 30.0
    require_signed: bool = False
    lock_dir: Path | None = None
    lock_timeout: float = 3600.0  # a second instance waits this long for the engine lock
    parallelism: int = 4
    events_path: Path = Path("/var/log/ds01/events.jsonl")
    follow_engine: bool = True

    @property
    def workdir(self) -> Path:
        return self.state_dir / "reconcile"


@dataclass
class LoopState:
    """What the loop remembers (`<state>/reconcile/state.json`)."""

    commit: str | None = None
    in_force_since: str | None = None
    fetched: str | None = None
    fetch_error: str | None = None
    rejected: dict[str, str] | None = None
    last_tick: str | None = None
    last_full_pass: str | None = None
    last_success: str | None = None
    last_error: str | None = None
    duration_s: float | None = None
    pending_requests: int = 0  # after the last full pass: objects pending
    drift_objects: int = 0  # managed objects that differ from their manifest
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    held: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> LoopState:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
            return cls()
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def save(self, path: Path) -> None:
        doc = {"version": STATE_VERSION, "pid": os.getpid(), **dataclasses.asdict(self)}
        write_atomically(path, json.dumps(doc, indent=2, sort_keys=True) + "\n", private=True)


class _Collect:
    """A reporter that keeps failures, for the status files."""

    def __init__(self) -> None:
        self.failed: list[tuple[Action, Step, str]] = []
        self.done: set[str] = set()

    def step_started(self, action: Action, step: Step) -> None:
        pass

    def step_done(self, action: Action, step: Step, seconds: float, note: str | None) -> None:
        self.done.add(action.target)

    def step_failed(self, action: Action, step: Step, error: str) -> None:
        self.failed.append((action, step, error))

    def step_skipped(self, action: Action, step: Step, because: str) -> None:
        pass


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="seconds")


class Reconciler:
    def __init__(
        self,
        settings: LoopSettings,
        *,
        driver: Driver | None = None,
        lifecycle: LifecycleHook | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        from ds01ctl.drivers.docker import DockerDriver

        self.settings = settings
        self.driver: Driver = driver or DockerDriver.connect()
        self.lifecycle = lifecycle
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.stopping = threading.Event()
        self.source = GitSource(
            settings.remote,
            settings.branch,
            settings.workdir,
            require_signed=settings.require_signed,
        )
        settings.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.state_path = settings.workdir / "state.json"
        self.state = LoopState.load(self.state_path)
        self.held = HeldPlans(settings.state_dir)
        self.events = EventLog(settings.events_path)
        self.repo: ConfigRepo | None = None
        self.watch: EngineWatch | None = None
        self._last_full: float | None = None  # monotonic
        self._lifecycle_acted = False
        self._lifecycle_report = LifecycleReport()
        self._demand: Demand | None = None  # the last plan's GPU demand, for the lifecycle
        self._lock_said = False

    # --- events and lines ---------------------------------------------------------------------

    def emit(self, event_type: str, user: str | None = None, **details: Any) -> None:
        self.events.append(event(event_type, user, details, _now()))

    # --- signals ------------------------------------------------------------------------------

    def install_signals(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            if not self.stopping.is_set():
                self.log(f"{signal.Signals(signum).name}: stopping (steps under way finish)")
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _abandon_if_stopping(self, action: Action, step: Step) -> None:
        if self.stopping.is_set():
            raise Abandoned(
                f"abandoned before it started: the reconcile loop was stopped ({action.target} "
                f"{step.kind.value})",
                hint="the next run plans it again",
            )

    def _lock_wait(self, holder: LockInfo | None, waited: float) -> None:
        if self.stopping.is_set():
            raise Abandoned("stopped while waiting for the engine lock", hint="")
        if not self._lock_said:
            self._lock_said = True
            who = holder.describe() if holder else "another process"
            self.log(f"waiting for the engine lock ({who})")
            self.emit("reconcile.lock_wait", holder=who)

    # --- the loop -----------------------------------------------------------------------------

    def run(self, *, once: bool = False) -> int:
        self.emit(
            "reconcile.started",
            remote=self.settings.remote,
            branch=self.settings.branch,
            interval_s=self.settings.interval,
            once=once,
        )
        if self.settings.follow_engine and not once:
            self._start_watch()
        try:
            while not self.stopping.is_set():
                self.tick()
                if once:
                    break
                self.stopping.wait(self.settings.interval)
        finally:
            if self.watch is not None:
                self.watch.stop()
            self.emit("reconcile.stopped", commit=self.state.commit, signal=self.stopping.is_set())
            self.log(f"stopped at commit {self.state.commit or '(none)'}")
            self.events.close()
        return 0

    def _start_watch(self) -> None:
        from ds01ctl.reconcile.enginewatch import EngineWatch

        client = getattr(self.driver, "client", None)
        if client is None:
            return
        from ds01ctl.live.docker import connect

        # Its own connection: the stream holds one open for as long as the loop runs.
        self.watch = EngineWatch(connect())
        self.watch.start()

    def tick(self) -> None:
        started = time.monotonic()
        now = _now()
        self.state.last_tick = _iso(now)
        commit_changed = self._follow_branch(now)
        tree = self._tree()
        if tree is None or self.stopping.is_set():
            self.state.save(self.state_path)
            return
        approvals = self.held.approved()
        engine_changed = True if self.watch is None else self.watch.take_changed()
        assert self.repo is not None and self.repo.site is not None
        reason = full_pass_reason(
            commit_changed=commit_changed,
            engine_changed=engine_changed or self._lifecycle_acted,
            approvals=bool(approvals),
            since_full=None if self._last_full is None else started - self._last_full,
            full_every=self.repo.site.spec.reconcile.full_pass_every,
        )
        if reason is not None:
            try:
                self._full_pass(tree, approvals, now)
                self.state.last_success = _iso(_now())
                self.state.last_error = None
            except Abandoned:
                pass
            except Ds01Error as exc:
                self.state.last_error = str(exc)
                self.log(f"pass failed: {exc}")
                self.emit("reconcile.pass_failed", commit=self.state.commit, why=str(exc))
            self._last_full = started
            self.state.last_full_pass = _iso(now)
            self.state.duration_s = round(time.monotonic() - started, 3)
        self._run_lifecycle(tree)
        self.state.save(self.state_path)
        self._export()

    # --- the config repo ------------------------------------------------------------------------

    def _follow_branch(self, now: dt.datetime) -> bool:
        """Fetch; bring a new valid commit into force. True when the commit in force changed
        (or was loaded for the first time by this process)."""
        try:
            fetched = self.source.fetch()
        except Ds01Error as exc:
            if self.state.fetch_error != exc.message:
                self.log(f"fetch failed: {exc.message}")
                self.emit("reconcile.fetch_failed", why=exc.message)
            self.state.fetch_error = exc.message
            return self._load_in_force()
        self.state.fetch_error = None
        self.state.fetched = fetched
        rejected = (self.state.rejected or {}).get("commit")
        if fetched in (self.state.commit, rejected):
            return self._load_in_force()
        why = self.source.verify(fetched)
        repo = None
        if why is None:
            tree = self.source.trees / fetched
            try:
                tree = self.source.checkout(fetched)
                repo = self._load(tree, now)
            except ValidationFailed as exc:
                why = _first_errors(exc, tree)
            except Ds01Error as exc:
                why = str(exc)
        if why is not None or repo is None:
            self.state.rejected = {"commit": fetched, "why": why or "?", "at": _iso(now)}
            self.log(f"commit {fetched[:12]} not applied: {why}")
            self.emit(
                "reconcile.commit_rejected",
                commit=fetched,
                why=why,
                in_force=self.state.commit,
            )
            return self._load_in_force()
        previous = self.state.commit
        self.state.commit, self.state.in_force_since = fetched, _iso(now)
        self.state.rejected = None
        self.repo = repo
        self.source.keep_trees({fetched})
        self.log(f"commit {fetched[:12]} in force (was {previous[:12] if previous else 'none'})")
        self.emit("reconcile.commit", commit=fetched, previous=previous)
        return True

    def _load_in_force(self) -> bool:
        if self.repo is not None or self.state.commit is None:
            return False
        try:
            self.repo = self._load(self.source.checkout(self.state.commit), _now())
        except Ds01Error as exc:
            self.log(f"the commit in force {self.state.commit[:12]} cannot be loaded: {exc}")
            self.state.commit = None
            return False
        return True

    def _load(self, tree: Path, now: dt.datetime) -> ConfigRepo:
        from ds01ctl.workflow import load_repo

        return load_repo(tree, now.date())

    def _tree(self) -> Path | None:
        if self.state.commit is None or self.repo is None:
            return None
        return self.source.trees / self.state.commit

    # --- one full pass --------------------------------------------------------------------------

    def _rules(self) -> tuple[tuple[policy.Rule, ...], str]:
        assert self.repo is not None and self.repo.site is not None
        settings = self.repo.site.spec.reconcile
        return policy.rules_of(settings.auto_apply), settings.drift

    def _full_pass(
        self, tree: Path, approvals: list[tuple[str, dict[str, Any]]], now: dt.datetime
    ) -> None:
        # Re-read each pass: exemptions expire, and the Site's rules are the commit's.
        self.repo = self._load(tree, now)
        collect = _Collect()
        for ident, record in approvals:
            self._apply_approved(tree, ident, record, collect)
        result = self._plan(tree)
        rules, drift = self._rules()
        cut = policy.split(result.plan, rules, drift=drift)
        if cut.auto and not self.stopping.is_set():
            applied = self._apply_auto(tree, collect)
            if applied.outcome is not None and not self.stopping.is_set():
                result = self._plan(tree)  # what is left, and the state the status shows
                cut = policy.split(result.plan, rules, drift=drift)
        self._record_failures(collect, cut)
        self._hold(result.plan, cut)
        self._demand = gpu_demand(result.desired.allocation.pending)
        self.state.pending_requests = len(result.plan.pending)
        self.state.drift_objects = len({d.target for d in result.plan.drift})
        if self.watch is not None:
            if result.repo.site is not None:
                name = result.repo.site.metadata.name
                self.watch.site = name
                self.watch.network = site_network_name(name, result.repo.site.spec)
            self.watch.waiting = bool(result.plan.pending)
        if cut.reported:
            self.emit(
                "reconcile.drift_reported",
                commit=self.state.commit,
                targets=[a.target for a in cut.reported],
            )
        self._write_status(result, cut, now)

    def _plan(self, tree: Path) -> PlanResult:
        from ds01ctl.workflow import make_plan

        return make_plan(
            tree, prune=True, driver=self.driver, repo=self.repo, state_dir=self.settings.state_dir
        )

    def _apply_settings(self, *, prune: bool) -> Any:
        from ds01ctl.workflow import ApplySettings

        return ApplySettings(
            state_dir=self.settings.state_dir,
            lock_dir=self.settings.lock_dir,
            lock_timeout=self.settings.lock_timeout,
            parallelism=self.settings.parallelism,
            prune=prune,
        )

    def _apply(self, tree: Path, collect: _Collect, select: Callable[[Plan], Plan]) -> ApplyResult:
        from ds01ctl.workflow import apply_changes

        self._lock_said = False
        return apply_changes(
            tree,
            self._apply_settings(prune=True),
            confirm=lambda _plan: True,
            reporter=collect,
            driver=self.driver,
            on_lock_wait=self._lock_wait,
            select=select,
            before_step=self._abandon_if_stopping,
        )

    def _apply_auto(self, tree: Path, collect: _Collect) -> ApplyResult:
        rules, drift = self._rules()

        def select(plan: Plan) -> Plan:
            if self.stopping.is_set():
                return dataclasses.replace(plan, actions=())
            cut = policy.split(plan, rules, drift=drift)
            return dataclasses.replace(plan, actions=cut.auto)

        result = self._apply(tree, collect, select)
        self._report_apply("reconcile.applied", result, collect)
        return result

    def _apply_approved(
        self, tree: Path, ident: str, record: dict[str, Any], collect: _Collect
    ) -> None:
        """Apply a plan an admin approved, if a fresh plan still holds exactly it."""
        from ds01ctl.plan.planfile import load_plan
        from ds01ctl.plan.staleness import restrict, stale_reasons

        rules, drift = self._rules()
        by = record.get("by")
        try:
            saved = load_plan(self.held.path(ident), state_dir=self.settings.state_dir)
        except Ds01Error as exc:
            self._approval_refused(ident, by, str(exc))
            return

        def select(plan: Plan) -> Plan:
            if self.stopping.is_set():
                return dataclasses.replace(plan, actions=())
            cut = policy.split(plan, rules, drift=drift)
            if plan_id(cut.held) != ident:
                raise StalePlan(
                    f"plan {ident} is no longer what the loop holds (now: "
                    f"{plan_id(cut.held) if cut.held else 'nothing'})",
                    hint="see `ds01ctl status` for the plan held now",
                )
            reasons = stale_reasons(saved, plan)
            if reasons:
                raise StalePlan(f"plan {ident} is stale: {'; '.join(reasons)}", hint="")
            return dataclasses.replace(plan, actions=restrict(plan, cut.held_targets).actions)

        try:
            result = self._apply(tree, collect, select)
        except StalePlan as exc:
            self._approval_refused(ident, by, exc.message)
            return
        finally:
            self.held.done(ident)
        self._report_apply("reconcile.approved_applied", result, collect, plan=ident, by=by)

    def _approval_refused(self, ident: str, by: Any, why: str) -> None:
        self.log(f"approved plan {ident} not applied: {why}")
        self.emit("reconcile.approval_refused", plan=ident, by=by, why=why)
        self.held.done(ident)

    def _report_apply(
        self, event_type: str, result: ApplyResult, collect: _Collect, **extra: Any
    ) -> None:
        outcome = result.outcome
        if outcome is None:
            return
        targets = sorted({a.target for a in result.plan.actions})
        self.log(
            f"applied {len(targets)} object(s) at {(self.state.commit or '')[:12]}: "
            f"{len(outcome.done)} step(s) done, {len(outcome.failed)} failed, "
            f"{len(outcome.skipped)} skipped (apply {result.apply_id})"
        )
        self.emit(
            event_type,
            commit=self.state.commit,
            apply=result.apply_id,
            targets=targets,
            done=len(outcome.done),
            failed=len(outcome.failed),
            skipped=len(outcome.skipped),
            **extra,
        )

    def _record_failures(self, collect: _Collect, cut: policy.Split) -> None:
        """Failures stay shown until the object's next apply succeeds or it needs nothing."""
        now = _iso(_now())
        planned = {a.target for a in (*cut.auto, *cut.held, *cut.reported)}
        failures = {
            t: f for t, f in self.state.failures.items() if t in planned and t not in collect.done
        }
        for action, step, error in collect.failed:
            if error.startswith("abandoned"):
                continue
            failures[action.target] = {
                "target": action.target,
                "action": action.kind.value,
                "step": step.kind.value,
                "error": error,
                "at": now,
                "container": step.container_id,
            }
        self.state.failures = failures

    def _hold(self, plan: Plan, cut: policy.Split) -> None:
        from ds01ctl.reconcile.held import held_plan

        if not cut.held:
            self.held.keep_only(set())
            self.state.held = []
            return
        ident = plan_id(cut.held)
        known = {h.get("id") for h in self.state.held}
        self.held.save(held_plan(plan, cut.held_targets), ident)
        self.state.held = [
            {
                "id": ident,
                "commit": self.state.commit,
                "actions": [
                    {
                        "target": a.target,
                        "action": a.kind.value,
                        "reason": a.reason.value,
                        "why": cut.why.get(a.target),
                    }
                    for a in cut.held
                ],
            }
        ]
        if ident not in known:
            self.log(f"plan {ident} waits for approval: {', '.join(cut.held_targets)}")
            self.emit(
                "reconcile.held",
                plan=ident,
                commit=self.state.commit,
                targets=list(cut.held_targets),
            )

    # --- status ---------------------------------------------------------------------------------

    def _write_status(self, result: PlanResult, cut: policy.Split, now: dt.datetime) -> None:
        from ds01ctl.reconcile.status import status_document

        doc = status_document(
            result,
            cut,
            state=dataclasses.asdict(self.state),
            failures=self._with_log_tails(result),
            lifecycle=self._lifecycle_report,
            now=now,
        )
        write_atomically(
            self.settings.workdir / "status.json",
            json.dumps(doc, indent=2, sort_keys=True) + "\n",
            private=True,
        )
        skipped = userstatus.write_user_files(
            self.settings.state_dir,
            userstatus.documents(doc, self._logins(result)),
            self._ids(result),
        )
        if skipped:
            self.log(f"no status file for {', '.join(skipped)}: no uid known")

    def _with_log_tails(self, result: PlanResult) -> list[dict[str, Any]]:
        """Each failure with the last lines its container logged, when there is one."""
        by_target = {c.key: c for c in result.observed.ours()}
        rows = []
        for failure in self.state.failures.values():
            row = dict(failure)
            container = by_target.get(row["target"])
            if container is not None and not container.running:
                row["log_tail"] = self._log_tail(container.id)
            rows.append(row)
        return rows

    def _log_tail(self, container_id: str) -> list[str]:
        client = getattr(self.driver, "client", None)
        if client is None:
            return []
        try:
            raw = client.logs(container_id, tail=LOG_TAIL_LINES, stdout=True, stderr=True)
        except Exception:  # gone since, or logs not readable: the error line stays
            return []
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return text.splitlines()[-LOG_TAIL_LINES:]

    def _logins(self, result: PlanResult) -> set[str]:
        owners = {item.manifest.metadata.owner for item in result.repo.loaded}
        owners |= {c.owner for c in result.observed.ours()}
        owners |= {userstatus.owner_of(p.target) for p in result.plan.pending}
        return {o for o in owners if o}

    def _ids(self, result: PlanResult) -> dict[str, tuple[int, int]]:
        from ds01ctl.live.accounts import lookup_accounts

        assert result.repo.site is not None
        pins = result.repo.site.spec.users
        ids = {login: (pin.uid, pin.gid) for login, pin in pins.items()}
        for login, account in lookup_accounts(self._logins(result) - set(pins)).items():
            ids[login] = (account.uid, account.gid)
        return ids

    def _export(self) -> None:
        """The loop's numbers for `ds01ctl exporter` (`<state>/reconcile.json`)."""
        last = self.state.last_success
        write_loop_status(
            self.settings.state_dir,
            LoopStatus(
                commit=self.state.commit,
                last_success=None if last is None else dt.datetime.fromisoformat(last),
                duration_s=self.state.duration_s,
                pending_requests=self.state.pending_requests,
                drift_objects=self.state.drift_objects,
            ),
        )

    # --- lifecycle ------------------------------------------------------------------------------

    def _run_lifecycle(self, tree: Path) -> None:
        self._lifecycle_acted = False
        if self.lifecycle is None or self.repo is None or self.stopping.is_set():
            return
        del tree
        context = LifecycleContext(
            repo=self.repo,
            state_dir=self.settings.state_dir,
            driver=self.driver,
            now=_now(),
            events=self.events,
            stopping=self.stopping.is_set,
            demand=self._demand,
        )
        try:
            self._lifecycle_report = self.lifecycle(context)
        except Ds01Error as exc:
            self.log(f"lifecycle pass failed: {exc}")
            self.emit("reconcile.lifecycle_failed", why=str(exc))
            return
        self._lifecycle_acted = self._lifecycle_report.acted


def _first_errors(exc: ValidationFailed, tree: Path, limit: int = 3) -> str:
    """The first errors, file:line:col relative to the checkout."""
    errors = [d for d in exc.diagnostics if d.is_error]
    prefix = f"{tree}/"
    lines = [
        f"{d.where.removeprefix(prefix)}: {d.message}" if d.where else d.message for d in errors
    ]
    shown = "; ".join(lines[:limit])
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return f"{shown}{more}" or exc.message
