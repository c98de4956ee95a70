"""`ds01ctl validate .` on small config repos under tests/golden/validate/, against golden output.

Each case directory holds a config repo and `expected.txt`: the exact human output (colour off)
followed by `exit: N`. Run with DS01CTL_UPDATE_GOLDEN=1 to rewrite the expected files, then
review every changed line: each must be a message a lab admin can act on.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "validate"
REPO_ROOT = Path(__file__).resolve().parents[2]
CASES = sorted(p for p in GOLDEN.iterdir() if p.is_dir())
UPDATE = os.environ.get("DS01CTL_UPDATE_GOLDEN") == "1"
Cli = Callable[..., Any]  # the `cli` fixture of tests/conftest.py
TRACEBACK = "Traceback (most recent call last)"
DIAGNOSTIC_KEYS = {"severity", "code", "message", "file", "line", "col", "hint"}


def test_golden_validate_cases_exist() -> None:
    names = {case.name for case in CASES}
    assert {"other-users-workspace", "mount-outside-policy", "yaml-errors"} <= names


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_golden_validate_output(case: Path, cli: Cli) -> None:
    result = cli("validate", ".", cwd=case)
    actual = f"{result.output}exit: {result.code}\n"
    expected_file = case / "expected.txt"
    if UPDATE:
        expected_file.write_text(actual, encoding="utf-8")
    assert expected_file.exists(), f"no {expected_file}; run with DS01CTL_UPDATE_GOLDEN=1"
    assert actual == expected_file.read_text(encoding="utf-8")
    assert TRACEBACK not in actual


def test_golden_validate_lab_example_is_valid(cli: Cli) -> None:
    result = cli("validate", "examples/lab", cwd=REPO_ROOT)
    assert result.code == 0, result.output
    assert result.stdout.startswith("ok: "), result.output


def test_golden_validate_json_shape(cli: Cli) -> None:
    result = cli("validate", "--json", ".", cwd=GOLDEN / "schema-errors")
    assert result.code == 1
    document = json.loads(result.stdout)
    assert {"format_version", "valid", "objects", "diagnostics"} <= set(document)
    assert document["format_version"] == 1
    assert document["valid"] is False
    assert isinstance(document["objects"], int)
    assert document["diagnostics"], document
    for diagnostic in document["diagnostics"]:
        assert set(diagnostic) == DIAGNOSTIC_KEYS
        assert diagnostic["severity"] in {"error", "warning"}
    codes = {d["code"] for d in document["diagnostics"]}
    assert {"schema.unknown_key", "schema.invalid", "schema.missing"} <= codes


def test_golden_validate_json_valid_repo(cli: Cli) -> None:
    result = cli("validate", "--json", "examples/lab", cwd=REPO_ROOT)
    assert result.code == 0
    document = json.loads(result.stdout)
    assert document["valid"] is True
    assert document["diagnostics"] == []
    assert document["objects"] > 0


GITHUB_LINE = re.compile(r"^::(error|warning) file=[^,]+(,line=\d+,col=\d+)?,title=[a-z_.]+::\S.*$")


def test_golden_validate_github_annotations(cli: Cli) -> None:
    result = cli("validate", "--github", ".", cwd=GOLDEN / "schema-errors")
    assert result.code == 1
    lines = result.stdout.splitlines()
    annotations = [line for line in lines if line.startswith("::")]
    assert annotations
    for line in annotations:
        assert GITHUB_LINE.match(line), line
    assert any(
        line.startswith(
            "::error file=users/alice/workspaces.yaml,line=13,col=11,title=schema.invalid::"
        )
        for line in annotations
    ), annotations
    assert lines[-1].startswith("6 error(s)"), lines
