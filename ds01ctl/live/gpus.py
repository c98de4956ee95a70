"""GPU inventory fixture files: a `GpuInventory` written down as YAML, to plan without GPUs.

This reads fixtures (checking them against the format, with `file:line:col` in each
`InventoryError`) and writes them back; the live source is `ds01ctl.live.nvml`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
)
from pydantic_core import ErrorDetails

from ds01ctl.errors import InventoryError
from ds01ctl.fsutil import write_atomically
from ds01ctl.model.inventory import DEFAULT_COMPUTE_SLICES, Architecture, GpuInventory
from ds01ctl.yamlpos import Mark, YamlDoc, YamlError, YamlPath, load_documents

_HEX_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GPU_UUID_RE = re.compile(rf"^GPU-{_HEX_UUID}$")
_MIG_UUID_RE = re.compile(rf"^MIG-(?:{_HEX_UUID}|GPU-{_HEX_UUID}/\d+/\d+)$")  # R470+ or older form
_PROFILE_RE = re.compile(r"^(?:\d+c\.)?\d+g\.\d+gb(?:\+[a-z]+)?$")
_CONTAINER_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_SHAPE = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"


def _gpu_uuid(value: str) -> str:
    if not _GPU_UUID_RE.match(value):
        raise ValueError(f"a GPU uuid looks like GPU-{_SHAPE} (got {value!r})")
    return value


def _mig_uuid(value: str) -> str:
    if not value.startswith("MIG-"):
        raise ValueError(f"a MIG uuid starts with `MIG-` (got {value!r})")
    if not _MIG_UUID_RE.match(value):
        raise ValueError(f"a MIG uuid looks like MIG-{_SHAPE} (got {value!r})")
    return value


def _render_node(value: str) -> str:
    if not re.fullmatch(r"/dev/dri/renderD\d+", value):
        raise ValueError(f"a render node looks like /dev/dri/renderD128 (got {value!r})")
    return value


def _profile(value: str) -> str:
    if not _PROFILE_RE.match(value):
        raise ValueError(f"a MIG profile looks like 3g.20gb or 1g.10gb+me (got {value!r})")
    return value


def _container_id(value: str) -> str:
    if not _CONTAINER_ID_RE.match(value):
        raise ValueError(f"a container id is 64 lower-case hex digits (got {value!r})")
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


class _Model(BaseModel):
    # Strict: YAML already types scalars, so `index: "0"` is a mistake worth reporting.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _MigFixture(_Model):
    uuid: Annotated[str, AfterValidator(_mig_uuid)]
    profile: Annotated[str, AfterValidator(_profile)]
    compute_slices: PositiveInt
    memory_mib: PositiveInt
    memory_used_mib: NonNegativeInt = 0
    gi_id: NonNegativeInt
    ci_id: NonNegativeInt
    placement_start: NonNegativeInt


class _GpuFixture(_Model):
    uuid: Annotated[str, AfterValidator(_gpu_uuid)]
    index: NonNegativeInt
    name: Annotated[str, AfterValidator(_non_empty)]
    pci_bus_id: Annotated[str, AfterValidator(_non_empty)]
    architecture: Architecture | None = None
    memory_total_mib: NonNegativeInt
    memory_used_mib: NonNegativeInt = 0
    mig: bool = False
    mig_pending: bool | None = None
    total_compute_slices: PositiveInt | None = None
    healthy: bool = True
    util_pct: Annotated[int, Field(ge=0, le=100)] | None = None
    migs: list[_MigFixture] = []
    vendor: Literal["nvidia", "amd"] = "nvidia"
    # AMD: the GPU's render node, which a container using it is given with /dev/kfd.
    render_node: Annotated[str, AfterValidator(_render_node)] | None = None


class _ProcessFixture(_Model):
    pid: PositiveInt
    device_uuid: str
    used_mib: NonNegativeInt | None = None
    uid: NonNegativeInt | None = None
    container_id: Annotated[str, AfterValidator(_container_id)] | None = None
    name: str = ""


class _InventoryFixture(_Model):
    host: Annotated[str, AfterValidator(_non_empty)]
    taken_at: Annotated[AwareDatetime, Field(strict=False)]  # YAML timestamp or ISO string
    driver: str | None = None
    gpus: list[_GpuFixture]
    processes: list[_ProcessFixture] = []


_KNOWN_KEYS = sorted(
    {
        key
        for model in (_MigFixture, _GpuFixture, _ProcessFixture, _InventoryFixture)
        for key in model.model_fields
    }
)


@dataclass(frozen=True)
class _Problem:
    path: YamlPath
    message: str
    hint: str | None = None
    key: bool = False  # point at the key rather than its value


def _dotted(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problem_from_pydantic(error: ErrorDetails, doc: YamlDoc) -> _Problem:
    loc = tuple(error["loc"])
    kind, msg = error["type"], error["msg"]
    if kind == "missing":
        return _Problem(loc[:-1], f"missing required key `{loc[-1]}`")
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _KNOWN_KEYS, n=1)
        hint = f"did you mean `{close[0]}`?" if close else None
        return _Problem(loc, f"unknown key `{loc[-1]}`", hint, key=True)
    path = _known_prefix(loc, doc)
    hint = None
    if kind == "string_type" and isinstance(error.get("input"), int | float):
        hint = "YAML read this as a number; quote it"  # e.g. a PCI bus id read as sexagesimal
    return _Problem(path, msg.removeprefix("Value error, "), hint)


def _pydantic_problems(exc: ValidationError, doc: YamlDoc) -> list[_Problem]:
    errors = exc.errors(include_url=False)
    # A misspelt key is also a missing one; the unknown key (with its hint) is the real news.
    misspelt = {tuple(e["loc"][:-1]) for e in errors if e["type"] == "extra_forbidden"}
    kept = [e for e in errors if e["type"] != "missing" or tuple(e["loc"][:-1]) not in misspelt]
    return [_problem_from_pydantic(e, doc) for e in kept]


def _known_prefix(loc: tuple[str | int, ...], doc: YamlDoc) -> YamlPath:
    # pydantic appends union/validator tags (e.g. 'function-after[...]') that name no YAML node.
    for end in range(len(loc), -1, -1):
        if loc[:end] in doc.values:
            return loc[:end]
    return ()


def _unique(seen: dict[Any, YamlPath], value: Any, path: YamlPath, what: str) -> Iterator[_Problem]:
    if value in seen:
        yield _Problem(path, f"duplicate {what} {value!r} (also at {_dotted(seen[value])})")
    else:
        seen[value] = path


def _mig_problems(gpu: _GpuFixture, at: YamlPath, uuids: dict[Any, YamlPath]) -> Iterator[_Problem]:
    total = gpu.total_compute_slices or DEFAULT_COMPUTE_SLICES
    used = 0
    ids: dict[Any, YamlPath] = {}
    start_of_gi: dict[int, int] = {}
    gi_at_start: dict[int, int] = {}
    for j, mig in enumerate(gpu.migs):
        here = (*at, "migs", j)
        yield from _unique(uuids, mig.uuid, (*here, "uuid"), "uuid")
        yield from _unique(ids, (mig.gi_id, mig.ci_id), (*here, "ci_id"), "(gi_id, ci_id)")
        used += mig.compute_slices
        if used > total:
            yield _Problem(
                (*here, "compute_slices"),
                f"MIG compute slices add up to {used}, over this GPU's {total}",
                "a GPU has total_compute_slices (7 on A100/H100) to share among its instances",
            )
        if mig.memory_mib > gpu.memory_total_mib:
            yield _Problem((*here, "memory_mib"), "more memory than the whole GPU has")
        # Compute instances of one GPU instance share its placement; different ones cannot.
        if start_of_gi.setdefault(mig.gi_id, mig.placement_start) != mig.placement_start:
            yield _Problem(
                (*here, "placement_start"), f"GPU instance {mig.gi_id} has two placements"
            )
        if gi_at_start.setdefault(mig.placement_start, mig.gi_id) != mig.gi_id:
            yield _Problem(
                (*here, "placement_start"),
                f"placement {mig.placement_start} is already taken by GPU instance "
                f"{gi_at_start[mig.placement_start]}",
            )


def _problems(fx: _InventoryFixture) -> Iterator[_Problem]:
    uuids: dict[Any, YamlPath] = {}
    indexes: dict[Any, YamlPath] = {}
    for i, gpu in enumerate(fx.gpus):
        at: YamlPath = ("gpus", i)
        yield from _unique(uuids, gpu.uuid, (*at, "uuid"), "uuid")
        yield from _unique(indexes, gpu.index, (*at, "index"), "GPU index")
        if gpu.memory_used_mib > gpu.memory_total_mib:
            yield _Problem((*at, "memory_used_mib"), "more memory used than the GPU has")
        if gpu.migs and not gpu.mig:
            yield _Problem(
                (*at, "migs"),
                f"GPU {gpu.index} has MIG disabled but lists MIG instances",
                "set `mig: true` on it, or remove its migs",
                key=True,
            )
        if gpu.vendor == "amd" and gpu.render_node is None:
            yield _Problem(
                (*at, "vendor"),
                f"AMD GPU {gpu.index} names no render_node",
                "add render_node: /dev/dri/renderD<N> (see /sys/class/drm/renderD*/device)",
            )
        if gpu.vendor == "amd" and gpu.mig:
            yield _Problem((*at, "mig"), "MIG is NVIDIA's; an AMD GPU has mig: false")
        yield from _mig_problems(gpu, at, uuids)
    pairs: dict[Any, YamlPath] = {}
    for k, proc in enumerate(fx.processes):
        at = ("processes", k)
        if proc.device_uuid not in uuids:
            yield _Problem(
                (*at, "device_uuid"), f"{proc.device_uuid!r} is no GPU or MIG device listed here"
            )
        yield from _unique(pairs, (proc.pid, proc.device_uuid), (*at, "pid"), "process")


def _raise_first(problems: Iterable[_Problem], doc: YamlDoc, file: str) -> None:
    ranked = sorted(problems, key=lambda p: doc.mark_of(p.path, key=p.key))
    if not ranked:
        return
    first = ranked[0]
    mark = doc.mark_of(first.path, key=first.key)
    where = f"{_dotted(first.path)}: " if first.path else ""
    raise InventoryError(f"{file}:{mark.line}:{mark.col}: {where}{first.message}", hint=first.hint)


def _single_document(text: str, file: str) -> YamlDoc:
    try:
        docs = list(load_documents(text))
    except YamlError as exc:
        mark = exc.mark or Mark(1, 1)
        raise InventoryError(
            f"{file}:{mark.line}:{mark.col}: {exc.message}", hint=exc.hint
        ) from None
    if len(docs) != 1:
        mark = docs[1].start if docs else Mark(1, 1)
        raise InventoryError(
            f"{file}:{mark.line}:{mark.col}: a GPU fixture holds exactly one YAML document",
            hint="see examples/gpus/ for the format",
        )
    return docs[0]


def parse_inventory(text: str, file: str) -> GpuInventory:
    """The inventory a fixture text describes; `file` names it in errors and in `source`."""
    doc = _single_document(text, file)
    try:
        fixture = _InventoryFixture.model_validate(doc.value)
    except ValidationError as exc:
        _raise_first(_pydantic_problems(exc, doc), doc, file)
        raise  # unreachable: pydantic reports at least one error
    _raise_first(_problems(fixture), doc, file)
    return GpuInventory.from_dict({**fixture.model_dump(), "source": f"fixture:{file}"})


def load_inventory_file(path: Path) -> GpuInventory:
    """Read and check a fixture file; any problem is an `InventoryError` naming `file:line:col`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InventoryError(f"{path}: cannot read the GPU fixture: {reason}") from None
    return parse_inventory(text, str(path))


_HEADER = (
    "# GPU inventory fixture for ds01ctl: what NVML would report (MiB, UUIDs, MIG instances).\n"
    "# Load it with the Site's gpus.source: fixture; `source` is implied by the file's path.\n"
)


def inventory_yaml(inv: GpuInventory) -> str:
    """The fixture text of `inv` (its `source` is left out: a file's source is its path)."""
    data = inv.to_dict()
    del data["source"]
    body = yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=False, width=100)
    return _HEADER + body


def dump_inventory(inv: GpuInventory, path: Path) -> None:
    """Write `inv` as a fixture file that `load_inventory_file` reads back unchanged."""
    write_atomically(path, inventory_yaml(inv))
