"""Reading the Docker engine: one list call, then `inspect` only for the containers we manage.

The list endpoint carries names, state and labels, enough to decide ownership; the fields it
lacks (limits, device requests, binds) need `inspect`, which we ask only for containers of
this site and for mlc/DS01 ones (they may hold GPUs). Images come from one more call.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ds01ctl import labels as L
from ds01ctl.errors import DockerUnavailable

if TYPE_CHECKING:
    import docker

MIN_API_VERSION = (1, 41)


@dataclass(frozen=True, slots=True)
class EngineInfo:
    id: str
    name: str
    version: str
    api_version: str
    cpus: int
    memory: int
    security_options: tuple[str, ...] = ()  # `docker info` SecurityOptions: name=userns, ...
    default_runtime: str = "runc"


@dataclass(frozen=True, slots=True)
class LiveContainer:
    """A container as the engine reported it; `inspect` is None when we did not ask."""

    id: str
    name: str
    state: str  # created | running | paused | restarting | exited | dead
    labels: Mapping[str, str]
    image: str
    image_id: str
    ownership: L.Ownership
    inspect: Mapping[str, Any] | None = None
    image_config: Mapping[str, Any] = field(default_factory=dict)  # its image's Env, Labels

    @property
    def running(self) -> bool:
        return self.state in ("running", "restarting", "paused")

    @property
    def kind(self) -> str:
        return L.get(self.labels, L.DS01_KIND) or "workspace"

    @property
    def owner(self) -> str | None:
        return (
            L.get(self.labels, L.DS01_OWNER)
            or L.get(self.labels, L.DS01_USER)
            or L.get(self.labels, L.MLC_USER)
        )

    @property
    def object_name(self) -> str:
        found = L.get(self.labels, L.DS01_NAME) or L.get(self.labels, L.MLC_NAME)
        return found or self.name.split("._.")[0]

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.owner or '?'}/{self.object_name}"

    @property
    def gpu_ids(self) -> tuple[str, ...]:
        """Device IDs from `HostConfig.DeviceRequests` (inspect only; env vars are no claim)."""
        if self.inspect is None:
            return ()
        requests = (self.inspect.get("HostConfig") or {}).get("DeviceRequests") or []
        return tuple(sorted(i for r in requests for i in (r.get("DeviceIDs") or [])))


@dataclass(frozen=True, slots=True)
class DockerState:
    """One observation of the engine."""

    engine: EngineInfo
    containers: tuple[LiveContainer, ...]
    images: Mapping[str, str]  # reference (repo:tag) → image ID
    requests: int = field(default=0)  # API calls it took, for the benchmark

    def ours(self) -> tuple[LiveContainer, ...]:
        return tuple(c for c in self.containers if c.ownership is L.Ownership.OURS)

    def helpers(self) -> tuple[LiveContainer, ...]:
        """This site's helper containers: an apply removes its own, so these are leftovers."""
        return tuple(c for c in self.containers if c.ownership is L.Ownership.HELPER)


CONNECT_TIMEOUT_ENV = "DS01CTL_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 10.0  # seconds for the first call: an engine that answers, answers fast


