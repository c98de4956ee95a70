"""The `Site` kind: facts about the host and the policy every other object is checked against."""

from typing import Annotated, ClassVar, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from ds01ctl.manifests.autoapply import ReconcileSettings
from ds01ctl.manifests.common import Login, Manifest, Model, Name, NetworkName, SecretName
from ds01ctl.manifests.image import PipRequirement
from ds01ctl.names import MAX_ID
from ds01ctl.units import ByteSize, NanoCpus, Seconds

Architecture = Literal["CUDA", "CUDA_AMPERE", "CUDA_ADA", "CUDA_BLACKWELL", "ROCM5", "ROCM6"]


class GpuSource(Model):
    """Where the live GPU state comes from."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["source"], "properties": {"source": {"const": "fixture"}}},
            "then": {"required": ["fixture"], "properties": {"fixture": {"type": "string"}}},
            "else": {"properties": {"fixture": {"type": "null"}}},
        }
    )

    source: Literal["nvml", "fixture"] = Field(
        "nvml",
        description=(
            "nvml reads the host's NVIDIA driver; fixture reads an inventory file (labs without "
            "GPUs, tests, the demo)."
        ),
    )
    fixture: str | None = Field(
        None,
        description=(
            "Inventory file for source=fixture, relative to the config repo root or absolute."
        ),
    )

    @model_validator(mode="after")
    def _fixture_iff_source(self) -> Self:
        if (self.source == "fixture") != (self.fixture is not None):
            raise ValueError("set fixture exactly when source is fixture")
        return self


class Catalog(Model):
    """The framework catalog (AIME's ml_images.repo format)."""

    path: str | None = Field(
        None, description="The host's own ml_images.repo; the copy shipped with ds01ctl when unset."
    )
    architecture: Architecture | None = Field(
        None,
        description=(
            "GPU architecture whose images are used (CUDA_AMPERE for A100, CUDA_ADA for H100 with "
            "CUDA 12); derived from the GPUs when unset."
        ),
    )


class ImageMirror(Model):
    """Rewrites image references that start with a prefix (air-gapped labs, local mirrors)."""

    prefix: str = Field(
        min_length=1, description="Leading part of a reference to replace, e.g. aimehub/."
    )
    replacement: str = Field(
        min_length=1, description="What replaces it, e.g. registry.lab.example/aimehub/."
    )


class MountRule(Model):
    """Host paths that owners may mount."""

    path: str = Field(
        description=(
            "Absolute path pattern; {owner} is the object's owner, a trailing /** allows every path"
            " below, e.g. /home/{owner}/** or /datasets/**."
        )
    )
    read_only: bool = Field(
        False, description="Only read-only mounts are allowed under this pattern."
    )


class ContainerLog(Model):
    """How much of a container's output the engine keeps (json-file, rotated)."""

    max_size: ByteSize = Field(
        50 * 1024**2, description="Size at which a container's log file is rotated (e.g. 50m)."
    )
    max_files: int = Field(
        3, ge=1, le=100, description="Log files kept per container, the current one included."
    )


class ContainerDefaults(Model):
    """Settings every managed container gets unless its manifest says otherwise."""

    network: NetworkName | None = Field(
        None,
        description=(
            "Docker network of containers whose manifest names none; the site network when "
            "unset. host needs allow_host_network; container:<…> is never allowed."
        ),
    )
    shm_size: ByteSize = Field(
        1024**3, description="Size of /dev/shm when neither the manifest nor the quota sets one."
    )
    ulimits: dict[str, int] = Field(
        default_factory=lambda: {"stack": 67108864},
        description=(
            "Soft=hard ulimits by name (mlc sets stack=67108864). memlock only where the host "
            "allows raising it."
        ),
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Extra labels for every container (keys outside the aime.mlc and ds01 namespaces)."
        ),
    )
    stop_grace_period: Seconds = Field(
        10, description="Time a container gets to stop before it is killed."
    )
    capabilities: list[str] = Field(
        default_factory=list,
        description=(
            "Linux capabilities every container gets back after all are dropped, as Docker "
            "spells them; only AUDIT_WRITE, IPC_LOCK, KILL and NET_BIND_SERVICE are accepted "
            "(none gives more than the user's own uid)."
        ),
    )
    log: ContainerLog = Field(
        ContainerLog(),
        description=(
            "Log size limit of every container (Docker's json-file max-size and max-file): "
            "without one a chatty training loop fills the disk."
        ),
    )


