"""Quantities in manifests: byte sizes, CPU counts and durations, parsed into exact integers.

Sizes accept Docker's `32g`/`512m` and Kubernetes' `32Gi`/`512Mi`; both are binary (1g = 1 GiB),
as Docker itself reads them. Durations take a unit (`30m`, `1.5h`, `7d`). Everything is stored
as an integer (bytes, nano-CPUs, seconds) so that comparisons with Docker are exact.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

# ASCII: the JSON Schemas below spell the same forms, and a schema's \d is ASCII.
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)\s*$", re.IGNORECASE | re.ASCII)
_SIZE_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$", re.ASCII)
_CPUS_RE = re.compile(r"^\s*(\d+\.?\d*|\.\d+)\s*$", re.ASCII)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
NANO = 10**9
# Docker refuses a CPU limit below 0.01 ("Range of CPUs is from 0.01 to ..."); a thousandth of
# a core is finer than any scheduler honours, so more digits are a typo, not a wish.
MIN_NANO_CPUS = NANO // 100
CPU_DECIMALS = 3
MAX_CPUS = 10**9  # far beyond any host, well inside Docker's int64 of nano-CPUs
# A size without a unit is bytes, as in Docker; `memory: 512` meaning 512 bytes is always a
# slip (the engine refuses it at create time), so a bare number below a MiB is refused with
# the unit to write. `512b` says bytes on purpose and stays allowed.
MIN_BARE_SIZE = 1024**2


def parse_size(value: Any) -> int:
    """Bytes from `32g`, `512Mi`, `1.5g`, `1024` (bytes); binary multiples throughout."""
    if isinstance(value, bool):
        raise ValueError("a size is a number with a unit, such as 32g or 512Mi")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return _bare(value)
    if not isinstance(value, str):
        raise ValueError("a size is a number with a unit, such as 32g or 512Mi")
    match = _SIZE_RE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a size: write it like 32g, 512m, 32Gi or 512Mi")
    number, unit, binary, byte = match.groups()
    if binary and not unit:
        raise ValueError(f"{value!r} is not a size: write it like 32g, 512m, 32Gi or 512Mi")
    size = int(Decimal(number) * (1024 ** _SIZE_UNITS[unit.lower()]))
    return size if unit or byte else _bare(size)  # `32gb` and `32g` mean the same, as in Docker


def _bare(size: int) -> int:
    if 0 < size < MIN_BARE_SIZE:
        raise ValueError(
            f"a size of {size} without a unit is {size} bytes: write {size}m for MiB or "
            f"{size}g for GiB ({size}b if bytes are meant)"
        )
    return size


def format_size(n: int) -> str:
    """The shortest Docker-style spelling of a byte count (`32g`, `512m`, `1536k`)."""
    for suffix, power in (("t", 4), ("g", 3), ("m", 2), ("k", 1)):
        if n and n % (1024**power) == 0:
            return f"{n // 1024**power}{suffix}"
    return f"{n}b" if 0 < n < MIN_BARE_SIZE else str(n)


def about_size(n: int) -> str:
    """A byte count for people: `3 bytes`, `12.3 KB`, `1.2 GB` (binary multiples)."""
    if n < 1024:
        return f"{n} byte{'s' if n != 1 else ''}"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def parse_cpus(value: Any) -> int:
    """Nano-CPUs from a decimal core count (`2`, `0.5`, `"1.25"`)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("cpus is a number of cores, such as 2 or 0.5")
    if isinstance(value, str) and not _CPUS_RE.match(value):
        raise ValueError(f"{value!r} is not a number of cores, such as 2 or 0.5")
    try:
        cores = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number of cores, such as 2 or 0.5") from None
    if not cores.is_finite() or cores <= 0:
        raise ValueError("cpus must be more than 0")
    if cores > MAX_CPUS:
        raise ValueError(f"cpus must be at most {MAX_CPUS} cores")
    if cores * NANO < MIN_NANO_CPUS:
        raise ValueError("cpus must be at least 0.01 (Docker's smallest CPU limit)")
    milli = cores * 10**CPU_DECIMALS
    if milli != milli.to_integral_value():
        raise ValueError(f"cpus has at most {CPU_DECIMALS} decimal places, such as 0.25 or 1.5")
    return int(cores * NANO)


def format_cpus(nano: int) -> str:
    text = format(Decimal(nano) / NANO, "f")  # plain digits: 1 nano-CPU is 0.000000001, not 1E-9
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_duration(value: Any) -> int:
    """Seconds from `45s`, `30m`, `1.5h`, `7d`."""
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            number, unit = match.groups()
            return int(Decimal(number) * _DURATION_UNITS[unit])
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return 0
    raise ValueError(f"{value!r} is not a duration: write it like 45s, 30m, 1.5h or 7d")


def format_duration(seconds: int) -> str:
    """`30m`, `48h`, `7d`: days only from a week up, as labs speak of hours below that."""
    if seconds and seconds % 86400 == 0 and seconds >= 7 * 86400:
        return f"{seconds // 86400}d"
    for suffix, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


# What the parsers above accept, as JSON Schema (ECMA-262 patterns; SPACE is Python's ASCII \s,
# narrower than a schema's \s). tests/unit/test_schema_validation.py holds the two together.
SPACE = r"[ \t\n\r\f\v]*"
# A bare number of bytes: 0, or at least MIN_BARE_SIZE (1048576), in digits.
_BARE_SIZE = (
    "0|[1-9][0-9]{7,}|[2-9][0-9]{6}|1[1-9][0-9]{5}|10[5-9][0-9]{4}|1049[0-9]{3}"
    "|1048[6-9][0-9]{2}|10485[89][0-9]|104857[6-9]"
)
_SIZE_SCHEMA = {
    "anyOf": [
        {
            "type": "string",
            "pattern": f"^{SPACE}([0-9]+(\\.[0-9]+)?{SPACE}([kmgtpKMGTP][iI]?[bB]?|[bB])"
            f"|{_BARE_SIZE}){SPACE}$",
        },
        {"type": "integer", "const": 0},
        {"type": "integer", "minimum": MIN_BARE_SIZE},
    ],
    "description": "bytes, or a size such as 32g / 512m (Docker) or 32Gi / 512Mi; binary units",
}
_CPUS_SCHEMA = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {
            "type": "string",  # more than 0, at most 3 decimal places (trailing zeros aside)
            "pattern": (
                f"^{SPACE}(?=[0-9.]*[1-9])([0-9]+\\.?[0-9]{{0,3}}|\\.[0-9]{{1,3}})0*{SPACE}$"
            ),
        },
    ],
    "description": "cores, such as 2, 0.5 or 1.25",
}
_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": f"^{SPACE}[0-9]+(\\.[0-9]+)?{SPACE}(s|m|h|d){SPACE}$"},
        {"const": 0},
    ],
    "description": "a duration such as 45s, 30m, 1.5h or 7d (or 0)",
}

ByteSize = Annotated[
    int,
    BeforeValidator(parse_size),
    PlainSerializer(format_size, return_type=str),
    WithJsonSchema(_SIZE_SCHEMA),
]
NanoCpus = Annotated[
    int,
    BeforeValidator(parse_cpus),
    PlainSerializer(format_cpus, return_type=str),
    WithJsonSchema(_CPUS_SCHEMA),
]
Seconds = Annotated[
    int,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_DURATION_SCHEMA),
]
