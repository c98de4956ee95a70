"""Sizes, CPU counts and durations: the spellings accepted, the errors, and exact round trips."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ds01ctl.units import (
    NANO,
    format_cpus,
    format_duration,
    format_size,
    parse_cpus,
    parse_duration,
    parse_size,
)

KI, MI, GI, TI = 1024, 1024**2, 1024**3, 1024**4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("32g", 32 * GI),
        ("512m", 512 * MI),
        ("32Gi", 32 * GI),
        ("512Mi", 512 * MI),
        ("1.5g", 3 * GI // 2),
        ("32gb", 32 * GI),
        ("32GB", 32 * GI),
        ("64k", 64 * KI),
        ("2t", 2 * TI),
        ("1Ti", TI),
        (" 16g ", 16 * GI),
        ("1024b", 1024),
        ("512b", 512),
        (1024**2, 1024**2),
        ("1048576", 1024**2),
        (0, 0),
    ],
)
def test_units_size_accepted(text: Any, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "value",
    [
        "lots",
        "",
        "32x",
        "32i",
        "i",
        "-1g",
        "1e3",
        "g",
        "32 g b i",
        True,
        1.5,
        None,
        [],
        -1,
        "512",
        512,
        1024**2 - 1,
    ],
)
def test_units_size_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(value)


def test_units_size_without_unit_below_a_mib_says_which_unit_to_write() -> None:
    with pytest.raises(ValueError) as info:
        parse_size(512)
    assert str(info.value) == (
        "a size of 512 without a unit is 512 bytes: write 512m for MiB or 512g for GiB "
        "(512b if bytes are meant)"
    )


def test_units_size_error_names_the_value_and_the_forms() -> None:
    with pytest.raises(ValueError) as info:
        parse_size("lots")
    assert str(info.value) == "'lots' is not a size: write it like 32g, 512m, 32Gi or 512Mi"


@pytest.mark.parametrize(
    ("size", "text"),
    [(32 * GI, "32g"), (1536 * MI, "1536m"), (64 * KI, "64k"), (2 * TI, "2t"), (1000, "1000b")],
)
def test_units_size_formatted_docker_style(size: int, text: str) -> None:
    assert format_size(size) == text


@given(st.integers(min_value=0, max_value=2**60))
def test_units_size_round_trip(size: int) -> None:
    assert parse_size(format_size(size)) == size


@pytest.mark.parametrize(
    ("value", "nano"),
    [
        (2, 2 * NANO),
        (0.5, NANO // 2),
        ("1.25", 1_250_000_000),
        ("8", 8 * NANO),
        (96, 96 * NANO),
        ("0.01", 10_000_000),
        ("0.125", 125_000_000),
    ],
)
def test_units_cpus_accepted(value: Any, nano: int) -> None:
    assert parse_cpus(value) == nano


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "more than 0"),
        (-1, "more than 0"),
        ("abc", "not a number of cores"),
        ("nan", "not a number of cores"),  # text is plain decimal digits, as the schema says
        ("1e-10", "not a number of cores"),
        (float("nan"), "more than 0"),
        (float("inf"), "more than 0"),
        (1e-10, "at least 0.01"),
        (1e-9, "at least 0.01"),
        ("0.001", "at least 0.01"),
        ("1.0000001", "at most 3 decimal places"),
        (1e12, "at most"),
        (True, "number of cores"),
        (None, "number of cores"),
    ],
)
def test_units_cpus_refused(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cpus(value)


@pytest.mark.parametrize(
    ("nano", "text"), [(2 * NANO, "2"), (NANO // 2, "0.5"), (10**6, "0.001"), (100 * NANO, "100")]
)
def test_units_cpus_formatted(nano: int, text: str) -> None:
    assert format_cpus(nano) == text


@given(st.integers(min_value=10, max_value=10**9))
def test_units_cpus_round_trip(milli: int) -> None:
    nano = milli * 10**6
    assert parse_cpus(format_cpus(nano)) == nano


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("45s", 45), ("30m", 1800), ("1.5h", 5400), ("24h", 86400), ("7d", 604800), (0, 0)],
)
def test_units_duration_accepted(value: Any, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["30", 30, "1w", "abc", "-5m", "", False, True, None, 1.5])
def test_units_duration_refused(value: Any) -> None:
    with pytest.raises(ValueError, match=r"is not a duration: write it like 45s, 30m, 1\.5h or 7d"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45s"), (1800, "30m"), (5400, "90m"), (86400, "24h"), (7 * 86400, "7d"), (0, "0s")],
)
def test_units_duration_formatted(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10**12))
def test_units_duration_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
