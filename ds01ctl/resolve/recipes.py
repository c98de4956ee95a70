"""Choosing an endpoint's recipe: a pure filter pipeline with a fixed preference order.

An endpoint pins a recipe (`id@version`) or asks for one by precision, metric and minimum
maturity, on an accelerator shape (a count of whole GPUs or one MIG instance). Each recipe of
the model goes through the filters below in this order, and the first one it fails is its
reason: the plan prints the chosen recipe and every rejected one, so nobody has to guess why.

    superseded → manual only → maturity (generic needs allow_fallback) → precision → metric
    → accelerator shape → GPUs on this site → memory per GPU

Among the survivors the preference order is fixed: maturity (optimized, preview,
unoptimized, generic), then the Site's own recipes before the shipped ones, then precision
when the endpoint asked for `auto` (bf16, fp16, fp8, int8, int4, fp4: the most faithful
first), then the GPU (H200, H100-80GB, MI300X, A100-80GB, A100-40GB, generic). Two survivors
that tie on all of it are an error that names both refs to pin, never a coin toss. A generic
recipe is taken only when the endpoint allows a fallback, and the selection says so.

No I/O, no clock: the catalogue and the site's devices are arguments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ds01ctl.catalog.recipes import (
    GPU_MEMORY_MIB,
    Recipe,
    RecipeCatalog,
    RecipeSpec,
    no_model_hint,
)
from ds01ctl.manifests.endpoint import EndpointSpec, RecipeSelect

TYPE_RANK = {"optimized": 0, "preview": 1, "unoptimized": 2, "generic": 3}
PRECISION_RANK = {"bf16": 0, "fp16": 1, "fp8": 2, "int8": 3, "int4": 4, "fp4": 5}
GPU_RANK = {
    "H200": 0,
    "H100-80GB": 1,
    "MI300X": 2,
    "A100-80GB": 3,
    "A100-40GB": 4,
    "generic": 5,
    "cpu": 6,
}
SOURCE_RANK = {"site": 0, "shipped": 1}


@dataclass(frozen=True, slots=True)
class Device:
    """A kind of accelerator the site has: `count` of one SKU, whole, as MIG instances of one
    profile, or in one AMD partition mode, each with `memory_mib` (a slice's own memory)."""

    sku: str
    count: int
    memory_mib: int
    mig: str | None = None
    partition: str | None = None

    @property
    def shape(self) -> str:
        if self.mig is not None:
            return f"{self.sku} MIG {self.mig}"
        return f"{self.sku} ({self.partition})" if self.partition else self.sku


_SKU_PATTERNS = (
    (re.compile(r"\bA100\b.*\b80\s?GB\b", re.I), "A100-80GB"),
    (re.compile(r"\bA100\b", re.I), "A100-40GB"),
    (re.compile(r"\bH100\b", re.I), "H100-80GB"),
    (re.compile(r"\bH200\b", re.I), "H200"),
    (re.compile(r"\bMI300X\b", re.I), "MI300X"),
)


def sku_of(name: str) -> str | None:
    """The recipe SKU of a device name as the driver reports it (`NVIDIA A100-SXM4-40GB`,
    `NVIDIA H100 80GB HBM3`, `AMD Instinct MI300X`), or None for a GPU no recipe names."""
    for pattern, sku in _SKU_PATTERNS:
        if pattern.search(name):
            return sku
    return None


@dataclass(frozen=True, slots=True)
class Request:
    """What an endpoint asks for."""

    model: str
    ref: str | None = None
    precision: str = "auto"
    metric: str = "latency"
    min_type: str = "optimized"
    allow_fallback: bool = False
    count: int = 1
    mig: str | None = None

    @classmethod
    def of(cls, spec: EndpointSpec) -> Request:
        select = spec.recipe.select or RecipeSelect()
        return cls(
            model=spec.model.id,
            ref=spec.recipe.ref,
            precision=select.precision,
            metric=select.metric,
            min_type=select.min_type,
            allow_fallback=select.allow_fallback,
            count=spec.accelerator.count,
            mig=spec.accelerator.mig,
        )

    @property
    def shape(self) -> str:
        if self.mig is not None:
            return f"one MIG {self.mig} instance"
        if self.count == 0:
            return "no GPU"
        return f"{self.count} GPU" + ("s" if self.count != 1 else "")


@dataclass(frozen=True, slots=True)
class Rejected:
    ref: str
    reason: str


@dataclass(frozen=True)
class Selection:
    """The outcome: the chosen recipe (None with `error`) and every rejection with its reason."""

    chosen: Recipe | None
    rejected: tuple[Rejected, ...] = ()
    fallback: bool = False
    devices: tuple[Device, ...] = ()  # the site's devices the chosen recipe can run on
    error: str | None = None
    hint: str | None = None
    notes: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        """The explanation, one line each, as the plan prints it."""
        out = []
        if self.chosen is not None:
            spec = self.chosen.spec
            how = "pinned" if self.notes[:1] == ("pinned",) else "selected"
            out.append(f"recipe {spec.ref} ({how}; {spec.type}, {spec.precision}, {spec.shape})")
            if self.fallback:
                out.append("  generic fallback: no model-specific recipe fits (allow_fallback)")
        else:
            out.append(f"no recipe: {self.error}" + (f" ({self.hint})" if self.hint else ""))
        out.extend(f"  rejected {r.ref}: {r.reason}" for r in self.rejected)
        return out


def select(request: Request, catalog: RecipeCatalog, devices: Iterable[Device]) -> Selection:
    """The recipe for `request` on a site with `devices`, explained."""
    devices = tuple(devices)
    candidates = catalog.for_model(request.model)
    if request.ref is not None:
        return _pinned(request, catalog, devices)
    if not any(r.spec.model.family != "*" for r in candidates) and not request.allow_fallback:
        hint = no_model_hint(request.model, catalog.families())
        return Selection(None, error=f"no recipe serves {request.model}", hint=hint)
    newest: dict[tuple[str, str], int] = {}
    for recipe in candidates:
        key = (recipe.spec.model.family.lower(), recipe.spec.id)
        newest[key] = max(newest.get(key, 0), recipe.spec.version)
    survivors: list[tuple[Recipe, tuple[Device, ...]]] = []
    rejected: list[Rejected] = []
    for recipe in candidates:
        spec = recipe.spec
        latest = newest[(spec.model.family.lower(), spec.id)]
        reason = (
            f"superseded by @{latest}" if spec.version < latest else _first_failure(request, spec)
        )
        fits: tuple[Device, ...] = ()
        if reason is None:
            fits, reason = _hardware(spec, devices)
        if reason is None:
            survivors.append((recipe, fits))
        else:
            rejected.append(Rejected(_label(recipe), reason))
    if not survivors:
        return Selection(
            None,
            tuple(rejected),
            error=f"none of the {len(candidates)} recipes of {request.model} fits "
            f"{request.shape} on this site",
            hint=_hint(request, rejected),
        )
    survivors.sort(key=lambda s: (_rank(request, s[0]), s[0].spec.ref))
    best_rank = _rank(request, survivors[0][0])
    tied = [s for s in survivors if _rank(request, s[0]) == best_rank]
    for recipe, _ in survivors[len(tied) :]:
        rejected.append(Rejected(_label(recipe), f"less preferred than {survivors[0][0].spec.ref}"))
    if len(tied) > 1:
        refs = " or ".join(f"ref: {r.spec.ref}" for r, _ in tied)
        return Selection(
            None,
            tuple(rejected),
            error=f"ambiguous: {len(tied)} recipes are equally good for {request.model}",
            hint=f"pin one in spec.recipe: {refs}",
        )
    chosen, fits = tied[0]
    return Selection(chosen, tuple(rejected), fallback=chosen.spec.type == "generic", devices=fits)


def _pinned(request: Request, catalog: RecipeCatalog, devices: tuple[Device, ...]) -> Selection:
    assert request.ref is not None
    found = catalog.find(request.model, request.ref)
    if not isinstance(found, Recipe):
        return Selection(None, error=found.message, hint=found.hint)
    spec = found.spec
    reason = _shape(request, spec)
    fits: tuple[Device, ...] = ()
    if reason is None:
        fits, reason = _hardware(spec, devices)
    if reason is not None:
        return Selection(
            None,
            error=f"pinned recipe {spec.ref} cannot run here: {reason}",
            hint="pin a recipe for this site's GPUs, or use select",
        )
    return Selection(found, fallback=spec.type == "generic", devices=fits, notes=("pinned",))


def _label(recipe: Recipe) -> str:
    suffix = " (site)" if recipe.source == "site" else ""
    return recipe.spec.ref + suffix


def _first_failure(request: Request, spec: RecipeSpec) -> str | None:
    if spec.manual_only:
        return f"manual selection only: pin it as ref: {spec.ref}"
    if spec.type == "generic" and not request.allow_fallback:
        return "generic fallback; set select.allow_fallback: true to allow it"
    if spec.type != "generic" and TYPE_RANK[spec.type] > TYPE_RANK[request.min_type]:
        return f"type {spec.type} is below min_type {request.min_type}"
    if request.precision not in ("auto", spec.precision):
        return f"precision {spec.precision}, asked {request.precision}"
    if spec.metric != request.metric:
        return f"tuned for {spec.metric}, asked {request.metric}"
    return _shape(request, spec)


def _shape(request: Request, spec: RecipeSpec) -> str | None:
    if request.mig is not None:
        if spec.mig != request.mig:
            return f"for {spec.shape}, the endpoint asks {request.shape}"
        return None
    if spec.mig is not None:
        return f"for {spec.shape}, the endpoint asks {request.shape}"
    if (spec.gpu == "cpu") != (request.count == 0):
        shape = "no GPU" if spec.gpu == "cpu" else spec.shape
        return f"for {shape}, the endpoint asks {request.shape}"
    if spec.gpu == "cpu":
        return None
    if spec.count != request.count:
        return f"tensor-parallel {spec.count}, the endpoint asks {request.shape}"
    return None


def _hardware(
    spec: RecipeSpec, devices: tuple[Device, ...]
) -> tuple[tuple[Device, ...], str | None]:
    """The site's devices the recipe can run on, or why there are none."""
    if spec.gpu == "cpu":
        return (), None  # every host has CPUs
    if spec.gpu == "generic":
        shaped = [d for d in devices if d.mig is None and d.partition is None]
    else:
        shaped = [
            d
            for d in devices
            if d.sku == spec.gpu and d.mig == spec.mig and d.partition == spec.partition
        ]
    if not shaped:
        have = ", ".join(sorted({d.shape for d in devices})) or "no GPUs"
        return (), f"needs {_wanted(spec)}; this site has {have}"
    enough = [d for d in shaped if d.count >= spec.count]
    if not enough:
        most = max(d.count for d in shaped)
        return (), f"needs {spec.count} × {_wanted(spec)}; this site has {most}"
    need = spec.min_vram_gib * 1024
    roomy = tuple(d for d in enough if d.memory_mib >= need)
    if not roomy:
        largest = max(enough, key=lambda d: d.memory_mib)
        return (), (
            f"needs {spec.min_vram_gib:g} GiB per GPU; {largest.shape} has "
            f"{largest.memory_mib / 1024:.1f} GiB"
        )
    return roomy, None


def _wanted(spec: RecipeSpec) -> str:
    if spec.gpu == "generic":
        return "whole GPUs"
    if spec.mig is not None:
        return f"{spec.gpu} MIG {spec.mig}"
    return f"{spec.gpu} ({spec.partition})" if spec.partition else spec.gpu


def _rank(request: Request, recipe: Recipe) -> tuple[int, int, int, int]:
    spec = recipe.spec
    precision = PRECISION_RANK[spec.precision] if request.precision == "auto" else 0
    return (TYPE_RANK[spec.type], SOURCE_RANK[recipe.source], precision, GPU_RANK[spec.gpu])


def _hint(request: Request, rejected: list[Rejected]) -> str:
    reasons = [r.reason for r in rejected]
    if any(r.startswith("type ") for r in reasons):
        return "see the rejected recipes; a lower select.min_type may accept some"
    if any(r.startswith("generic fallback") for r in reasons):
        return "set select.allow_fallback: true to run a generic recipe"
    return "see the rejected recipes and their reasons"


def whole_gpu_memory_mib(sku: str) -> int:
    """A whole GPU's memory by SKU, for a site described without an inventory."""
    return GPU_MEMORY_MIB[sku]
