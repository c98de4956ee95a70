"""Observed Docker state written as plain data, and the one converter to today's `DockerState`.

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
         restart_policy, cap_drop, cap_add, security_opt}

`docker_state` is the only place that knows how those facts look in Docker's inspect JSON;
when the core reads its own observed model, only it changes. A key with a dot (for example
`HostConfig.SecurityOpt`) is copied to that path of the inspect JSON as it is, so a new
field needs no change here; any other unknown key is refused, so a typo cannot pass silently.
`observed_entry` goes the other way: the container ds01ctl creates for a spec, as such data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ds01ctl import labels as L
from ds01ctl.live.docker import DockerState, EngineInfo, LiveContainer
from ds01ctl.resolve.spec import ContainerSpec, UserAccount

NEVER = "0001-01-01T00:00:00Z"  # Docker's time for "not yet"


def _ulimits(value: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`{name: limit}` (soft = hard) or `{name: [soft, hard]}`."""
    pairs = {n: v if isinstance(v, list) else [v, v] for n, v in value.items()}
    return [{"Name": n, "Soft": s, "Hard": h} for n, (s, h) in pairs.items()]


def _device_requests(value: list[str]) -> list[dict[str, Any]] | None:
    if not value:
        return None  # what Docker shows for a container created without GPUs
    return [
        {
            "Driver": "",
            "Count": 0,
            "DeviceIDs": list(value),
            "Capabilities": [["gpu"]],
            "Options": {},
        }
    ]


def _pairs(value: Mapping[str, Any]) -> list[str]:
    return [f"{k}={v}" for k, v in value.items()]


def _restart_policy(value: str) -> dict[str, Any]:
    return {"Name": value, "MaximumRetryCount": 0}


def _same(value: Any) -> Any:
    return value


def _list_or_none(value: list[str]) -> list[str] | None:
    return list(value) or None  # Docker shows an empty list as null


# neutral key → (inspect section, inspect key, to Docker's form)
_INSPECT: dict[str, tuple[str, str, Callable[[Any], Any]]] = {
    "user": ("Config", "User", _same),
    "cmd": ("Config", "Cmd", list),
    "tty": ("Config", "Tty", _same),
    "working_dir": ("Config", "WorkingDir", _same),
    "env": ("Config", "Env", _pairs),
    "stop_signal": ("Config", "StopSignal", _same),
    "stop_timeout": ("Config", "StopTimeout", _same),
    "binds": ("HostConfig", "Binds", list),
    "network": ("HostConfig", "NetworkMode", _same),
    "shm_size": ("HostConfig", "ShmSize", _same),
    "ulimits": ("HostConfig", "Ulimits", _ulimits),
    "gpus": ("HostConfig", "DeviceRequests", _device_requests),
    "nano_cpus": ("HostConfig", "NanoCpus", _same),
    "memory": ("HostConfig", "Memory", _same),
    "memory_swap": ("HostConfig", "MemorySwap", _same),
    "pids": ("HostConfig", "PidsLimit", _same),
    "restart_policy": ("HostConfig", "RestartPolicy", _restart_policy),
    "cap_drop": ("HostConfig", "CapDrop", _list_or_none),
    "cap_add": ("HostConfig", "CapAdd", _list_or_none),
    "security_opt": ("HostConfig", "SecurityOpt", _list_or_none),
}
# Keys `live_container` reads itself.
_OWN = frozenset(
    {"name", "id", "state", "labels", "image", "image_id", "created", "finished"}
    | {"image_env", "image_labels"}
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


def docker_state(observed: Mapping[str, Any], site: str) -> DockerState:
    """Today's `DockerState` for observed data, as `observe_docker` would have built it."""
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
    containers = tuple(live_container(entry, site) for entry in entries)
    return DockerState(engine, containers, MappingProxyType(images))


def live_container(entry: Mapping[str, Any], site: str) -> LiveContainer:
    """One observed container as `observe_docker` builds it for site `site`."""
    unknown = sorted(k for k in entry if k not in _OWN and k not in _INSPECT and "." not in k)
    if unknown:
        raise ValueError(
            f"container {entry.get('name')}: unknown key(s) {', '.join(unknown)}; add a row to "
            "tests/observed.py, or write the inspect path (e.g. HostConfig.SecurityOpt)"
        )
    labels = {str(k): str(v) for k, v in (entry.get("labels") or {}).items()}
    owner = L.ownership(labels, site)
    state = str(entry["state"])
    inspect: dict[str, Any] = {
        "Id": entry["id"],
        "Name": "/" + entry["name"],
        "Created": docker_time(entry.get("created")),
        "Image": entry.get("image_id", ""),
        "State": {
            "Status": state,
            "Running": state in ("running", "restarting", "paused"),
            "Paused": state == "paused",
            "Restarting": state == "restarting",
            "FinishedAt": docker_time(entry.get("finished")),
        },
        "Config": {"Image": entry.get("image", ""), "Labels": dict(labels)},
        "HostConfig": {},
    }
    for key, value in entry.items():
        if key in _INSPECT:
            section, name, to_docker = _INSPECT[key]
            inspect[section][name] = to_docker(value)
        elif "." in key:
            *path, last = key.split(".")
            place = inspect
            for part in path:
                place = place.setdefault(part, {})
            place[last] = value
    ours = owner is L.Ownership.OURS
    image_config = {
        "Env": _pairs(entry.get("image_env") or {}),
        "Labels": dict(entry.get("image_labels") or {}),
    }
    return LiveContainer(
        id=str(entry["id"]),
        name=str(entry["name"]),
        state=state,
        labels=MappingProxyType(labels),
        image=str(entry.get("image", "")),
        image_id=str(entry.get("image_id", "")),
        ownership=owner,
        # As observe_docker: only containers that may be ours or hold GPUs are inspected,
        # and only ours get their image's Env and Labels.
        inspect=None if owner is L.Ownership.FOREIGN else MappingProxyType(inspect),
        image_config=MappingProxyType(image_config) if ours else {},
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
        "binds": [b.docker for b in spec.binds],
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
    }
