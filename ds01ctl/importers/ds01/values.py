"""DS01 values in ds01ctl's spelling: numbers, sizes, durations, CPU quotas and flags.

Each converter takes a value as DS01's YAML holds it and returns ours, with whether it was derived
(so that the manifest can say where it came from); one it cannot convert is a `ValueError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ds01ctl.units import format_size, parse_duration, parse_size

HOUR = 3600

Convert = Callable[[Any], tuple[Any, bool]]  # DS01 value -> (our value, whether it was derived)


def shown(value: Any) -> str:
    """A DS01 value as it reads in YAML, for messages and comments."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    return str(value)


def plain(number: Decimal) -> int | float:
    """A number as YAML should show it: `4`, not `4.0`."""
    return int(number) if number == number.to_integral_value() else float(number)


def number_of(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{shown(value)} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{shown(value)} is not a finite number (write null for no limit)")
    number = Decimal(str(value))
    if number < 0:
        raise ValueError(f"{shown(value)} is negative (write null for no limit)")
    return number


def gpu_units(value: Any) -> tuple[Any, bool]:
    return (None if value is None else plain(number_of(value))), False


def whole(value: Any) -> tuple[Any, bool]:
    if value is None:
        return None, False
    number = number_of(value)
    if number != number.to_integral_value():
        raise ValueError(f"{shown(value)} is not a whole number")
    return int(number), False


def cores(value: Any) -> tuple[Any, bool]:
    return (None if value is None else plain(number_of(value))), False


def size(value: Any) -> tuple[Any, bool]:
    if value is None:
        return None, False
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise ValueError(f"{shown(value)} is negative (write null for no limit)")
    if isinstance(value, float):
        raise ValueError(f"{shown(value)} is not a size such as 32g")
    return format_size(parse_size(value)), False


def format_seconds(seconds: int) -> str:
    """Hours where whole (`24h`, as DS01 counts), else minutes or seconds (`30m`, `90s`)."""
    if seconds % HOUR == 0:
        return f"{seconds // HOUR}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def hours(value: Any) -> tuple[Any, bool]:
    if value is None:
        return None, False
    exact = number_of(value) * HOUR
    seconds = int(exact.to_integral_value())  # a fraction of a second is below any timer's grain
    return format_seconds(seconds), seconds % HOUR != 0 or seconds != exact


def legacy_duration(value: Any) -> tuple[Any, bool]:
    """The keys before units moved into their names took `30m`-style strings."""
    if value is None:
        return None, False
    if not isinstance(value, str):
        raise ValueError(f"{shown(value)} has no unit; write it like 30m or 1.5h")
    return format_seconds(parse_duration(value)), True


def flag(value: Any) -> tuple[Any, bool]:
    if not isinstance(value, bool):
        raise ValueError(f"{shown(value)} is not true or false")
    return value, False


_CPU_QUOTA_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def cpu_quota(value: Any) -> tuple[Any, bool]:
    """systemd's CPUQuota: 100% is one CPU."""
    if value is None:
        return None, False
    match = _CPU_QUOTA_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'{shown(value)} is not a CPU quota such as "9600%" (100% = 1 CPU)')
    return plain(Decimal(match.group(1)) / 100), True


def memory_max(value: Any) -> tuple[Any, bool]:
    """systemd's MemoryMax: a size (binary suffixes, as ours), `infinity`, or a percentage."""
    if value is None or (isinstance(value, str) and value.strip() == "infinity"):
        return None, True
    if isinstance(value, str) and value.strip().endswith("%"):
        raise ValueError(f"{shown(value)} is a share of the host's memory; write a size like 96G")
    return size(value)[0], True
