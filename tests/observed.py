"""Observed engine state written as plain data, and the one converter to the core's `Observed`.

Scenario cases (tests/scenarios/*/observed.yaml) describe what the engine showed in a neutral
shape, one key per fact ds01ctl reads, rather than as raw `docker inspect` JSON:

    now: 2026-11-24T12:00:00Z
    engine: {id, name, version, api_version, cpus, memory}
    images: {reference: image id}
    ledger: {pending_since: {workspace/bob/x: time}}        (optional)
    accounts: {login: {uid, gid}}                            (optional: the host's passwd)
    containers:
      - {name, id, state, labels, image, image_id, created, finished, user, cmd, tty,
         working_dir, env, image_env, image_labels, binds, network, shm_size, ulimits,
         stop_signal, stop_timeout, gpus, nano_cpus, memory, memory_swap, pids,
         restart_policy, cap_drop, cap_add, security_opt, log,
         gpu_count, cdi, nvidia_visible_devices, devices, privileged, ports}

    log: {driver: json-file, options: {max-file: '3', max-size: '52428800'}}

`gpus` are the device ids it asked for (UUIDs, indexes, `i:j`, `all`); the other ways a
container reaches a GPU are `gpu_count` (a device request by count, -1 all), `cdi` (CDI device
names), `nvidia_visible_devices` (the variable, under an NVIDIA runtime), `devices` (the
/dev/nvidia* nodes it was given; every device node it was given, AMD's included) and
`privileged`. `ports` are its published ports, `[container port, host address, host port]`.

`observed_state` builds the core's `Observed` from it, as the Docker driver's observation
would have (keys map one to one onto `ContainerConfig`; an unknown key is refused, so a typo
cannot pass silently). `observed_entry` goes the other way: the container ds01ctl creates
for a spec, as such data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ds01ctl import labels as L
from ds01ctl.live.docker import parse_docker_time
from ds01ctl.model.observed import (
    ContainerConfig,
    EngineInfo,
    GpuAccess,
    ImageConfig,
    Limits,
    Observed,
    ObservedContainer,
)
from ds01ctl.model.spec import ContainerSpec, UserAccount

NEVER = "0001-01-01T00:00:00Z"  # Docker's time for "not yet"
DEFAULT_STOP_GRACE = 10  # what the engine reports for a container created without one

# Keys of a container entry, beside those `ContainerConfig` takes by the same meaning.
_KEYS = frozenset(
    {"name", "id", "state", "labels", "image", "image_id", "created", "finished"}
    | {"image_env", "image_labels", "user", "cmd", "tty", "working_dir", "env", "binds"}
    | {"network", "shm_size", "ulimits", "stop_signal", "stop_timeout", "gpus", "nano_cpus"}
    | {"memory", "memory_swap", "pids", "restart_policy", "cap_drop", "cap_add"}
    | {"security_opt", "log", "gpu_count", "cdi", "nvidia_visible_devices", "devices"}
    | {"privileged", "ports"}
)


def docker_time(value: Any) -> str:
    """A time as Docker writes it (YAML may have read it as a datetime already)."""
    if value is None:
        return NEVER
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def when(value: Any) -> dt.datetime:
    """A time of the observation (`now`, ledger entries) as an aware datetime."""
    parsed = dt.datetime.fromisoformat(docker_time(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _time(value: Any) -> dt.datetime | None:
    """A container's time as the driver reads it; None for absent or Docker's "never"."""
    return parse_docker_time(docker_time(value))


def observed_state(observed: Mapping[str, Any], site: str) -> Observed:
    """The core's `Observed` for observed data, as the Docker driver would have built it."""
    e = observed["engine"]
    engine = EngineInfo(
        str(e["id"]),
        str(e["name"]),
        str(e["version"]),
        str(e["api_version"]),
        int(e["cpus"]),
        int(e["memory"]),
    )
    entries = sorted(observed.get("containers") or [], key=lambda c: c["id"])
    images = {str(k): str(v) for k, v in (observed.get("images") or {}).items()}
    containers = tuple(observed_container(entry, site) for entry in entries)
    return Observed(engine, containers, MappingProxyType(images))


def _ulimits(value: Mapping[str, Any]) -> tuple[tuple[str, int, int], ...]:
    """`{name: limit}` (soft = hard) or `{name: [soft, hard]}`."""
    pairs = {n: v if isinstance(v, list) else [v, v] for n, v in value.items()}
    return tuple(sorted((str(n), int(s), int(h)) for n, (s, h) in pairs.items()))


def _strings(value: Mapping[str, Any] | None) -> Mapping[str, str]:
    return MappingProxyType({str(k): str(v) for k, v in (value or {}).items()})


