"""The diagnostic codes are a closed set and part of the JSON contract config-repo CI consumes.

Changing the set must break this test on purpose: add or remove a code here in the same change,
and say so in the changelog.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ds01ctl.diagnostics import CODES, Diagnostic, Severity, error, warning

PACKAGE = Path(__file__).resolve().parents[2] / "ds01ctl"

PINNED = {
    "path.not_found",
    "path.no_manifests",
    "path.no_config_repo",
    "path.symlink",
    "path.not_regular",
    "file.unreadable",
    "file.too_large",
    "file.binary",
    "file.empty",
    "yaml.syntax",
    "yaml.duplicate_key",
    "yaml.too_complex",
    "manifest.not_mapping",
    "manifest.api_version",
    "manifest.kind",
    "schema.unknown_key",
    "schema.missing",
    "schema.invalid",
    "object.duplicate",
    "site.missing",
    "site.multiple",
    "site.duplicate_uid",
    "quota.request",
    "quota.gpus",
    "quota.workspaces",
    "quota.multiple",
    "quota.two_groups",
    "quota.unknown_user",
    "quota.exemption_expired",
    "quota.lifecycle",
    "owner.missing",
    "owner.path_mismatch",
    "owner.no_group",
    "ref.image",
    "image.unknown_preset",
    "image.direct_reference",
    "image.requirements_file",
    "image.requirement",
    "ref.framework",
    "ref.version",
    "ref.architecture",
    "mount.invalid",
    "mount.not_allowed",
    "mount.read_only",
    "security.privileged",
    "security.docker_socket",
    "security.host_network",
    "security.reserved_env",
    "security.capability",
    "security.network_not_allowed",
    "security.image_not_allowed",
    "catalog.unreadable",
    "ref.recipe",
    "recipe.invalid",
    "endpoint.engine_arg",
    "endpoint.env",
    "endpoint.port",
    "endpoint.expose",
    "security.owned_flag",
    "security.literal_secret",
    "secret.scope",
    "unsupported",
}

# Calls whose first argument is a diagnostic code.
CODE_TAKERS = {"error", "warning", "Diagnostic", "YamlError", "MountProblem", "Problem"}
CODE_LIKE = re.compile(r"[a-z]+(\.[a-z_]+)?")


def test_diagnostic_codes_pinned() -> None:
    assert set(CODES) == PINNED


def test_diagnostic_codes_each_described() -> None:
    for code, description in CODES.items():
        assert description.strip(), code
        assert "\n" not in description, code


def test_diagnostic_codes_unknown_code_refused() -> None:
    with pytest.raises(AssertionError, match="unknown diagnostic code"):
        Diagnostic(Severity.ERROR, "no.such_code", "message")


def test_diagnostic_codes_helpers_set_severity() -> None:
    assert error("yaml.syntax", "m").severity is Severity.ERROR
    assert warning("quota.unknown_user", "m").severity is Severity.WARNING


def _literal_codes() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func  # plain names only: `logger.error("...")` is not a diagnostic
            name = func.id if isinstance(func, ast.Name) else None
            if name not in CODE_TAKERS:
                continue
            args = node.args[1:] if name == "Diagnostic" else node.args
            first = args[0] if args else None
            value = first.value if isinstance(first, ast.Constant) else None
            if isinstance(value, str) and CODE_LIKE.fullmatch(value):
                found.append((str(path.relative_to(PACKAGE)), node.lineno, value))
    return found


def test_diagnostic_codes_used_in_the_source_are_known() -> None:
    used = _literal_codes()
    assert len(used) > 20  # the scan finds the call sites
    unknown = [(file, line, code) for file, line, code in used if code not in CODES]
    assert unknown == []


def test_diagnostic_codes_to_json_keys() -> None:
    diag = error("yaml.syntax", "bad", file="a.yaml", line=1, col=2, hint="fix it")
    assert diag.to_json() == {
        "severity": "error",
        "code": "yaml.syntax",
        "message": "bad",
        "file": "a.yaml",
        "line": 1,
        "col": 2,
        "hint": "fix it",
    }
    assert str(diag) == "a.yaml:1:2: error[yaml.syntax]: bad (fix it)"
