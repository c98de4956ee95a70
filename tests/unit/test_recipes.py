"""Recipes as data and their selection: the pipeline's order, its reasons, ties and pins."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from ds01ctl.catalog.recipes import (
    RecipeCatalog,
    RecipeError,
    RecipeProblem,
    load_site_recipes,
    parse_recipes,
    shipped,
)
from ds01ctl.resolve.recipes import Device, Request, select, sku_of

LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA70 = "meta-llama/Llama-3.1-70B-Instruct"
QWEN7 = "Qwen/Qwen2.5-7B-Instruct"
A100 = Device("A100-40GB", 4, 40960)
A100_MIG3 = Device("A100-40GB", 1, 19968, mig="3g.20gb")
A100_MIG2 = Device("A100-40GB", 2, 9984, mig="2g.10gb")
H100 = Device("H100-80GB", 2, 81559)
H100_MIG3 = Device("H100-80GB", 1, 40192, mig="3g.40gb")
MI300X = Device("MI300X", 8, 196592)
MI300X_CPX = Device("MI300X", 8, 24576, partition="CPX-NPS4")


def _recipe(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "vllm-a100-40gb-bf16-tp1-latency",
        "version": 1,
        "model": {"family": "org/m", "id": "org/m"},
        "engine": "vllm",
        "engine_version": "0.10.2",
        "image": "vllm/vllm-openai:v0.10.2",
        "gpu": "A100-40GB",
        "count": 1,
        "precision": "bf16",
        "metric": "latency",
        "type": "optimized",
        "min_vram_gib": 20,
        "engine_args": {"max-model-len": 4096},
    }
    doc.update(over)
    return doc


def _catalog(*docs: dict[str, Any], source: str = "shipped") -> RecipeCatalog:
    text = "---\n".join(yaml.safe_dump(d) for d in docs)
    return RecipeCatalog(parse_recipes(text, "t.yaml", source))  # type: ignore[arg-type]


def test_recipes_shipped_catalogue_loads_and_covers_skus() -> None:
    catalog = shipped()
    skus = {r.spec.gpu for r in catalog.recipes}
    assert {"A100-40GB", "A100-80GB", "H100-80GB", "H200", "MI300X", "generic"} <= skus
    assert any(r.spec.mig for r in catalog.recipes)
    assert any(r.spec.partition for r in catalog.recipes)
    assert {LLAMA8, LLAMA70, QWEN7, "mistralai/Mistral-7B-Instruct-v0.3"} <= set(catalog.families())


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"id": "vllm-h100-bf16-tp1-latency"}, "id must be 'vllm-a100-40gb-bf16-tp1-latency'"),
        ({"engine_args": {"served_model_name": "x"}}, "set by ds01ctl"),
        ({"engine_args": {"tp": 2}}, "set by ds01ctl"),
        ({"engine_args": {"no-such-flag": 1}}, "not a flag users may set"),
        ({"gpu": "H100"}, "gpu"),
        ({"mig": "3g.20gb", "count": 2}, "count 1"),
        ({"extra": 1}, "extra"),
    ],
)
def test_recipes_bad_recipe_refused_with_place(over: dict[str, Any], message: str) -> None:
    with pytest.raises(RecipeError, match=r"t\.yaml:") as caught:
        _catalog(_recipe(**over))
    assert message in str(caught.value)


def test_recipes_site_dir_reads_regular_files_only(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(_recipe()))
    assert [r.spec.ref for r in load_site_recipes(tmp_path)] == [
        "vllm-a100-40gb-bf16-tp1-latency@1"
    ]
    outside = tmp_path.parent / "outside.yaml"
    outside.write_text(yaml.safe_dump(_recipe()))
    os.symlink(outside, tmp_path / "link.yaml")
    with pytest.raises(RecipeError, match="symbolic link, not a regular file"):
        load_site_recipes(tmp_path)


def test_recipes_site_recipe_replaces_shipped_same_ref() -> None:
    base = _catalog(_recipe(engine_args={"max-model-len": 4096}))
    site = _catalog(_recipe(engine_args={"max-model-len": 8192}), source="site")
    merged = base.merged(site.recipes)
    assert [(r.source, r.spec.engine_args) for r in merged.recipes] == [
        ("site", {"max-model-len": 8192})
    ]


@pytest.mark.parametrize(
    ("ref", "message", "hint"),
    [
        (
            "vllm-h100-bf16-tp1-latncy@1",
            "no recipe",
            "did you mean 'vllm-h100-bf16-tp1-latency@1'?",
        ),
        ("vllm-h100-bf16-tp1-latency", "has no version", "'vllm-h100-bf16-tp1-latency@1'"),
        ("vllm-h100-bf16-tp1-latency@7", "no version 7", "versions: 1"),
    ],
)
def test_recipes_find_unknown_ref_suggests_nearest(ref: str, message: str, hint: str) -> None:
    found = shipped().find(LLAMA8, ref)
    assert isinstance(found, RecipeProblem)
    assert message in found.message
    assert hint in found.hint


# (request, site devices, chosen ref or None, a substring of the error or of a rejection)
SELECTIONS = [
    # the H100 outranks the A100 when both are on the site; the rest say why not
    (Request(LLAMA8), [A100, H100], "vllm-h100-bf16-tp1-latency@1", "less preferred than"),
    (Request(LLAMA8), [A100], "vllm-a100-40gb-bf16-tp1-latency@1", "needs H100-80GB"),
    (Request(LLAMA8, metric="throughput"), [H100], "vllm-h100-fp8-tp1-throughput@1", ""),
    (
        Request(LLAMA8, metric="throughput", precision="bf16"),
        [H100],
        None,
        "precision fp8, asked bf16",
    ),
    (Request(LLAMA8, mig="3g.20gb"), [A100_MIG3], None, "type preview is below min_type"),
    (
        Request(LLAMA8, mig="3g.20gb", min_type="preview"),
        [A100_MIG3],
        "vllm-a100-40gb-mig3g.20gb-bf16-tp1-latency@1",
        "",
    ),
    (Request(LLAMA8, mig="3g.40gb"), [H100_MIG3], "vllm-h100-mig3g.40gb-bf16-tp1-latency@1", ""),
    (Request(LLAMA70, count=4), [A100], None, "needs H100-80GB"),
    (Request(LLAMA70, count=2), [H100], "vllm-h100-fp8-tp2-latency@1", ""),
    (Request(LLAMA70, count=2), [Device("H100-80GB", 1, 81559)], None, "this site has 1"),
    (
        Request(QWEN7, mig="2g.10gb", min_type="preview"),
        [A100_MIG2],
        "vllm-a100-40gb-mig2g.10gb-int4-tp1-latency@1",
        "",
    ),
    (Request(QWEN7), [MI300X], "vllm-mi300x-bf16-tp1-latency@1", ""),
    (
        Request(LLAMA8, min_type="preview"),
        [MI300X_CPX],
        "vllm-mi300x-cpx-nps4-bf16-tp1-latency@1",
        "",
    ),
    # a generic recipe only with allow_fallback, and the selection says so
    (Request("org/unknown"), [A100], None, "no recipe serves org/unknown"),
    (Request("org/unknown", allow_fallback=True), [A100], "vllm-generic-bf16-tp1-latency@1", ""),
    (
        Request("org/unknown", allow_fallback=True),
        [Device("A100-40GB", 1, 9984, mig="2g.10gb")],
        None,
        "this site has A100-40GB MIG 2g.10gb",
    ),
    (Request("meta-llama/Llama-3.1-8B-Instrct"), [A100], None, LLAMA8),
    # pins
    (
        Request(LLAMA8, ref="vllm-h100-fp8-tp1-throughput@1"),
        [H100],
        "vllm-h100-fp8-tp1-throughput@1",
        "",
    ),
    (Request(LLAMA8, ref="vllm-h100-bf16-tp1-latency@1"), [A100], None, "cannot run here"),
    (Request(LLAMA8, ref="vllm-h100-bf16-tp1-latncy@1"), [H100], None, "did you mean"),
]


@pytest.mark.parametrize(("request_", "devices", "chosen", "text"), SELECTIONS)
def test_recipes_select_table(
    request_: Request, devices: list[Device], chosen: str | None, text: str
) -> None:
    result = select(request_, shipped(), devices)
    assert (result.chosen.spec.ref if result.chosen else None) == chosen, result.lines()
    assert (result.error is None) == (chosen is not None)
    assert text in "\n".join(result.lines())
    assert result.fallback == (chosen is not None and "generic" in chosen)
    if result.fallback:
        assert "generic fallback" in result.lines()[1]


def test_recipes_select_every_candidate_has_a_reason() -> None:
    result = select(Request(LLAMA8), shipped(), [A100, H100])
    candidates = {r.spec.ref for r in shipped().for_model(LLAMA8)}
    assert {r.ref for r in result.rejected} | {result.chosen.spec.ref} == candidates  # type: ignore[union-attr]
    assert all(r.reason for r in result.rejected)


def test_recipes_select_tie_is_ambiguous_and_says_how_to_pin() -> None:
    # A site with MI300X both whole and in SPX-NPS1 mode: two recipes rank the same.
    mi = {"gpu": "MI300X", "image": "rocm/vllm:rocm6.3.1_vllm_0.8.5_20250521"}
    catalog = _catalog(
        _recipe(id="vllm-mi300x-bf16-tp1-latency", **mi),
        _recipe(id="vllm-mi300x-spx-nps1-bf16-tp1-latency", partition="SPX-NPS1", **mi),
    )
    devices = [MI300X, Device("MI300X", 8, 196592, partition="SPX-NPS1")]
    result = select(Request("org/m"), catalog, devices)
    assert result.chosen is None
    assert result.error == "ambiguous: 2 recipes are equally good for org/m"
    assert result.hint == (
        "pin one in spec.recipe: ref: vllm-mi300x-bf16-tp1-latency@1 or "
        "ref: vllm-mi300x-spx-nps1-bf16-tp1-latency@1"
    )
    pinned = select(Request("org/m", ref="vllm-mi300x-bf16-tp1-latency@1"), catalog, devices)
    assert pinned.chosen is not None and pinned.lines()[0].startswith(
        "recipe vllm-mi300x-bf16-tp1-latency@1 (pinned"
    )


def test_recipes_select_superseded_version_is_rejected() -> None:
    catalog = _catalog(_recipe(), _recipe(version=2))
    result = select(Request("org/m"), catalog, [A100])
    assert result.chosen is not None and result.chosen.spec.version == 2
    assert [(r.ref, r.reason) for r in result.rejected] == [
        ("vllm-a100-40gb-bf16-tp1-latency@1", "superseded by @2")
    ]


def test_recipes_select_memory_floor() -> None:
    catalog = _catalog(_recipe(min_vram_gib=48))
    result = select(Request("org/m"), catalog, [A100])
    assert result.rejected[0].reason == "needs 48 GiB per GPU; A100-40GB has 40.0 GiB"


def test_recipes_select_is_deterministic() -> None:
    first = select(Request(LLAMA8), shipped(), [H100, A100]).lines()
    assert select(Request(LLAMA8), shipped(), [A100, H100]).lines() == first


@pytest.mark.parametrize(
    ("name", "sku"),
    [
        ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
        ("NVIDIA A100 80GB PCIe", "A100-80GB"),
        ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
        ("NVIDIA H100 80GB HBM3", "H100-80GB"),
        ("NVIDIA H200", "H200"),
        ("AMD Instinct MI300X", "MI300X"),
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_recipes_sku_of_driver_names(name: str, sku: str | None) -> None:
    assert sku_of(name) == sku
