"""What DS01 has that ds01ctl does not model, each named in a warning with the reason.

It covers the top-level sections and policies outside the limits, container types, and side
files lying beside resource-limits.yaml that were not passed to the import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ds01ctl.importers.ds01.sources import (
    NEVER_READ,
    NOT_MODELLED,
    UNKNOWN,
    Ds01Files,
    Notes,
    Source,
)

MAPPED_TOP = ("defaults", "default_group", "groups", "user_overrides")
TOP_DROPS = {
    "enforcement": NOT_MODELLED,
    "gpu_allocation": f"{NEVER_READ} (TODO-NOT-IMPLEMENTED)",
    "monitoring": f"{NEVER_READ} (hard-coded in gpu-state-reader.py)",
    "bare_metal_access": f"{NOT_MODELLED} (GPU access outside containers)",
    "access_control": f"{NEVER_READ} (the Docker wrapper hard-codes admins and its mode)",
}
POLICY_DROPS = {
    "keepalive_max_duration_h": f"{NEVER_READ} (keep-alive age is hard-coded to 1440 min)",
    "gpu_hold_after_manual_stop_m": NEVER_READ,
}
API_NEVER_READ = ("idle_timeout_h", "max_runtime_h")


SIDE_FILES = (
    ("members_dir", "groups", "--members-dir"),
    ("user_overrides", "user-overrides.yaml", "--user-overrides"),
    ("exemptions", "lifecycle-exemptions.yaml", "--exemptions"),
)


def report_side_files(files: Ds01Files, notes: Notes) -> None:
    """DS01 keeps its side files beside resource-limits.yaml; say so when one is left out."""
    beside = files.resource_limits.parent
    for attribute, name, option in SIDE_FILES:
        if getattr(files, attribute) is None and (beside / name).exists():
            where = str(files.resource_limits)
            text = (
                f"{where}: {beside / name} lies beside it, as in DS01; pass {option} to import it"
            )
            notes.add(where, None, None, text)


def report_unmapped(main: Source, config: Mapping[Any, Any], notes: Notes) -> None:
    for key, value in config.items():
        if key in MAPPED_TOP:
            continue
        if key == "policies" and isinstance(value, dict):
            for name in value:
                notes.drop(main, (key, name), POLICY_DROPS.get(name, NOT_MODELLED))
        elif key == "container_types" and isinstance(value, dict):
            report_container_types(main, value, notes)
        else:
            notes.drop_section(main, (key,), value, TOP_DROPS.get(key, UNKNOWN))


def report_container_types(main: Source, types: Mapping[Any, Any], notes: Notes) -> None:
    why = f"{NOT_MODELLED} (limits of containers made outside DS01's CLI)"
    for name, body in types.items():
        path = ("container_types", name)
        rest = body
        if name == "api" and isinstance(body, dict):
            # DS01's scripts branch on the other types only: api gets the fallbacks.
            for key in API_NEVER_READ:
                if key in body:
                    notes.drop(main, (*path, key), f"{NEVER_READ} (api containers get fallbacks)")
            rest = {k: v for k, v in body.items() if k not in API_NEVER_READ}
        if rest or not isinstance(body, dict):
            notes.drop_section(main, path, rest, why)
