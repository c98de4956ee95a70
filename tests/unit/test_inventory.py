"""The GPU inventory model and its fixture format: loading, units, round trips, exact errors."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ds01ctl.errors import InventoryError
from ds01ctl.live.gpus import dump_inventory, inventory_yaml, load_inventory_file, parse_inventory
from ds01ctl.model.inventory import (
    ARCHITECTURES,
    Gpu,
    GpuInventory,
    GpuProcess,
    MigInstance,
    architecture_of,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "gpus"
A100_GPU2 = "GPU-c47a9e13-2d6b-48f5-a1e9-7b3d5c8f2e60"
A100_1G = "MIG-7a1c3e95-b2d4-5f68-8a0b-4c6e9d1f3a52"


def a100() -> GpuInventory:
    return load_inventory_file(EXAMPLES / "ds01-4xa100.yaml")


# --------------------------------------------------------------------------- the examples


@pytest.mark.parametrize(
    ("name", "gpus", "devices"),
    [("ds01-4xa100.yaml", 4, 9), ("h100-80gb.yaml", 1, 1), ("h100-80gb-mig.yaml", 1, 4)],
)
def test_examples_load(name: str, gpus: int, devices: int) -> None:
    inv = load_inventory_file(EXAMPLES / name)
    assert inv.source == f"fixture:{EXAMPLES / name}"
    assert len(inv.gpus) == gpus
    assert len(inv.devices()) == devices
    assert inv.taken_at == datetime(2026, 1, 12, 8, tzinfo=UTC)
    assert inv.processes == ()


def test_inventory_recorded_from_a_real_h200_loads_as_one_whole_hopper_gpu() -> None:
    # examples/gpus/h200-141gb-recorded.yaml is what NvmlSource read from a real H200.
    inv = load_inventory_file(EXAMPLES / "h200-141gb-recorded.yaml")
    [gpu] = inv.gpus
    assert (gpu.name, gpu.architecture, gpu.memory_total_mib, gpu.mig_enabled) == (
        "NVIDIA H200",
        "hopper",
        143771,
        False,
    )
    [device] = inv.devices()
    assert device.uuid == gpu.uuid and inv.units_of(device.uuid) == 1
    assert inv.mig_profiles() == frozenset()


def test_a100_devices_are_in_placement_order_with_exact_units() -> None:
    inv = a100()
    got = [(d.gpu_index, d.placement_start, d.profile, d.units) for d in inv.devices()]
    assert got == [
        (0, 0, None, Fraction(1)),
        (1, 0, None, Fraction(1)),
        (2, 0, "2g.10gb", Fraction(2, 7)),
        (2, 2, "1g.5gb", Fraction(1, 7)),
        (2, 3, "1g.5gb", Fraction(1, 7)),
        (2, 4, "3g.20gb", Fraction(3, 7)),
        (3, 0, "4g.20gb", Fraction(4, 7)),
        (3, 4, "2g.10gb", Fraction(2, 7)),
        (3, 6, "1g.5gb", Fraction(1, 7)),
    ]
    assert sum(d.units for d in inv.devices() if d.gpu_uuid == A100_GPU2) == 1
    assert all(isinstance(d.units, Fraction) for d in inv.devices())


def test_lookups() -> None:
    inv = a100()
    dev = inv.device(A100_1G)
    assert dev is not None and dev.is_mig and dev.gpu_uuid == A100_GPU2 and dev.memory_mib == 4864
    assert inv.units_of(A100_1G) == Fraction(1, 7)
    assert inv.units_of(inv.gpus[0].uuid) == 1
    assert inv.device("MIG-gone") is None
    with pytest.raises(KeyError):
        inv.units_of("MIG-gone")
    assert inv.device(A100_GPU2) is None  # a MIG-enabled GPU is not itself allocatable
    assert inv.mig_profiles() == {"1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb"}
    gpu = inv.gpu(A100_GPU2)
    assert gpu is not None and gpu.architecture == "ampere" and gpu.total_compute_slices == 7
    assert not gpu.mig_reset_pending


def test_unhealthy_gpus_offer_nothing_unless_asked() -> None:
    inv = a100()
    sick = dataclasses.replace(inv.gpus[2], healthy=False)
    inv = dataclasses.replace(inv, gpus=(*inv.gpus[:2], sick, inv.gpus[3]))
    assert len(inv.devices()) == 5
    assert len(inv.devices(include_unhealthy=True)) == 9
    found = inv.device(A100_1G)
    assert found is not None and not found.healthy  # still found, so the planner can say why
    assert inv.mig_profiles() == {"1g.5gb", "2g.10gb", "4g.20gb"}


def test_a_mig_gpu_without_instances_offers_nothing() -> None:
    inv = a100()
    empty = dataclasses.replace(inv.gpus[2], migs=())
    inv = dataclasses.replace(inv, gpus=(*inv.gpus[:2], empty, inv.gpus[3]))
    assert [d.gpu_index for d in inv.devices()] == [0, 1, 3, 3, 3]


def test_construction_order_does_not_matter() -> None:
    inv = a100()
    shuffled_gpus = tuple(
        dataclasses.replace(g, migs=tuple(reversed(g.migs))) for g in reversed(inv.gpus)
    )
    assert dataclasses.replace(inv, gpus=shuffled_gpus) == inv


def test_taken_at_is_utc_and_must_be_aware() -> None:
    inv = a100()
    later = datetime(2026, 1, 12, 10, tzinfo=timezone(timedelta(hours=2)))
    assert dataclasses.replace(inv, taken_at=later).taken_at.tzinfo == UTC
    with pytest.raises(ValueError, match="time zone"):
        dataclasses.replace(inv, taken_at=datetime(2026, 1, 12))


def test_defaults_derive_architecture_and_slices() -> None:
    gpu = Gpu(
        uuid="GPU-x", index=0, name="NVIDIA H100 80GB HBM3", pci_bus_id="0", memory_total_mib=1
    )
    assert gpu.architecture == "hopper" and gpu.total_compute_slices is None
    mig = dataclasses.replace(gpu, mig_enabled=True, mig_pending=False)
    assert mig.total_compute_slices == 7 and mig.mig_reset_pending


def test_a_mig_must_name_its_parent() -> None:
    mig = MigInstance(
        uuid="MIG-a",
        parent_uuid="GPU-other",
        profile="1g.10gb",
        compute_slices=1,
        memory_mib=9984,
        gi_id=9,
        ci_id=0,
        placement_start=0,
    )
    with pytest.raises(ValueError, match="parent"):
        Gpu(uuid="GPU-x", index=0, name="x", pci_bus_id="0", memory_total_mib=1, migs=(mig,))


@pytest.mark.parametrize(
    ("name", "arch"),
    [
        ("NVIDIA A100-SXM4-40GB", "ampere"),
        ("NVIDIA A100 80GB PCIe", "ampere"),
        ("NVIDIA RTX A6000", "ampere"),
        ("NVIDIA H100 80GB HBM3", "hopper"),
        ("NVIDIA H200", "hopper"),
        ("NVIDIA GH200 480GB", "hopper"),
        ("NVIDIA L40S", "ada"),
        ("NVIDIA RTX 6000 Ada Generation", "ada"),
        ("NVIDIA B200", "blackwell"),
        ("Tesla V100-SXM2-32GB", "volta"),
        ("Tesla T4", "turing"),
        ("Matrox G200", "unknown"),
    ],
)
def test_architecture_of(name: str, arch: str) -> None:
    assert architecture_of(name) == arch


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", ["ds01-4xa100.yaml", "h100-80gb.yaml", "h100-80gb-mig.yaml"])
def test_dict_and_file_round_trips(name: str, tmp_path: Path) -> None:
    inv = load_inventory_file(EXAMPLES / name)
    assert GpuInventory.from_dict(inv.to_dict()) == inv
    out = tmp_path / name
    dump_inventory(inv, out)
    assert load_inventory_file(out) == dataclasses.replace(inv, source=f"fixture:{out}")
    assert out.read_text().startswith("# ")
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


def test_processes_round_trip() -> None:
    inv = dataclasses.replace(
        a100(),
        processes=(
            GpuProcess(pid=9, device_uuid=A100_1G, used_mib=512, uid=1001, container_id="a" * 64),
            GpuProcess(pid=3, device_uuid=A100_1G, name="python"),
        ),
    )
    assert [p.pid for p in inv.processes] == [3, 9]
    assert inv.processes_on(A100_1G) == inv.processes
    assert GpuInventory.from_dict(inv.to_dict()) == inv
    text = inventory_yaml(inv)
    assert parse_inventory(text, "x.yaml") == dataclasses.replace(inv, source="fixture:x.yaml")


_NAMES = ["NVIDIA A100-SXM4-40GB", "NVIDIA H100 80GB HBM3", "NVIDIA L40S", "Some: odd 'GPU'"]


@st.composite
def _gpu(draw: st.DrawFn, index: int, uuids: list[str]) -> Gpu:
    uuid = f"GPU-{uuids.pop()}"
    total_mib = draw(st.integers(1, 200_000))
    mig = draw(st.booleans())
    slices = draw(st.integers(1, 8)) if mig else draw(st.none() | st.integers(1, 8))
    sizes = draw(st.lists(st.integers(1, 4), max_size=7)) if mig else []
    while sum(sizes) > (slices or 7):
        sizes.pop()
    migs = tuple(
        MigInstance(
            uuid=f"MIG-{uuids.pop()}",
            parent_uuid=uuid,
            profile=f"{size}g.{draw(st.integers(1, 200))}gb",
            compute_slices=size,
            memory_mib=draw(st.integers(1, total_mib)),
            memory_used_mib=draw(st.integers(0, 1000)),
            gi_id=j + 1,
            ci_id=draw(st.integers(0, 3)),
            placement_start=sum(sizes[:j]),
        )
        for j, size in enumerate(sizes)
    )
    return Gpu(
        uuid=uuid,
        index=index,
        name=draw(st.sampled_from(_NAMES)),
        pci_bus_id=f"00000000:{index:02X}:00.0",
        architecture=draw(st.sampled_from(("", *ARCHITECTURES))),
        memory_total_mib=total_mib,
        memory_used_mib=draw(st.integers(0, total_mib)),
        mig_enabled=mig,
        mig_pending=draw(st.none() | st.booleans()),
        total_compute_slices=slices,
        healthy=draw(st.booleans()),
        util_pct=draw(st.none() | st.integers(0, 100)),
        migs=migs,
    )


@st.composite
def inventories(draw: st.DrawFn) -> GpuInventory:
    count = draw(st.integers(0, 4))
    uuids = [str(u) for u in draw(st.lists(st.uuids(), min_size=40, max_size=40, unique=True))]
    gpus = [draw(_gpu(i, uuids)) for i in draw(st.permutations(range(count)))]
    devices = [g.uuid for g in gpus] + [m.uuid for g in gpus for m in g.migs]
    procs = (
        []
        if not devices
        else draw(
            st.lists(
                st.builds(
                    GpuProcess,
                    pid=st.integers(1, 4_000_000),
                    device_uuid=st.sampled_from(devices),
                    used_mib=st.none() | st.integers(0, 100_000),
                    uid=st.none() | st.integers(0, 70_000),
                    container_id=st.none() | st.binary(min_size=32, max_size=32).map(bytes.hex),
                    name=st.text(max_size=20),
                ),
                max_size=6,
                unique_by=lambda p: (p.pid, p.device_uuid),
            )
        )
    )
    zone = draw(st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))]))
    return GpuInventory(
        source=draw(st.sampled_from(["nvml", "fixture:x.yaml"])),
        host=draw(st.text(min_size=1, max_size=20).filter(str.strip)),
        taken_at=draw(st.datetimes(timezones=st.just(zone))),
        driver=draw(st.none() | st.text(max_size=12)),
        gpus=tuple(gpus),
        processes=tuple(procs),
    )


@given(inventories())
def test_from_dict_inverts_to_dict(inv: GpuInventory) -> None:
    assert GpuInventory.from_dict(inv.to_dict()) == inv


@settings(max_examples=60)
@given(inventories())
def test_the_fixture_text_reads_back_unchanged(inv: GpuInventory) -> None:
    back = parse_inventory(inventory_yaml(inv), "gen.yaml")
    assert back == dataclasses.replace(inv, source="fixture:gen.yaml")


@given(st.text(max_size=300))
def test_no_text_crashes_the_loader(text: str) -> None:
    try:
        parse_inventory(text, "junk.yaml")
    except InventoryError as exc:
        assert exc.message.startswith("junk.yaml:") and "\n" not in exc.message


# --------------------------------------------------------------------------- exact errors

BASE = """\
host: t
taken_at: 2026-01-12T08:00:00Z
gpus:
  - uuid: GPU-00000000-0000-4000-8000-000000000001
    index: 0
    name: NVIDIA A100-SXM4-40GB
    pci_bus_id: "00000000:07:00.0"
    memory_total_mib: 40960
    mig: true
    migs:
      - uuid: MIG-00000000-0000-5000-8000-000000000011
        profile: 3g.20gb
        compute_slices: 3
        memory_mib: 20096
        gi_id: 2
        ci_id: 0
        placement_start: 4
      - uuid: MIG-00000000-0000-5000-8000-000000000012
        profile: 4g.20gb
        compute_slices: 4
        memory_mib: 20096
        gi_id: 1
        ci_id: 0
        placement_start: 0
