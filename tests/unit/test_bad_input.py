"""Bad input gets one clear diagnostic, with its position where one exists; never a traceback.

Each case puts one bad file (or link, or directory) beside a valid Site and QuotaPolicy, checks
`validate_path` finds exactly that one problem, and checks `ds01ctl validate` exits 1 with no
traceback.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ds01ctl.diagnostics import Diagnostic
from ds01ctl.manifests.loader import load_path
from ds01ctl.manifests.validate import validate_path

Cli = Callable[..., Any]  # the `cli` fixture of tests/conftest.py
TRACEBACK = "Traceback (most recent call last)"
TODAY = dt.date(2026, 1, 1)

WORKSPACE = """\
apiVersion: ds01/v1
kind: Workspace
metadata: {name: nb}
spec:
  framework: {name: Pytorch, version: 2.7.1}
"""

BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def _only(diagnostics: list[Diagnostic]) -> Diagnostic:
    assert len(diagnostics) == 1, [str(d) for d in diagnostics]
    return diagnostics[0]


@dataclass(frozen=True)
class Case:
    code: str
    file: str  # relative to the config repo
    position: tuple[int, int] | None  # (line, col) where the input has one
    message: str  # a part of the message


def _check(repo: Path, case: Case, cli: Cli) -> Diagnostic:
    diag = _only(validate_path(repo, today=TODAY).diagnostics)
    assert diag.code == case.code, str(diag)
    assert diag.file == str(repo / case.file), str(diag)
    if case.position is None:
        assert diag.line is None, str(diag)
    else:
        assert (diag.line, diag.col) == case.position, str(diag)
    assert case.message in diag.message, str(diag)
    assert diag.is_error

    result = cli("validate", ".", cwd=repo)
    assert result.code == 1, result.output
    assert TRACEBACK not in result.output
    assert result.stderr == ""
    where = f"{case.position[0]}:{case.position[1]}" if case.position else "-"
    heading, problem, summary = result.stdout.splitlines()  # one file, one problem
    assert heading == case.file
    assert problem.lstrip().startswith(f"{where}  error  "), problem
    assert problem.endswith(f"[{case.code}]"), problem
    assert summary.startswith("1 error(s), 0 warning(s)"), summary
    return diag


def test_bad_input_invalid_yaml(site_repo: Path, cli: Cli) -> None:
    (site_repo / "a.yaml").write_text("apiVersion: ds01/v1\nkind: [Workspace\n")
    _check(site_repo, Case("yaml.syntax", "a.yaml", (3, 1), "did not find expected"), cli)


def test_bad_input_tab_indent(site_repo: Path, cli: Cli) -> None:
    (site_repo / "a.yaml").write_text(
        "apiVersion: ds01/v1\nkind: Workspace\nmetadata:\n\tname: x\n"
    )
    diag = _check(site_repo, Case("yaml.syntax", "a.yaml", (4, 1), "cannot start any token"), cli)
    assert diag.hint is not None
    assert "tabs" in diag.hint


def test_bad_input_wrong_type(site_repo: Path, cli: Cli) -> None:
    (site_repo / "users" / "alice").mkdir(parents=True)
    (site_repo / "users" / "alice" / "nb.yaml").write_text(WORKSPACE + "  memory: lots\n")
    case = Case("schema.invalid", "users/alice/nb.yaml", (6, 11), "'lots' is not a size")
    _check(site_repo, case, cli)


def test_bad_input_unknown_kind(site_repo: Path, cli: Cli) -> None:
    (site_repo / "a.yaml").write_text(WORKSPACE.replace("kind: Workspace", "kind: Workspce"))
    diag = _check(site_repo, Case("manifest.kind", "a.yaml", (2, 7), "'Workspce'"), cli)
    assert diag.hint == "did you mean 'Workspace'?"


def test_bad_input_unknown_api_version(site_repo: Path, cli: Cli) -> None:
    (site_repo / "a.yaml").write_text(WORKSPACE.replace("ds01/v1", "ds01/v2"))
    diag = _check(site_repo, Case("manifest.api_version", "a.yaml", (1, 13), "'ds01/v2'"), cli)
    assert diag.hint == "use apiVersion: ds01/v1"


def test_bad_input_empty_file(site_repo: Path, cli: Cli) -> None:
    (site_repo / "a.yaml").write_text("")
    _check(site_repo, Case("file.empty", "a.yaml", None, "no manifest"), cli)


def test_bad_input_only_comments_and_separators(site_repo: Path, cli: Cli) -> None:
    (site_repo / "a.yaml").write_text("# to do\n---\n---\n")
    _check(site_repo, Case("file.empty", "a.yaml", None, "no manifest"), cli)


def test_bad_input_directory_outside_any_config_repo(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / ".git").mkdir()  # the search for a Site stops here, whatever lies above
    (tmp_path / "README.md").write_text("not a manifest\n")
    (tmp_path / "users" / "ann").mkdir(parents=True)
    (tmp_path / "users" / "ann" / "nb.yaml").write_text(WORKSPACE)
    diag = _only(load_path(tmp_path).diagnostics)
    assert (diag.code, diag.file, diag.line) == ("path.no_config_repo", str(tmp_path), None)
    codes = [d.code for d in validate_path(tmp_path, today=TODAY).diagnostics]
    assert codes == ["path.no_config_repo"]

    result = cli("validate", str(tmp_path))
    assert result.code == 1
    assert TRACEBACK not in result.output
    assert "[path.no_config_repo]" in result.stdout


def test_bad_input_named_directory_without_manifests(site_repo: Path, cli: Cli) -> None:
    (site_repo / "users" / "alice").mkdir(parents=True)
    (site_repo / "users" / "alice" / "README.md").write_text("not a manifest\n")
    named = site_repo / "users" / "alice"
    diag = _only(validate_path(named, today=TODAY).diagnostics)
    assert (diag.code, diag.file, diag.line) == ("path.no_manifests", str(named), None)
    result = cli("validate", "users/alice", cwd=site_repo)
    assert result.code == 1
    assert "[path.no_manifests]" in result.stdout


def test_bad_input_path_not_found(tmp_path: Path, cli: Cli) -> None:
    missing = tmp_path / "nowhere"
    diag = _only(load_path(missing).diagnostics)
    assert (diag.code, diag.file) == ("path.not_found", str(missing))
    result = cli("validate", str(missing))
    assert result.code == 1
    assert TRACEBACK not in result.output
    assert "[path.not_found]" in result.stdout


def test_bad_input_binary_file(site_repo: Path, cli: Cli) -> None:
    (site_repo / "a.yaml").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    _check(site_repo, Case("file.binary", "a.yaml", None, "binary"), cli)


def test_bad_input_not_utf8(site_repo: Path, cli: Cli) -> None:
    (site_repo / "a.yaml").write_bytes(b"apiVersion: ds01/v1\nkind: caf\xe9\n")
    _check(site_repo, Case("file.binary", "a.yaml", (2, 10), "not UTF-8"), cli)


def test_bad_input_ten_megabyte_file(site_repo: Path, cli: Cli) -> None:
    line = "# " + "x" * 1021 + "\n"
    (site_repo / "a.yaml").write_text(line * 10 * 1024)
    assert (site_repo / "a.yaml").stat().st_size == 10 * 1024 * 1024
    _check(site_repo, Case("file.too_large", "a.yaml", None, "larger than"), cli)


def test_bad_input_duplicate_keys(site_repo: Path, cli: Cli) -> None:
    (site_repo / "a.yaml").write_text(WORKSPACE + "  cpus: 2\n  cpus: 4\n")
    case = Case("yaml.duplicate_key", "a.yaml", (7, 3), "duplicate key 'cpus' (first at line 6")
    _check(site_repo, case, cli)


def test_bad_input_anchor_bomb(site_repo: Path, cli: Cli) -> None:
    (site_repo / "a.yaml").write_text(BILLION_LAUGHS)
    diag = _only(validate_path(site_repo, today=TODAY).diagnostics)
    assert diag.code == "yaml.too_complex"
    assert diag.line is not None
    assert 1 <= diag.line <= BILLION_LAUGHS.count("\n")
    _check(site_repo, Case("yaml.too_complex", "a.yaml", (diag.line, diag.col or 0), ""), cli)


def test_bad_input_symlinked_directory_not_followed(site_repo: Path, cli: Cli) -> None:
    (site_repo / "users").mkdir()
    (site_repo / "users" / "again").symlink_to("..")
    case = Case("path.symlink", "users/again", None, "is a symbolic link to ..")
    _check(site_repo, case, cli)


def test_bad_input_symlink_loop_to_itself(site_repo: Path, cli: Cli) -> None:
    (site_repo / "a.yaml").symlink_to("a.yaml")
    _check(site_repo, Case("path.symlink", "a.yaml", None, "a symbolic link to a.yaml"), cli)


def test_bad_input_dangling_link(site_repo: Path, cli: Cli) -> None:
    (site_repo / "x.yaml").symlink_to("gone.yaml")
    _check(site_repo, Case("path.symlink", "x.yaml", None, "gone.yaml"), cli)


def test_bad_input_unreadable_file(site_repo: Path, cli: Cli) -> None:
    # Root reads whatever the mode says, so as root there is no unreadable regular file.
    if os.geteuid() == 0:
        pytest.skip("root reads any regular file: no unreadable file to make")
    (site_repo / "x.yaml").write_text(WORKSPACE)
    (site_repo / "x.yaml").chmod(0)
    try:
        _check(site_repo, Case("file.unreadable", "x.yaml", None, "cannot read"), cli)
    finally:
        (site_repo / "x.yaml").chmod(0o644)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!int abc\n", "'abc' is not a valid integer"),
        ("a: 2020-02-30\n", "'2020-02-30' is not a valid date"),
        ("a: !!set foo\n", "the tag !!set is not supported"),
        ("a: !Ref foo\n", "the tag !Ref is not supported"),
        ("a: !!python/object:os.system foo\n", "is not supported"),
        ("a: 1" + "0" * 5000 + "\n", "is not a valid integer"),
    ],
    ids=["bad-int", "bad-date", "set-tag", "custom-tag", "python-tag", "huge-int"],
)
def test_bad_input_scalars_yaml_cannot_build(
    site_repo: Path, cli: Cli, text: str, message: str
) -> None:
    (site_repo / "a.yaml").write_text(text)
    _check(site_repo, Case("yaml.syntax", "a.yaml", (1, 4), message), cli)


def test_bad_input_site_catalog_path_too_long(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(
        "apiVersion: ds01/v1\nkind: Site\nmetadata: {name: lab}\n"
        f"spec:\n  catalog: {{path: {'a' * 300}}}\n"
    )
    codes = {d.code for d in validate_path(tmp_path, today=TODAY).diagnostics}
    assert codes == {"catalog.unreadable"}


# Values the engine takes and then fails on (or misreads) at start: refused at validate.
# (`network: container:<x>` is Docker grammar, refused by the network policy: test_policy.py.)
@pytest.mark.parametrize(
    ("line", "col", "message"),
    [
        ('  env: {A: "x\\0y"}\n', (6, 12), "cannot contain a NUL character"),
        ("  network: ' host'\n", (6, 12), "' host' is not a Docker network name"),
        ("  cpus: 1e-9\n", (6, 9), "is not a number of cores"),
        ("  cpus: 0.001\n", (6, 9), "at least 0.01"),
        ("  cpus: 1.0000001\n", (6, 9), "at most 3 decimal places"),
    ],
    ids=["env-nul", "network-space", "cpus-nano", "cpus-milli", "cpus-digits"],
)
def test_bad_input_values_the_engine_refuses(
    site_repo: Path, cli: Cli, line: str, col: tuple[int, int], message: str
) -> None:
    (site_repo / "users" / "alice").mkdir(parents=True)
    (site_repo / "users" / "alice" / "nb.yaml").write_text(WORKSPACE + line)
    _check(site_repo, Case("schema.invalid", "users/alice/nb.yaml", col, message), cli)
