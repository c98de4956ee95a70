"""Reading the Docker engine into the core's `Observed`: one list call, then `inspect` of
every container.

The list endpoint carries names, state and labels, enough to decide ownership; the fields it
lacks (limits, device requests, binds) need `inspect`. Any container may hold a GPU (a
`docker run --gpus` by hand carries no label), and the list shows none of the ways it can
(device requests, CDI devices, an NVIDIA runtime, /dev/nvidia* nodes, privileged), so every
container is inspected: one request each, which a plan must afford anyway for its own.
Images come from one more call. This
is the one place that knows how those facts look in Docker's JSON. Costly reads are
targeted: `with_layer_changes` asks `docker diff` and the writable layer's size only for the
containers a draft plan removes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ds01ctl import labels as L
from ds01ctl.errors import DockerUnavailable
from ds01ctl.model.observed import (
    ContainerConfig,
    EngineInfo,
    GpuAccess,
    ImageConfig,
    LayerChanges,
    Limits,
    Observed,
    ObservedContainer,
    ObservedImage,
)

if TYPE_CHECKING:
    import docker

MIN_API_VERSION = (1, 41)
DEFAULT_STOP_GRACE = 10  # seconds: what the engine waits when a container names none
_NEVER = "0001-01-01T00:00:00Z"  # Docker's time for "not yet"


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


def observe_docker(client: docker.APIClient, site: str) -> Observed:
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
        try:
            config = container_config(client.inspect_container(entry["Id"]))
        except NotFound:
            continue  # removed between the list and the inspect
        except APIError as exc:
            raise DockerUnavailable(f"cannot inspect container {entry['Id'][:12]}: {exc}") from None
        requests += 1
        names = entry.get("Names") or ["/"]
        containers.append(
            ObservedContainer(
                id=entry["Id"],
                name=names[0].lstrip("/"),
                state=str(entry.get("State", "")),
                labels=labels,
                image=str(entry.get("Image", "")),
                image_id=str(entry.get("ImageID", "")),
                ownership=owner,
                config=config,
            )
        )
    images: dict[str, str] = {}
    built: list[ObservedImage] = []
    listed_images = client.images()
    for image in listed_images:
        tags = tuple(t for t in image.get("RepoTags") or [] if t != "<none>:<none>")
        for tag in tags:
            images[tag] = image["Id"]
        image_labels: dict[str, str] = image.get("Labels") or {}
        if L.DS01_IMAGE_HASH in image_labels or L.SNAPSHOT_OF in image_labels:
            built.append(
                ObservedImage(
                    str(image["Id"]),
                    tags,
                    MappingProxyType(dict(image_labels)),
                    int(image.get("Size") or 0),
                    int(image.get("Created") or 0),
                    str(image.get("ParentId") or ""),
                )
            )
    requests += 1
    containers, extra = _with_image_configs(client, containers)
    built.sort(key=lambda i: (-i.created, i.id))
    site_images, read = _site_images(client, listed_images, site)
    return Observed(
        engine,
        tuple(containers),
        MappingProxyType(images),
        requests + extra + read,
        site_images=site_images,
        parents=frozenset(str(i.get("ParentId")) for i in listed_images if i.get("ParentId")),
        built_images=tuple(built),
    )


def _site_images(
    client: docker.APIClient, listed: Iterable[Mapping[str, Any]], site: str
) -> tuple[tuple[ObservedImage, ...], int]:
    """This site's account images and snapshots, from the image list. Two snapshots of one
    workspace with the same parent and size may hold the same content: only those are
    inspected, for their layers (a crash between a snapshot and the removal it precedes
    leaves such a pair)."""
    from docker.errors import NotFound

    found = []
    for image in listed:
        labels = dict(image.get("Labels") or {})
        tags = tuple(sorted(t for t in image.get("RepoTags") or [] if t != "<none>:<none>"))
        snapshot = labels.get(L.SNAPSHOT_OF) and labels.get(L.SNAPSHOT_SITE) == site
        account = labels.get(L.USER_SETUP_SITE) == site and not labels.get(L.SNAPSHOT_OF)
        if tags and (snapshot or account):
            found.append(
                ObservedImage(
                    id=str(image["Id"]),
                    tags=tags,
                    labels=MappingProxyType(labels),
                    size=int(image.get("Size") or 0),
                    created=int(image.get("Created") or 0),
                    parent=str(image.get("ParentId") or ""),
                )
            )
    alike: dict[tuple[str, str, int], list[int]] = {}
    for n, record in enumerate(found):
        if record.snapshot_of:
            alike.setdefault((record.snapshot_of, record.parent, record.size), []).append(n)
    read = 0
    for group in alike.values():
        if len(group) < 2:
            continue
        for n in group:
            with contextlib.suppress(NotFound):
                inspect = client.inspect_image(found[n].id)
                layers = tuple((inspect.get("RootFS") or {}).get("Layers") or ())
                found[n] = dataclasses.replace(found[n], layers=layers)
            read += 1
    return tuple(found), read


def container_config(inspect: Mapping[str, Any]) -> ContainerConfig:
    """`docker inspect` of a container as the core's record, with the engine's defaults."""
    config = inspect.get("Config") or {}
    host = inspect.get("HostConfig") or {}
    state = inspect.get("State") or {}
    requests = host.get("DeviceRequests") or []
    ulimits = host.get("Ulimits") or []
    log = host.get("LogConfig") or {}
    return ContainerConfig(
        name=str(inspect.get("Name", "")).lstrip("/"),
        image_tag=config.get("Image") or None,
        user=config.get("User") or "",
        command=tuple(config.get("Cmd") or ()),
        tty=config.get("Tty") or False,
        working_dir=config.get("WorkingDir") or "",
        env=_pairs(config.get("Env")),
        labels=MappingProxyType(dict(config.get("Labels") or {})),
        stop_signal=config.get("StopSignal") or "",
        stop_grace=config.get("StopTimeout") or DEFAULT_STOP_GRACE,
        binds=tuple(sorted(host.get("Binds") or ())),
        network=host.get("NetworkMode") or "",
        shm_size=host.get("ShmSize") or 0,
        ulimits=tuple(sorted((u["Name"], int(u["Soft"]), int(u["Hard"])) for u in ulimits)),
        gpus=tuple(sorted(i for r in requests for i in (r.get("DeviceIDs") or [])))
        or _amd_gpus(host, config.get("Labels") or {}),
        gpu_access=gpu_access(inspect),
        limits=Limits(
            nano_cpus=host.get("NanoCpus") or 0,
            memory=host.get("Memory") or 0,
            memory_swap=host.get("MemorySwap") or 0,
            pids=host.get("PidsLimit") or 0,
        ),
        restart_policy=str((host.get("RestartPolicy") or {}).get("Name") or "no"),
        cap_drop=tuple(sorted(host.get("CapDrop") or ())),
        cap_add=tuple(sorted(host.get("CapAdd") or ())),
        security_opt=tuple(sorted(host.get("SecurityOpt") or ())),
        log_driver=str(log.get("Type") or ""),
        log_options=tuple(sorted((str(k), str(v)) for k, v in (log.get("Config") or {}).items())),
        created=parse_docker_time(str(inspect.get("Created") or "")),
        finished=parse_docker_time(str(state.get("FinishedAt") or "")),
        started=parse_docker_time(str(state.get("StartedAt") or "")),
        pid=int(state.get("Pid") or 0),
        ports=_ports(host.get("PortBindings") or {}),
        devices=tuple(sorted(str(d.get("PathOnHost") or "") for d in host.get("Devices") or [])),
    )


def _amd_gpus(host: Mapping[str, Any], labels: Mapping[str, str]) -> tuple[str, ...]:
    """An AMD container's GPUs: the engine records only device nodes (/dev/kfd and render
    nodes), so the GPUs it was made with are those its label names."""
    nodes = {str(d.get("PathOnHost") or "") for d in host.get("Devices") or []}
    if AMD_KFD not in nodes:
        return ()
    return tuple(sorted(u for u in (L.get(labels, L.DS01_GPU_UUIDS) or "").split(";") if u))


def _ports(bindings: Mapping[str, Any]) -> tuple[tuple[int, str, int], ...]:
    """`HostConfig.PortBindings` (`{"8000/tcp": [{"HostIp": …, "HostPort": …}]}`) as the
    spec writes ports."""
    found = []
    for key, hosts in bindings.items():
        port = int(str(key).split("/")[0])
        for host in hosts or []:
            found.append((port, str(host.get("HostIp") or ""), int(host.get("HostPort") or 0)))
    return tuple(sorted(found))


AMD_KFD = "/dev/kfd"  # ROCm's compute interface: every AMD GPU container has it
_NVIDIA_NODE = re.compile(r"/dev/nvidia\d+$")
_CDI_NAME = re.compile(r"^[a-z0-9.-]+/[a-zA-Z0-9_.-]+=\S+$")  # vendor/class=name


def gpu_access(inspect: Mapping[str, Any]) -> GpuAccess:
    """Every way the container reaches a GPU, raw (gpu.md §3.3: all of these count).

    Device requests by id or count (the `nvidia` driver, or none: the engine picks it by the
    `gpu` capability), CDI names (requests of the `cdi` driver, or a CDI name where a device
    path goes), `NVIDIA_VISIBLE_DEVICES` in the environment under an NVIDIA runtime (the
    image's default included: `Config.Env` holds it), `/dev/nvidiaN` device nodes, and
    privileged (every device node of the host).
    """
    config = inspect.get("Config") or {}
    host = inspect.get("HostConfig") or {}
    ids: list[str] = []
    cdi: list[str] = []
    count = 0
    for request in host.get("DeviceRequests") or []:
        driver = str(request.get("Driver") or "")
        named = [str(i) for i in request.get("DeviceIDs") or []]
        if driver == "cdi":
            cdi.extend(named)
            continue
        capabilities = {c for group in request.get("Capabilities") or [] for c in group}
        if driver not in ("", "nvidia") and "gpu" not in capabilities:
            continue  # another vendor's devices
        ids.extend(named)
        asked = int(request.get("Count") or 0)
        count = -1 if -1 in (asked, count) else max(count, asked)
    nodes = []
    for device in host.get("Devices") or []:
        path = str(device.get("PathOnHost") or "")
        if _CDI_NAME.match(path):
            cdi.append(path)
        elif _NVIDIA_NODE.match(path):
            nodes.append(path)
    visible = None
    if "nvidia" in str(host.get("Runtime") or ""):
        env = _pairs(config.get("Env"))
        visible = env.get("NVIDIA_VISIBLE_DEVICES")
    return GpuAccess(
        ids=tuple(sorted(ids)),
        count=count,
        cdi=tuple(sorted(cdi)),
        visible=visible,
        nodes=tuple(sorted(nodes)),
        privileged=bool(host.get("Privileged")),
    )


def _pairs(entries: Iterable[str] | None) -> Mapping[str, str]:
    """`KEY=value` entries (Docker's Env) as a mapping; a repeated key: the last wins."""
    return MappingProxyType({k: v for k, _, v in (e.partition("=") for e in entries or ())})


def parse_docker_time(text: str) -> dt.datetime | None:
    """Docker's RFC 3339 times carry nanoseconds; Python reads at most microseconds."""
    if not text or text.startswith(_NEVER[:4]):
        return None
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    try:
        return dt.datetime.fromisoformat(trimmed)
    except ValueError:
        return None


def _with_image_configs(
    client: docker.APIClient, containers: list[ObservedContainer]
) -> tuple[list[ObservedContainer], int]:
    """What each of our containers inherits from its image (Env, Labels), one inspect per
    distinct image: so a comparison can tell what the container itself was given."""
    from docker.errors import NotFound

    configs: dict[str, ImageConfig] = {}
    for image_id in sorted({c.image_id for c in containers if c.ownership is L.Ownership.OURS}):
        try:
            config = client.inspect_image(image_id).get("Config") or {}
        except NotFound:
            config = {}
        configs[image_id] = ImageConfig(
            env=_pairs(config.get("Env")),
            labels=MappingProxyType(dict(config.get("Labels") or {})),
        )
    return [
        dataclasses.replace(c, image_config=configs[c.image_id]) if c.image_id in configs else c
        for c in containers
    ], len(configs)


def layer_changes(client: docker.APIClient, container_id: str) -> LayerChanges:
    """How much the writable layer changed: `docker diff` and its size (two calls, the size
    one costly for the engine: ask it only for containers about to be removed)."""
    changed = client.diff(container_id) or []
    sized = client.containers(all=True, size=True, filters={"id": container_id})
    size = int(sized[0].get("SizeRw") or 0) if sized else 0
    return LayerChanges(len(changed), size)


def with_layer_changes(
    client: docker.APIClient, observed: Observed, container_ids: Iterable[str]
) -> Observed:
    """`observed` with the layer changes of the named containers read (a targeted read)."""
    from docker.errors import NotFound

    wanted = set(container_ids)
    if not wanted:
        return observed
    containers = []
    for c in observed.containers:
        layer = None
        if c.id in wanted:
            with contextlib.suppress(NotFound):  # gone since: apply will find out
                layer = layer_changes(client, c.id)
        containers.append(c if layer is None else dataclasses.replace(c, layer=layer))
    return dataclasses.replace(
        observed, containers=tuple(containers), requests=observed.requests + 2 * len(wanted)
    )
