"""The container field table, walked row by row: every row is read from the observed
record, compared, and carried by a driver binding that the Docker driver spells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ds01ctl.drivers.docker import containers as driver
from ds01ctl.model.spec import ContainerSpec
from ds01ctl.plan.fields import (
    ENDPOINT_FIELDS,
    FIELDS,
    LIMIT_FIELDS,
    Binding,
    ContainerField,
    OnChange,
)
from tests.observed import observed_container, observed_entry
from tests.unit.test_diff import _spec
from tests.unit.test_resolve import _repo, _workspace


def test_fields_every_binding_is_one_row_and_spelled_once_by_the_docker_driver() -> None:
    bound = [row.binding for row in ENDPOINT_FIELDS if row.binding is not None]
    assert ENDPOINT_FIELDS[: len(FIELDS)] == FIELDS, "an endpoint's table extends a workspace's"
    assert sorted(bound) == sorted(Binding), "each binding belongs to exactly one row"
    for binding in Binding:
        spelled = (binding in driver.CREATE) + (binding in driver.CREATE_HOST)
        assert spelled == 1, f"{binding}: create spelling missing or doubled"
    assert set(driver.CREATE) | set(driver.CREATE_HOST) == set(Binding)


def test_fields_update_rows_are_exactly_what_the_driver_can_update() -> None:
    updatable = {row.binding for row in FIELDS if row.on_change is OnChange.UPDATE}
    assert updatable == set(driver.UPDATE)


def test_fields_limit_rows_are_the_specs_recorded_limits(tmp_path: Path) -> None:
    repo = _repo(tmp_path, _workspace("alice", "w"))
    assert set(LIMIT_FIELDS) == set(_spec(tmp_path, repo).limits())


@pytest.fixture
def spec(tmp_path: Path) -> ContainerSpec:
    return _spec(tmp_path, _repo(tmp_path, _workspace("alice", "w", mig="1g.10gb")))


@pytest.mark.parametrize("row", FIELDS, ids=lambda r: r.name)
def test_fields_row_reads_what_the_driver_made(row: ContainerField, spec: ContainerSpec) -> None:
    made = observed_container(observed_entry(spec, id="c1"), "unit")
    assert row.equal(row.live(made), row.desired(spec)), row.name


# Row → (the observed entry's key, a value the driver would never have made for the spec).
_CHANGES: dict[str, tuple[str, Any]] = {
    "container_name": ("name", "other._.1000"),
    "image_tag": ("image", "elsewhere/x:other._.1000"),
    "user": ("user", "0:0"),
    "command": ("cmd", ["sleep", "1"]),
    "tty": ("tty", False),
    "working_dir": ("working_dir", "/tmp"),
    "env": ("env", {"EXTRA": "1"}),
    "binds": ("binds", []),
    "network": ("network", "none"),
    "shm_size": ("shm_size", 1),
    "ulimits": ("ulimits", {"nofile": 7}),
    "stop_signal": ("stop_signal", "SIGTERM"),
    "stop_grace": ("stop_timeout", 99),
    "gpus": ("gpus", ["GPU-elsewhere"]),
    "cap_drop": ("cap_drop", []),
    "cap_add": ("cap_add", ["KILL"]),
    "security_opt": ("security_opt", []),
    "nano_cpus": ("nano_cpus", 7),
    "memory": ("memory", 7),
    "memory_swap": ("memory_swap", 7),
    "pids": ("pids", 7),
    "restart_policy": ("restart_policy", "always"),
    "log": ("log", {"driver": "json-file", "options": {"max-size": "1g", "max-file": "3"}}),
}


@pytest.mark.parametrize("row", FIELDS, ids=lambda r: r.name)
def test_fields_row_sees_a_change_of_its_own_field(
    row: ContainerField, spec: ContainerSpec
) -> None:
    entry = observed_entry(spec, id="c1")
    if row.name in ("image", "labels"):  # read from the labels
        extra = {"ds01.image": "elsewhere/x:1"} if row.name == "image" else {"extra": "1"}
        entry["labels"] = {**entry["labels"], **extra}
    else:
        assert row.name in _CHANGES, f"add a changed value for row {row.name}"
        key, value = _CHANGES[row.name]
        entry[key] = value
    made = observed_container(entry, "unit")
    assert not row.equal(row.live(made), row.desired(spec)), row.name