def connect_timeout() -> float:
    """Seconds to wait for the engine's first answer: DS01CTL_CONNECT_TIMEOUT, or 10."""
    text = os.environ.get(CONNECT_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_CONNECT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 3600:
        raise DockerUnavailable(
            f"{CONNECT_TIMEOUT_ENV}={text!r} is not a number of seconds",
            hint=f"set it to e.g. 30, or unset it for {DEFAULT_CONNECT_TIMEOUT:g}",
        )
    return value


def connect(base_url: str | None = None, timeout: int = 60) -> docker.APIClient:
    """A low-level client for the engine (DOCKER_HOST or the default socket).

    The first call (the version) waits `connect_timeout()` seconds: a hung engine is reported
    as such in seconds, not after a minute per command. Later calls wait `timeout`.
    """
    import docker
    from docker.errors import DockerException
    from requests.exceptions import Timeout

    first = connect_timeout()
    try:
        if base_url is None:
            client = docker.APIClient(**docker.utils.kwargs_from_env(), timeout=first)
        else:
            client = docker.APIClient(base_url=base_url, timeout=first)
        version = client.version()
    except PermissionError:
        raise _permission_denied() from None
    except (DockerException, Timeout) as exc:
        if "Permission denied" in str(exc) or "PermissionError" in str(exc):
            raise _permission_denied() from None
        if isinstance(exc, Timeout) or "timed out" in str(exc).lower():
            where = base_url or os.environ.get("DOCKER_HOST") or "the default socket"
            raise DockerUnavailable(
                f"the Docker engine at {where} did not answer within {first:g} s (timed out)",
                hint="check that dockerd is not hung (systemctl status docker), or wait longer "
                f"with {CONNECT_TIMEOUT_ENV}=SECONDS",
            ) from None
        raise DockerUnavailable(
            "no Docker engine answers",
            hint="start dockerd (scripts/docker-engine does it on a test machine), "
            "or set DOCKER_HOST",
        ) from None
    client.timeout = timeout
    _reuse_connections(client)
    api = tuple(int(p) for p in str(version.get("ApiVersion", "0.0")).split(".")[:2])
    if api < MIN_API_VERSION:
        raise DockerUnavailable(
            f"the Docker engine is too old (API {version.get('ApiVersion')}); "
            "ds01ctl needs API 1.41 (Docker 20.10) or newer",
            hint="upgrade the engine",
        )
    return client


def _reuse_connections(client: docker.APIClient) -> None:
    """One pooled connection for the whole socket, not one per URL.

    docker-py's unix-socket adapter keys its connection pools by the full request URL (and
    keeps 25), so with current `requests` every `inspect` of another container opens a new
    connection: about a third of a plan's time over 300 containers. Every URL goes to the
    same socket, so one pool serves them all. `trust_env` off stops `requests` re-reading
    proxy settings from the environment on every call (they never apply to a unix socket).
    """
    from docker.transport import UnixHTTPAdapter

    adapter = client.get_adapter(client.base_url)
    if not isinstance(adapter, UnixHTTPAdapter):
        return
    get_connection = adapter.get_connection
    base = client.base_url

    def pooled(url: str, proxies: Any = None) -> Any:
        return get_connection(base, proxies)

    adapter.get_connection = pooled
    client.trust_env = False


def _permission_denied() -> DockerUnavailable:
    return DockerUnavailable(
        "permission denied on the Docker socket",
        hint="run ds01ctl as root or as a member of the docker group",
    )


def engine_info(client: docker.APIClient) -> EngineInfo:
    info = client.info()
    return EngineInfo(
        id=str(info.get("ID", "")),
        name=str(info.get("Name", "")),
        version=str(info.get("ServerVersion", "")),
        api_version=str(client.api_version),
        cpus=int(info.get("NCPU", 0)),
        memory=int(info.get("MemTotal", 0)),
        security_options=tuple(str(o) for o in info.get("SecurityOptions") or ()),
        default_runtime=str(info.get("DefaultRuntime") or "runc"),
    )


def observe_docker(client: docker.APIClient, site: str) -> DockerState:
    """Containers (inspected where it matters) and local images, in a few API calls."""
    from docker.errors import APIError, NotFound

    engine = engine_info(client)
    requests = 1
    containers = []
    listed = client.containers(all=True)
    requests += 1
    for entry in sorted(listed, key=lambda e: e["Id"]):
        labels = MappingProxyType(dict(entry.get("Labels") or {}))
        owner = L.ownership(labels, site)
        inspect = None
        if owner is not L.Ownership.FOREIGN:
            try:
                inspect = MappingProxyType(client.inspect_container(entry["Id"]))
            except NotFound:
                continue  # removed between the list and the inspect
            except APIError as exc:
                raise DockerUnavailable(
                    f"cannot inspect container {entry['Id'][:12]}: {exc}"
                ) from None
            requests += 1
        names = entry.get("Names") or ["/"]
        containers.append(
            LiveContainer(
                id=entry["Id"],
                name=names[0].lstrip("/"),
                state=str(entry.get("State", "")),
                labels=labels,
                image=str(entry.get("Image", "")),
                image_id=str(entry.get("ImageID", "")),
                ownership=owner,
                inspect=inspect,
            )
        )
    images: dict[str, str] = {}
    for image in client.images():
        for tag in image.get("RepoTags") or []:
            if tag != "<none>:<none>":
                images[tag] = image["Id"]
    requests += 1
    containers, extra = _with_image_configs(client, containers)
    return DockerState(engine, tuple(containers), MappingProxyType(images), requests + extra)


def _with_image_configs(
    client: docker.APIClient, containers: list[LiveContainer]
) -> tuple[list[LiveContainer], int]:
    """What each of our containers inherits from its image (Env, Labels), one inspect per
    distinct image: so a comparison can tell what the container itself was given."""
    from docker.errors import NotFound

    configs: dict[str, Mapping[str, Any]] = {}
    for image_id in sorted({c.image_id for c in containers if c.ownership is L.Ownership.OURS}):
        try:
            config = client.inspect_image(image_id).get("Config") or {}
        except NotFound:
            config = {}
        configs[image_id] = MappingProxyType(
            {"Env": config.get("Env") or [], "Labels": config.get("Labels") or {}}
        )
    return [
        replace(c, image_config=configs[c.image_id]) if c.image_id in configs else c
        for c in containers
    ], len(configs)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
