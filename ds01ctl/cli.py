"""The command line: parse, call one core function, render, return an exit code.

Heavy modules (docker, pynvml) are imported inside the commands that need them, so
`--help` and `validate` start fast. `Ds01Error` is caught here, once; anything else is a bug.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TextIO

import typer

from ds01ctl import __version__
from ds01ctl.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, Ds01Error, ValidationFailed

if TYPE_CHECKING:
    from ds01ctl.apply.lock import LockInfo
    from ds01ctl.plan.actions import Plan
    from ds01ctl.workflow import ApplyResult

app = typer.Typer(
    name="ds01ctl",
    help="Declarative control of a shared GPU server: validate, plan and apply a config repo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

PathArg = Annotated[
    Path | None,
    typer.Argument(
        help="Config repo directory or a manifest file in it (default: the config repo "
        "around the working directory).",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-C",
        help="The config repo (default: the one around the working directory).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
PruneOpt = Annotated[
    bool, typer.Option("--prune", help="Delete managed containers that have no manifest.")
]
AdoptOpt = Annotated[
    bool,
    typer.Option(
        "--adopt",
        help="Adopt each workspace owner's mlc container that holds its name (as adopt: true).",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ds01ctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks for internal errors.")] = False,
) -> None:
    """ds01ctl: manifests in, containers out."""
    # --debug and --json are read by `main`, which catches what escapes a command.


@app.command()
def validate(
    path: PathArg = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    github: Annotated[bool, typer.Option("--github", help="GitHub Actions annotations.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
) -> None:
    """Check manifests offline (no Docker, no GPU): schema, references, ownership, policy."""
    from ds01ctl import report
    from ds01ctl.manifests.validate import validate_path

    repo = validate_path(_config_path(path, config), today=dt.datetime.now(dt.UTC).date())
    diags = repo.diagnostics
    failed = bool(repo.errors) or (strict and bool(diags))
    line = report.summary(diags, len(repo.named), len(repo.files))
    if json_out:
        typer.echo(report.as_json(diags, valid=not failed, objects=len(repo.named)))
    elif github:
        report.github(diags, sys.stdout)
        typer.echo(line)
    else:
        report.human(diags, sys.stdout, colour=_colour(sys.stdout))
        typer.echo(line)
    raise typer.Exit(EXIT_ERROR if failed else EXIT_OK)


@app.command()
def schema(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write one <kind>.schema.json per kind, and manifest.schema.json, here."
        ),
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Print one kind's schema.")] = None,
) -> None:
    """JSON Schemas of the manifest kinds (for editors and config-repo CI)."""
    from ds01ctl.manifests import KINDS
    from ds01ctl.schema import schema_files, write_schemas

    if out is not None:
        for written in write_schemas(out):
            typer.echo(str(written))
        return
    files = schema_files()
    if kind is None:
        typer.echo("\n".join(files))
        return
    if kind not in KINDS:
        raise Ds01Error(f"unknown kind {kind!r}", hint=f"one of {', '.join(KINDS)}")
    typer.echo(files[f"{kind.lower()}.schema.json"], nl=False)


@app.command()
def plan(
    path: PathArg = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Save the plan for `ds01ctl apply FILE`.")
    ] = None,
    prune: PruneOpt = False,
    adopt: AdoptOpt = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--target", help="Only this object (KIND/OWNER/NAME); repeatable."),
    ] = None,
    all_gpus: Annotated[
        bool, typer.Option("--gpus", help="Show every GPU, not only those that change.")
    ] = False,
    detailed_exitcode: Annotated[
        bool,
        typer.Option("--detailed-exitcode", help="Exit 0: no changes, 1: error, 2: changes."),
    ] = False,
    fail_on_pending: Annotated[
        bool, typer.Option("--fail-on-pending", help="Pending requests are an error (exit 1).")
    ] = False,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="State directory (default: the Site's).")
    ] = None,
) -> None:
    """Compare the manifests with live Docker and GPU state; show what apply would do."""
    from ds01ctl.plan import render_human, render_json
    from ds01ctl.workflow import make_plan, state_dir_of

    if only and prune:
        raise Ds01Error(
            "--prune needs the whole config repo, without --target",
            hint="drop --target, or --prune",
            code="partial_prune",
        )
    result = make_plan(
        _config_path(path, config),
        prune=prune,
        state_dir=state_dir,
        targets=tuple(only or ()),
        adopt=adopt,
    )
    document = render_json.plan_document(result.plan)
    if out is not None:
        from ds01ctl.plan.planfile import save_plan

        meta = result.plan.meta
        save_plan(
            result.plan,
            out,
            tool_version=__version__,
            site=meta.site or "",
            state_dir=state_dir_of(result.repo, state_dir),
            config_commit=meta.config_commit,
        )
    if json_out:
        typer.echo(render_json.dumps(document), nl=False)
    else:
        text = render_human.render(document, colour=_colour(sys.stdout), all_gpus=all_gpus)
        typer.echo(text, nl=False)
        if out is not None:
            typer.echo(f"\nSaved the plan to {out}; apply it with: ds01ctl apply {out}")
    if fail_on_pending and result.plan.pending:
        for item in result.plan.pending:
            typer.echo(f"pending: {item.target}: {item.reason}", err=True)
        raise typer.Exit(EXIT_ERROR)
    if detailed_exitcode and result.plan.has_changes:
        raise typer.Exit(EXIT_CHANGES)


@app.command()
def apply(
    target: Annotated[
        Path | None,
        typer.Argument(
            help="Config repo (or a manifest file or directory in it), or a plan file saved "
            "by `plan --out` (default: the config repo around the working directory).",
            show_default=False,
        ),
    ] = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--target", help="Only this object (KIND/OWNER/NAME); repeatable."),
    ] = None,
    prune: PruneOpt = False,
    adopt: AdoptOpt = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace or delete workspaces with live sessions.")
    ] = False,
    parallelism: Annotated[
        int, typer.Option("--parallelism", min=1, max=32, help="Actions run at once.")
    ] = 4,
    lock_timeout: Annotated[
        float, typer.Option("--lock-timeout", min=0, help="Seconds to wait for another apply.")
    ] = 0.0,
    lock_dir: Annotated[
        Path | None, typer.Option("--lock-dir", help="Host-wide lock directory.")
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Journal directory (default: the Site's).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-C",
            help="The config repo; with a saved plan, the one to re-plan and check it against "
            "(default: the one around the working directory).",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
    rebuild: Annotated[
        list[str] | None,
        typer.Option(
            "--rebuild",
            help="Build this Image (OWNER/NAME) again on its base's newest image; repeatable.",
        ),
    ] = None,
) -> None:
    """Carry out the plan: lock the engine, (re)plan, confirm, execute, journal."""
    from ds01ctl.apply.progress import JsonReporter, LineReporter, build_progress
    from ds01ctl.plan import render_human, render_json
    from ds01ctl.workflow import ApplySettings, apply_changes

    path, plan_file = _apply_sources(target, config)
    colour = _colour(sys.stdout)
    cancelled = False

    waiting = _LockWaitLine(sys.stderr)

    def confirm(plan: Plan) -> bool:
        waiting.finish()
        if json_out:
            typer.echo(render_json.dumps(render_json.plan_document(plan)), nl=False)
        else:
            typer.echo(render_human.render(render_json.plan_document(plan), colour=colour))
        if auto_approve or plan_file is not None:
            return True
        if not sys.stdin.isatty():
            raise Ds01Error(
                "apply needs a confirmation", hint="run it on a terminal, or pass --auto-approve"
            )
        answer = typer.prompt("Apply these actions? Only 'yes' will be accepted", default="")
        if answer != "yes":
            nonlocal cancelled
            cancelled = True
            return False
        return True

    settings = ApplySettings(
        state_dir=state_dir,
        lock_dir=lock_dir,
        lock_timeout=lock_timeout,
        parallelism=parallelism,
        force=force,
        prune=prune,
        targets=tuple(only or ()),
        adopt=adopt,
        rebuild=tuple(rebuild or ()),
        build_progress=None if json_out else build_progress(sys.stderr),
    )
    if settings.targets and not json_out:
        typer.echo("Warning: --target applies only part of the plan.", err=True)
    reporter = JsonReporter() if json_out else LineReporter(colour=colour)
    result = apply_changes(
        path,
        settings,
        confirm=confirm,
        reporter=reporter,
        plan_file=plan_file,
        on_lock_wait=waiting,
    )
    waiting.finish()
    if cancelled:
        typer.echo("Apply cancelled: the answer was not 'yes'; nothing was changed.", err=True)
        raise typer.Exit(EXIT_ERROR)
    _apply_report(result, json_out=json_out)


def _apply_report(result: ApplyResult, *, json_out: bool) -> None:
    """The end of an apply: its summary, and an error exit when an action failed."""
    from ds01ctl.errors import ApplyFailed
    from ds01ctl.plan import render_human, render_json

    outcome = result.outcome
    counts = {
        "done": len(outcome.done) if outcome else 0,
        "failed": len(outcome.failed) if outcome else 0,
        "skipped": len(outcome.skipped) if outcome else 0,
    }
    if json_out:
        if result.pruned:
            pruned = {"event": "snapshots_pruned", "removed": list(result.pruned)}
            typer.echo(json.dumps(pruned, sort_keys=True))
        event = {"event": "summary", "apply": result.apply_id, **counts}
        typer.echo(json.dumps(event, sort_keys=True))
    elif result.pruned:
        typer.echo(
            f"Removed {len(result.pruned)} older snapshot(s) beyond the Site's retention: "
            + ", ".join(result.pruned)
        )
    elif outcome is None and not result.plan.actions:
        document = render_json.plan_document(result.plan)
        typer.echo(render_human.render(document, colour=_colour(sys.stdout)), nl=False)
    if outcome is None:
        return
    summary = (
        f"Apply {result.apply_id}: {counts['done']} done, {counts['failed']} failed, "
        f"{counts['skipped']} skipped."
    )
    if not json_out:
        typer.echo(summary)
    if not outcome.ok:
        raise ApplyFailed(summary, hint="see `ds01ctl history`; fix the cause and apply again")


class _LockWaitLine:
    """While apply waits for another's engine lock: one line saying whose it is, and on a
    terminal a live line of the seconds waited (rewritten in place)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.said = False

    def __call__(self, holder: LockInfo | None, waited: float) -> None:
        if not self.said:
            self.said = True
            who = f"pid {holder.pid} ({holder.user}, `{holder.command}`)" if holder else "?"
            since = f", since {holder.since}" if holder else ""
            self.stream.write(f"Waiting for the lock held by {who}{since}.\n")
        if self.live:
            self.stream.write(f"\r  waited {waited:.0f}s for the engine lock")
        self.stream.flush()

    def finish(self) -> None:
        """End the live line (once the lock is held), so what follows starts on its own."""
        if self.live and self.said:
            self.stream.write("\n")
            self.stream.flush()
        self.live = False


