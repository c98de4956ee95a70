"""One observation of the container engine, as typed frozen records the core owns.

A driver fills it (`live/docker.py` today) in a few list calls plus `inspect` of every
container (any of them may hold a GPU, and only `inspect` tells); `resolve/` and `plan/`
read only this, never an engine's wire format, and never ask the engine again. Costly reads
are targeted and say so: `layer` (how much a container's writable layer changed) is read
only for containers a draft plan removes, and is None everywhere else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ds01ctl import labels as L
from ds01ctl.names import docker_safe


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class EngineInfo:
    id: str  # the engine's own id: what the apply lock and saved plans are keyed by
    name: str
    version: str
    api_version: str
    cpus: int
    memory: int
    security_options: tuple[str, ...] = ()  # e.g. name=userns, name=rootless
    default_runtime: str = "runc"


@dataclass(frozen=True, slots=True)
class Limits:
    """The live-updatable resource limits; 0 means none."""

    nano_cpus: int = 0
    memory: int = 0  # bytes
    memory_swap: int = 0  # bytes, memory included
    pids: int = 0


@dataclass(frozen=True, slots=True)
class GpuAccess:
    """Every way a container can reach a GPU, as the engine recorded it: raw claims, not yet
    devices (`resolve/gpuaccess.py` names the devices, with the inventory).

    Ids follow NVIDIA's grammar: a GPU or MIG UUID, a GPU index, `<gpu index>:<mig index>`,
    or `all`. Any container on the engine holding any of these holds the GPU, ours or not.
    """

    ids: tuple[str, ...] = ()  # device ids it asked the engine for by id
    count: int = 0  # asked by count: the first N GPUs; -1: all of them
    cdi: tuple[str, ...] = ()  # CDI device names (`nvidia.com/gpu=<id>`), however asked
    visible: str | None = None  # NVIDIA_VISIBLE_DEVICES under an NVIDIA runtime; None: none
    nodes: tuple[str, ...] = ()  # host device paths under /dev/nvidia it was given
    privileged: bool = False  # every device of the host

    @property
    def any(self) -> bool:
        return (
            bool(self.ids or self.count or self.cdi or self.visible is not None or self.nodes)
            or self.privileged
        )


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """What inspecting a container showed: how it was made, and its times.

    Values are canonical (sorted where order means nothing) with the engine's defaults
    filled in, so that they compare equal to a `ContainerSpec`'s.
    """

    name: str
    image_tag: str | None  # the reference it was created from
    user: str = ""
    command: tuple[str, ...] = ()
    tty: bool = False
    working_dir: str = ""
    # Everything it has, what its image hands down included.
    env: Mapping[str, str] = field(default_factory=_empty)
    labels: Mapping[str, str] = field(default_factory=_empty)
    stop_signal: str = ""
    stop_grace: int = 10  # seconds
    binds: tuple[str, ...] = ()  # `source:target[:ro]`, sorted
    network: str = ""
    shm_size: int = 0
    ulimits: tuple[tuple[str, int, int], ...] = ()  # (name, soft, hard), sorted
    gpus: tuple[str, ...] = ()  # device ids it asked the engine for, sorted
    gpu_access: GpuAccess = field(default_factory=GpuAccess)  # every way it reaches a GPU
    limits: Limits = field(default_factory=Limits)
    restart_policy: str = "no"
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    log_driver: str = ""
    log_options: tuple[tuple[str, str], ...] = ()  # (name, value), sorted
    created: dt.datetime | None = None
    finished: dt.datetime | None = None  # last stop; None: never stopped
    started: dt.datetime | None = None  # last start; None: never started
    pid: int = 0  # its first process on the host, while it runs; 0: not running
    ports: tuple[tuple[int, str, int], ...] = ()  # (container port, host address, host port)
    devices: tuple[str, ...] = ()  # host device nodes given as they are, sorted


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """What a container inherits from its image: to tell what it was given itself."""

    env: Mapping[str, str] = field(default_factory=_empty)
    labels: Mapping[str, str] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class LayerChanges:
    """How much a container's writable layer changed: what a snapshot would keep."""

    paths: int
    size: int  # bytes

    @property
    def empty(self) -> bool:
        return self.paths == 0


