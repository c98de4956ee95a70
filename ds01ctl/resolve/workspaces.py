"""A Workspace manifest → the concrete container ds01ctl creates for it (pure).

The container has mlc's shape and labels so that `mlc open/list/stop/remove` manage it:
name `<name>._.<uid>`, `bash` as PID 1 with a TTY, `-w /workspace`, `--user uid:gid`, the
per-container image tag, plus DS01's and our labels, limits and GPU UUIDs, confined so that
it can never do more than its user's uid (ds01ctl/confinement.py). It stops on SIGHUP:
bash as PID 1 ignores SIGTERM, so a plain stop would always wait the full grace period.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ds01ctl import labels as L
from ds01ctl.confinement import container_confinement
from ds01ctl.manifests import Workspace
from ds01ctl.manifests.mounts import expand_owner
from ds01ctl.manifests.site import SiteSpec, default_network
from ds01ctl.model.spec import Bind, ContainerSpec, Power, UserAccount, limits_label
from ds01ctl.model.spechash import CURRENT_VERSION, spec_hash
from ds01ctl.resolve.images import container_tag

MLC_COMMAND = ("bash", "-c", "bash")  # what `mlc create` runs; `mlc open` execs bash beside it
WORKDIR = "/workspace"
STOP_SIGNAL = "SIGHUP"


@dataclass(frozen=True, slots=True)
class Resources:
    nano_cpus: int
    memory: int
    memory_swap: int
    shm_size: int
    pids: int


@dataclass(frozen=True, slots=True)
class ImageChoice:
    reference: str  # what the container's image is made from (after mirrors)
    framework_label: str  # aime.mlc.FRAMEWORK: `<Framework>-<version>`, or the reference
    architecture: str  # aime.mlc.ARCH, or `-`
    custom: bool  # not from the catalog


def binds_of(ws: Workspace, site: SiteSpec) -> tuple[Bind, ...]:
    owner = ws.metadata.owner or ""
    mounts = ws.spec.mounts
    workspace = mounts.workspace
    binds = [
        Bind(
            WORKDIR,
            expand_owner(workspace.path if workspace else site.default_workspace_mount, owner),
            workspace.read_only if workspace else False,
        )
    ]
    for target, mount in (("/data", mounts.data), ("/models", mounts.models)):
        if mount is not None:
            binds.append(Bind(target, expand_owner(mount.path, owner), mount.read_only))
    return tuple(sorted(binds))


def workspace_spec(
    ws: Workspace,
    *,
    site_name: str,
    site: SiteSpec,
    account: UserAccount,
    image: ImageChoice,
    resources: Resources,
    gpus: tuple[str, ...],
) -> ContainerSpec:
    owner = ws.metadata.owner or ""
    container_name = f"{ws.metadata.name}._.{account.uid}"
    cap_drop, cap_add, security_opt = container_confinement(
        site.container_defaults.capabilities, site.allow_sudo
    )
    spec = ContainerSpec(
        kind="workspace",
        owner=owner,
        name=ws.metadata.name,
        container_name=container_name,
        image=image.reference,
        image_tag=container_tag(image.reference, container_name),
        account=account,
        command=MLC_COMMAND,
        working_dir=WORKDIR,
        env=tuple(sorted(ws.spec.env.items())),
        binds=binds_of(ws, site),
        network=ws.spec.network or default_network(site_name, site),
        network_defaulted=ws.spec.network is None and site.container_defaults.network is None,
        shm_size=resources.shm_size,
        ulimits=tuple(sorted(site.container_defaults.ulimits.items())),
        stop_signal=STOP_SIGNAL,
        stop_grace=site.container_defaults.stop_grace_period,
        gpus=tuple(sorted(gpus)),
        nano_cpus=resources.nano_cpus,
        memory=resources.memory,
        memory_swap=resources.memory_swap,
        pids=resources.pids,
        restart_policy="no",
        tty=True,
        power=Power(ws.spec.power),
        snapshot_on_replace=ws.spec.on_replace == "snapshot",
        cap_drop=cap_drop,
        cap_add=cap_add,
        security_opt=security_opt,
        log_options=log_options(site),
    )
    labels = _labels(spec, site_name, site, image)
    return _with_labels(spec, labels)


def log_options(site: SiteSpec) -> tuple[tuple[str, str], ...]:
    """The json-file options of every container, as Docker spells them (sizes in bytes)."""
    log = site.container_defaults.log
    return (("max-file", str(log.max_files)), ("max-size", str(log.max_size)))


def _with_labels(spec: ContainerSpec, labels: dict[str, str]) -> ContainerSpec:
    draft = replace(spec, labels=tuple(sorted(labels.items())))
    labels[L.DS01_SPEC_HASH] = spec_hash(draft)
    labels[L.DS01_LIMITS] = limits_label(draft)
    L.check_values(labels)
    return replace(draft, labels=tuple(sorted(labels.items())))


def _labels(
    spec: ContainerSpec, site_name: str, site: SiteSpec, image: ImageChoice
) -> dict[str, str]:
    mounts = {b.target: b.source for b in spec.binds}
    gpus = L.encode_list(spec.gpus) or L.NO_GPUS
    labels = dict(site.container_defaults.labels)
    labels.update(
        {
            L.MLC: spec.owner,
            L.MLC_USER: spec.owner,
            L.MLC_NAME: spec.name,
            L.MLC_FRAMEWORK: image.framework_label,
            L.MLC_ARCH: image.architecture,
            L.MLC_WORK_MOUNT: mounts.get(WORKDIR, L.NO_MOUNT),
            L.MLC_DATA_MOUNT: mounts.get("/data", L.NO_MOUNT),
            L.MLC_MODELS_MOUNT: mounts.get("/models", L.NO_MOUNT),
            L.MLC_VERSION: L.MLC_CONTAINER_VERSION,
            L.MLC_GPUS: gpus,
            L.DS01_USER: spec.owner,
            L.DS01_MANAGED: "true",
            L.DS01_NAME: spec.name,
            L.DS01_FRAMEWORK: image.framework_label,
            L.DS01_ARCH: image.architecture,
            L.DS01_MLC_VERSION: L.MLC_CONTAINER_VERSION,
            L.DS01_GPU_UUIDS: L.encode_list(spec.gpus),
            L.DS01_INTERFACE: L.INTERFACE,
            L.DS01_SITE: site_name,
            L.DS01_KIND: spec.kind,
            L.DS01_OWNER: spec.owner,
            L.DS01_IMAGE: spec.image,
            L.DS01_HASH_VERSION: CURRENT_VERSION,
        }
    )
    if image.custom:
        labels[L.DS01_CUSTOM_IMAGE] = spec.image
    return labels