class SnapshotRetention(Model):
    """How many snapshots of each workspace are kept."""

    keep_per_workspace: int = Field(
        3,
        ge=1,
        le=1000,
        description=(
            "Snapshots kept per workspace, newest first: apply removes older ones after it "
            "takes a snapshot, and `ds01ctl snapshots prune` uses it when --keep is not given. "
            "A snapshot a container runs from is never removed."
        ),
    )


class SiteNetwork(Model):
    """The network ds01ctl makes for the site's containers: a user-defined bridge, labelled as
    ds01ctl's, created before the first container that uses it."""

    name: str | None = Field(
        None,
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$",
        description="Its Docker name; ds01-<site name> when unset.",
    )
    inter_container: bool = Field(
        False,
        description=(
            "Whether containers on it may reach each other (Docker's enable_icc). Off by "
            "default: one user's workspace cannot reach another's ports; the outside world "
            "and published ports still work."
        ),
    )


class PortPool(Model):
    """Host ports endpoints take when they ask for port: auto."""

    start: int = Field(8100, ge=1024, le=65535, description="First port of the pool.")
    end: int = Field(8199, ge=1024, le=65535, description="Last port of the pool (inclusive).")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start > self.end:
            raise ValueError("start must not be after end")
        return self


class UserPin(Model):
    """A user's numeric identity, when it should not come from the host's passwd."""

    uid: int = Field(
        ge=1, le=MAX_ID, description="User id; workspaces never run as root, so 0 is refused."
    )
    gid: int = Field(ge=1, le=MAX_ID, description="Primary group id.")


class SiteImages(Model):
    """How Image builds get their packages (air-gapped labs are normal) and what they may ask."""

    presets: dict[Name, list[PipRequirement]] = Field(
        default_factory=dict,
        description=(
            "The Site's own presets (name → PEP 508 requirements), beside the shipped ones "
            "(jupyter, ds-core, ml, cv, nlp, rl, audio, ts, llm); one of the same name replaces "
            "the shipped one."
        ),
    )
    pip_index_url: str | None = Field(
        None,
        pattern="^(https?|file)://[^\\s'\"\\\\]+$",
        description="The pip index builds install from (pip's --index-url); PyPI when unset.",
    )
    wheelhouse: str | None = Field(
        None,
        description=(
            "A host directory of wheels copied into every build that installs pip packages and "
            "offered to pip (--find-links); with no pip_index_url, pip uses it alone (--no-index). "
            "Keep it small: a large mirror belongs behind pip_index_url."
        ),
    )
    apt_sources: list[Annotated[str, Field(pattern=r"^deb[ \t][^\x00-\x1f]+$")]] | None = Field(
        None,
        description=(
            "apt source lines (one-line style, e.g. deb http://mirror.lab.example/debian bookworm "
            "main) that builds use instead of the base's own; the base's when unset."
        ),
    )
    apt_repo: str | None = Field(
        None,
        description=(
            "A host directory holding a flat apt repository (Packages and .deb files) copied into "
            "builds that install apt packages and used as a trusted source beside the others."
        ),
    )
    allow_direct_references: bool = Field(
        False,
        description=(
            "Whether pip requirements may name a URL (name @ https://…); refused by default, "
            "as are pip options (--index-url, -e) and paths, always."
        ),
    )
    build_network: NetworkName = Field(
        "bridge",
        description=(
            "The network a build's RUN steps get: bridge (the engine's default, for a pip "
            "index or apt mirror), none (air-gapped: the wheelhouse and apt_repo only), or a "
            "named network that reaches the lab's mirrors."
        ),
    )
    build_memory: ByteSize = Field(
        4 * 1024**3,
        description=(
            "Memory of each build step's container (a user's setup.py), at most the owner's "
            "per-container memory quota."
        ),
    )
    build_cpus: NanoCpus = Field(
        2 * 10**9,
        description="CPUs of each build step's container, at most the owner's per-container cpus.",
    )
    build_timeout: Seconds = Field(3600, description="How long one build may take in all.")
    keep_tags: int = Field(
        3,
        ge=1,
        description=(
            "Tags kept per Image by `ds01ctl images prune` (the newest; a tag a container or "
            "snapshot uses is always kept)."
        ),
    )