@dataclass(frozen=True, slots=True)
class ObservedContainer:
    """A container as the engine reported it; `config` is None when it was not inspected."""

    id: str
    name: str
    state: str  # created | running | paused | restarting | exited | dead
    labels: Mapping[str, str]
    image: str
    image_id: str
    ownership: L.Ownership
    config: ContainerConfig | None = None
    image_config: ImageConfig = field(default_factory=ImageConfig)  # ours only
    layer: LayerChanges | None = None  # targeted: only for containers a draft plan removes

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
        """The GPUs it asked the engine for (inspected only; env variables are no claim)."""
        return () if self.config is None else self.config.gpus

    @property
    def gpu_access(self) -> GpuAccess:
        """Every claim on a GPU it makes (inspected only)."""
        return GpuAccess() if self.config is None else self.config.gpu_access


@dataclass(frozen=True, slots=True)
class ObservedImage:
    """A local image ds01ctl keeps track of: an account image (the owner's account added to a
    base, its per-container tags on it), a snapshot, or a build of an Image (it carries
    `ds01.image.hash`). From the image list; `layers` (the content's layer digests) is read
    only where two snapshots of one workspace may hold the same content."""

    id: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    size: int  # bytes
    created: int  # seconds since the epoch
    parent: str = ""  # the image it was committed or built on, where the engine knows
    layers: tuple[str, ...] | None = None

    @property
    def snapshot_of(self) -> str | None:
        return L.get(self.labels, L.SNAPSHOT_OF)

    @property
    def account_tags(self) -> tuple[str, ...]:
        return tuple(t for t in self.tags if t.rpartition(":")[2].startswith(L.ACCOUNT_TAG_PREFIX))

    @property
    def container_tags(self) -> tuple[str, ...]:
        """Per-container tags (`<repo>:<name>._.<uid>`), as mlc names them."""
        return tuple(t for t in self.tags if "._." in t.rpartition(":")[2])

    @property
    def content_hash(self) -> str | None:
        return L.get(self.labels, L.DS01_IMAGE_HASH)

    @property
    def of(self) -> str | None:
        """`image/<owner>/<name>` for a build; `<kind>/<owner>/<name>` for a snapshot."""
        return L.get(self.labels, L.DS01_IMAGE_OF) or L.get(self.labels, L.SNAPSHOT_OF)

    @property
    def build_tag(self) -> str | None:
        """Its tag as the build of the Image its labels name (`ds01-<owner>/<name>:<hash12>`),
        or None. Labels are the image's author's to write (a base can carry any); a tag in an
        owner's repository only ds01ctl makes, so only that says whose build it is."""
        parts = (L.get(self.labels, L.DS01_IMAGE_OF) or "").split("/")
        digest = (self.content_hash or "")[:12]
        if len(parts) != 3 or parts[0] != "image" or not digest:
            return None
        _, owner, name = parts
        tag = f"ds01-{docker_safe(owner)}/{name}:{digest}"
        return tag if tag in self.tags else None


@dataclass(frozen=True, slots=True)
class Observed:
    """One observation of the engine: containers, local images, the engine itself."""

    engine: EngineInfo
    containers: tuple[ObservedContainer, ...]
    images: Mapping[str, str]  # reference (repo:tag) → image id
    requests: int = 0  # engine calls it took, for the benchmark
    site_images: tuple[ObservedImage, ...] = ()  # this site's account images and snapshots
    parents: frozenset[str] = frozenset()  # ids of images some other image is made from
    # Images built for Images, and snapshots (what each was made from), newest first.
    built_images: tuple[ObservedImage, ...] = ()

    def builds_of(self, key: str, site: str) -> tuple[ObservedImage, ...]:
        """The builds of the Image `key` this site made, newest first."""
        return tuple(
            i
            for i in self.built_images
            if i.build_tag and i.of == key and L.get(i.labels, L.DS01_IMAGE_SITE) == site
        )

    def ours(self) -> tuple[ObservedContainer, ...]:
        return tuple(c for c in self.containers if c.ownership is L.Ownership.OURS)

    def helpers(self) -> tuple[ObservedContainer, ...]:
        """This site's helper containers: an apply removes its own, so these are leftovers."""
        return tuple(c for c in self.containers if c.ownership is L.Ownership.HELPER)
