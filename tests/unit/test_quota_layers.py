"""Quota layering: built-in ← defaults ← group ← user override ← unexpired exemptions.

The first test is DS01's bug made impossible: with the policy imported from DS01's own files, a
researcher with a one-line override keeps every other limit of the researcher group. The table
tests pin the layering rules themselves, one row per rule.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from ds01ctl.importers.ds01 import Ds01Files, import_ds01
from ds01ctl.manifests.quota import QuotaPolicySpec
from ds01ctl.resolve.quota import LIMIT_KEYS, effective_limits

DATA = Path(__file__).resolve().parents[1] / "data" / "ds01"
TODAY = dt.date(2026, 11, 23)
CPU = 10**9  # nano-CPUs per core
GIB = 2**30
HOUR = 3600


@pytest.fixture(scope="module")
def imported() -> QuotaPolicySpec:
    files = Ds01Files(
        DATA / "resource-limits.yaml",
        members_dir=DATA / "groups",
        user_overrides=DATA / "user-overrides.yaml",
    )
    return import_ds01(files, today=TODAY).policy.spec


def test_one_line_override_keeps_the_researcher_group(imported: QuotaPolicySpec) -> None:
    # user-overrides.yaml gives the researcher h.baker one line: `idle_timeout_h: null`.
    # DS01's parser merged that onto `defaults`, not onto the researcher group, so h.baker
    # dropped to 1 GPU / 1 per container / 32 CPUs / 32g (and a cgroup parent that does not
    # exist). Here the override is one more layer on the group: only idle_timeout changes.
    baker = effective_limits(imported, "h.baker", TODAY)
    researcher = effective_limits(imported, "alice", TODAY)
    assert baker.group == "researcher"
    assert baker["idle_timeout"] is None
    assert baker.sources["idle_timeout"] == "user h.baker"
    for key in LIMIT_KEYS:
        if key != "idle_timeout":
            assert baker[key] == researcher[key], key
            assert baker.sources[key] == researcher.sources[key], key
    assert (baker["gpu_budget"], baker["max_gpus_per_container"]) == (4, 3)
    assert (baker["cpus"], baker["memory"]) == (48 * CPU, 64 * GIB)


def test_ds01_layering_would_have_lost_the_group(imported: QuotaPolicySpec) -> None:
    # DS01's result, rebuilt: the same override on the defaults alone. This is what the
    # import must never produce.
    ds01_way = QuotaPolicySpec(defaults=imported.defaults, users=imported.users)
    wrong = effective_limits(ds01_way, "h.baker", TODAY)
    assert (wrong["gpu_budget"], wrong["max_gpus_per_container"]) == (1, 1)
    assert (wrong["cpus"], wrong["memory"]) == (32 * CPU, 32 * GIB)
    right = effective_limits(imported, "h.baker", TODAY)
    assert (right["gpu_budget"], right["cpus"]) != (wrong["gpu_budget"], wrong["cpus"])


SPEC = QuotaPolicySpec.model_validate(
    {
        "default_group": "students",
        "defaults": {"gpu_budget": 1, "cpus": 8, "memory": "16g", "idle_timeout": "30m"},
        "groups": {
            "students": {"members": ["carol"], "limits": {"gpu_budget": 2}},
            "staff": {
                "members": ["alice", "bob", "erin"],
                "limits": {"cpus": 32, "memory": "64g", "idle_timeout": "2h", "max_runtime": "48h"},
            },
        },
        "users": {"bob": {"memory": "128g"}, "erin": {"cpus": None}},
        "exemptions": [
            {
                "user": "bob",
                "limits": {"idle_timeout": None},
                "expires": "2027-01-31",
                "reason": "week-long training",
            },
            {
                "user": "alice",
                "limits": {"max_runtime": "7d"},
                "expires": "2026-10-31",
                "reason": "a deadline that passed",
            },
            {
                "user": "alice",
                "limits": {"max_workspaces": 9},
                "expires": "2026-11-23",
                "reason": "workshop today",
            },
            {"user": "erin", "limits": {"pids": 100}, "reason": "no end date"},
        ],
    }
)

LAYERING = [
    # (rule, login, key, value, source)
    ("key set nowhere: built-in", "carol", "max_runtime", 24 * HOUR, "built-in"),
    ("group leaves it out: defaults", "carol", "cpus", 8 * CPU, "defaults"),
    ("group sets it", "carol", "gpu_budget", 2, "group students"),
    ("no group: default_group", "dan", "gpu_budget", 2, "group students"),
    ("group overrides defaults", "alice", "cpus", 32 * CPU, "group staff"),
    ("user sets it: user", "bob", "memory", 128 * GIB, "user bob"),
    ("user leaves it out: group", "bob", "cpus", 32 * CPU, "group staff"),
    ("null overrides the group: unlimited", "erin", "cpus", None, "user erin"),
    ("exemption over the group", "bob", "idle_timeout", None, "exemption until 2027-01-31"),
    ("expired exemption ignored", "alice", "max_runtime", 48 * HOUR, "group staff"),
    (
        "exemption on its last day applies",
        "alice",
        "max_workspaces",
        9,
        "exemption until 2026-11-23",
    ),
    ("exemption with no end", "erin", "pids", 100, "exemption"),
]


@pytest.mark.parametrize(
    ("login", "key", "value", "source"),
    [row[1:] for row in LAYERING],
    ids=[row[0] for row in LAYERING],
)
def test_layering(login: str, key: str, value: Any, source: str) -> None:
    limits = effective_limits(SPEC, login, TODAY)
    assert (limits[key], limits.sources[key]) == (value, source)


def test_expired_exemption_is_reported() -> None:
    alice = effective_limits(SPEC, "alice", TODAY)
    assert alice.expired == ("exemption until 2026-10-31 (a deadline that passed)",)
    assert effective_limits(SPEC, "alice", dt.date(2026, 10, 31)).expired == ()
    assert effective_limits(SPEC, "bob", TODAY).expired == ()


def test_every_key_gets_a_value_and_a_source() -> None:
    for login in ("carol", "alice", "bob", "dan", "erin"):
        limits = effective_limits(SPEC, login, TODAY)
        assert set(limits.values) == set(LIMIT_KEYS) == set(limits.sources)


def test_no_policy_gives_the_built_in_limits() -> None:
    limits = effective_limits(None, "anyone", TODAY)
    assert limits.group is None
    assert set(limits.sources.values()) == {"built-in"}


def test_imported_exemption_layers_on_the_group() -> None:
    files = Ds01Files(
        DATA / "resource-limits.yaml",
        members_dir=DATA / "groups",
        exemptions=DATA / "lifecycle-exemptions.yaml",
    )
    spec = import_ds01(files).policy.spec
    ines = effective_limits(spec, "ines", TODAY)
    assert ines["max_runtime"] is None
    assert ines["idle_timeout"] == HOUR  # the researcher group's, untouched
    after = effective_limits(spec, "ines", dt.date(2027, 4, 1))
    assert after["max_runtime"] == 48 * HOUR
    assert after.expired == (
        "exemption until 2027-03-31 (thesis experiments need week-long training runs)",
    )
