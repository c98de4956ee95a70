"""The command line: help and version, the imports `validate` avoids, and how failures print."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from ds01ctl import __version__, cli
from ds01ctl.schema import schema_files

Cli = Callable[..., Any]  # the `cli` fixture of tests/conftest.py
TRACEBACK = "Traceback (most recent call last)"
REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("docker", "pynvml", "deepdiff")


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and sub-command path of the app (typer vendors its own click)."""
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name)
        if isinstance(getattr(command, "commands", None), dict):
            yield from _commands(command, (*prefix, name))


COMMANDS = list(_commands(typer.main.get_group(cli.app)))


def test_cli_help(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0, result.output
    assert "Usage: " in result.stdout
    assert "validate" in result.stdout
    assert TRACEBACK not in result.output


def test_cli_short_help_flag(cli: Cli) -> None:
    result = cli("-h")
    assert result.code == 0, result.output
    assert "validate" in result.stdout


def test_cli_version(cli: Cli) -> None:
    result = cli("--version")
    assert (result.code, result.stdout) == (0, f"ds01ctl {__version__}\n")


def test_cli_commands_found() -> None:
    assert {("validate",), ("schema",)} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_cli_subcommand_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli.app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_validate_subcommand_help_in_a_subprocess(cli: Cli) -> None:
    result = cli("validate", "--help")
    assert result.code == 0, result.output
    for option in ("--json", "--github", "--strict"):
        assert option in result.stdout


IMPORT_PROBE = """
import json, sys
sys.argv = ["ds01ctl", *sys.argv[1:]]
from ds01ctl.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"docker", "pynvml", "deepdiff"})
print(json.dumps({"code": code, "heavy": heavy}))
"""


def _probe(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_cli_validate_never_imports_docker_pynvml_deepdiff() -> None:
    result = _probe("validate", "examples/lab")
    assert result["code"] == 0
    assert result["heavy"] == [], f"validate imported {result['heavy']}"


def test_cli_validate_with_errors_never_imports_docker_pynvml_deepdiff() -> None:
    result = _probe("validate", "--json", "tests/golden/validate/schema-errors")
    assert result["code"] == 1
    assert result["heavy"] == []


def test_cli_help_never_imports_docker_pynvml_deepdiff() -> None:
    result = _probe("--help")
    assert result["code"] == 0
    assert result["heavy"] == []


def test_cli_schema_one_kind(cli: Cli) -> None:
    result = cli("schema", "--kind", "Workspace")
    assert result.code == 0, result.output
    assert result.stdout == schema_files()["workspace.schema.json"]


def test_cli_schema_lists_files(cli: Cli) -> None:
    result = cli("schema")
    assert result.code == 0, result.output
    assert result.stdout.split() == list(schema_files())


def test_cli_schema_out_writes_files(tmp_path: Path, cli: Cli) -> None:
    result = cli("schema", "--out", str(tmp_path / "schemas"))
    assert result.code == 0, result.output
    written = {p.name: p.read_text() for p in (tmp_path / "schemas").iterdir()}
    assert written == schema_files()


def test_cli_user_error_is_one_line_without_traceback(cli: Cli) -> None:
    result = cli("schema", "--kind", "Nope")
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: unknown kind 'Nope' (one of Site, ")
    assert len(result.stderr.splitlines()) == 1


def test_cli_unknown_option_is_a_usage_error(cli: Cli) -> None:
    result = cli("validate", "--no-such-option")
    assert result.code == 2
    assert TRACEBACK not in result.output


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


def test_cli_internal_error_says_bug_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("ds01ctl.manifests.validate.validate_path", _boom)
    monkeypatch.setattr(sys, "argv", ["ds01ctl", "validate", str(REPO_ROOT / "examples/lab")])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "this is a bug" in err
    assert "--debug" in err
    assert TRACEBACK not in err
    assert "boom" not in err


def test_cli_internal_error_with_debug_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ds01ctl.manifests.validate.validate_path", _boom)
    argv = ["ds01ctl", "--debug", "validate", str(REPO_ROOT / "examples/lab")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(RuntimeError, match="boom"):
        cli.main()


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--json", "no/such/repo"],
        ["history", "--json", "no/such/repo"],
        ["limits", "--json", "--config", "no/such/repo"],
        ["snapshots", "list", "--json", "--config", "no/such/repo"],
    ],
)
def test_cli_json_error_is_an_envelope_on_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["ds01ctl", *argv])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 1
    out, err = capsys.readouterr()
    error = json.loads(out)["error"]
    assert set(error) == {"code", "message", "hint"} and error["code"]
    assert "error: " in err  # and the human line stays on stderr


# --- naming the config repo ------------------------------------------------------------------

REPO_COMMANDS = [
    ("validate",),
    ("plan",),
    ("apply",),
    ("history",),
    ("limits",),
    ("render", "image"),
    ("snapshots", "list"),
    ("snapshots", "restore"),
    ("snapshots", "prune"),
]


@pytest.mark.parametrize("command", REPO_COMMANDS, ids=[" ".join(c) for c in REPO_COMMANDS])
def test_cli_every_command_on_a_config_repo_takes_dash_c(command: tuple[str, ...]) -> None:
    assert set(REPO_COMMANDS) <= set(COMMANDS)
    result = CliRunner().invoke(cli.app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "-C, --config" in result.output


def test_cli_finds_the_config_root_from_a_subdirectory(site_repo: Path, cli: Cli) -> None:
    (site_repo / "users" / "alice").mkdir(parents=True)
    at_root = cli("validate", "--json", cwd=site_repo)
    below = cli("validate", "--json", cwd=site_repo / "users" / "alice")
    assert at_root.code == below.code == 0, below.output
    assert json.loads(below.stdout) == json.loads(at_root.stdout)
    assert json.loads(below.stdout)["objects"] == 2  # the whole repo, not users/alice alone
    with_c = cli("validate", "--json", "-C", str(site_repo), cwd=REPO_ROOT)
    assert json.loads(with_c.stdout) == json.loads(at_root.stdout)


def test_cli_path_and_dash_c_together_is_one_line(site_repo: Path, cli: Cli) -> None:
    for command in (["validate"], ["plan"], ["history"], ["apply"]):
        result = cli(*command, str(site_repo), "-C", str(site_repo))
        assert result.code == 1, result.output
        assert result.stderr.splitlines() == [
            f"error: PATH ({site_repo}) and -C/--config ({site_repo}) both name the config "
            "repo (give one of them)"
        ]


def test_cli_outside_a_config_repo_says_so_in_one_line(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / ".git").mkdir()  # the search for a Site stops at the git root
    result = cli("validate", cwd=tmp_path)
    assert result.code == 1
    assert "is not in a config repo" in result.stdout and TRACEBACK not in result.output
