"""The committed JSON Schemas accept exactly what the loader accepts, checked with a real
JSON Schema validator (the `jsonschema` library that check-jsonschema and editors' CI use).

Every manifest document in examples/ and in the tests' fixtures is put to both the loader's
models and the schemas, and so is a table of the shorthands and coercions the models parse.
The verdicts must agree. The exceptions are the checks a JSON Schema cannot state (listed in
INEXPRESSIBLE): those the schemas let through and `validate` refuses.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from ds01ctl.manifests import KINDS
from ds01ctl.manifests.common import API_VERSION
from ds01ctl.yamlpos import YamlError, load_documents

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
MANIFEST_DIRS = [ROOT / "examples", ROOT / "tests" / "golden", ROOT / "tests" / "scenarios"]


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


ANY_KIND = _validator("manifest.schema.json")
PER_KIND = {kind: _validator(f"{kind.lower()}.schema.json") for kind in KINDS}


def _as_json(value: Any) -> Any:
    """A document as an editor sees it: a YAML date is the text 2026-06-30."""
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _loader_accepts(doc: Any) -> bool:
    """The loader's verdict on one document, before the checks that span files."""
    if not isinstance(doc, dict) or doc.get("apiVersion") != API_VERSION:
        return False
    cls = KINDS.get(doc["kind"]) if isinstance(doc.get("kind"), str) else None
    if cls is None:
        return False
    try:
        cls.model_validate(doc)
    except ValueError:
        return False
    return True


def _schema_errors(doc: Any) -> list[str]:
    data = _as_json(doc)
    errors = [f"manifest.schema.json: {e.message}" for e in ANY_KIND.iter_errors(data)]
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind in PER_KIND:
        errors += [f"{kind}: {e.message}" for e in PER_KIND[kind].iter_errors(data)]
    return errors


def _documents() -> list[tuple[str, Any]]:
    found = []
    for top in MANIFEST_DIRS:
        for path in sorted([*top.rglob("*.yaml"), *top.rglob("*.yml")]):
            if ".github" in path.parts:
                continue
            try:
                docs = list(load_documents(path.read_text(encoding="utf-8")))
            except (YamlError, UnicodeDecodeError):
                continue  # the YAML error fixtures: not documents at all
            for i, doc in enumerate(docs):
                value = doc.value
                if isinstance(value, dict) and "apiVersion" in value:  # not GPU inventories
                    found.append((f"{path.relative_to(ROOT)}#{i}", value))
    return found


DOCUMENTS = _documents()
# Documents the loader refuses for a reason no JSON Schema can state.
INEXPRESSIBLE: dict[str, str] = {}


def test_schema_fixtures_cover_examples_and_goldens() -> None:
    names = [name for name, _ in DOCUMENTS]
    assert any(n.startswith("examples/lab/users/alice/thesis.yaml") for n in names)
    assert any(n.startswith("examples/demo/") for n in names)
    assert any(n.startswith("tests/golden/validate/schema-errors/") for n in names)
    assert len(names) > 40


@pytest.mark.parametrize(("name", "doc"), DOCUMENTS, ids=[name for name, _ in DOCUMENTS])
def test_schema_and_loader_agree_on_every_fixture(name: str, doc: Any) -> None:
    accepted, errors = _loader_accepts(doc), _schema_errors(doc)
    if name in INEXPRESSIBLE:
        assert not accepted and not errors
        return
    assert accepted == (not errors), errors or "the loader refuses it; the schema accepts it"


def test_schema_accepts_every_example() -> None:
    examples = [(n, d) for n, d in DOCUMENTS if n.startswith("examples/")]
    assert len(examples) >= 12
    assert {n: _schema_errors(d) for n, d in examples if _schema_errors(d)} == {}


