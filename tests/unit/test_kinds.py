"""The kind registry: each layer's line agrees with `KINDS`, and kinds not planned yet are
warned about from it (validated, reported, never acted on)."""

from __future__ import annotations

import typing

from ds01ctl.model.imagebuild import ImageBuildSpec
from ds01ctl.model.kinds import (
    KINDS,
    PAYLOADS,
    AnyPayload,
    Kind,
    Payload,
    container_kind,
    not_planned_yet,
)
from ds01ctl.model.spec import ContainerSpec
from ds01ctl.plan.diff import FIELD_TABLES
from ds01ctl.plan.fields import ENDPOINT_FIELDS, FIELDS
from ds01ctl.resolve.desired import MANIFESTS, RESOLVERS, resolve_workspaces
from ds01ctl.resolve.endpoints import resolve_endpoints
from ds01ctl.resolve.imagebuilds import resolve_images


def test_kinds_every_kind_has_a_manifest_and_is_spelled_as_its_manifest_kind() -> None:
    assert set(MANIFESTS) == set(Kind) == set(KINDS)
    for kind, manifest in MANIFESTS.items():
        spelled = typing.get_args(manifest.model_fields["kind"].annotation)
        assert spelled == (kind.value.capitalize(),)


def test_kinds_planned_ones_have_a_resolver_and_container_kinds_a_field_table() -> None:
    planned = {k for k, info in KINDS.items() if info.planned}
    assert planned == set(RESOLVERS) == {Kind.WORKSPACE, Kind.IMAGE, Kind.ENDPOINT}
    containers = {k for k, info in KINDS.items() if info.payload is Payload.CONTAINER}
    assert containers == set(FIELD_TABLES) == {Kind.WORKSPACE, Kind.ENDPOINT}
    assert RESOLVERS[Kind.WORKSPACE] is resolve_workspaces
    assert RESOLVERS[Kind.ENDPOINT] is resolve_endpoints
    assert FIELD_TABLES[Kind.WORKSPACE] is FIELDS
    # An Image is planned as a build, and nothing of it runs: no field table.
    assert KINDS[Kind.IMAGE].payload is Payload.IMAGE_BUILD
    assert RESOLVERS[Kind.IMAGE] is resolve_images
    assert FIELD_TABLES[Kind.ENDPOINT] is ENDPOINT_FIELDS


def test_kinds_payload_union_has_one_record_per_tag() -> None:
    assert set(PAYLOADS) == set(Payload)
    members = set(typing.get_args(AnyPayload)) or {AnyPayload}  # a union of one is its member
    assert set(PAYLOADS.values()) == members == {ContainerSpec, ImageBuildSpec}
    planned = {info.payload for info in KINDS.values() if info.planned}
    assert planned <= set(PAYLOADS)


def test_kinds_container_kind_of_a_label() -> None:
    assert container_kind("workspace") is Kind.WORKSPACE
    assert container_kind("endpoint") is Kind.ENDPOINT
    assert container_kind("image") is None  # planned as builds: no container has that kind
    assert container_kind("teleport") is None  # unknown


def test_kinds_not_planned_yet_warning() -> None:
    assert not_planned_yet("endpoint/alice/chat") == (
        "endpoint/alice/chat: not supported yet by this version; it is not planned"
    )