def observed_container(entry: Mapping[str, Any], site: str) -> ObservedContainer:
    """One observed container as the Docker driver builds it for site `site`."""
    unknown = sorted(k for k in entry if k not in _KEYS)
    if unknown:
        raise ValueError(
            f"container {entry.get('name')}: unknown key(s) {', '.join(unknown)}; add it to "
            "the core's ContainerConfig and a key here"
        )
    labels = {str(k): str(v) for k, v in (entry.get("labels") or {}).items()}
    owner = L.ownership(labels, site)
    log = entry.get("log") or {}
    config = ContainerConfig(
        name=str(entry["name"]),
        image_tag=entry.get("image") or None,
        user=entry.get("user") or "",
        command=tuple(entry.get("cmd") or ()),
        tty=entry.get("tty") or False,
        working_dir=entry.get("working_dir") or "",
        env=_strings(entry.get("env")),
        labels=MappingProxyType(dict(labels)),
        stop_signal=entry.get("stop_signal") or "",
        stop_grace=entry.get("stop_timeout") or DEFAULT_STOP_GRACE,
        binds=tuple(sorted(entry.get("binds") or ())),
        network=entry.get("network") or "",
        shm_size=entry.get("shm_size") or 0,
        ulimits=_ulimits(entry.get("ulimits") or {}),
        gpus=tuple(sorted(entry.get("gpus") or ())),
        gpu_access=GpuAccess(
            ids=tuple(sorted(str(i) for i in entry.get("gpus") or ())),
            count=int(entry.get("gpu_count") or 0),
            cdi=tuple(sorted(entry.get("cdi") or ())),
            visible=entry.get("nvidia_visible_devices"),
            nodes=tuple(sorted(entry.get("devices") or ())),
            privileged=bool(entry.get("privileged")),
        ),
        limits=Limits(
            nano_cpus=entry.get("nano_cpus") or 0,
            memory=entry.get("memory") or 0,
            memory_swap=entry.get("memory_swap") or 0,
            pids=entry.get("pids") or 0,
        ),
        restart_policy=entry.get("restart_policy") or "no",
        cap_drop=tuple(sorted(entry.get("cap_drop") or ())),
        cap_add=tuple(sorted(entry.get("cap_add") or ())),
        security_opt=tuple(sorted(entry.get("security_opt") or ())),
        log_driver=str(log.get("driver") or ""),
        log_options=tuple(sorted((str(k), str(v)) for k, v in (log.get("options") or {}).items())),
        created=_time(entry.get("created")),
        finished=_time(entry.get("finished")),
        ports=tuple(sorted((int(c), str(a), int(h)) for c, a, h in entry.get("ports") or ())),
        devices=tuple(sorted(entry.get("devices") or ())),
    )
    ours = owner is L.Ownership.OURS
    image_config = ImageConfig(
        _strings(entry.get("image_env")), _strings(entry.get("image_labels"))
    )
    return ObservedContainer(
        id=str(entry["id"]),
        name=str(entry["name"]),
        state=str(entry["state"]),
        labels=MappingProxyType(labels),
        image=str(entry.get("image", "")),
        image_id=str(entry.get("image_id", "")),
        ownership=owner,
        # As the driver: every container is inspected (any may hold a GPU), and only ours
        # get their image's Env and Labels.
        config=config,
        image_config=image_config if ours else ImageConfig(),
    )


def accounts(observed: Mapping[str, Any]) -> dict[str, UserAccount]:
    """The host's passwd entries the observation names (login → account)."""
    found = observed.get("accounts") or {}
    return {str(k): UserAccount(str(k), int(v["uid"]), int(v["gid"])) for k, v in found.items()}


def pending_since(observed: Mapping[str, Any]) -> dict[str, dt.datetime]:
    found = (observed.get("ledger") or {}).get("pending_since") or {}
    return {str(k): when(v) for k, v in found.items()}


def observed_entry(
    spec: ContainerSpec,
    *,
    id: str,
    state: str = "exited",
    image_id: str = "sha256:img",
    created: Any = None,
    finished: Any = None,
    image_env: Mapping[str, str] | None = None,
    image_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The container ds01ctl's driver creates for `spec`, as observed data: its env and labels
    are the image's plus the spec's, as Docker merges them."""
    image_env = dict(image_env or {})
    image_labels = dict(image_labels or {})
    return {
        "name": spec.container_name,
        "id": id,
        "state": state,
        "created": docker_time(created),
        "finished": docker_time(finished),
        "image": spec.image_tag,
        "image_id": image_id,
        "labels": {**image_labels, **dict(spec.labels)},
        "user": spec.user,
        "cmd": list(spec.command),
        "tty": spec.tty,
        "working_dir": spec.working_dir,
        "env": {**image_env, **dict(spec.environment)},
        "image_env": image_env,
        "image_labels": image_labels,
        "binds": [b.text for b in spec.binds],
        "network": spec.network,
        "shm_size": spec.shm_size,
        "ulimits": dict(spec.ulimits),
        "stop_signal": spec.stop_signal,
        "stop_timeout": spec.stop_grace,
        "gpus": list(spec.gpus),
        "nano_cpus": spec.nano_cpus,
        "memory": spec.memory,
        "memory_swap": spec.memory_swap,
        "pids": spec.pids,
        "restart_policy": spec.restart_policy,
        "cap_drop": list(spec.cap_drop),
        "cap_add": list(spec.cap_add),
        "security_opt": list(spec.security_opt),
        "log": {"driver": spec.log_driver, "options": dict(spec.log_options)},
        # An endpoint's own (a workspace's entry reads as it always did).
        **({"ports": [list(p) for p in spec.ports]} if spec.ports else {}),
        **({"devices": list(spec.devices)} if spec.devices else {}),
    }