WORKSPACE: dict[str, Any] = {
    "apiVersion": "ds01/v1",
    "kind": "Workspace",
    "metadata": {"name": "thesis", "owner": "alice"},
    "spec": {"framework": {"name": "Pytorch", "version": "2.7.1"}},
}
QUOTA: dict[str, Any] = {
    "apiVersion": "ds01/v1",
    "kind": "QuotaPolicy",
    "metadata": {"name": "lab"},
    "spec": {},
}
ENDPOINT: dict[str, Any] = {
    "apiVersion": "ds01/v1",
    "kind": "Endpoint",
    "metadata": {"name": "llm", "owner": "dave"},
    "spec": {"model": {"id": "Qwen/Qwen3-8B"}},
}
SITE: dict[str, Any] = {"apiVersion": "ds01/v1", "kind": "Site", "metadata": {"name": "lab"}}

SIZES = ["32g", "32G", "32Gi", "32GI", "32gib", "512Mi", "1.5g", " 32g ", "1048576", "32b", "1k", 0]
BAD_SIZES = ["32ib", "32x", "-1", "32 g b", "\u0663g", "", "g", -1, True, 1.5, [1], "32", 512]
CPUS = [2, 0.5, "1.25", " 2 ", ".5", "1.", "1.123456789", "1.5000000000", "007"]
BAD_CPUS = ["0", 0, -1, "abc", "1e3", "1.1234567891", ".", "-1", True, "0.0", [2], "1_0"]
DURATIONS = ["30m", "1.5h", "7d", " 45s ", "30 m", 0, "0s"]
BAD_DURATIONS = ["30M", "30", "0", 30, True, "1w", "-1m", 1.5, "\u0663m"]
UNITS = [1, 0, 0.5, "3/7", "0.5", "2", " 1 ", "1/007"]
BAD_UNITS = ["1/0", "3 / 7", "-1", -1, "abc", True, "1e3", "-0", "1/-7", "1.5/2"]

EXEMPTIONS = [
    {"user": "alice", "reason": "thesis", "expires": "2026-06-30"},
    {"user": "alice", "reason": "thesis", "expires": "30.06.2026"},
    {"user": "alice", "reason": "thesis", "expires": None},
    {"user": "alice", "reason": ""},
]

KEYED_LOGINS: list[dict[str, Any]] = [{"h.baker": {}}, {"bad login": {}}]
KEYED_NAMES: list[dict[str, Any]] = [{"phd": {}}, {"PhD": {}}]

