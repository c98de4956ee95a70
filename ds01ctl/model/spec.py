"""The concrete desired state of one container, as ds01ctl will create it.

A `ContainerSpec` holds only resolved, canonical values (bytes, nano-CPUs, sorted tuples,
UUIDs), so comparing it with a live container is plain equality, and it is everything the
driver needs: apply makes no decisions of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ds01ctl import labels as L

DEVICE_ENV = "NVIDIA_VISIBLE_DEVICES"  # what the NVIDIA runtime reads to pick GPUs
LOG_DRIVER = "json-file"  # the engine's default, which `docker logs` and rotation both work with
# The log options ds01ctl sets and compares; an engine may add its own defaults beside them.
LOG_OPTION_NAMES = ("max-file", "max-size")


class Power(StrEnum):
    ANY = "any"  # left to the user (mlc open/stop) and the lifecycle policy
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, order=True)
class Bind:
    """A host directory mounted into the container."""

    target: str
    source: str
    read_only: bool = False

    @property
    def text(self) -> str:
        """`source:target[:ro]`: how mlc and the engine write a bind, and how it is compared."""
        return f"{self.source}:{self.target}" + (":ro" if self.read_only else "")


@dataclass(frozen=True, slots=True)
class UserAccount:
    """The account mlc expects inside the container: `mlc open` runs as uid:gid."""

    login: str
    uid: int
    gid: int

    @property
    def home(self) -> str:
        return f"/home/{self.login}"


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """One container as it must be: identity, image, shape, limits, GPUs, labels."""

    kind: str  # workspace | endpoint
    owner: str
    name: str
    container_name: str  # `<name>._.<uid>`, as mlc names it
    image: str  # the reference asked for, after catalog lookup and mirrors
    image_tag: str  # per-container tag it is created from: `<repo>:<container_name>`
    account: UserAccount
    command: tuple[str, ...]
    working_dir: str
    env: tuple[tuple[str, str], ...]
    binds: tuple[Bind, ...]
    network: str
    network_defaulted: bool  # neither the manifest nor the Site named it (see spechash.as_made_by)
    shm_size: int
    ulimits: tuple[tuple[str, int], ...]
    stop_signal: str
    stop_grace: int  # seconds
    gpus: tuple[str, ...]  # device UUIDs, sorted
    nano_cpus: int
    memory: int
    memory_swap: int
    pids: int
    restart_policy: str
    tty: bool  # bash as PID 1 stays up only with a TTY (mlc's `-it`)
    power: Power
    snapshot_on_replace: bool
    labels: tuple[tuple[str, str], ...] = field(default=())
    # Confinement (see resolve/confinement.py): what the container may do beyond its uid.
    cap_drop: tuple[str, ...] = ("ALL",)
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ("no-new-privileges",)
    # Where its stdout/stderr go, and how much of it is kept (the Site's container_defaults.log).
    log_driver: str = LOG_DRIVER
    log_options: tuple[tuple[str, str], ...] = ()  # sorted (name, value), Docker's spelling
    # --- what only endpoints set (a workspace leaves them at their defaults) ---
    # Published ports: (container port, host address, host port), sorted.
    ports: tuple[tuple[int, str, int], ...] = ()
    devices: tuple[str, ...] = ()  # host device nodes given as they are (AMD: /dev/kfd, …)
    gpu_vendor: str = "nvidia"  # whose runtime selects `gpus`: nvidia (by UUID) or amd (nodes)
    # Environment filled from the site's secret store when the container is created, never
    # held here: (variable, secret file, version: a hash of its content), sorted.
    secret_env: tuple[tuple[str, str, str], ...] = ()
    # Readiness: the host port's `ready_path` lists `served_name` within `start_timeout`
    # seconds; `rollback`: a replacement that never does gives way to the container it replaced.
    ready_path: str = ""
    served_name: str = ""
    start_timeout: int = 0
    rollback: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.owner}/{self.name}"

    @property
    def user(self) -> str:
        return f"{self.account.uid}:{self.account.gid}"

    @property
    def environment(self) -> tuple[tuple[str, str], ...]:
        """What the container is given: the manifest's env plus the device selection, which
        always wins over an image's baked value (`void`: no GPU even under the nvidia runtime).
        """
        devices = ",".join(self.gpus) if self.gpu_vendor == "nvidia" else ""
        return tuple(sorted({**dict(self.env), DEVICE_ENV: devices or "void"}.items()))

    @property
    def nvidia_gpus(self) -> tuple[str, ...]:
        """The GPUs the engine is asked for by UUID (NVIDIA's device request)."""
        return self.gpus if self.gpu_vendor == "nvidia" else ()

    @property
    def url(self) -> str | None:
        """Where the published server answers on the host, or None (nothing published)."""
        if not self.ports:
            return None
        _, address, port = self.ports[0]
        host = "127.0.0.1" if address in ("", "0.0.0.0") else address
        return f"http://{host}:{port}"

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def limits(self) -> dict[str, int | str]:
        """The live-updatable values (the field table's `update` rows, by name)."""
        return {
            "nano_cpus": self.nano_cpus,
            "memory": self.memory,
            "memory_swap": self.memory_swap,
            "pids": self.pids,
            "restart_policy": self.restart_policy,
        }


def limits_label(spec: ContainerSpec) -> str:
    """Label `ds01.limits`: the live-updatable values a container was created with."""
    return L.encode_pairs(spec.limits())