"""
SECOND_GPU = """\
  - uuid: GPU-00000000-0000-4000-8000-000000000002
    index: 1
    name: NVIDIA A100-SXM4-40GB
    pci_bus_id: "00000000:0F:00.0"
    memory_total_mib: 40960
"""
PROCESS = """\
processes:
  - pid: 42
    device_uuid: MIG-00000000-0000-5000-8000-000000000011
"""


def _edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_the_base_text_is_valid() -> None:
    inv = parse_inventory(BASE + SECOND_GPU + PROCESS, "ok.yaml")
    assert [d.profile for d in inv.devices()] == ["4g.20gb", "3g.20gb", None]


G1 = "GPU-00000000-0000-4000-8000-000000000001"
M11 = "MIG-00000000-0000-5000-8000-000000000011"
M12 = "MIG-00000000-0000-5000-8000-000000000012"
MORE_MEMORY = "memory_total_mib: 40960\n    memory_used_mib: 50000\n"
PROCESS_AGAIN = f"  - pid: 42\n    device_uuid: {M11}\n"

# (case id, text, line, the text at the reported column, a fragment of the message)
ERROR_CASES: list[tuple[str, str, int, str, str]] = [
    ("missing uuid", _edit(f"  - uuid: {G1}\n    index", "  - index"),
     4, "index", "gpus[0]: missing required key `uuid`"),
    ("missing host", _edit("host: t\n", ""), 1, "taken_at", "missing required key `host`"),
    ("MIG uuid without MIG-", _edit(M12, M12.replace("MIG-", "GPU-")),
     18, "GPU-", "gpus[0].migs[1].uuid: a MIG uuid starts with `MIG-`"),
    ("MIG uuid of a bad shape", _edit(M12, "MIG-12"),
     18, "MIG-12", "a MIG uuid looks like MIG-xxxxxxxx"),
    ("GPU uuid of a bad shape", _edit(G1, "GPU-1"),
     4, "GPU-1", "gpus[0].uuid: a GPU uuid looks like"),
    ("duplicate MIG uuid", _edit(M12, M11),
     18, "MIG-", "gpus[0].migs[1].uuid: duplicate uuid"),
    ("duplicate GPU uuid", BASE + _edit("000000000002", "000000000001", SECOND_GPU),
     25, "GPU-", "gpus[1].uuid: duplicate uuid"),
    ("duplicate GPU index", BASE + _edit("index: 1", "index: 0", SECOND_GPU),
     26, "0", "gpus[1].index: duplicate GPU index 0"),
    ("MIG instances with MIG off", _edit("mig: true", "mig: false"),
     10, "migs", "gpus[0].migs: GPU 0 has MIG disabled but lists MIG instances"),
    ("slices over the total", _edit("compute_slices: 4", "compute_slices: 5"),
     20, "5", "gpus[0].migs[1].compute_slices: MIG compute slices add up to 8, over this GPU's 7"),
    ("slices over a smaller total", _edit("mig: true", "mig: true\n    total_compute_slices: 4"),
     21, "4", "compute slices add up to 7, over this GPU's 4"),
    ("a placement taken twice", _edit("placement_start: 0", "placement_start: 4"),
     24, "4", "gpus[0].migs[1].placement_start: placement 4 is already taken by GPU instance 2"),
    ("a (gi, ci) pair twice", _edit("gi_id: 1", "gi_id: 2"),
     23, "0", "duplicate (gi_id, ci_id) (2, 0)"),
    ("MIG bigger than its GPU", _edit("memory_mib: 20096\n        gi_id: 1", "memory_mib: 50000"
                                      "\n        gi_id: 1"),
     21, "50000", "more memory than the whole GPU has"),
    ("used over total", _edit("memory_total_mib: 40960\n", MORE_MEMORY),
     9, "50000", "more memory used than the GPU has"),
    ("unknown key", _edit("memory_total_mib", "memory_totl_mib"),
     8, "memory_totl_mib", "unknown key `memory_totl_mib`"),
    ("a quoted number", _edit("index: 0", 'index: "0"'),
     5, '"0"', "gpus[0].index: Input should be a valid integer"),
    ("a bool as int", _edit("index: 0", "index: true"),
     5, "true", "gpus[0].index: Input should be a valid integer"),
    ("negative index", _edit("index: 0", "index: -1"), 5, "-1", "greater than or equal to 0"),
    ("bad profile", _edit("profile: 3g.20gb", "profile: big"),
     12, "big", "a MIG profile looks like"),
    ("bad architecture", _edit("mig: true", "architecture: hoper\n    mig: true"),
     9, "hoper", "gpus[0].architecture"),
    ("zero slices", _edit("compute_slices: 3", "compute_slices: 0"), 13, "0", "greater than 0"),
    ("naive timestamp", _edit("2026-01-12T08:00:00Z", "2026-01-12 08:00:00"),
     2, "2026", "taken_at: Input should have timezone info"),
    ("gpus not a list", "host: t\ntaken_at: 2026-01-12T08:00:00Z\ngpus: {}\n",
     3, "{}", "gpus: Input should be a valid list"),
    ("not a mapping", "- 1\n- 2\n", 1, "- 1", "Input should be a valid dictionary"),
    ("process on an unknown device", BASE + _edit("000000000011", "000000000099", PROCESS),
     27, "MIG-", "processes[0].device_uuid: 'MIG-00000000-0000-5000-8000-000000000099' is no GPU"),
    ("a process listed twice", BASE + PROCESS + PROCESS_AGAIN,
     28, "42", "processes[1].pid: duplicate process"),
    ("bad container id", BASE + PROCESS + "    container_id: abc\n",
     28, "abc", "a container id is 64 lower-case hex digits"),
    ("YAML syntax", _edit("    index: 0\n", "    index: [0\n"), 6, "", "flow sequence"),
    ("duplicate key", _edit("    index: 0\n", "    index: 0\n    index: 1\n"),
     6, "index", "duplicate key 'index'"),
    ("two documents", BASE + "---\nhost: u\n", 26, "host", "exactly one YAML document"),
    ("empty", "", 1, "", "exactly one YAML document"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line", "at", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
def test_errors_name_the_exact_position(text: str, line: int, at: str, fragment: str) -> None:
    with pytest.raises(InventoryError) as info:
        parse_inventory(text, "bad.yaml")
    message = info.value.message
    assert "\n" not in message
    prefix = f"bad.yaml:{line}:"
    assert message.startswith(prefix), message
    col = int(message[len(prefix) :].split(":", 1)[0])
    source_line = text.splitlines()[line - 1] if text else ""
    assert source_line[col - 1 :].startswith(at), (message, source_line)
    assert fragment in message


def test_unknown_key_hints_the_near_one() -> None:
    with pytest.raises(InventoryError) as info:
        parse_inventory(_edit("memory_total_mib", "memory_totl_mib"), "bad.yaml")
    assert info.value.hint == "did you mean `memory_total_mib`?"


def test_a_pci_id_read_as_a_number_hints_quoting() -> None:
    text = _edit('"00000000:07:00.0"', "00000000:07:00.0")
    with pytest.raises(InventoryError) as info:
        parse_inventory(text, "bad.yaml")
    assert info.value.message.startswith("bad.yaml:7:17: gpus[0].pci_bus_id:")
    assert info.value.hint == "YAML read this as a number; quote it"


def test_the_first_problem_in_the_file_is_reported() -> None:
    text = _edit("index: 0", "index: -1", _edit("compute_slices: 4", "compute_slices: 9"))
    with pytest.raises(InventoryError) as info:
        parse_inventory(text, "bad.yaml")
    assert info.value.message.startswith("bad.yaml:5:")


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"missing\.yaml: cannot read the GPU fixture: "):
        load_inventory_file(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"host: \xff\n")
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory_file(bad)