class SiteSpec(Model):
    """Host facts and site policy."""

    state_dir: str = Field(
        "/var/lib/ds01ctl",
        description="Where the journal, saved plans and the ledger live; a relative path is "
        "taken from the directory of the Site manifest.",
    )
    gpus: GpuSource = Field(GpuSource(), description="Where live GPU state comes from.")
    catalog: Catalog = Field(
        Catalog(), description="Framework catalog and the architecture to pick images for."
    )
    image_mirrors: list[ImageMirror] = Field(
        default_factory=list, description="Reference rewrites, first match wins."
    )
    container_defaults: ContainerDefaults = Field(
        ContainerDefaults(), description="Defaults for every managed container."
    )
    snapshots: SnapshotRetention = Field(
        SnapshotRetention(), description="Snapshot retention per workspace."
    )
    allow_host_network: bool = Field(
        False, description="Whether manifests may ask for network: host."
    )
    allow_sudo: bool = Field(
        False,
        description=(
            "Whether root inside a container (sudo, setuid binaries) may work: containers then "
            "keep the engine's default capabilities and lose no-new-privileges. Refused at plan "
            "time unless the engine runs with user-namespace remapping or rootless, where root "
            "inside is not root on the host."
        ),
    )
    network: SiteNetwork = Field(
        SiteNetwork(),
        description="The site network: the default network, made by ds01ctl, no ICC by default.",
    )
    allowed_networks: list[str] = Field(
        default_factory=list,
        description=(
            "Other existing Docker networks manifests may name, besides the site network and "
            "none (e.g. bridge). host needs allow_host_network; container:<…> is never allowed."
        ),
    )
    allowed_images: list[str] = Field(
        default_factory=list,
        description=(
            "Image references manifests may name in image_ref besides the catalog's images and "
            "the owner's own snapshots: shell-style patterns matched against the reference as "
            "written, before image_mirrors (e.g. registry.lab.example/*, ubuntu:24.04). "
            "Another owner's snapshot, per-container tag or account image is refused whatever "
            "they say."
        ),
    )
    mount_policy: list[MountRule] = Field(
        default_factory=lambda: [MountRule(path="/home/{owner}/**")],
        description="Host paths owners may mount; anything else is refused.",
    )
    default_workspace_mount: str = Field(
        "/home/{owner}/workspace",
        description=(
            "Host directory mounted at /workspace when a workspace names none (mlc's ~/workspace)."
        ),
    )
    mount_dir_mode: str = Field(
        "0750",
        pattern=r"^0?7[0-5][0-5]$",
        description=(
            "Mode (octal) of a missing read-write mount source that apply creates, as its "
            "owner, before the container (the engine would create it as root). The owner "
            "has every right; never writable by group or others, who could plant things in it."
        ),
    )
    endpoint_ports: PortPool = Field(
        PortPool(), description="Host ports for endpoints with port: auto."
    )
    images: SiteImages = Field(
        SiteImages(), description="Image builds: package sources, Site presets, what is allowed."
    )
    recipes_dir: str | None = Field(
        None,
        description=(
            "Directory of the site's own endpoint recipes (*.yaml, regular files only), "
            "besides those shipped with ds01ctl; relative to the config repo root or absolute."
        ),
    )
    model_cache: str | None = Field(
        None,
        description=(
            "The host's model cache (Hugging Face hub layout), mounted read-only into "
            "endpoints; model facts for the memory-fit check are read from it."
        ),
    )
    secrets_dir: str | None = Field(
        None,
        description=(
            "Root-only directory of the server's secrets: the file <login>/<name> holds "
            "secret <login>/<name>. Endpoints naming a secret are pending without it."
        ),
    )
    endpoint_lab_address: str | None = Field(
        None,
        description=(
            "Host address endpoints with expose: lab listen on (e.g. the lab network's "
            "interface address); unset: every endpoint listens on 127.0.0.1 only."
        ),
    )
    secret_grants: dict[SecretName, list[str]] = Field(
        default_factory=dict,
        description=(
            "Secrets owners may name besides their own (<login>/<name>), each with the logins "
            "it is granted to; * grants it to every owner."
        ),
    )
    users: dict[Login, UserPin] = Field(
        default_factory=dict,
        description="uid/gid pins by login; others come from the host's passwd at plan time.",
    )
    reconcile: ReconcileSettings = Field(
        ReconcileSettings(),
        description="What `ds01ctl reconcile` applies on its own, what waits for approval, "
        "and how it treats drift.",
    )


class Site(Manifest):
    """The one Site of a config repo."""

    kind: Literal["Site"] = Field(description="Site.")
    spec: SiteSpec = Field(SiteSpec(), description="Host facts and policy.")

    OWNED: ClassVar[bool] = False


def site_network_name(site_name: str, spec: SiteSpec) -> str:
    """The site network's Docker name."""
    return spec.network.name or f"ds01-{site_name}"


def default_network(site_name: str, spec: SiteSpec) -> str:
    """The network of a container whose manifest names none."""
    return spec.container_defaults.network or site_network_name(site_name, spec)
