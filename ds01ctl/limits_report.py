"""`ds01ctl limits`: each user's effective limits, which layer set each, use and headroom.

The shell part (load the repo, observe Docker and GPUs) and the pure part (layering from
`resolve.quota`, use from `resolve.usage`) meet here; the text and JSON are built from one
list of rows so they cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ds01ctl.errors import Ds01Error
from ds01ctl.manifests import Workspace
from ds01ctl.resolve.quota import LIMIT_KEYS, EffectiveLimits, effective_limits
from ds01ctl.resolve.usage import Usage
from ds01ctl.units import about_size, format_cpus, format_duration, format_size

_SIZES = {"memory", "memory_swap", "shm_size", "aggregate_memory"}
_CPUS = {"cpus", "aggregate_cpus"}
DISK_KEYS = ("writable_layers", "snapshots", "account_images")
_DISK_WORDS = {
    "writable_layers": "writable layers",
    "snapshots": "snapshots",
    "account_images": "account images",
}
_DURATIONS = {"idle_timeout", "max_runtime", "gpu_hold_after_stop", "container_hold_after_stop"}


def show(key: str, value: Any) -> str:
    if value is None:
        return "unlimited" if key not in _DURATIONS else "never"
    if key in _SIZES:
        return format_size(value)
    if key in _CPUS:
        return format_cpus(value)
    if key in _DURATIONS:
        return format_duration(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass
class UserReport:
    limits: EffectiveLimits
    usage: Usage | None
    disk: dict[str, int] | None = None  # DISK_KEYS -> bytes; None when not read

    def headroom(self) -> dict[str, str]:
        if self.usage is None:
            return {}
        values, use = self.limits.values, self.usage
        pairs = {
            "gpu_budget": (values["gpu_budget"], use.gpu_units),
            "max_workspaces": (values["max_workspaces"], use.workspaces),
            "aggregate_cpus": (values["aggregate_cpus"], use.nano_cpus),
            "aggregate_memory": (values["aggregate_memory"], use.memory),
        }
        return {
            key: "unlimited" if cap is None else show(key, max(cap - used, 0))
            for key, (cap, used) in pairs.items()
        }

    def to_dict(self) -> dict[str, Any]:
        eff = self.limits
        return {
            "user": eff.login,
            "group": eff.group,
            "limits": {
                k: {"value": show(k, eff.values[k]), "source": eff.sources[k]}
                | ({"reason": eff.reasons[k]} if k in eff.reasons else {})
                for k in LIMIT_KEYS
            },
            "expired_exemptions": list(eff.expired),
            "usage": None if self.usage is None else _usage_dict(self.usage),
            "headroom": self.headroom(),
            "disk": self.disk,
        }


def _usage_dict(use: Usage) -> dict[str, str | int]:
    return {
        "gpu_units": str(use.gpu_units),
        "workspaces": use.workspaces,
        "endpoints": use.endpoints,
        "cpus": format_cpus(use.nano_cpus),
        "memory": format_size(use.memory),
    }


@dataclass
class LimitsReport:
    users: list[UserReport] = field(default_factory=list)
    note: str | None = None

    def to_dict_list(self) -> list[dict[str, Any]]:
        return [u.to_dict() for u in self.users]

    def to_json(self) -> str:
        body = {"format_version": 1, "note": self.note, "users": self.to_dict_list()}
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    def to_text(self) -> str:
        lines = []
        for report in self.users:
            doc = report.to_dict()
            lines.append(f"{doc['user']}  (group {doc['group'] or '-'})")
            width = max(len(k) for k in LIMIT_KEYS)
            for key, entry in doc["limits"].items():
                line = f"  {key:<{width}}  {entry['value']:<10}  {entry['source']}"
                if "reason" in entry:
                    line += f": {entry['reason']}"
                lines.append(line)
            for expired in doc["expired_exemptions"]:
                lines.append(f"  ignored, expired: {expired}")
            if doc["usage"] is not None:
                use, room = doc["usage"], doc["headroom"]
                lines.append(
                    f"  use now: {use['gpu_units']} GPU units (headroom {room['gpu_budget']}), "
                    f"{use['workspaces']} workspace(s) (headroom {room['max_workspaces']}), "
                    f"{use['cpus']} CPUs, {use['memory']} memory"
                )
            if doc["disk"] is not None:
                parts = [f"{about_size(doc['disk'][k])} {_DISK_WORDS[k]}" for k in DISK_KEYS]
                lines.append(f"  disk: {', '.join(parts)}")
            lines.append("")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines).rstrip("\n") + "\n"


def limits_report(path: Path, user: str | None, *, with_usage: bool) -> LimitsReport:
    from ds01ctl.workflow import load_repo

    today = dt.datetime.now(dt.UTC).date()
    repo = load_repo(path, today)
    policy = repo.policy.spec if repo.policy else None
    known = {w.metadata.owner or "" for w, _ in repo.of(Workspace)}
    if policy is not None:
        known |= {m for g in policy.groups.values() for m in g.members} | set(policy.users)
    if user is not None and user not in known and (policy is None or not policy.default_group):
        raise Ds01Error(f"{user} owns nothing here and is in no group", code="unknown_user")
    logins = [user] if user is not None else sorted(known)
    usage, disk, note = _usage(repo, logins) if with_usage else (None, None, None)
    report = LimitsReport(note=note)
    for login in logins:
        eff = effective_limits(policy, login, today)
        use = None if usage is None else usage.get(login, Usage())
        own = None if disk is None else disk_of(disk, login)
        report.users.append(UserReport(eff, use, own))
    return report


def disk_of(disk: dict[str, dict[str, int]], login: str) -> dict[str, int]:
    """The user's bytes under each of DISK_KEYS (0 where they have none)."""
    return {key: disk.get(key, {}).get(login, 0) for key in DISK_KEYS}


def _usage(
    repo: Any, logins: list[str]
) -> tuple[dict[str, Usage] | None, dict[str, dict[str, int]] | None, str | None]:
    """Use by owner, disk use by kind and owner, and a note on what could not be read."""
    from ds01ctl.drivers.docker import DockerDriver
    from ds01ctl.live.accounts import lookup_accounts
    from ds01ctl.resolve.usage import usage_by_owner
    from ds01ctl.workflow import gpu_inventory

    site = repo.site.metadata.name
    try:
        driver = DockerDriver.connect()
        state = driver.observe(site)
        inventory = gpu_inventory(repo)
    except Ds01Error as exc:
        return None, None, f"use not shown: {exc}"
    usage = usage_by_owner(state.ours(), inventory)
    try:
        found = driver.disk_use(site)
    except Ds01Error as exc:
        return usage, None, f"disk use not shown: {exc}"
    # Account images are per uid: the Site's pins first, the host's passwd for the others.
    pins = repo.site.spec.users
    uids = {login: pin.uid for login, pin in pins.items()}
    uids |= {a.login: a.uid for a in lookup_accounts(set(logins) - set(pins)).values()}
    disk = {
        "writable_layers": dict(found.writable_layers),
        "snapshots": dict(found.snapshots),
        "account_images": {
            login: found.account_images[uid]
            for login, uid in uids.items()
            if uid in found.account_images
        },
    }
    return usage, disk, None
