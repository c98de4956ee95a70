"""Recipes: how to serve one model on one accelerator shape, as data.

A recipe says which engine, image and engine arguments serve a model family on a GPU SKU (whole
GPUs, a MIG profile or an AMD partition) at a precision, tuned for a metric. Its id is derived
from those keys, `<engine>-<gpu>-<precision>-tp<N>-<metric>`, and an endpoint pins one as
`id@version`; the id is unique per model family, so (family, id, version) names a recipe.

ds01ctl ships a catalogue (`catalog/recipes/*.yaml`, one file per model family, one document
per recipe); a Site may add a directory of its own (regular files only: it is read as root).
Every document is checked against the `RecipeSpec` schema and its id against its keys, so a
recipe cannot claim one GPU and tune another.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, ValidationError, model_validator

from ds01ctl.catalog.engine_flags import flag_problem
from ds01ctl.errors import Ds01Error
from ds01ctl.manifests.common import EnvName, EnvValue, ImageRef, MigProfile, Model
from ds01ctl.manifests.repofiles import MAX_FILE_BYTES, NotRegularFile, read_regular
from ds01ctl.yamlpos import YamlError, load_documents

# `cpu`: no accelerator at all (an engine's CPU backend); an endpoint asks it with count: 0.
GpuSku = Literal["A100-40GB", "A100-80GB", "H100-80GB", "H200", "MI300X", "generic", "cpu"]
Precision = Literal["bf16", "fp16", "fp8", "int8", "int4", "fp4"]
Metric = Literal["latency", "throughput"]
RecipeType = Literal["optimized", "preview", "unoptimized", "generic"]
# AMD Instinct compute + memory partition modes that vLLM images run on.
AmdPartition = Literal["SPX-NPS1", "DPX-NPS1", "DPX-NPS2", "QPX-NPS1", "CPX-NPS1", "CPX-NPS4"]
EngineArg = str | int | float | bool | None  # None: a bare flag (`--enforce-eager`)

# The id's GPU part: short where the SKU has one memory size (h100, h200, mi300x).
GPU_SLUG: dict[str, str] = {
    "A100-40GB": "a100-40gb",
    "A100-80GB": "a100-80gb",
    "H100-80GB": "h100",
    "H200": "h200",
    "MI300X": "mi300x",
    "generic": "generic",
    "cpu": "cpu",
}
VENDOR: dict[str, str] = {
    "A100-40GB": "nvidia",
    "A100-80GB": "nvidia",
    "H100-80GB": "nvidia",
    "H200": "nvidia",
    "MI300X": "amd",
}
# Usable memory of a whole GPU, MiB, as the driver reports it (nvidia-smi / amd-smi).
GPU_MEMORY_MIB: dict[str, int] = {
    "A100-40GB": 40960,
    "A100-80GB": 81920,
    "H100-80GB": 81559,
    "H200": 143771,
    "MI300X": 196592,
}


class RecipeModel(Model):
    """The model a recipe serves."""

    family: str = Field(
        min_length=1,
        description="The model endpoints ask for (Hugging Face id), e.g. Qwen/Qwen2.5-7B-Instruct.",
    )
    id: str = Field(
        min_length=1,
        description="The weights actually loaded; differs from family for a quantised checkpoint.",
    )


class RecipeSpec(Model):
    """One recipe: an engine configuration validated for one model on one accelerator shape."""

    id: str = Field(description="<engine>-<gpu>-<precision>-tp<N>-<metric>, derived from the keys.")
    version: int = Field(ge=1, description="Bumped on every change; endpoints pin id@version.")
    model: RecipeModel = Field(description="Model family and weights.")
    engine: Literal["vllm"] = Field(description="Serving engine.")
    engine_version: str = Field(
        pattern=r"^\d+\.\d+(\.\d+)?$",
        description="Engine version the image carries; selects the allowed engine flags.",
    )
    image: ImageRef = Field(description="Engine image.")
    gpu: GpuSku = Field(description="GPU SKU, or generic for any GPU with min_vram_gib.")
    mig: MigProfile | None = Field(None, description="One NVIDIA MIG instance of this profile.")
    partition: AmdPartition | None = Field(None, description="AMD compute/memory partition mode.")
    count: int = Field(ge=1, le=16, description="GPUs (or partitions): the tensor-parallel size.")
    precision: Precision = Field(description="Weight precision.")
    metric: Metric = Field(description="What the engine arguments are tuned for.")
    type: RecipeType = Field(description="Maturity: optimized, preview, unoptimized or generic.")
    manual_only: bool = Field(False, description="Only used when pinned, never selected.")
    min_vram_gib: float = Field(gt=0, description="Memory one GPU (or slice) needs at least.")
    engine_args: dict[str, EngineArg] = Field(
        default_factory=dict, description="Engine flags without dashes; null is a bare flag."
    )
    env: dict[EnvName, EnvValue] = Field(default_factory=dict, description="Environment.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.mig is not None and (self.count != 1 or VENDOR.get(self.gpu) != "nvidia"):
            raise ValueError("a MIG recipe is for one instance of an NVIDIA GPU: count 1")
        if self.partition is not None and VENDOR.get(self.gpu) != "amd":
            raise ValueError("partition is an AMD mode; NVIDIA GPUs use mig")
        if self.gpu == "cpu" and (self.count != 1 or self.mig or self.partition):
            raise ValueError(
                "a cpu recipe runs one server on no GPU: count 1, no mig, no partition"
            )
        if (self.gpu == "generic") != (self.type == "generic"):
            raise ValueError("a generic recipe has gpu: generic and type: generic, or neither")
        for key in self.engine_args:
            problem = flag_problem(key, self.engine_version)
            if problem is not None:
                raise ValueError(f"engine_args: {problem.message} ({problem.hint})")
        if self.id != derive_id(self):
            raise ValueError(f"id must be {derive_id(self)!r}, as its keys say")
        return self

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def vendor(self) -> str | None:
        """nvidia or amd; None for a generic recipe (either)."""
        return VENDOR.get(self.gpu)

    @property
    def shape(self) -> str:
        """The accelerator in words: `2 × H100-80GB`, `A100-40GB MIG 3g.20gb`."""
        if self.mig is not None:
            return f"{self.gpu} MIG {self.mig}"
        if self.gpu == "cpu":
            return "CPUs, no GPU"
        part = f" ({self.partition})" if self.partition else ""
        return f"{self.count} × {self.gpu}{part}"


def derive_id(recipe: RecipeSpec) -> str:
    gpu = GPU_SLUG[recipe.gpu]
    if recipe.mig is not None:
        gpu += f"-mig{recipe.mig}"
    if recipe.partition is not None:
        gpu += f"-{recipe.partition.lower()}"
    return f"{recipe.engine}-{gpu}-{recipe.precision}-tp{recipe.count}-{recipe.metric}"


class RecipeError(Ds01Error):
    """A recipe file that does not hold valid recipes, with its place."""

    code = "recipe.invalid"


@dataclass(frozen=True, slots=True)
class Recipe:
    """A recipe and where it came from: `shipped` (the package) or `site` (the Site's dir)."""

    spec: RecipeSpec
    source: Literal["shipped", "site"]
    file: str
    line: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.spec.model.family.lower(), self.spec.id, self.spec.version)


