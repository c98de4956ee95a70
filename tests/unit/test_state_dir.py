"""A state dir that is missing, read-only or not a directory is one line, never a bug report;
a relative one is the config repo's, wherever ds01ctl runs.

Through the CLI, with DOCKER_HOST pointing at no engine: the state dir is checked before
Docker is asked anything, so these never touch a real engine.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ds01ctl.apply.journal import FILE_NAME, Journal
from tests.tinyfs import tmpfs

Cli = Callable[..., Any]  # the `cli` fixture of tests/conftest.py
NO_ENGINE = "error: no Docker engine answers"
ELSEWHERE = "or point the Site's state_dir or --state-dir at another directory"
COMMANDS = {
    "plan": ["plan"],
    "apply": ["apply", "--auto-approve"],
    "history": ["history"],
}


@pytest.fixture(autouse=True)
def no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")


def config_repo(root: Path, state_dir: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "site.yaml").write_text(
        "apiVersion: ds01/v1\nkind: Site\nmetadata: {name: lab}\n"
        f"spec:\n  state_dir: {state_dir}\n  catalog: {{architecture: CUDA_AMPERE}}\n"
    )
    return root


def one_error(result: Any) -> str:
    assert result.code == 1, result.output
    assert "Traceback" not in result.output and "this is a bug" not in result.output
    [line] = result.stderr.splitlines()
    return str(line)


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[Path]:
    """A directory nobody can write: a read-only mount (root ignores permission bits)."""
    if os.geteuid() != 0:
        directory.mkdir()
        directory.chmod(0o555)
        yield directory
        return
    with tmpfs(directory, read_only=True):
        yield directory


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_state_dir_that_is_a_file_is_one_line(tmp_path: Path, cli: Cli, command: list[str]) -> None:
    (tmp_path / "state").write_text("not a directory\n")
    repo = config_repo(tmp_path / "repo", str(tmp_path / "state"))
    assert one_error(cli(*command, str(repo), cwd=tmp_path)) == (
        f"error: the state dir {tmp_path / 'state'} is not a directory "
        f"(move what is there away, {ELSEWHERE})"
    )


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_state_dir_below_a_file_is_one_line(tmp_path: Path, cli: Cli, command: list[str]) -> None:
    (tmp_path / "file").write_text("not a directory\n")
    repo = config_repo(tmp_path / "repo", str(tmp_path / "file" / "state"))
    assert one_error(cli(*command, str(repo), cwd=tmp_path)) == (
        f"error: the state dir {tmp_path / 'file' / 'state'} cannot be a directory: a part of "
        f"its path is a file (move what is there away, {ELSEWHERE})"
    )


def test_state_dir_read_only_stops_apply_in_one_line(tmp_path: Path, cli: Cli) -> None:
    with read_only(tmp_path / "state") as state:
        repo = config_repo(tmp_path / "repo", str(state))
        line = one_error(cli("apply", "--auto-approve", str(repo), cwd=tmp_path))
        assert line.startswith(f"error: the state dir {state} is not writable: ")
        assert line.endswith(
            "(apply keeps its journal and ledger there: make it writable for the user who runs "
            f"apply, {ELSEWHERE})"
        )
        # Readers do not need to write: plan gets as far as Docker, history reads nothing.
        assert one_error(cli("plan", str(repo), cwd=tmp_path)).startswith(NO_ENGINE)
        history = cli("history", str(repo), cwd=tmp_path)
        assert (history.code, history.stdout) == (0, "No applies recorded yet.\n")


def test_state_dir_missing_where_it_cannot_be_made_stops_apply_in_one_line(
    tmp_path: Path, cli: Cli
) -> None:
    with read_only(tmp_path / "ro") as parent:
        repo = config_repo(tmp_path / "repo", str(parent / "state"))
        line = one_error(cli("apply", "--auto-approve", str(repo), cwd=tmp_path))
        assert line.startswith(f"error: cannot create the state dir {parent / 'state'}: ")
        assert line.endswith(
            f"(create it for the user who runs apply (root on a server), {ELSEWHERE})"
        )


def test_state_dir_missing_is_made_by_apply_and_is_empty_for_readers(
    tmp_path: Path, cli: Cli
) -> None:
    state = tmp_path / "var" / "state"
    repo = config_repo(tmp_path / "repo", str(state))
    assert one_error(cli("plan", str(repo), cwd=tmp_path)).startswith(NO_ENGINE)
    history = cli("history", str(repo), cwd=tmp_path)
    assert (history.code, history.stdout) == (0, "No applies recorded yet.\n")
    assert not state.exists()  # readers never make it
    assert one_error(cli("apply", "--auto-approve", str(repo), cwd=tmp_path)).startswith(NO_ENGINE)
    assert state.is_dir() and list(state.iterdir()) == []


def test_state_dir_relative_is_taken_from_the_config_repo_not_the_working_dir(
    tmp_path: Path, cli: Cli
) -> None:
    repo = config_repo(tmp_path / "repos" / "lab", "../lab-state")
    journal = Journal(tmp_path / "repos" / "lab-state", "a1")
    journal.record("apply_started", actions=0)
    journal.record("apply_finished", done=0, failed=0)
    journal.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd, path in [(tmp_path, repo), (repo, Path(".")), (elsewhere, Path("../repos/lab"))]:
        history = cli("history", str(path), cwd=cwd)
        assert history.code == 0, history.output
        assert "apply a1: nothing" in history.stdout, (cwd, history.output)
    # An apply from elsewhere keeps its state beside the others, not in the working dir.
    assert one_error(cli("apply", "--auto-approve", "../repos/lab", cwd=elsewhere)).startswith(
        NO_ENGINE
    )
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_dir()) == [
        "elsewhere",
        "lab",
        "lab-state",
        "repos",
    ]
    assert [p.name for p in (tmp_path / "repos" / "lab-state").iterdir()] == [FILE_NAME]


def test_state_dir_override_is_taken_from_the_working_dir(tmp_path: Path, cli: Cli) -> None:
    repo = config_repo(tmp_path / "repo", "state")
    journal = Journal(tmp_path / "mine", "a1")
    journal.record("apply_started", actions=0)
    journal.close()
    history = cli("history", str(repo), "--state-dir", "mine", cwd=tmp_path)
    assert history.code == 0, history.output
    assert "apply a1: nothing  (did not finish)" in history.stdout
