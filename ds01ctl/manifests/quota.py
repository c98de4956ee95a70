"""The `QuotaPolicy` kind: groups, per-user limits, GPU budgets and lifecycle policy.

Effective limits layer, lowest first: built-in defaults ← `defaults` ← the user's group ← the
user's override ← unexpired exemptions. A key left out of a layer inherits; `null` where allowed
means unlimited. (DS01's own parser layers user overrides on the defaults, skipping the group.)
"""

import datetime as dt
import re
from fractions import Fraction
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

from ds01ctl.manifests.common import Login, Manifest, Model, Name
from ds01ctl.units import SPACE, ByteSize, NanoCpus, Seconds

_UNITS_RE = re.compile(r"^\s*(\d+(\.\d+)?|\d+/\d+)\s*$", re.ASCII)
_UNITS_PATTERN = f"^{SPACE}([0-9]+(\\.[0-9]+)?|[0-9]+/0*[1-9][0-9]*){SPACE}$"


def parse_units(value: Any) -> Fraction:
    """GPU units: 1 per whole GPU; a MIG slice weighs its compute slices (`1/7`, `0.5`, `2`)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("GPU units are a number such as 2, 0.5 or 3/7")
    if isinstance(value, str) and not _UNITS_RE.match(value):
        raise ValueError(f"{value!r} is not a number of GPU units such as 2, 0.5 or 3/7")
    try:
        units = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{value!r} is not a number of GPU units such as 2, 0.5 or 3/7") from None
    if units < 0:
        raise ValueError("GPU units cannot be negative")
    return units


def format_units(units: Fraction) -> str:
    return str(units)


GpuUnits = Annotated[
    Fraction,
    BeforeValidator(parse_units),
    PlainSerializer(format_units, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": _UNITS_PATTERN},
            ],
            "description": "GPU units: 1 per whole GPU; a MIG slice is slices/7, e.g. 3/7",
        }
    ),
]


class Limits(Model):
    """One layer of limits. Keys left out inherit from the layer below; null means unlimited."""

    gpu_budget: GpuUnits | None = Field(
        None, description="GPU units a user may hold at once, across all their containers."
    )
    max_gpus_per_container: int | None = Field(
        None,
        ge=0,
        description="GPU devices (whole GPUs or MIG instances) one container may ask for.",
    )
    allow_whole_gpus: bool | None = Field(
        None, description="Whether whole (non-MIG) GPUs may be requested."
    )
    cpus: NanoCpus | None = Field(None, description="CPUs per container (decimal cores).")
    memory: ByteSize | None = Field(None, description="Memory per container.")
    memory_swap: ByteSize | None = Field(None, description="Memory plus swap per container.")
    shm_size: ByteSize | None = Field(None, description="/dev/shm size per container.")
    pids: int | None = Field(None, ge=1, description="Process limit per container.")
    max_workspaces: int | None = Field(None, ge=0, description="Workspaces a user may have.")
    max_endpoints: int | None = Field(None, ge=0, description="Endpoints a user may have.")
    idle_timeout: Seconds | None = Field(
        None, description="Stop a container idle this long (null: never)."
    )
    max_runtime: Seconds | None = Field(
        None, description="Stop a container running this long (null: never)."
    )
    gpu_hold_after_stop: Seconds | None = Field(
        None, description="A stopped container keeps its GPUs this long."
    )
    container_hold_after_stop: Seconds | None = Field(
        None,
        description="A stopped container is kept this long before it is snapshotted and removed.",
    )
    aggregate_cpus: NanoCpus | None = Field(
        None, description="CPUs across all of a user's containers."
    )
    aggregate_memory: ByteSize | None = Field(
        None, description="Memory across all of a user's containers."
    )


class Group(Model):
    """A group of users sharing one set of limits."""

    members: list[Login] = Field(
        default_factory=list,
        description="Logins in this group; a user belongs to at most one group.",
    )
    limits: Limits = Field(Limits(), description="Limits layered on the policy's defaults.")


class Exemption(Model):
    """A time-boxed exception for one user."""

    user: Login = Field(description="The login it applies to.")
    limits: Limits = Field(
        Limits(), description="Limits layered on top of everything else while it lasts."
    )
    expires: dt.date | None = Field(
        None,
        strict=False,  # YAML reads 2026-06-30 as a date, and "2026-06-30" (quoted) as text
        description="Last day it applies (YYYY-MM-DD); null means it does not expire.",
    )
    reason: str = Field(min_length=1, description="Why: shown in plans and `ds01ctl limits`.")


class QuotaPolicySpec(Model):
    """Groups, limits and exemptions."""

    default_group: Name | None = Field(
        None, description="Group of owners listed in no group; with none, such owners are an error."
    )
    defaults: Limits = Field(Limits(), description="Limits for everyone, under the groups.")
    groups: dict[Name, Group] = Field(default_factory=dict, description="Groups by name.")
    users: dict[Login, Limits] = Field(
        default_factory=dict, description="Per-user overrides, layered on the user's group."
    )
    exemptions: list[Exemption] = Field(default_factory=list, description="Time-boxed exceptions.")


class QuotaPolicy(Manifest):
    """At most one per config repo."""

    kind: Literal["QuotaPolicy"] = Field(description="QuotaPolicy.")
    spec: QuotaPolicySpec = Field(QuotaPolicySpec(), description="Groups, limits and exemptions.")

    OWNED: ClassVar[bool] = False
