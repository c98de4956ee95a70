"""JSON Schemas of the manifest kinds, generated from the models (editors, config-repo CI).

A schema accepts what the loader accepts: the shorthands the models parse (sizes, durations,
CPUs, mount paths) are spelled out where they are declared, and the checks a schema can express
(name patterns, "exactly one of") are too. `manifest.schema.json` takes any kind, for a file
that holds several.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from ds01ctl.manifests import KINDS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ANY_KIND = "manifest.schema.json"


class _Generator(GenerateJsonSchema):
    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        json_schema = super().dict_schema(schema)
        # pydantic writes a constrained key type (a login, an environment variable name) as
        # patternProperties, which lets a key that does not match through: refuse it.
        if "patternProperties" in json_schema and "additionalProperties" not in json_schema:
            json_schema["additionalProperties"] = False
        return json_schema


def schema_of(kind: str) -> dict[str, Any]:
    schema = KINDS[kind].model_json_schema(
        by_alias=True, mode="validation", schema_generator=_Generator
    )
    return {"$schema": SCHEMA_DIALECT, "$id": f"{kind.lower()}.schema.json", **schema}


def any_kind_schema() -> dict[str, Any]:
    """One self-contained schema for every kind: each document is checked against its kind's
    model (relative references to the other files would resolve against the editor's folder)."""
    models: list[tuple[type[BaseModel], Literal["validation"]]] = [
        (cls, "validation") for cls in KINDS.values()
    ]
    refs, defs = models_json_schema(models, by_alias=True, schema_generator=_Generator)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": ANY_KIND,
        "title": "Manifest",
        "description": "Any ds01 manifest, checked against the schema of its kind.",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "allOf": [
            {"properties": {"kind": {"enum": list(KINDS)}}},
            *(
                {
                    "if": {"required": ["kind"], "properties": {"kind": {"const": kind}}},
                    "then": refs[(cls, "validation")],
                }
                for kind, cls in KINDS.items()
            ),
        ],
        **defs,
    }


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schema_files() -> dict[str, str]:
    """File name → text, one schema per kind and one for any kind; the text is stable (sorted
    keys, newline at end)."""
    files = {f"{kind.lower()}.schema.json": _text(schema_of(kind)) for kind in KINDS}
    files[ANY_KIND] = _text(any_kind_schema())
    return files


def write_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_files().items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
