"""The kinds of declared objects, and what each layer knows of each: one registry line per layer.

`Kind` names a kind everywhere (manifests, container labels, plan targets). `KINDS` says
what this version does with it: the payload its steps carry, or None while it is not planned
yet (its manifests are validated and reported, never acted on). A payload is a tagged union:
`AnyPayload` is the union of the records steps carry, `Payload` their tags, `PAYLOADS` the
record of each tag. Each layer keeps its own line per kind, keyed by `Kind`: which manifests
it reads (`resolve/desired.py: MANIFESTS`), how it resolves them (`resolve/desired.py:
RESOLVERS`), which field table compares it with what runs (`plan/diff.py: FIELD_TABLES`).
Adding a kind is its own modules plus those lines; `tests/unit/test_kinds.py` checks that the
lines agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TypeAlias

from ds01ctl.model.imagebuild import ImageBuildSpec
from ds01ctl.model.spec import ContainerSpec


class Kind(StrEnum):
    WORKSPACE = "workspace"
    IMAGE = "image"
    ENDPOINT = "endpoint"


class Payload(StrEnum):
    """The tag of what a kind's steps carry: the union's members as kinds are planned."""

    CONTAINER = "container"  # a `ContainerSpec` (model/spec.py)
    IMAGE_BUILD = "image_build"  # an `ImageBuildSpec` (model/imagebuild.py)


# What an action's steps carry: one member per `Payload`.
AnyPayload: TypeAlias = ContainerSpec | ImageBuildSpec

PAYLOADS: Mapping[Payload, type[AnyPayload]] = MappingProxyType(
    {Payload.CONTAINER: ContainerSpec, Payload.IMAGE_BUILD: ImageBuildSpec}
)


def payload_tag(payload: AnyPayload) -> Payload:
    """The tag of `payload`, as the plan document writes it beside the record."""
    return next(tag for tag, record in PAYLOADS.items() if isinstance(payload, record))


@dataclass(frozen=True)
class KindInfo:
    kind: Kind
    payload: Payload | None  # None: not planned yet

    @property
    def planned(self) -> bool:
        return self.payload is not None


KINDS: Mapping[Kind, KindInfo] = MappingProxyType(
    {
        Kind.WORKSPACE: KindInfo(Kind.WORKSPACE, Payload.CONTAINER),
        Kind.IMAGE: KindInfo(Kind.IMAGE, Payload.IMAGE_BUILD),
        Kind.ENDPOINT: KindInfo(Kind.ENDPOINT, Payload.CONTAINER),
    }
)


def container_kind(text: str) -> Kind | None:
    """The kind a container's `ds01.kind` label names, if this version plans that kind as
    containers; else None (unknown, not planned yet, or a kind that runs nothing: Image)."""
    try:
        kind = Kind(text)
    except ValueError:
        return None
    return kind if KINDS[kind].payload is Payload.CONTAINER else None


def not_planned_yet(ref: str) -> str:
    """The warning for a declared object (`ref`) of a kind this version does not plan."""
    return f"{ref}: not supported yet by this version; it is not planned"
