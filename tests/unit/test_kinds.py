"""The kind registry: each layer's line agrees with `KINDS`, and kinds not planned yet are
warned about from it (validated, reported, never acted on)."""

from __future__ import annotations

import typing

from ds01ctl.model.kinds import (
    KINDS,
    PAYLOADS,
    AnyPayload,
    Kind,
    Payload,
    not_planned_yet,
    planned_kind,
)
from ds01ctl.model.spec import ContainerSpec
from ds01ctl.plan.diff import FIELD_TABLES
from ds01ctl.plan.fields import ENDPOINT_FIELDS, FIELDS
from ds01ctl.resolve.desired import MANIFESTS, RESOLVERS, resolve_workspaces
from ds01ctl.resolve.endpoints import resolve_endpoints


def test_kinds_every_kind_has_a_manifest_and_is_spelled_as_its_manifest_kind() -> None:
    assert set(MANIFESTS) == set(Kind) == set(KINDS)
    for kind, manifest in MANIFESTS.items():
        spelled = typing.get_args(manifest.model_fields["kind"].annotation)
        assert spelled == (kind.value.capitalize(),)


def test_kinds_planned_ones_have_a_resolver_and_a_field_table_and_only_they_do() -> None:
    planned = {k for k, info in KINDS.items() if info.planned}
    assert planned == set(RESOLVERS) == set(FIELD_TABLES) == {Kind.WORKSPACE, Kind.ENDPOINT}
    assert KINDS[Kind.WORKSPACE].payload is Payload.CONTAINER
    assert KINDS[Kind.ENDPOINT].payload is Payload.CONTAINER
    assert RESOLVERS[Kind.WORKSPACE] is resolve_workspaces
    assert RESOLVERS[Kind.ENDPOINT] is resolve_endpoints
    assert FIELD_TABLES[Kind.WORKSPACE] is FIELDS
    assert FIELD_TABLES[Kind.ENDPOINT] is ENDPOINT_FIELDS


def test_kinds_payload_union_has_one_record_per_tag() -> None:
    assert set(PAYLOADS) == set(Payload)
    members = set(typing.get_args(AnyPayload)) or {AnyPayload}  # a union of one is its member
    assert set(PAYLOADS.values()) == members == {ContainerSpec}
    planned = {info.payload for info in KINDS.values() if info.planned}
    assert planned <= set(PAYLOADS)


def test_kinds_planned_kind_of_a_label() -> None:
    assert planned_kind("workspace") is Kind.WORKSPACE
    assert planned_kind("endpoint") is Kind.ENDPOINT
    assert planned_kind("image") is None  # declared, not planned yet
    assert planned_kind("teleport") is None  # unknown


def test_kinds_not_planned_yet_warning() -> None:
    assert not_planned_yet("endpoint/alice/chat") == (
        "endpoint/alice/chat: not supported yet by this version; it is not planned"
    )
