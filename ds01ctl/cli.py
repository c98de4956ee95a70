"""The command line: parse, call one core function, render, return an exit code.

Heavy modules (docker, pynvml, deepdiff) are imported inside the commands that need them, so
`--help` and `validate` start fast. `Ds01Error` is caught here, once; anything else is a bug.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from ds01ctl import __version__
from ds01ctl.errors import EXIT_ERROR, EXIT_OK, Ds01Error

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
    Path, typer.Argument(help="Config repo directory or a manifest file.", show_default=True)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


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
    _state["debug"] = debug


_state = {"debug": False}


@app.command()
def validate(
    path: PathArg = Path("."),
    json_out: JsonOpt = False,
    github: Annotated[
        bool, typer.Option("--github", help="GitHub Actions annotations.")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
) -> None:
    """Check manifests offline (no Docker, no GPU): schema, references, ownership, policy."""
    from ds01ctl import report
    from ds01ctl.manifests.validate import validate_path

    repo = validate_path(path, today=dt.datetime.now(dt.UTC).date())
    diags = repo.diagnostics
    failed = bool(repo.errors) or (strict and bool(diags))
    line = report.summary(diags, len(repo.loaded), len(repo.files))
    if json_out:
        typer.echo(report.as_json(diags, valid=not failed, objects=len(repo.loaded)))
    elif github:
        report.github(diags, sys.stdout)
        typer.echo(line)
    else:
        report.human(diags, sys.stdout, colour=sys.stdout.isatty())
        typer.echo(line)
    raise typer.Exit(EXIT_ERROR if failed else EXIT_OK)


@app.command()
def schema(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write one <kind>.schema.json per kind here.")
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


def _fail(exc: Ds01Error) -> NoReturn:
    typer.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


def main() -> None:
    """Console entry point: the one place errors become messages and exit codes."""
    try:
        app()
    except Ds01Error as exc:
        _fail(exc)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception:
        if _state["debug"]:
            raise
        typer.echo(
            "error: internal error in ds01ctl (this is a bug); run again with --debug "
            "for the traceback",
            err=True,
        )
        sys.exit(EXIT_ERROR)
