"""Rewriting a manifest file in place, keeping its comments and layout (ruamel round-trip).

Used where ds01ctl proposes a change to the config repo itself (restoring a snapshot sets a
workspace's image to it), so that the change is reviewed and committed like any other.
"""

from __future__ import annotations

import io
from pathlib import Path

from ruamel.yaml import YAML

from ds01ctl.errors import Ds01Error


def set_workspace_image(path: Path, owner: str, name: str, reference: str) -> None:
    """In the file at `path`, make workspace `owner/name` use `image_ref: reference`."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    text = path.read_text(encoding="utf-8")
    documents = list(yaml.load_all(text))
    found = False
    for doc in documents:
        if not isinstance(doc, dict) or doc.get("kind") != "Workspace":
            continue
        meta = doc.get("metadata") or {}
        if meta.get("name") == name and meta.get("owner", owner) == owner:
            spec = doc.setdefault("spec", {})
            for key in ("framework", "image"):
                spec.pop(key, None)
            spec["image_ref"] = reference
            found = True
    if not found:
        raise Ds01Error(f"{path} declares no workspace {owner}/{name}", code="restore")
    out = io.StringIO()
    yaml.dump_all(documents, out)
    path.write_text(out.getvalue(), encoding="utf-8")
