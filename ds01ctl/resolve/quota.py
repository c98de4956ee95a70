"""Effective limits of a user, layer by layer, with where each value came from.

Layers, lowest first: built-in ← policy defaults ← the user's group ← the user's override ←
unexpired exemptions. A layer overrides only the keys it sets, so a one-line user override
keeps everything else from the user's group (DS01's parser drops to the defaults instead).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ds01ctl.manifests.quota import Limits, QuotaPolicySpec

# DS01's `defaults` block: what a lab gets before it writes a policy of its own.
BUILTIN = Limits.model_validate(
    {
        "gpu_budget": 1,
        "max_gpus_per_container": 1,
        "allow_whole_gpus": True,
        "cpus": 32,
        "memory": "32g",
        "memory_swap": "32g",
        "shm_size": "16g",
        "pids": 4096,
        "max_workspaces": 3,
        "max_endpoints": 1,
        "idle_timeout": "30m",
        "max_runtime": "24h",
        "gpu_hold_after_stop": "15m",
        "container_hold_after_stop": "30m",
    }
)
LIMIT_KEYS = tuple(Limits.model_fields)


@dataclass(frozen=True)
class EffectiveLimits:
    """The limits one user gets, and which layer set each one."""

    login: str
    group: str | None
    values: dict[str, Any]
    sources: dict[str, str]
    expired: tuple[str, ...] = field(default=())  # exemptions ignored because they expired
    reasons: dict[str, str] = field(default_factory=dict)  # key -> reason of its exemption
    # What each key would be without the exemptions: an exemption is what allows a request
    # that is above this.
    unexempted: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


def group_of(policy: QuotaPolicySpec | None, login: str) -> str | None:
    if policy is None:
        return None
    for name in sorted(policy.groups):
        if login in policy.groups[name].members:
            return name
    return policy.default_group if policy.default_group in policy.groups else None


def effective_limits(policy: QuotaPolicySpec | None, login: str, today: dt.date) -> EffectiveLimits:
    group = group_of(policy, login)
    layers: list[tuple[str, Limits]] = [("built-in", BUILTIN)]
    expired: list[str] = []
    reasons_by_layer: dict[str, str] = {}
    if policy is not None:
        layers.append(("defaults", policy.defaults))
        if group is not None:
            layers.append((f"group {group}", policy.groups[group].limits))
        if login in policy.users:
            layers.append((f"user {login}", policy.users[login]))
        for exemption in policy.exemptions:
            if exemption.user != login:
                continue
            if exemption.expires is not None and exemption.expires < today:
                expired.append(f"exemption until {exemption.expires} ({exemption.reason})")
                continue
            until = f" until {exemption.expires}" if exemption.expires else ""
            layers.append((f"exemption{until}", exemption.limits))
            reasons_by_layer[f"exemption{until}"] = exemption.reason
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    reasons: dict[str, str] = {}
    unexempted: dict[str, Any] = {}
    for name, layer in layers:
        if name.startswith("exemption") and not unexempted:
            unexempted = dict(values)
        explicit = layer.model_fields_set if name != "built-in" else set(LIMIT_KEYS)
        for key in LIMIT_KEYS:
            if key in explicit:
                values[key] = getattr(layer, key)
                sources[key] = name
                if name in reasons_by_layer:
                    reasons[key] = reasons_by_layer[name]
    return EffectiveLimits(
        login, group, values, sources, tuple(expired), reasons, unexempted or dict(values)
    )


# A workspace's lifecycle may only be stricter than its owner's quota: a long GPU hold keeps a
# GPU from everyone waiting for it.
LIFECYCLE_KEYS = ("idle_timeout", "max_runtime", "gpu_hold_after_stop")


@dataclass(frozen=True, slots=True)
class Excess:
    key: str
    asked: int  # seconds
    cap: int  # seconds
    source: str  # the layer that set the cap


def lifecycle_excess(lifecycle: Any, limits: EffectiveLimits) -> list[Excess]:
    """The lifecycle values of a workspace (`Lifecycle`) above the owner's limits."""
    found = []
    for key in LIFECYCLE_KEYS:
        asked, cap = getattr(lifecycle, key), limits[key]
        if asked is not None and cap is not None and asked > cap:
            found.append(Excess(key, asked, cap, limits.sources[key]))
    return found