# (document, where to put the value, the value)
CASES: list[tuple[dict[str, Any], tuple[str, ...], Any]] = [
    *((WORKSPACE, ("spec", "memory"), v) for v in SIZES + BAD_SIZES),
    *((WORKSPACE, ("spec", "cpus"), v) for v in CPUS + BAD_CPUS),
    *((WORKSPACE, ("spec", "lifecycle", "idle_timeout"), v) for v in DURATIONS + BAD_DURATIONS),
    *((QUOTA, ("spec", "defaults", "gpu_budget"), v) for v in UNITS + BAD_UNITS),
    *((WORKSPACE, ("spec", "gpus"), v) for v in [0, 1, 16, "2", True, -1, 17, None]),
    *(
        (WORKSPACE, ("spec", "mounts", "workspace"), v)
        for v in [
            "/home/{owner}/workspace/thesis",
            {"path": "/x", "read_only": True},
            {"path": "/x", "read_only": 1},
            {"path": "/x", "read_only": "yes"},
            {"path": "/x", "bad": 1},
            {},
            3,
            None,
        ]
    ),
    *((WORKSPACE, ("spec", "mig"), v) for v in ["1g.10gb", "3g.40gb+me", "1g.10GB", "8g.10gb"]),
    *((WORKSPACE, ("metadata", "name"), v) for v in ["ok-name", "Bad", "-x", "x" * 64, 1]),
    *((WORKSPACE, ("metadata", "owner"), v) for v in ["h.baker", "228755@uni.example"]),
    *((WORKSPACE, ("metadata", "owner"), v) for v in ["bad.", "a b", ".x", "-x", 7]),
    *((WORKSPACE, ("spec", "env"), v) for v in [{"OK_1": "x"}, {"1BAD": "x"}, {"A": 1}]),
    *((WORKSPACE, ("spec", "power"), v) for v in ["running", "on"]),
    *((WORKSPACE, ("spec", "image"), v) for v in ["env", None]),  # with framework: two, one
    *((WORKSPACE, ("spec", "framework"), v) for v in [None]),  # neither image nor framework
    *((WORKSPACE, ("spec", "gpuz"), v) for v in [1]),  # unknown key
    *((WORKSPACE, ("spec",), v) for v in [[], "x"]),  # wrong type
    *((WORKSPACE, ("kind",), v) for v in ["Workspaces", "Site"]),
    *((WORKSPACE, ("apiVersion",), v) for v in ["ds01/v2"]),
    *((WORKSPACE, ("spec", "image_ref"), v) for v in ["ubuntu:24.04", "Ubuntu", "x:t\u00e4g"]),
    *((QUOTA, ("spec", "exemptions"), [v]) for v in EXEMPTIONS),
    *((QUOTA, ("spec", "users"), v) for v in KEYED_LOGINS),
    *((QUOTA, ("spec", "groups"), v) for v in KEYED_NAMES),
    *((ENDPOINT, ("spec", "port"), v) for v in ["auto", 8100, 65535, 80, 70000, "8100", "x"]),
    *((ENDPOINT, ("spec", "port"), v) for v in [True]),
    *(
        (ENDPOINT, ("spec", "engine", "args"), v)
        for v in [{"max-model-len": 16384, "x": 0.9, "y": True}, {"model": "x"}, {"--port": 1}]
    ),
    *(
        (ENDPOINT, ("spec", "recipe"), v)
        for v in [{"ref": "r@1"}, {"select": {}}, {"ref": "r@1", "select": {}}, {}]
    ),
    *(
        (ENDPOINT, ("spec", "accelerator"), v)
        for v in [{"mig": "1g.10gb"}, {"mig": "1g.10gb", "count": 2}, {"count": 2}]
    ),
    *(
        (SITE, ("spec", "gpus"), v)
        for v in [
            {"source": "fixture", "fixture": "gpus.yaml"},
            {"source": "fixture"},
            {"fixture": "gpus.yaml"},
            {"source": "nvml"},
            {},
        ]
    ),
]


def _with(doc: dict[str, Any], where: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    target = out
    for key in where[:-1]:
        target = target.setdefault(key, {})
    target[where[-1]] = value
    return out


def _case_id(case: tuple[dict[str, Any], tuple[str, ...], Any]) -> str:
    doc, where, value = case
    return f"{doc['kind']}.{'.'.join(where)}={value!r}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_schema_and_loader_agree_on_shorthands(
    case: tuple[dict[str, Any], tuple[str, ...], Any],
) -> None:
    doc = _with(*case)
    accepted, errors = _loader_accepts(doc), _schema_errors(doc)
    assert accepted == (not errors), errors or "the loader refuses it; the schema accepts it"


def test_schema_refuses_unknown_keys_and_wrong_types() -> None:
    assert _schema_errors(_with(WORKSPACE, ("spec", "gpuz"), 1))
    assert _schema_errors(_with(WORKSPACE, ("spec", "gpus"), "two"))
    assert _schema_errors(_with(WORKSPACE, ("metadata", "labels"), {}))
    assert _schema_errors(_with(QUOTA, ("spec", "defaults", "memory"), "lots"))


def test_check_jsonschema_accepts_the_lab_example() -> None:
    """The command line config-repos run in CI, on the single-document lab files."""
    tool = Path(sys.executable).parent / "check-jsonschema"
    files = [
        p
        for p in sorted((ROOT / "examples" / "lab").rglob("*.yaml"))
        if ".github" not in p.parts and "\n---" not in p.read_text(encoding="utf-8")
    ]
    done = subprocess.run(
        [str(tool), "--schemafile", str(SCHEMAS / "manifest.schema.json"), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
