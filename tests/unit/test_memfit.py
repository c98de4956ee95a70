"""The memory-fit estimate, and model facts read from a hub cache without reading weights."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from ds01ctl.catalog.modelfacts import (
    ModelFactsError,
    facts_from_snapshot,
    model_facts,
    shipped_facts,
)
from ds01ctl.resolve.memfit import GIB, Fit, ModelFacts, Refusal, estimate, tp_problem

LLAMA8 = shipped_facts()["meta-llama/llama-3.1-8b-instruct"]
LLAMA70 = shipped_facts()["meta-llama/llama-3.1-70b-instruct"]
QWEN7 = shipped_facts()["qwen/qwen2.5-7b-instruct"]


def test_memfit_llama8_fits_one_a100() -> None:
    fit = estimate(
        LLAMA8,
        precision="bf16",
        tp=1,
        memory_per_gpu=40 * GIB,
        devices="1 × A100-40GB",
        max_model_len=16384,
    )
    assert isinstance(fit, Fit)
    # weights 8.03e9 × 2 B = 15.0 GiB; KV/token = 2 × 32 × 8 × 128 × 2 B = 128 KiB → 2 GiB per
    # 16k sequence; (0.9 × 40 − 15.0 − 2) / 2.0 = 9.5 → 9
    assert fit.sequences == 9
    assert fit.message == (
        "fits 9 concurrent sequences at max_model_len 16384 on 1 × A100-40GB "
        "(weights 15.0 GiB/GPU, KV 2.0 GiB per sequence, usable 36.0 GiB/GPU)"
    )


def test_memfit_too_large_refusal_shows_numbers() -> None:
    refusal = estimate(
        LLAMA70,
        precision="bf16",
        tp=1,
        memory_per_gpu=40 * GIB,
        devices="1 × A100-40GB",
        max_model_len=8192,
    )
    assert isinstance(refusal, Refusal)
    assert refusal.message == (
        "meta-llama/Llama-3.1-70B-Instruct at bf16 does not fit 1 × A100-40GB: per GPU it needs "
        "131.4 GiB weights + 2.0 GiB overhead + 2.5 GiB KV for one 8192-token sequence = "
        "135.9 GiB, but 0.9 × 40.0 GiB = 36.0 GiB"
    )


def test_memfit_tensor_parallel_and_quantisation_make_it_fit() -> None:
    fit = estimate(
        LLAMA70,
        precision="int4",
        tp=2,
        memory_per_gpu=40 * GIB,
        devices="2 × A100-40GB",
        max_model_len=8192,
    )
    assert isinstance(fit, Fit) and fit.sequences == 13


def test_memfit_tp_must_divide_attention_heads() -> None:
    refusal = tp_problem(QWEN7, 8)
    assert refusal is not None
    assert refusal.message == (
        "tensor-parallel size 8 does not divide Qwen/Qwen2.5-7B-Instruct's 28 attention heads"
    )
    assert refusal.hint == "use 1 or 2 or 4 GPUs"
    assert tp_problem(QWEN7, 4) is None


def test_memfit_tp_must_divide_kv_heads_or_be_a_multiple() -> None:
    facts = ModelFacts("org/m", 10**9, 8, 24, 6, 64, 4096)
    assert tp_problem(facts, 4) is not None  # 24 % 4 == 0, but 6 KV heads % 4 != 0
    assert tp_problem(facts, 3) is None  # 6 % 3 == 0
    assert tp_problem(facts, 6) is None
    refusal = tp_problem(facts, 4)
    assert refusal is not None and "6 KV heads" in refusal.message


def test_memfit_context_longer_than_model_refused() -> None:
    refusal = estimate(
        QWEN7,
        precision="bf16",
        tp=1,
        memory_per_gpu=80 * GIB,
        devices="1 × H100-80GB",
        max_model_len=65536,
    )
    assert isinstance(refusal, Refusal) and "32768 positions" in refusal.message


def _safetensors(path: Path, tensors: dict[str, list[int]], *, data: bool = False) -> None:
    header = {
        name: {"dtype": "BF16", "shape": shape, "data_offsets": [0, 0]}
        for name, shape in tensors.items()
    }
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header).encode()
    # The header says gigabytes follow; the file holds a few bytes: reading it whole would fail
    # the assertion on size below, and the reader must not try.
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + (b"\0" * 16 if data else b""))


def _cache(tmp_path: Path) -> tuple[Path, Path]:
    cache = tmp_path / "hub"
    repo = cache / "models--org--tiny"
    blobs = repo / "blobs"
    snapshot = repo / "snapshots" / "0123abcd"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    config = {
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "hidden_size": 512,
        "max_position_embeddings": 2048,
    }
    (blobs / "cfg").write_text(json.dumps(config))
    os.symlink("../../blobs/cfg", snapshot / "config.json")  # as the hub cache lays it out
    _safetensors(blobs / "s1", {"a": [1000, 512], "b": [512]})
    _safetensors(blobs / "s2", {"c": [4096, 1000, 1000]})
    os.symlink("../../blobs/s1", snapshot / "model-00001-of-00002.safetensors")
    os.symlink("../../blobs/s2", snapshot / "model-00002-of-00002.safetensors")
    return cache, snapshot


def test_memfit_facts_from_cache_read_headers_only(tmp_path: Path) -> None:
    cache, snapshot = _cache(tmp_path)
    facts = model_facts("org/tiny", cache)
    assert facts == ModelFacts("org/tiny", 1000 * 512 + 512 + 4096 * 10**6, 4, 8, 2, 64, 2048)
    # 4 billion weights counted from files of a few hundred bytes: only headers were read
    assert all(p.stat().st_size < 1000 for p in snapshot.iterdir())
    assert model_facts("org/tiny", cache, revision="0123") == facts  # a short commit id


def test_memfit_facts_fall_back_to_table(tmp_path: Path) -> None:
    assert model_facts("meta-llama/Llama-3.1-8B-Instruct", tmp_path) == LLAMA8
    assert model_facts("org/absent", tmp_path) is None


def test_memfit_cache_link_outside_is_not_read(tmp_path: Path) -> None:
    cache, snapshot = _cache(tmp_path)
    secret = tmp_path / "shadow"
    secret.write_text("{}")
    (snapshot / "config.json").unlink()
    os.symlink(secret, snapshot / "config.json")
    with pytest.raises(ModelFactsError, match="leads outside the model cache"):
        facts_from_snapshot(cache, snapshot, "org/tiny")


def test_memfit_bad_header_length_refused(tmp_path: Path) -> None:
    cache, snapshot = _cache(tmp_path)
    target = (snapshot / "model-00001-of-00002.safetensors").resolve()
    target.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(ModelFactsError, match="is not a safetensors header"):
        facts_from_snapshot(cache, snapshot, "org/tiny")
