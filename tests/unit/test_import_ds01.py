"""`ds01ctl import ds01`: DS01's real resource-limits.yaml in, a QuotaPolicy out.

The golden files under tests/golden/import-ds01/ are the exact manifest and the effective limits
of one user per group; `DS01CTL_UPDATE_GOLDEN=1` rewrites them. Review every changed line
against the table in the DS01 reference (its §2.2): each value must be what a lab admin reading
DS01's file would expect. Refusals go through the CLI: one line, exit 1, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ds01ctl.errors import Ds01Error
from ds01ctl.importers.ds01 import Ds01Files, ImportResult, format_seconds, import_ds01
from ds01ctl.manifests.quota import QuotaPolicySpec
from ds01ctl.manifests.validate import validate_path
from ds01ctl.resolve.quota import LIMIT_KEYS, EffectiveLimits, effective_limits
from ds01ctl.units import format_cpus, format_size
from tests.conftest import SITE_YAML

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "ds01"
GOLDEN = ROOT / "tests" / "golden" / "import-ds01"
UPDATE = os.environ.get("DS01CTL_UPDATE_GOLDEN") == "1"
TODAY = dt.date(2026, 11, 23)  # after one test exemption expired, before the other
TRACEBACK = "Traceback (most recent call last)"
Cli = Callable[..., Any]  # the `cli` fixture of tests/conftest.py

FILES = Ds01Files(
    resource_limits=DATA / "resource-limits.yaml",
    members_dir=DATA / "groups",
    user_overrides=DATA / "user-overrides.yaml",
    exemptions=DATA / "lifecycle-exemptions.yaml",
)
# (who, login): one user per group, the default group, and the users with an override or an
# exemption in tests/data/ds01/.
PERSONAS = (
    ("student", "carol"),
    ("researcher", "alice"),
    ("faculty", "dave"),
    ("admin", "datasciencelab"),
    ("in no group, so in default_group", "eve"),
    ("researcher with the one-line override idle_timeout_h: null", "h.baker"),
    ("researcher exempt from max_runtime_h until 2027-03-31", "ines"),
    ("student whose exemption expired on 2026-06-30", "228755@uni.example"),
)
SIZES = {"memory", "memory_swap", "shm_size", "aggregate_memory"}
DURATIONS = {"idle_timeout", "max_runtime", "gpu_hold_after_stop", "container_hold_after_stop"}


@pytest.fixture(scope="module")
def imported() -> ImportResult:
    return import_ds01(FILES, today=TODAY)


@pytest.fixture(scope="module")
def policy(imported: ImportResult, tmp_path_factory: pytest.TempPathFactory) -> QuotaPolicySpec:
    """The emitted text, loaded back by our own validator next to a minimal Site."""
    repo = tmp_path_factory.mktemp("repo")
    (repo / "site.yaml").write_text(SITE_YAML, encoding="utf-8")
    (repo / "quota.yaml").write_text(imported.text, encoding="utf-8")
    validated = validate_path(repo, today=TODAY)
    assert validated.errors == [], [d.message for d in validated.errors]
    assert validated.policy is not None
    return validated.policy.spec


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden {name}: run with DS01CTL_UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8")


# --- the real file ---------------------------------------------------------------------------


def test_import_matches_golden_manifest(imported: ImportResult) -> None:
    check_golden("quota.yaml", imported.text)


def test_cli_writes_the_same_manifest_to_stdout(cli: Cli) -> None:
    result = cli(*import_args())
    assert result.code == 0, result.stderr
    assert result.stdout == (GOLDEN / "quota.yaml").read_text(encoding="utf-8")
    assert all(line.startswith("warning: ") for line in result.stderr.splitlines())


def test_emitted_manifest_passes_our_validation(policy: QuotaPolicySpec) -> None:
    assert set(policy.groups) == {"student", "researcher", "faculty", "admin"}
    assert policy.default_group == "student"


def test_header_names_the_files_by_basename_only(imported: ImportResult) -> None:
    header = [line for line in imported.text.splitlines() if line.startswith("#")]
    assert "resource-limits.yaml" in header[0]
    assert not any(str(ROOT) in line or "/" in line for line in header)


def render(title: str, limits: EffectiveLimits) -> str:
    lines = [f"{title}: {limits.login} (group {limits.group})"]
    for key in LIMIT_KEYS:
        lines.append(f"  {key:<26} {show(key, limits[key]):<10} {limits.sources[key]}")
    lines += [f"  ignored: {expired}" for expired in limits.expired]
    return "\n".join(lines)


def show(key: str, value: Any) -> str:
    if value is None:
        return "never" if key in DURATIONS else "unlimited"
    if key in SIZES:
        return format_size(value)
    if key in DURATIONS:
        return format_seconds(value)
    if key in {"cpus", "aggregate_cpus"}:
        return format_cpus(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def test_effective_limits_match_golden(policy: QuotaPolicySpec) -> None:
    blocks = [
        f"# Effective limits under the QuotaPolicy imported from tests/data/ds01/, on {TODAY}.\n"
        "# Each key: its value, then the layer that set it."
    ]
    for title, login in PERSONAS:
        blocks.append(render(title, effective_limits(policy, login, TODAY)))
    check_golden("effective.txt", "\n\n".join(blocks) + "\n")


# What a lab admin reads off DS01's table (reference §2.2), key by key.
EXPECTED: dict[str, dict[str, str]] = {
    "carol": {
        "gpu_budget": "2",
        "max_gpus_per_container": "2",
        "cpus": "32",
        "memory": "32g",
        "shm_size": "16g",
        "max_workspaces": "3",
        "idle_timeout": "30m",
        "max_runtime": "24h",
        "gpu_hold_after_stop": "15m",
        "aggregate_cpus": "96",
        "aggregate_memory": "96g",
    },
    "alice": {
        "gpu_budget": "4",
        "max_gpus_per_container": "3",
        "cpus": "48",
        "memory": "64g",
        "memory_swap": "64g",
        "shm_size": "32g",
        "max_workspaces": "5",
        "idle_timeout": "1h",
        "max_runtime": "48h",
        "aggregate_cpus": "240",
        "aggregate_memory": "320g",
    },
    "dave": {
        "gpu_budget": "4",
        "max_gpus_per_container": "4",
        "cpus": "64",
        "memory": "128g",
        "shm_size": "64g",
        "idle_timeout": "2h",
        "max_runtime": "72h",
        "aggregate_cpus": "320",
        "aggregate_memory": "640g",
    },
    "datasciencelab": {
        "gpu_budget": "unlimited",
        "max_gpus_per_container": "unlimited",
        "cpus": "64",
        "memory": "128g",
        "max_workspaces": "10",
        "idle_timeout": "1h",
        "max_runtime": "24h",
        "gpu_hold_after_stop": "1h",
        "aggregate_cpus": "unlimited",  # "No aggregate section: admin users have no aggregate cap"
        "aggregate_memory": "unlimited",
    },
}


@pytest.mark.parametrize("login", sorted(EXPECTED))
def test_effective_limits_are_what_the_ds01_table_says(policy: QuotaPolicySpec, login: str) -> None:
    limits = effective_limits(policy, login, TODAY)
    actual = {key: show(key, limits[key]) for key in EXPECTED[login]}
    assert actual == EXPECTED[login]


def test_user_in_no_group_gets_the_default_group(policy: QuotaPolicySpec) -> None:
    eve = effective_limits(policy, "eve", TODAY)
    carol = effective_limits(policy, "carol", TODAY)
    assert eve.group == "student"
    assert eve.values == carol.values


def test_override_keeps_the_researcher_group_limits(policy: QuotaPolicySpec) -> None:
    baker = effective_limits(policy, "h.baker", TODAY)
    alice = effective_limits(policy, "alice", TODAY)
    assert baker["idle_timeout"] is None
    assert baker.sources["idle_timeout"] == "user h.baker"
    assert {k: v for k, v in baker.values.items() if k != "idle_timeout"} == {
        k: v for k, v in alice.values.items() if k != "idle_timeout"
    }


def test_exemptions_are_imported_with_their_dates(policy: QuotaPolicySpec) -> None:
    ines = effective_limits(policy, "ines", TODAY)
    assert ines["max_runtime"] is None
    assert ines.sources["max_runtime"] == "exemption until 2027-03-31"
    student = effective_limits(policy, "228755@uni.example", TODAY)
    assert student["idle_timeout"] == 1800
    assert len(student.expired) == 1


# --- warnings --------------------------------------------------------------------------------

# Every key of the real file that DS01 declares but never reads, or that ds01ctl does not model.
REAL_FILE_DROPS = (
    "defaults.max_tasks: declared but never read",
    "groups.researcher.max_tasks: declared but never read",
    "groups.faculty.max_tasks: declared but never read",
    "groups.admin.max_tasks: declared but never read",
    "policies.keepalive_max_duration_h: declared but never read",
    "policies.gpu_hold_after_manual_stop_m: declared but never read",
    "monitoring (infrastructure_containers, infrastructure_label): declared but never read",
    "access_control (admin_users, admin_group, wrapper): declared but never read",
    "container_types.api.idle_timeout_h: declared but never read",
    "container_types.api.max_runtime_h: declared but never read",
    "gpu_allocation (empty): declared but never read",
    "enforcement (aggregate_limits, cgroup_driver): ds01ctl has no equivalent",
    "policies.high_demand_threshold: ds01ctl has no equivalent",
    "policies.grace_period_m: ds01ctl has no equivalent",
    "policies.sigterm_grace_s: ds01ctl has no equivalent",
    "container_types.devcontainer (idle_timeout_h, max_runtime_h, sigterm_grace_s): ds01ctl",
    "container_types.api (sigterm_grace_s): ds01ctl has no equivalent",
    "bare_metal_access (exempt_users, admin_group, default_grant_duration_h, state_dir): ds01",
    "groups.student.aggregate.memory_high: ds01ctl has no equivalent",
    "groups.student.aggregate.tasks_max: ds01ctl has no equivalent",
    "groups.student.policies (gpu_idle_threshold, cpu_idle_threshold, network_idle_threshold",
)


def test_real_file_reports_every_key_it_does_not_import(imported: ImportResult) -> None:
    for fragment in REAL_FILE_DROPS:
        assert any(fragment in line for line in imported.warnings), fragment
    drops = [line for line in imported.warnings if line.endswith("; not imported")]
    assert len(drops) == 37  # 36 keys or sections of the limits file, 1 members file
    assert all("\n" not in line for line in imported.warnings)


def test_real_file_warnings_point_at_the_key(imported: ImportResult) -> None:
    line = next(w for w in imported.warnings if "defaults.max_tasks" in w)
    assert line.startswith(f"{FILES.resource_limits}:72:3: defaults.max_tasks: ")


def test_real_file_reports_layering_change_and_expired_exemption(
    imported: ImportResult,
) -> None:
    assert any(
        "h.baker: now layered on group researcher, so the group's other 11 limit(s)" in line
        for line in imported.warnings
    )
    assert any(
        "228755@uni.example's exemption expired on 2026-06-30" in w for w in imported.warnings
    )
    assert any("archived.members: 1 login(s) of group archived" in w for w in imported.warnings)


def run_import(tmp_path: Path, text: str, **side: str) -> ImportResult:
    """Import `text` as resource-limits.yaml, with side files given as text by option name."""
    limits = tmp_path / "resource-limits.yaml"
    limits.write_text(text, encoding="utf-8")
    paths: dict[str, Path] = {}
    for option, content in side.items():
        if option == "members":
            paths["members_dir"] = tmp_path / "groups"
            paths["members_dir"].mkdir(exist_ok=True)
            for line in content.splitlines():
                group, _, logins = line.partition(":")
                (tmp_path / "groups" / f"{group}.members").write_text(
                    logins.replace(",", "\n"), encoding="utf-8"
                )
            continue
        paths[option] = tmp_path / f"{option}.yaml"
        paths[option].write_text(content, encoding="utf-8")
    return import_ds01(Ds01Files(limits, **paths), today=TODAY)


BASE = """\
defaults:
  max_gpu_equivalents: 1.0
  max_cpus: 32
