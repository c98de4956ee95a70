"""Model facts for the memory-fit estimate: the shipped table, or a model in the site's cache.

The cache has the Hugging Face hub layout (`models--<org>--<name>/snapshots/<revision>/`).
From a snapshot we read `config.json` (layers, heads, KV heads, head size, context length)
and, to count the weights, only the header of each `*.safetensors` file: a little-endian
u64 length followed by that many bytes of JSON naming every tensor's dtype and shape. The
weights themselves are never read. Snapshot files are symbolic links into `blobs/`; a link is
followed only when it stays inside the cache directory.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ds01ctl.errors import Ds01Error
from ds01ctl.resolve.memfit import ModelFacts

MAX_CONFIG_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024 * 1024  # a 400B-parameter shard's header is a few MB


class ModelFactsError(Ds01Error):
    code = "model.facts"


@cache
def shipped_facts() -> dict[str, ModelFacts]:
    """The shipped table, by model id (case-insensitive keys: lower-cased)."""
    text = resources.files("ds01ctl.catalog").joinpath("models.yaml").read_text("utf-8")
    table = yaml.safe_load(text)
    return {name.lower(): ModelFacts(name=name, **row) for name, row in table.items()}


def snapshot_dir(cache_dir: Path, model: str, revision: str | None = None) -> Path | None:
    """The snapshot of `model` at `revision` (the `main` ref when None) in a hub cache."""
    repo = cache_dir / ("models--" + model.replace("/", "--"))
    if revision is None:
        try:
            revision = _read_inside(cache_dir, repo / "refs" / "main", 256).decode().strip()
        except (OSError, ModelFactsError):
            return None
    snapshots = repo / "snapshots"
    exact = snapshots / revision
    if exact.is_dir():
        return exact
    # A short commit id names the snapshot whose full id it starts.
    try:
        found = sorted(n for n in os.listdir(snapshots) if n.startswith(revision))
    except OSError:
        return None
    return snapshots / found[0] if len(found) == 1 else None


def facts_from_snapshot(cache_dir: Path, snapshot: Path, name: str) -> ModelFacts:
    """The facts of the model in `snapshot` (a directory inside `cache_dir`)."""
    try:
        config = json.loads(_read_inside(cache_dir, snapshot / "config.json", MAX_CONFIG_BYTES))
    except (OSError, ValueError) as exc:
        raise ModelFactsError(f"{snapshot}/config.json cannot be read: {exc}") from None
    config = config.get("text_config", config)  # multimodal models nest the language model
    try:
        heads = int(config["num_attention_heads"])
        layers = int(config["num_hidden_layers"])
        kv_heads = int(config.get("num_key_value_heads") or heads)
        head_dim = int(config.get("head_dim") or config["hidden_size"] // heads)
        max_position = int(config.get("max_position_embeddings", 0))
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise ModelFactsError(f"{snapshot}/config.json lacks {exc}") from None
    shards = sorted(p for p in os.listdir(snapshot) if p.endswith(".safetensors"))
    if not shards:
        raise ModelFactsError(f"{snapshot} holds no *.safetensors file to count the weights of")
    params = sum(safetensors_params(cache_dir, snapshot / shard) for shard in shards)
    return ModelFacts(name, params, layers, heads, kv_heads, head_dim, max_position)


def safetensors_params(cache_dir: Path, path: Path) -> int:
    """The number of weights in one safetensors file, from its header alone."""
    real = _inside(cache_dir, path)
    with open(real, "rb", buffering=0) as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ModelFactsError(f"{path} is not a regular file")
        prefix = handle.read(8)
        if len(prefix) != 8:
            raise ModelFactsError(f"{path} is not a safetensors file (no header length)")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise ModelFactsError(f"{path}: a {length}-byte header is not a safetensors header")
        raw = handle.read(length)
    try:
        header: dict[str, Any] = json.loads(raw)
        return sum(
            math.prod(int(d) for d in tensor["shape"])
            for key, tensor in header.items()
            if key != "__metadata__"
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFactsError(f"{path}: the safetensors header is not valid: {exc}") from None


def _inside(cache_dir: Path, path: Path) -> Path:
    root = os.path.realpath(cache_dir)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        raise ModelFactsError(f"{path} leads outside the model cache {cache_dir}; not read")
    return Path(real)


def _read_inside(cache_dir: Path, path: Path, limit: int) -> bytes:
    real = _inside(cache_dir, path)
    with open(real, "rb", buffering=0) as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ModelFactsError(f"{path} is not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ModelFactsError(f"{path} is larger than {limit} bytes")
    return data


def model_facts(
    model: str, cache_dir: Path | None, revision: str | None = None
) -> ModelFacts | None:
    """The model's facts: from the site's cache when it holds the model, else the shipped
    table, else None (the estimate is then skipped, and the plan says so)."""
    if cache_dir is not None:
        snapshot = snapshot_dir(cache_dir, model, revision)
        if snapshot is not None:
            return facts_from_snapshot(cache_dir, snapshot, model)
    return shipped_facts().get(model.lower())