class RecipeCatalog:
    """Every recipe, indexed by model family (case-insensitive)."""

    def __init__(self, recipes: Iterable[Recipe]):
        self.recipes: tuple[Recipe, ...] = tuple(recipes)
        self._by_family: dict[str, list[Recipe]] = {}
        for recipe in self.recipes:
            self._by_family.setdefault(recipe.spec.model.family.lower(), []).append(recipe)
            weights = recipe.spec.model.id.lower()
            if weights != recipe.spec.model.family.lower():
                self._by_family.setdefault(weights, []).append(recipe)
        self.generic = tuple(r for r in self.recipes if r.spec.model.family == "*")

    def for_model(self, model: str) -> list[Recipe]:
        """The recipes of `model` (by family or weights id), generic ones (family `*`) last."""
        return [*self._by_family.get(model.lower(), []), *self.generic]

    def families(self) -> list[str]:
        return sorted({r.spec.model.family for r in self.recipes if r.spec.model.family != "*"})

    def merged(self, extra: Iterable[Recipe]) -> RecipeCatalog:
        """This catalogue plus `extra`; a recipe of the same family, id and version replaces
        the one here (a site fixes a shipped recipe without renaming it)."""
        extra = list(extra)
        replaced = {r.key for r in extra}
        return RecipeCatalog([*(r for r in self.recipes if r.key not in replaced), *extra])

    def find(self, model: str, ref: str) -> Recipe | RecipeProblem:
        """The recipe `ref` (`id@version`) of `model`, or why there is none (nearest named)."""
        rid, at, version = ref.partition("@")
        mine = self.for_model(model)
        same_id = sorted((r for r in mine if r.spec.id == rid), key=lambda r: r.spec.version)
        if not at or not version.isdigit():
            latest = f"{rid}@{same_id[-1].spec.version}" if same_id else "<id>@<version>"
            return RecipeProblem(
                f"recipe {ref!r} has no version", f"pin id@version, e.g. {latest!r}"
            )
        for recipe in same_id:
            if recipe.spec.version == int(version):
                return recipe
        if same_id:
            versions = ", ".join(str(r.spec.version) for r in same_id)
            return RecipeProblem(
                f"recipe {rid} of {model} has no version {version}", f"versions: {versions}"
            )
        ids = sorted({r.spec.ref for r in mine})
        close = difflib.get_close_matches(ref, ids, n=1, cutoff=0.5)
        if close:
            hint = f"did you mean {close[0]!r}?"
        elif ids:
            hint = f"recipes of {model}: {', '.join(ids[:6])}" + (" …" if len(ids) > 6 else "")
        else:
            hint = no_model_hint(model, self.families())
        return RecipeProblem(f"no recipe {ref!r} for model {model}", hint)


