"""`ds01.spec-hash`: a hash of the fields whose change forces a container to be replaced.

Each version is an explicit allow-list; a container is always checked with the version it
records (`ds01.hash-version`), so a new ds01ctl that hashes more never recreates containers by
itself. Keep every released version here; add a field only in a new version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from typing import Any

from ds01ctl.model.spec import ContainerSpec

CURRENT_VERSION = "2"


def _v1(spec: ContainerSpec) -> dict[str, Any]:
    return {
        "container_name": spec.container_name,
        "image": spec.image,
        "image_tag": spec.image_tag,
        "user": spec.user,
        "command": list(spec.command),
        "tty": spec.tty,
        "working_dir": spec.working_dir,
        "env": sorted(spec.env),
        "binds": sorted(b.text for b in spec.binds),
        "network": spec.network,
        "shm_size": spec.shm_size,
        "ulimits": sorted(spec.ulimits),
        "stop_signal": spec.stop_signal,
        "stop_grace": spec.stop_grace,
        "gpus": sorted(spec.gpus),
    }


def _v2(spec: ContainerSpec) -> dict[str, Any]:
    """Version 1, plus the confinement, the device-selecting environment and the log size
    limit every container gets since then (see README, Upgrades)."""
    return {
        **_v1(spec),
        "environment": sorted(spec.environment),
        "cap_drop": sorted(spec.cap_drop),
        "cap_add": sorted(spec.cap_add),
        "security_opt": sorted(spec.security_opt),
        "log": [spec.log_driver, sorted(spec.log_options)],
        # Endpoints' own fields, only where set: a workspace's hash stays what it was.
        **({"ports": sorted(spec.ports)} if spec.ports else {}),
        **({"devices": sorted(spec.devices)} if spec.devices else {}),
        **({"gpu_vendor": spec.gpu_vendor} if spec.gpu_vendor != "nvidia" else {}),
        # A secret's version (a hash of its content), never its value: rotating it replaces.
        **({"secret_env": sorted(spec.secret_env)} if spec.secret_env else {}),
    }


HASHED_FIELDS: dict[str, Callable[[ContainerSpec], dict[str, Any]]] = {"1": _v1, "2": _v2}


def spec_hash(spec: ContainerSpec, version: str = CURRENT_VERSION) -> str:
    """The hash of `spec` under hash `version`; KeyError for a version this build lacks."""
    canonical = json.dumps(HASHED_FIELDS[version](spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


# What a container made by an older ds01ctl would be given, where a default changed since
# (version → field → that version's default). Only defaults: what a manifest or the Site
# names explicitly was made the same way then.
_OLD_DEFAULTS: dict[str, dict[str, str]] = {"1": {"network": "bridge"}}


def as_made_by(spec: ContainerSpec, version: str) -> ContainerSpec:
    """`spec` as the ds01ctl that wrote hash `version` would have resolved the same manifests:
    so an unchanged container made by it is told apart from one whose manifest changed."""
    old = _OLD_DEFAULTS.get(version, {})
    if "network" in old and spec.network_defaulted:
        return dataclasses.replace(spec, network=old["network"])
    return spec


def known(version: str | None) -> bool:
    return version in HASHED_FIELDS


def older(version: str) -> bool:
    """Whether `version` (a known one) predates the one this build writes."""
    return int(version) < int(CURRENT_VERSION)