def _apply_sources(target: Path | None, config: Path | None) -> tuple[Path, Path | None]:
    """The config repo to plan from, and the saved plan to check against it, if any.

    A saved plan never says which config repo to trust (anyone can write one): apply re-plans
    the repo named by -C, or the one around the working directory.
    """
    from ds01ctl.manifests.repofiles import SUFFIXES

    if target is not None and target.is_file() and not target.name.endswith(SUFFIXES):
        return _config_path(None, config), target
    return _config_path(target, config), None


def _config_path(path: Path | None, config: Path | None) -> Path:
    """The config repo a command works on: PATH or -C/--config (one of them), else the config
    root around the working directory, found as the loader finds it (the nearest directory
    up to the git root holding a Site manifest), so a command run anywhere in the repo sees
    all of it."""
    from ds01ctl.manifests.repofiles import find_config_root

    if path is not None and config is not None:
        raise Ds01Error(
            f"PATH ({path}) and -C/--config ({config}) both name the config repo",
            hint="give one of them",
            code="config_twice",
        )
    given = path if path is not None else config
    if given is not None:
        return given
    root = find_config_root(Path.cwd())
    if root is None:
        return Path(".")  # the loader says, in one line, that this is no config repo
    return Path(os.path.relpath(root))


@app.command()
def history(
    path: PathArg = None,
    config: ConfigOpt = None,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Journal directory.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Past applies from the journal: what each did, and what was in flight if it died."""

    from ds01ctl.apply.journal import history as read_history
    from ds01ctl.apply.journal import read_journal
    from ds01ctl.statedir import existing_state_dir
    from ds01ctl.workflow import load_repo, state_dir_of

    repo = load_repo(_config_path(path, config), dt.datetime.now(dt.UTC).date())
    journal = read_journal(existing_state_dir(state_dir_of(repo, state_dir)))
    applies = read_history(journal)
    skipped = journal.skipped_note()
    if skipped is not None:  # on stderr, so that --json stays one document
        typer.echo(f"warning: {skipped}", err=True)
    if json_out:
        typer.echo(json.dumps([a.__dict__ for a in applies], indent=2, sort_keys=True, default=str))
        return
    if not applies:
        typer.echo("No applies recorded yet.")
    for record in applies:
        results = [a.get("result", "in flight") for a in record.steps.values()]
        counts = ", ".join(f"{results.count(r)} {r}" for r in sorted(set(results))) or "nothing"
        status = "" if record.finished else "  (did not finish)"
        by = f" by {record.user}" if record.user else ""
        typer.echo(f"{record.started}  apply {record.apply_id}{by}: {counts}{status}")
        if record.command:
            typer.echo(f"    command: {record.command}")
        if record.targets:
            typer.echo(f"    targets: {', '.join(record.targets)}")
        for step in record.in_flight:
            kind, of = step.get("kind"), step.get("action_kind")
            what = kind if of in (None, kind) else f"{kind} ({of})"
            typer.echo(f"    in flight when it stopped: {what} {step.get('target')}")


@app.command()
def limits(
    user: Annotated[
        str | None, typer.Argument(help="A login; all known users when omitted.")
    ] = None,
    config: ConfigOpt = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Limits only: do not ask Docker what is used.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Effective limits with the layer that set each one, current use and headroom."""
    from ds01ctl.limits_report import limits_report

    report = limits_report(_config_path(None, config), user, with_usage=not offline)
    typer.echo(report.to_json() if json_out else report.to_text(), nl=False)


@app.command()
def endpoints(
    path: PathArg = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Each endpoint: phase (Pending, Starting, Ready, Degraded, Failed), URL, model, recipe,
    GPUs."""
    from ds01ctl.endpoints_report import endpoints_report

    report = endpoints_report(_config_path(path, config))
    typer.echo(report.to_json() if json_out else report.to_text(), nl=False)


render_app = typer.Typer(help="Show what ds01ctl would generate.", no_args_is_help=True)
app.add_typer(render_app, name="render")


@render_app.command("image")
def render_image(
    image: Annotated[str, typer.Argument(help="The Image as OWNER/NAME.")],
    config: ConfigOpt = None,
) -> None:
    """Print the Dockerfile an Image builds from (the base as the catalog resolves it)."""
    from ds01ctl.images.render import render_image as render
    from ds01ctl.workflow import load_repo

    owner, slash, name = image.rpartition("/")
    if not slash or not owner or not name:
        raise Ds01Error(f"{image!r} is not OWNER/NAME", hint="e.g. carol/cv-env")
    build = render(
        load_repo(_config_path(None, config), dt.datetime.now(dt.UTC).date()), owner, name
    )
    typer.echo(build.dockerfile, nl=False)
    typer.echo(f"# tag: {build.tag}")
    for file_name, data in sorted(build.context.items()):
        typer.echo(f"# context: {file_name} ({len(data)} bytes)")


snapshots_app = typer.Typer(
    help="Images committed from workspaces before they were replaced or removed.",
    no_args_is_help=True,
)
app.add_typer(snapshots_app, name="snapshots")


@snapshots_app.command("list")
def snapshots_list(
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Snapshots of this site's workspaces, oldest first."""

    from ds01ctl.drivers.docker import DockerDriver
    from ds01ctl.units import about_size
    from ds01ctl.workflow import load_repo

    repo = load_repo(_config_path(None, config), dt.datetime.now(dt.UTC).date())
    assert repo.site is not None
    found = DockerDriver.connect().snapshots(repo.site.metadata.name)
    if json_out:
        typer.echo(json.dumps([s.__dict__ for s in found], indent=2, sort_keys=True))
        return
    if not found:
        typer.echo("No snapshots.")
        return
    rows = [("SNAPSHOT", "OF", "TAKEN", "REASON", "SIZE")]
    rows += [(s.reference, s.of, s.taken_at, s.reason, about_size(s.size)) for s in found]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@snapshots_app.command("restore")
def snapshots_restore(
    reference: Annotated[str, typer.Argument(help="A snapshot, as `snapshots list` shows it.")],
    config: ConfigOpt = None,
) -> None:
    """Point the workspace's manifest at the snapshot (comments kept); then plan and apply."""
    from ds01ctl.drivers.docker import DockerDriver
    from ds01ctl.manifests import Workspace
    from ds01ctl.manifests.rewrite import set_workspace_image
    from ds01ctl.workflow import load_repo

    repo = load_repo(_config_path(None, config), dt.datetime.now(dt.UTC).date())
    assert repo.site is not None
    snap = next(
        (
            s
            for s in DockerDriver.connect().snapshots(repo.site.metadata.name)
            if s.reference == reference
        ),
        None,
    )
    if snap is None:
        raise Ds01Error(
            f"no snapshot {reference} of this site", hint="see `ds01ctl snapshots list`"
        )
    _, owner, name = snap.of.split("/", 2)
    item = next((i for ws, i in repo.of(Workspace) if ws.key == ("Workspace", owner, name)), None)
    if item is None:
        raise Ds01Error(
            f"workspace {owner}/{name} is not declared any more",
            hint=f"declare it with `image_ref: {reference}` to restore it",
        )
    set_workspace_image(Path(item.file), owner, name, reference, root=repo.root)
    typer.echo(f"{item.file}: workspace {owner}/{name} now uses image_ref {reference}")
    typer.echo("Review and commit the change, then `ds01ctl plan` and `ds01ctl apply`.")


@snapshots_app.command("prune")
def snapshots_prune(
    config: ConfigOpt = None,
    keep: Annotated[
        int | None,
        typer.Option(
            "--keep",
            min=0,
            help="Newest kept per workspace; the Site's snapshots.keep_per_workspace when unset.",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete all but the newest KEEP snapshots of each workspace (never one in use)."""
    from ds01ctl.drivers.docker import DockerDriver
    from ds01ctl.plan.retention import beyond_retention, images_in_use
    from ds01ctl.workflow import load_repo, manifest_images

    repo = load_repo(_config_path(None, config), dt.datetime.now(dt.UTC).date())
    assert repo.site is not None
    site = repo.site.metadata.name
    kept = repo.site.spec.snapshots.keep_per_workspace if keep is None else keep
    driver = DockerDriver.connect()
    in_use = images_in_use(driver.observe(site)) | manifest_images(repo)
    doomed = [s.reference for s in beyond_retention(driver.snapshots(site), kept, in_use)]
    _prune(doomed, "snapshot(s)", driver.remove_snapshot, yes=yes, verb="Delete")


def _prune(
    doomed: list[str], noun: str, remove: Callable[[str], None], *, yes: bool, verb: str
) -> None:
    """List what a prune removes, confirm on a terminal (or `--yes`), then remove each."""
    if not doomed:
        typer.echo("Nothing to prune.")
        return
    typer.echo("\n".join(f"  - {ref}" for ref in doomed))
    if not yes and not (sys.stdin.isatty() and typer.confirm(f"{verb} {len(doomed)} {noun}?")):
        raise Ds01Error("prune not confirmed", hint="pass --yes to prune without a terminal")
    for ref in doomed:
        remove(ref)
    typer.echo(f"{verb}d {len(doomed)} {noun}.")


EventsLogOpt = Annotated[
    Path, typer.Option("--events-log", help="The event log (DS01's events.jsonl v1).")
]
DEFAULT_EVENTS_LOG = Path("/var/log/ds01/events.jsonl")


lifecycle_app = typer.Typer(
    help="Idle stop and max_runtime: warnings before action, then stops.", no_args_is_help=True
)
app.add_typer(lifecycle_app, name="lifecycle")


@lifecycle_app.command("run")
def lifecycle_run(
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (for cron).")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and show; warn, log and stop nothing.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=5, help="Seconds between passes.")
    ] = 60.0,
    events_log: EventsLogOpt = DEFAULT_EVENTS_LOG,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="State directory (default: the Site's).")
    ] = None,
) -> None:
    """Run the lifecycle policy over this site's containers, without the reconcile loop."""
    from ds01ctl.lifecycle.enforce import run_command

    raise typer.Exit(
        run_command(
            _config_path(None, config),
            once=once,
            dry_run=dry_run,
            interval=interval,
            events_path=events_log,
            state_dir=state_dir,
            echo=typer.echo,
            warn=lambda line: typer.echo(f"warning: {line}", err=True),
        )
    )


@app.command("events")
def events_command(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's events.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="An age (30m, 2h, 7d) or an ISO time.")
    ] = None,
    event_type: Annotated[
        str | None,
        typer.Option("--type", help="A type (maintenance.idle_kill) or category (maintenance)."),
    ] = None,
    events_log: EventsLogOpt = DEFAULT_EVENTS_LOG,
    json_out: JsonOpt = False,
) -> None:
    """Events from the event log, oldest first (`--json`: the log's own lines, schema v1)."""
    from ds01ctl.events import parse_since, read_events, render_line

    now = dt.datetime.now(dt.UTC)
    found = read_events(
        events_log,
        user=user,
        since=parse_since(since, now) if since is not None else None,
        event_type=event_type,
    )
    for record in found.records:
        typer.echo(json.dumps(record, sort_keys=True) if json_out else render_line(record))
    if found.skipped:
        typer.echo(
            f"warning: {found.skipped} line(s) of {events_log} are not events (skipped)", err=True
        )


@app.command("exporter")
def exporter_command(
    config: ConfigOpt = None,
    address: Annotated[
        str, typer.Option("--address", help="Listen address (only this host by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Listen port.")] = 9101,
    interval: Annotated[
        float, typer.Option("--interval", min=1, help="Seconds between refreshes.")
    ] = 30.0,
    once: Annotated[bool, typer.Option("--once", help="Print the metrics once and exit.")] = False,
    events_log: EventsLogOpt = DEFAULT_EVENTS_LOG,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="State directory (default: the Site's).")
    ] = None,
) -> None:
    """Prometheus metrics (DS01's ds01_* names, and the reconcile loop's own)."""
    from ds01ctl.drivers.docker import DockerDriver
    from ds01ctl.errors import Ds01Error
    from ds01ctl.model.inventory import GpuInventory
    from ds01ctl.model.observed import Observed
    from ds01ctl.status_metrics import run_exporter
    from ds01ctl.workflow import gpu_inventory, load_repo, state_dir_of

    repo = load_repo(_config_path(None, config), dt.datetime.now(dt.UTC).date())
    assert repo.site is not None
    site = repo.site.metadata.name
    driver = DockerDriver.connect()

    def read_world() -> tuple[Observed, GpuInventory | None]:
        try:
            inventory: GpuInventory | None = gpu_inventory(repo)
        except Ds01Error:
            inventory = None  # no GPU source now: the GPU metrics are empty
        return driver.observe(site), inventory

    raise typer.Exit(
        run_exporter(
            read_world,
            state_dir=state_dir_of(repo, state_dir),
            events_path=events_log,
            address=address,
            port=port,
            interval=interval,
            once=once,
            echo=typer.echo,
            warn=lambda line: typer.echo(f"warning: {line}", err=True),
        )
    )


images_app = typer.Typer(
    help="Builds of this site's Images: their tags, sizes and users.", no_args_is_help=True
)
app.add_typer(images_app, name="images")


@images_app.command("list")
def images_list(config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Every build of each Image, newest first: size, what uses it, whether prune keeps it."""
    from ds01ctl.images.command import build_rows, table

    rows, _ = build_rows(_config_path(None, config))
    if json_out:
        typer.echo(json.dumps([r.__dict__ for r in rows], indent=2, sort_keys=True))
        return
    typer.echo("\n".join(table(rows)))


@images_app.command("prune")
def images_prune(
    config: ConfigOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove builds beyond the Site's images.keep_tags (never one in use or pinned)."""
    from ds01ctl.images.command import build_rows

    rows, driver = build_rows(_config_path(None, config))
    doomed = [r.tag for r in rows if r.keep is None]
    _prune(doomed, "build(s)", driver.remove_build, yes=yes, verb="Remove")


import_app = typer.Typer(
    name="import",
    help="Turn another tool's configuration into ds01ctl manifests.",
    no_args_is_help=True,
)
app.add_typer(import_app)


@import_app.command("ds01")
def import_ds01(
    resource_limits: Annotated[
        Path,
        typer.Argument(
            help="DS01's resource-limits.yaml.", metavar="RESOURCE_LIMITS_YAML", show_default=False
        ),
    ],
    members_dir: Annotated[
        Path | None,
        typer.Option("--members-dir", help="Directory of DS01's <group>.members files."),
    ] = None,
    user_overrides: Annotated[
        Path | None, typer.Option("--user-overrides", help="DS01's user-overrides.yaml.")
    ] = None,
    exemptions: Annotated[
        Path | None, typer.Option("--exemptions", help="DS01's lifecycle-exemptions.yaml.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the manifest here, not to stdout.")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="metadata.name of the QuotaPolicy.")] = "ds01",
) -> None:
    """Write DS01's quotas as one QuotaPolicy; what has no equivalent is listed on stderr."""
    from ds01ctl.importers.ds01 import Ds01Files, import_ds01, write_atomically

    files = Ds01Files(resource_limits, members_dir, user_overrides, exemptions)
    result = import_ds01(files, name=name, today=dt.datetime.now(dt.UTC).date())
    for line in result.warnings:
        typer.echo(f"warning: {line}", err=True)
    if out is None:
        typer.echo(result.text, nl=False)
        return
    write_atomically(out, result.text)
    typer.echo(f"Wrote QuotaPolicy {name} to {out} ({len(result.warnings)} warning(s)).", err=True)


def _colour(stream: TextIO) -> bool:
    """Colour on a terminal, unless NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def _fail(exc: Ds01Error, *, json_out: bool) -> NoReturn:
    """One line for people on stderr; with --json also the error envelope on stdout, so a
    program reading stdout always gets JSON (`code` is part of that contract)."""
    typer.echo(f"error: {exc}", err=True)
    if json_out:
        error = {"code": exc.code, "message": exc.message, "hint": exc.hint}
        typer.echo(json.dumps({"error": error}, sort_keys=True))
        sys.exit(EXIT_ERROR)
    sys.exit(exc.exit_code)


def _flag(name: str, argv: list[str]) -> bool:
    """Whether a flag was given: errors are caught here, around typer, where its parse of
    the command line is gone (or never happened: a usage error)."""
    return name in argv[1:]


def main() -> None:
    """Console entry point: the one place errors become messages and exit codes."""
    json_out = _flag("--json", sys.argv)
    try:
        app()
    except ValidationFailed as exc:
        from ds01ctl import report

        report.human(exc.diagnostics, sys.stderr, colour=_colour(sys.stderr))
        _fail(exc, json_out=json_out)
    except Ds01Error as exc:
        _fail(exc, json_out=json_out)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception:
        if _flag("--debug", sys.argv):
            raise
        typer.echo(
            "error: internal error in ds01ctl (this is a bug); run again with --debug "
            "for the traceback",
            err=True,
        )
        sys.exit(EXIT_ERROR)


StateDirOpt = Annotated[
    Path,
    typer.Option(
        "--state-dir", help="The reconcile loop's state directory (it overrides the Site's)."
    ),
]


@app.command()
def reconcile(
    remote: Annotated[
        str, typer.Option("--remote", help="The config repo to follow (URL or path).")
    ],
    branch: Annotated[str, typer.Option("--branch", help="The branch to follow.")] = "main",
    state_dir: StateDirOpt = Path("/var/lib/ds01ctl"),
    interval: Annotated[
        float, typer.Option("--interval", min=1, help="Seconds between ticks.")
    ] = 30.0,
    once: Annotated[bool, typer.Option("--once", help="One tick, then exit (for cron).")] = False,
    require_signed: Annotated[
        bool,
        typer.Option("--require-signed", help="Only commits `git verify-commit` accepts."),
    ] = False,
    events: Annotated[
        Path,
        typer.Option(
            "--events-log", "--events", help="The events.jsonl (DS01's schema v1) to append to."
        ),
    ] = Path("/var/log/ds01/events.jsonl"),
    lock_dir: Annotated[
        Path | None, typer.Option("--lock-dir", help="Host-wide lock directory.")
    ] = None,
    lock_timeout: Annotated[
        float, typer.Option("--lock-timeout", min=0, help="Seconds to wait for the engine lock.")
    ] = 3600.0,
    no_preflight: Annotated[
        bool,
        typer.Option("--no-preflight", help="Skip the checks of what a containerised daemon sees."),
    ] = False,
) -> None:
    """Follow a config repo's branch: validate, plan, apply what the Site allows, repeat."""
    from ds01ctl.reconcile.commands import reconcile as run
    from ds01ctl.reconcile.loop import LoopSettings

    settings = LoopSettings(
        remote=remote,
        branch=branch,
        state_dir=state_dir.absolute(),
        interval=interval,
        require_signed=require_signed,
        lock_dir=lock_dir,
        lock_timeout=lock_timeout,
        events_path=events.absolute(),
    )
    raise typer.Exit(run(settings, once=once, preflight=not no_preflight))


@app.command()
def approve(
    plan_id: Annotated[str, typer.Argument(help="The held plan's id, as `status` shows it.")],
    state_dir: StateDirOpt = Path("/var/lib/ds01ctl"),
) -> None:
    """Approve a plan the reconcile loop holds; its next tick applies it."""
    from ds01ctl.reconcile.commands import approve as run

    typer.echo(run(state_dir.absolute(), plan_id))


@app.command()
def status(
    user: Annotated[str | None, typer.Option("--user", help="Only this login's objects.")] = None,
    state_dir: StateDirOpt = Path("/var/lib/ds01ctl"),
    json_out: JsonOpt = False,
) -> None:
    """What the reconcile loop last saw and did; any user sees their own objects."""
    from ds01ctl.reconcile.commands import status as run

    typer.echo(run(state_dir.absolute(), user, json_out=json_out), nl=False)