@dataclass(frozen=True, slots=True)
class RecipeProblem:
    message: str
    hint: str


def no_model_hint(model: str, families: list[str]) -> str:
    close = difflib.get_close_matches(model, families, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "add a recipe to the Site's recipes_dir, or allow a generic fallback"


def parse_recipes(text: str, file: str, source: Literal["shipped", "site"]) -> Iterator[Recipe]:
    """The recipes of one file; raises `RecipeError` at the first document that is not one."""
    try:
        docs = list(load_documents(text))
    except YamlError as exc:
        line = exc.mark.line if exc.mark else None
        raise RecipeError(f"{file}:{line or 1}: {exc.message}") from None
    for doc in docs:
        try:
            spec = RecipeSpec.model_validate(doc.value)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            path = tuple(p for p in first["loc"] if isinstance(p, str | int))
            mark = doc.mark_of(path)
            where = ".".join(str(p) for p in path) or "recipe"
            raise RecipeError(
                f"{file}:{mark.line}:{mark.col}: {where}: {first['msg']}",
                hint="see ds01ctl/catalog/recipes.py for the keys a recipe has",
            ) from None
        yield Recipe(spec, source, file, doc.start.line)


@cache
def shipped() -> RecipeCatalog:
    """The catalogue shipped with ds01ctl (a bad shipped file is a bug: it raises)."""
    root = resources.files("ds01ctl.catalog").joinpath("recipes")
    recipes: list[Recipe] = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            text = entry.read_text("utf-8")
            recipes.extend(parse_recipes(text, f"ds01ctl:recipes/{entry.name}", "shipped"))
    return RecipeCatalog(recipes)


def load_site_recipes(directory: Path) -> list[Recipe]:
    """The recipes in a Site's directory (`*.yaml`, not recursive, dot-files skipped).

    Only regular files are read, without following a symbolic link: ds01ctl runs as root and
    the directory may be writable by more people than root.
    """
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise RecipeError(
            f"cannot read the recipes directory {directory}: {exc.strerror}",
            hint="fix the Site's recipes_dir, or remove it to use only the shipped recipes",
        ) from None
    recipes: list[Recipe] = []
    for name in names:
        if name.startswith(".") or not name.endswith((".yaml", ".yml")):
            continue
        path = directory / name
        try:
            data = read_regular(path)
        except NotRegularFile as exc:
            raise RecipeError(f"{path}: a {exc.what}, not a regular file; never read") from None
        except OSError as exc:
            raise RecipeError(f"cannot read {path}: {exc.strerror}") from None
        if len(data) > MAX_FILE_BYTES:
            raise RecipeError(f"{path}: larger than {MAX_FILE_BYTES} bytes; not a recipe file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise RecipeError(f"{path}: not UTF-8 text") from None
        recipes.extend(parse_recipes(text, str(path), "site"))
    return recipes
