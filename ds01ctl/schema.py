"""JSON Schemas of the manifest kinds, generated from the models (editors, config-repo CI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ds01ctl.manifests import KINDS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_of(kind: str) -> dict[str, Any]:
    schema = KINDS[kind].model_json_schema(by_alias=True, mode="validation")
    return {"$schema": SCHEMA_DIALECT, "$id": f"{kind.lower()}.schema.json", **schema}


def schema_files() -> dict[str, str]:
    """File name → text, one schema per kind; the text is stable (sorted keys, newline at end)."""
    return {
        f"{kind.lower()}.schema.json": json.dumps(schema_of(kind), indent=2, sort_keys=True) + "\n"
        for kind in KINDS
    }


def write_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_files().items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