default_group: student
groups:
  student:
    members: [carol]
  researcher:
    members: [alice]
    max_gpu_equivalents: 4.0
"""

WARNING_CASES: dict[str, tuple[str, dict[str, str], str]] = {
    # case: (resource-limits.yaml, side files, a fragment of the expected warning)
    "gpu_limit smaller wins": (
        BASE + "    aggregate: {gpu_limit: 2.0}\n",
        {},
        "groups.researcher.aggregate.gpu_limit: aggregate.gpu_limit 2 and max_gpu_equivalents 4"
        " differ; the smaller, 2, is the GPU budget",
    ),
    "legacy alias beside the new key": (
        BASE.replace("  max_cpus: 32\n", "  max_cpus: 32\n  max_mig_instances: 3\n"),
        {},
        "defaults.max_mig_instances: legacy alias of max_gpu_equivalents, which is set too; "
        "not imported",
    ),
    "unknown limit key": (
        BASE + "    favourite_colour: blue\n",
        {},
        "groups.researcher.favourite_colour: not a DS01 key ds01ctl knows; not imported",
    ),
    "unknown section": (
        BASE + "wizard: {greeting: hi}\n",
        {},
        "wizard (greeting): not a DS01 key ds01ctl knows; not imported",
    ),
    "never-read priority": (
        BASE + "    priority: 20\n",
        {},
        "groups.researcher.priority: declared but never read by DS01 for allocation",
    ),
    "ds01-jobs key": (
        BASE + "    max_concurrent_jobs: 2\n",
        {},
        "groups.researcher.max_concurrent_jobs: read by ds01-jobs only",
    ),
    "members file of an undefined group": (
        BASE,
        {"members": "archived:oldgrad,olderstaff"},
        "archived.members: 2 login(s) of group archived, which the limits file does not define",
    ),
    "inline override replaced by the file": (
        BASE + "user_overrides:\n  alice: {max_cpus: 8}\n",
        {"user_overrides": "alice: {max_cpus: 16}\n"},
        "user_overrides.alice: replaced by the entry in user_overrides.yaml",
    ),
    "override layered on the group": (
        BASE,
        {"user_overrides": "alice: {idle_timeout_h: null}\n"},
        "alice: now layered on group researcher, so the group's other 1 limit(s) still apply",
    ),
    "no default_group": (
        BASE.replace("default_group: student\n", ""),
        {},
        "default_group: not set; DS01 falls back to student, imported as default_group: student",
    ),
    "expired exemption": (
        BASE,
        {
            "exemptions": "exemptions:\n  - {username: carol, exempt_from: [idle_timeout_h],"
            " expires_on: 2026-01-31, reason: exams}\n"
        },
        "exemptions[0]: carol's exemption expired on 2026-01-31; ds01ctl will ignore it",
    ),
    "exemption without a reason": (
        BASE,
        {"exemptions": "exemptions:\n  - {username: carol, exempt_from: max_runtime_h}\n"},
        "exemptions[0]: no reason given; imported with reason",
    ),
    "unknown exemption field": (
        BASE,
        {
            "exemptions": "exemptions:\n  - {username: carol, exempt_from: [max_runtime_h],"
            " reason: x, granted_by: admin}\n"
        },
        "exemptions[0].granted_by: not a DS01 key ds01ctl knows; not imported",
    ),
}


@pytest.mark.parametrize("case", sorted(WARNING_CASES))
def test_warning(tmp_path: Path, case: str) -> None:
    text, side, fragment = WARNING_CASES[case]
    result = run_import(tmp_path, text, **side)
    assert any(fragment in line for line in result.warnings), result.warnings
    assert all("\n" not in line for line in result.warnings)


def test_side_files_beside_the_limits_file_are_pointed_out(tmp_path: Path) -> None:
    (tmp_path / "groups").mkdir()
    (tmp_path / "user-overrides.yaml").write_text("{}\n", encoding="utf-8")
    result = run_import(tmp_path, BASE)
    hints = [line for line in result.warnings if "lies beside it" in line]
    assert len(hints) == 2
    assert "pass --members-dir" in hints[0]
    assert "pass --user-overrides" in hints[1]


def test_smaller_gpu_limit_becomes_the_budget(tmp_path: Path) -> None:
    result = run_import(tmp_path, BASE + "    aggregate: {gpu_limit: 2.0}\n")
    alice = effective_limits(result.policy.spec, "alice", TODAY)
    assert alice["gpu_budget"] == 2
    assert "gpu_budget: 2  # smaller of max_gpu_equivalents 4 and aggregate.gpu_limit 2" in (
        result.text
    )


def test_derived_values_carry_a_comment(tmp_path: Path) -> None:
    text = BASE + (
        "    max_mig_per_container: 2\n"
        "    idle_timeout_h: 0.75\n"
        '    aggregate: {cpu_quota: "150%", memory_max: 10G}\n'
    )
    result = run_import(tmp_path, text)
    assert "max_gpus_per_container: 2  # from legacy max_mig_per_container 2" in result.text
    assert "idle_timeout: 45m" in result.text
    assert "# from idle_timeout_h 0.75" in result.text
    assert 'aggregate_cpus: 1.5        # from aggregate.cpu_quota "150%"' in result.text


def test_aggregate_section_replaces_the_one_below_whole(tmp_path: Path) -> None:
    # DS01 merges layers key by key: a group's `aggregate:` replaces the defaults' section.
    text = BASE.replace(
        "  max_cpus: 32\n", '  max_cpus: 32\n  aggregate: {cpu_quota: "400%", memory_max: 64G}\n'
    )
    result = run_import(tmp_path, text + '    aggregate: {cpu_quota: "800%"}\n')
    alice = effective_limits(result.policy.spec, "alice", TODAY)
    assert alice["aggregate_cpus"] == 8 * 10**9
    assert alice["aggregate_memory"] is None
    carol = effective_limits(result.policy.spec, "carol", TODAY)
    assert carol["aggregate_memory"] == 64 * 2**30


def test_members_files_unite_with_inline_members(tmp_path: Path) -> None:
    result = run_import(tmp_path, BASE, members="researcher:bob,alice")
    assert result.policy.spec.groups["researcher"].members == ["alice", "bob"]
    assert "members:  # from inline + researcher.members" in result.text


def test_out_writes_the_file_atomically(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "quota.yaml"
    out.write_text("old\n", encoding="utf-8")
    result = cli(*import_args(), "--out", str(out), "--name", "lab")
    assert result.code == 0, result.stderr
    assert result.stdout == ""
    text = out.read_text(encoding="utf-8")
    assert "\nmetadata:\n  name: lab\n" in text
    assert text.replace("name: lab", "name: ds01") == (GOLDEN / "quota.yaml").read_text("utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["quota.yaml"]  # no temp file left
    assert out.stat().st_mode & stat.S_IRGRP  # a file for a git repo, not mkstemp's 0600
    assert "Wrote QuotaPolicy lab to" in result.stderr


def import_args() -> tuple[str, ...]:
    return (
        "import",
        "ds01",
        str(FILES.resource_limits),
        "--members-dir",
        str(FILES.members_dir),
        "--user-overrides",
        str(FILES.user_overrides),
        "--exemptions",
        str(FILES.exemptions),
    )


# --- refusals --------------------------------------------------------------------------------

MEMBERS = "members"
REFUSALS: dict[str, tuple[str, dict[str, str], str]] = {
    # case: (resource-limits.yaml, side files, the expected error line after "error: ")
    "non-numeric gpu value": (
        BASE.replace("max_gpu_equivalents: 4.0", "max_gpu_equivalents: lots"),
        {},
        'resource-limits.yaml:10:26: groups.researcher.max_gpu_equivalents: "lots" is not a number',
    ),
    "negative value": (
        BASE.replace("max_cpus: 32", "max_cpus: -4"),
        {},
        "resource-limits.yaml:3:13: defaults.max_cpus: -4 is negative (write null for no limit)",
    ),
    "zero cpus": (
        BASE.replace("max_cpus: 32", "max_cpus: 0"),
        {},
        "resource-limits.yaml:3:13: defaults.max_cpus: cpus must be more than 0",
    ),
    "fractional gpus per container": (
        BASE + "    max_gpu_slots_per_container: 2.5\n",
        {},
        "groups.researcher.max_gpu_slots_per_container: 2.5 is not a whole number",
    ),
    "bad cpu quota": (
        BASE + '    aggregate: {cpu_quota: "96 CPUs"}\n',
        {},
        'groups.researcher.aggregate.cpu_quota: "96 CPUs" is not a CPU quota such as "9600%"',
    ),
    "memory as a share": (
        BASE + '    aggregate: {memory_max: "50%"}\n',
        {},
        'groups.researcher.aggregate.memory_max: "50%" is a share of the host\'s memory',
    ),
    "bad size": (
        BASE + "    memory: lots\n",
        {},
        "groups.researcher.memory: 'lots' is not a size",
    ),
    "non-boolean allow_full_gpu": (
        BASE + '    allow_full_gpu: "yes"\n',
        {},
        'groups.researcher.allow_full_gpu: "yes" is not true or false',
    ),
    "unknown default_group": (
        BASE.replace("default_group: student", "default_group: staff"),
        {},
        'resource-limits.yaml:4:16: default_group: names "staff", which is not a group of this '
        "file (groups: student, researcher)",
    ),
    "user in two groups": (
        BASE,
        {MEMBERS: "student:alice"},
        "resource-limits.yaml:9:15: alice is in groups student (groups/student.members:1) and "
        "researcher (ds01ctl puts a user in one group; remove one of the memberships)",
    ),
    "group name ds01ctl cannot use": (
        BASE + "  Research_Staff: {}\n",
        {},
        "groups.Research_Staff: 'Research_Staff' is not a valid name",
    ),
    "numeric login": (
        BASE.replace("members: [carol]", "members: [228755]"),
        {},
        "groups.student.members[0]: 228755 is not a login (quote it)",
    ),
    "members file with two logins on a line": (
        BASE,
        {MEMBERS: "student:carol dave"},
        "groups/student.members:1:1: 'carol dave' holds more than one login (one login per line)",
    ),
    "members file with a bad login": (
        BASE,
        {MEMBERS: "student:car/ol"},
        "groups/student.members:1:1: 'car/ol' is not a valid login",
    ),
    "overrides file not a mapping": (
        BASE,
        {"user_overrides": "- alice\n"},
        "user_overrides.yaml:1:1: is a list, not a mapping of login: limits",
    ),
    "override not a mapping": (
        BASE,
        {"user_overrides": "alice: 3\n"},
        "user_overrides.yaml:1:8: alice: is 3, not a mapping of limits",
    ),
    "override with a negative value": (
        BASE,
        {"user_overrides": "alice: {pids_limit: -1}\n"},
        "user_overrides.yaml:1:21: alice.pids_limit: -1 is negative",
    ),
    "exemption from something unknown": (
        BASE,
        {"exemptions": "exemptions:\n  - {username: carol, exempt_from: [gpu], reason: x}\n"},
        'exemptions.yaml:2:37: exemptions[0].exempt_from[0]: "gpu" is not one of '
        "idle_timeout_h, max_runtime_h",
    ),
    "exemption without a username": (
        BASE,
        {"exemptions": "exemptions:\n  - {exempt_from: [max_runtime_h], reason: x}\n"},
        "exemptions.yaml:2:5: exemptions[0]: has no username",
    ),
    "exemption date in the wrong format": (
        BASE,
        {
            "exemptions": "exemptions:\n  - {username: carol, exempt_from: [max_runtime_h],"
            ' expires_on: "31/12/2026", reason: x}\n'
        },
        'exemptions[0].expires_on: "31/12/2026" is not an ISO date such as 2026-03-31',
    ),
    "exemption date that does not exist": (
        BASE,
        {
            "exemptions": "exemptions:\n  - {username: carol, exempt_from: [max_runtime_h],"
            " expires_on: 2026-02-30, reason: x}\n"
        },
        "exemptions.yaml:2:65: is not YAML: '2026-02-30' is not a valid date",
    ),
    "not YAML": (
        "defaults: [unclosed\n",
        {},
        "resource-limits.yaml:2:1: is not YAML: did not find expected ',' or ']'",
    ),
    "YAML but not a mapping": (
        "- defaults\n",
        {},
        "resource-limits.yaml:1:1: is a list, not a mapping of DS01 settings",
    ),
    "two YAML documents": (
        BASE + "---\ndefaults: {}\n",
        {},
        "resource-limits.yaml:12:1: holds 2 YAML documents",
    ),
}


def write_case(tmp_path: Path, text: str, side: dict[str, str]) -> list[str]:
    """Write one refusal case's files; the CLI arguments that import them."""
    (tmp_path / "resource-limits.yaml").write_text(text, encoding="utf-8")
    args = ["import", "ds01", "resource-limits.yaml"]
    for option, content in side.items():
        if option == MEMBERS:
            (tmp_path / "groups").mkdir()
            group, _, logins = content.partition(":")
            (tmp_path / "groups" / f"{group}.members").write_text(logins + "\n", "utf-8")
            args += ["--members-dir", "groups"]
        else:
            (tmp_path / f"{option}.yaml").write_text(content, encoding="utf-8")
            args += [f"--{option.replace('_', '-')}", f"{option}.yaml"]
    return args


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusal_is_one_line_and_exit_1(tmp_path: Path, cli: Cli, case: str) -> None:
    text, side, expected = REFUSALS[case]
    result = cli(*write_case(tmp_path, text, side), cwd=tmp_path)
    assert result.code == 1, result.output
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: ")
    assert expected in errors[0], errors[0]
    assert TRACEBACK not in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["missing.yaml"], "error: missing.yaml: no such DS01 resource-limits file"),
        (["r.yaml", "--members-dir", "nowhere"], "error: nowhere: is not a directory"),
        (["r.yaml", "--name", "Bad_Name"], "error: --name: 'Bad_Name' is not a valid name"),
        (["r.yaml", "--out", "no/such/dir/q.yaml"], "error: cannot write no/such/dir/q.yaml"),
    ],
)
def test_refusal_of_arguments(tmp_path: Path, cli: Cli, args: list[str], expected: str) -> None:
    (tmp_path / "r.yaml").write_text(BASE, encoding="utf-8")
    result = cli("import", "ds01", *args, cwd=tmp_path)
    assert result.code == 1, result.output
    assert result.stderr.splitlines()[-1].startswith(expected), result.stderr
    assert len([x for x in result.stderr.splitlines() if x.startswith("error: ")]) == 1
    assert TRACEBACK not in result.output


def test_refusal_is_a_ds01_error_in_the_api(tmp_path: Path) -> None:
    with pytest.raises(Ds01Error) as caught:
        run_import(tmp_path, BASE.replace("max_cpus: 32", "max_cpus: [32]"))
    assert str(caught.value).endswith("defaults.max_cpus: a list is not a number")
    assert "\n" not in str(caught.value)
