"""The committed JSON Schemas under schemas/ are current, complete and described."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ds01ctl.manifests import KINDS
from ds01ctl.schema import SCHEMA_DIALECT, schema_files

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
REGENERATE = "schemas/ is stale: run `ds01ctl schema --out schemas/` and commit the result"


def test_schemas_one_file_per_kind() -> None:
    per_kind = [f"{kind.lower()}.schema.json" for kind in KINDS]
    assert sorted(schema_files()) == sorted([*per_kind, "manifest.schema.json"])


def test_schemas_committed_files_are_current() -> None:
    expected = schema_files()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.glob("*.json")}
    assert sorted(committed) == sorted(expected), REGENERATE
    for name, text in expected.items():
        assert committed[name] == text, f"{name}: {REGENERATE}"


def test_schemas_generation_is_deterministic() -> None:
    assert schema_files() == schema_files()


def _described(prop: dict[str, Any], defs: dict[str, Any]) -> bool:
    if prop.get("description"):
        return True
    ref = prop.get("$ref")  # pydantic leaves out a description that repeats its model's
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return bool(defs.get(ref.removeprefix("#/$defs/"), {}).get("description"))
    return False


def _models(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("(top)", schema), *schema.get("$defs", {}).items()]


@pytest.mark.parametrize("name", sorted(schema_files()))
def test_schemas_every_property_described(name: str) -> None:
    schema = json.loads(schema_files()[name])
    defs = schema.get("$defs", {})
    missing = [
        f"{model}.{prop_name}"
        for model, sub in _models(schema)
        for prop_name, prop in sub.get("properties", {}).items()
        if not _described(prop, defs)
    ]
    assert missing == []


@pytest.mark.parametrize("name", sorted(schema_files()))
def test_schemas_every_model_described_and_closed(name: str) -> None:
    schema = json.loads(schema_files()[name])
    for model, sub in _models(schema):
        if "properties" not in sub:
            continue
        assert sub.get("description"), model
        assert sub.get("additionalProperties") is False, f"{model} must refuse unknown keys"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_schemas_envelope(kind: str) -> None:
    schema = json.loads(schema_files()[f"{kind.lower()}.schema.json"])
    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["$id"] == f"{kind.lower()}.schema.json"
    assert {"apiVersion", "kind", "metadata"} <= set(schema["properties"])
    assert {"apiVersion", "kind", "metadata"} <= set(schema["required"])
    assert schema["properties"]["kind"].get("const") == kind or schema["properties"]["kind"].get(
        "enum"
    ) == [kind]
