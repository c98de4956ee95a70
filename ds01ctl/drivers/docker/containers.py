"""The Docker driver: each function wraps one or two engine calls and decides nothing.

Containers are created exactly as their `ContainerSpec` says. The account `mlc open` runs as
is prepared without a package manager (air-gapped labs; Debian's adduser rejects logins such
as `h.baker`): a short-lived container appends the passwd/group entries and makes the home
directory, once per (image, uid), and the result is tagged per container, as mlc does.
"""

from __future__ import annotations

import contextlib
import hashlib
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ds01ctl import labels as L
from ds01ctl.confinement import NO_NEW_PRIVILEGES
from ds01ctl.live.procs import container_processes
from ds01ctl.model.spec import ContainerSpec, UserAccount
from ds01ctl.plan.fields import ENDPOINT_FIELDS, FIELDS, Binding, OnChange
from ds01ctl.resolve.images import repository, with_default_tag

if TYPE_CHECKING:
    import docker

USER_SETUP_LABEL = L.USER_SETUP  # `<base image id>:<uid>` on a prepared image
USER_SETUP_SITE_LABEL = L.USER_SETUP_SITE  # the site that made it


def _setup_script(account: UserAccount) -> str:
    login, uid, gid, home = account.login, account.uid, account.gid, account.home
    passwd = shlex.quote(f"{login}:x:{uid}:{gid}:{login}:{home}:/bin/bash")
    group = shlex.quote(f"{login}:x:{gid}:")
    return (
        "set -e; "
        f"grep -q '^[^:]*:[^:]*:{uid}:' /etc/passwd || echo {passwd} >> /etc/passwd; "
        f"grep -q '^[^:]*:[^:]*:{gid}:' /etc/group || echo {group} >> /etc/group; "
        f"mkdir -p {shlex.quote(home)}; chown {uid}:{gid} {shlex.quote(home)}; "
        f"mkdir -p /workspace"
    )


def user_image_tag(base_id: str, base_reference: str, account: UserAccount, site: str = "") -> str:
    key = f"{base_id}:{account.uid}:{account.gid}:{account.login}"
    digest = hashlib.sha256((f"{key}:{site}" if site else key).encode())
    return f"{repository(base_reference)}:{L.ACCOUNT_TAG_PREFIX}{digest.hexdigest()[:16]}"


def prepare_image(
    client: docker.APIClient, spec: ContainerSpec, base_ref: str | None = None
) -> str:
    """Tag `spec.image_tag` to the base image (`base_ref`, a snapshot, where given; else the
    spec's image) with the owner's account in it; its image ID."""
    from docker.errors import ImageNotFound

    base = client.inspect_image(base_ref or with_default_tag(spec.image))
    if _has_account(base, spec.account):  # an Image's build baked it in: nothing to commit
        prepared = base
    else:
        site = spec.label_map.get(L.DS01_SITE, "")
        user_tag = user_image_tag(base["Id"], spec.image, spec.account, site)
        try:
            prepared = client.inspect_image(user_tag)
        except ImageNotFound:
            prepared = _commit_user_setup(client, base, user_tag, spec)
    repo, _, tag = spec.image_tag.rpartition(":")
    client.tag(prepared["Id"], repo, tag, force=True)
    return str(prepared["Id"])


def _has_account(image: dict[str, Any], account: UserAccount) -> bool:
    labels = (image.get("Config") or {}).get("Labels") or {}
    return (
        labels.get(L.DS01_HAS_USER_SETUP) == "true"
        and labels.get(L.DS01_IMAGE_HASH) is not None  # built by ds01ctl, not a user's own
        and labels.get(L.DS01_USER_ID) == str(account.uid)
        and labels.get(L.DS01_GROUP_ID) == str(account.gid)
        and labels.get(L.DS01_USERNAME) == account.login
    )


# The account-setup helper runs the image's own /bin/sh as root: never its ENTRYPOINT, with no
# network, small limits, and only the capabilities writing /etc/passwd and a home directory
# needs. Its labels let a later plan find it if an apply dies while it exists.
HELPER_LIMITS = {"mem_limit": 256 * 1024**2, "nano_cpus": 10**9, "pids_limit": 64}
HELPER_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER"]
HELPER_TIMEOUT = 120  # seconds


def helper_labels(spec: ContainerSpec) -> dict[str, str]:
    """Marks the helper as this site's, and as nothing else (an image's labels are inherited)."""
    return {
        **L.blanked((*L.MANAGED_MARKERS, L.DS01_USER, L.DS01_KIND)),
        L.DS01_HELPER: L.HELPER_ACCOUNT_SETUP,
        L.DS01_SITE: spec.label_map.get(L.DS01_SITE, ""),
        L.DS01_OWNER: spec.owner,
    }


def _commit_user_setup(
    client: docker.APIClient, base: dict[str, Any], user_tag: str, spec: ContainerSpec
) -> dict[str, Any]:
    config = base.get("Config") or {}
    helper = client.create_container(
        base["Id"],
        entrypoint=["/bin/sh", "-c", _setup_script(spec.account)],
        command=[],
        user="0:0",
        labels=helper_labels(spec),
        network_disabled=True,
        host_config=client.create_host_config(
            network_mode="none",  # it needs no network
            cap_drop=["ALL"],
            cap_add=HELPER_CAPABILITIES,
            security_opt=[NO_NEW_PRIVILEGES],
            privileged=False,
            **HELPER_LIMITS,
        ),
    )
    try:
        client.start(helper["Id"])
        status = client.wait(helper["Id"], timeout=HELPER_TIMEOUT)
        if status.get("StatusCode") != 0:
            logs = client.logs(helper["Id"]).decode(errors="replace").strip()[-300:]
            raise RuntimeError(f"preparing the account of {spec.account.login} failed: {logs}")
        repo, _, tag = user_tag.rpartition(":")
        client.commit(
            helper["Id"],
            repository=repo,
            tag=tag,
            conf={
                "Cmd": config.get("Cmd"),
                # [] and not None: commit would keep the helper's own entrypoint otherwise.
                "Entrypoint": config.get("Entrypoint") or [],
                "User": config.get("User") or "",
                "WorkingDir": config.get("WorkingDir") or "",
                "Env": config.get("Env"),
                "Labels": {
                    **(config.get("Labels") or {}),
                    # Not a helper (what is made from this image must not pass for one),
                    # nor a snapshot when its base is one (an adopted container's).
                    **L.blanked((L.DS01_HELPER, *_snapshot_labels(config))),
                    USER_SETUP_LABEL: f"{base['Id']}:{spec.account.uid}",
                    USER_SETUP_SITE_LABEL: spec.label_map.get(L.DS01_SITE, ""),
                },
            },
        )
    finally:
        client.remove_container(helper["Id"], force=True)
    return dict(client.inspect_image(user_tag))


def _snapshot_labels(config: dict[str, Any]) -> tuple[str, ...]:
    return tuple(k for k in config.get("Labels") or {} if k.startswith("ds01.snapshot."))


# How Docker spells each binding of the field table (plan/fields.py): where the value goes
# in `create_container` (its own keyword or the host config's) and, for the rows an update
# can change, in the raw update endpoint's body. The create and update calls are generated
# from the table through these; a unit test checks that every binding has its spelling.
Spelling = Callable[[Any], dict[str, Any]]


def _device_requests(gpus: tuple[str, ...]) -> dict[str, Any]:
    from docker.types import DeviceRequest

    requests = [DeviceRequest(device_ids=list(gpus), capabilities=[["gpu"]])] if gpus else None
    return {"device_requests": requests}


def _ulimits(ulimits: tuple[tuple[str, int, int], ...]) -> dict[str, Any]:
    from docker.types import Ulimit

    return {"ulimits": [Ulimit(name=n, soft=soft, hard=hard) for n, soft, hard in ulimits]}


CREATE: dict[Binding, Spelling] = {
    Binding.CONTAINER_NAME: lambda v: {"name": v},
    Binding.IMAGE_TAG: lambda v: {"image": v},
    Binding.USER: lambda v: {"user": v},
    Binding.COMMAND: lambda v: {"command": list(v)},
    Binding.TTY: lambda v: {"tty": v},
    Binding.WORKING_DIR: lambda v: {"working_dir": v},
    Binding.ENV: lambda v: {"environment": [f"{k}={x}" for k, x in v]},
    Binding.STOP_SIGNAL: lambda v: {"stop_signal": v},
    # Also what `docker stop` and `mlc stop` wait for.
    Binding.STOP_GRACE: lambda v: {"stop_timeout": v},
    Binding.LABELS: lambda v: {"labels": v},
}
CREATE_HOST: dict[Binding, Spelling] = {
    Binding.BINDS: lambda v: {"binds": list(v)},
    Binding.NETWORK: lambda v: {"network_mode": v},
    Binding.SHM_SIZE: lambda v: {"shm_size": v},
    Binding.ULIMITS: _ulimits,
    Binding.GPUS: _device_requests,
    Binding.CAP_DROP: lambda v: {"cap_drop": list(v) or None},
    Binding.CAP_ADD: lambda v: {"cap_add": list(v) or None},
    Binding.SECURITY_OPT: lambda v: {"security_opt": list(v) or None},
    Binding.NANO_CPUS: lambda v: {"nano_cpus": v or None},
    Binding.MEMORY: lambda v: {"mem_limit": v or None},
    Binding.MEMORY_SWAP: lambda v: {"memswap_limit": v or None},
    Binding.PIDS: lambda v: {"pids_limit": v or None},
    Binding.RESTART_POLICY: lambda v: {"restart_policy": {"Name": v}},
    Binding.LOG: lambda v: {"log_config": {"Type": v[0], "Config": dict(v[1])}},
    Binding.PORTS: lambda v: {"port_bindings": {f"{c}/tcp": (a, h) for c, a, h in v} or None},
    Binding.DEVICES: lambda v: {"devices": [f"{d}:{d}:rwm" for d in v] or None},
}
UPDATE: dict[Binding, Spelling] = {
    Binding.NANO_CPUS: lambda v: {"NanoCpus": v},
    Binding.MEMORY: lambda v: {"Memory": v},
    Binding.MEMORY_SWAP: lambda v: {"MemorySwap": v},
    Binding.PIDS: lambda v: {"PidsLimit": v},
    Binding.RESTART_POLICY: lambda v: {"RestartPolicy": {"Name": v}},
}


def create(client: docker.APIClient, spec: ContainerSpec) -> str:
    """Create the container (not started) from the field table's bindings; its id."""
    L.check_values(spec.label_map)
    kwargs: dict[str, Any] = {}
    host: dict[str, Any] = {}
    for row in ENDPOINT_FIELDS:  # every row: a workspace leaves the endpoint ones empty
        if row.binding is None:
            continue
        value = row.given(spec)
        if row.binding in CREATE_HOST:
            host.update(CREATE_HOST[row.binding](value))
        else:
            kwargs.update(CREATE[row.binding](value))
    if spec.ports:
        kwargs["ports"] = [c for c, _, _ in spec.ports]
    if spec.secret_env:
        # Read from the root-only store now, into the environment only: never an argument
        # (a process's command line is world-readable in /proc), never in the spec or plan.
        kwargs["environment"] = [*kwargs["environment"], *secret_environment(spec)]
    # Not in the table because never compared: always so for ds01ctl's containers.
    host_config = client.create_host_config(privileged=False, **host)
    created = client.create_container(stdin_open=True, host_config=host_config, **kwargs)
    return str(created["Id"])


class SecretUnreadable(RuntimeError):
    pass


def secret_environment(spec: ContainerSpec) -> list[str]:
    """`NAME=value` for each variable the spec fills from a secret file. An error names the
    secret and the file, never a value."""
    found = []
    for name, path, _version in spec.secret_env:
        try:
            with open(path, "rb") as handle:
                value = handle.read(64 * 1024).decode().strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise SecretUnreadable(
                f"secret file {path} for {name} cannot be read ({why})"
            ) from None
        found.append(f"{name}={value}")
    return found


ICC_OPTION = "com.docker.network.bridge.enable_icc"


def ensure_network(
    client: docker.APIClient, name: str, *, site: str, inter_container: bool
) -> bool:
    """Create the site network unless it exists: a user-defined bridge labelled as this
    site's, with inter-container traffic as the Site says. True when it was created.

    A network of that name that is not this site's, or whose ICC setting differs, is refused
    rather than used: containers would get an isolation the Site does not say.
    """
    from docker.errors import APIError, NotFound

    icc = "true" if inter_container else "false"
    try:
        found = client.inspect_network(name)
    except NotFound:
        labels = {L.DS01_INTERFACE: L.INTERFACE, L.DS01_SITE: site}
        try:
            client.create_network(name, driver="bridge", options={ICC_OPTION: icc}, labels=labels)
        except APIError as exc:
            if exc.status_code != 409:  # 409: made meanwhile by someone else; checked below
                raise
            found = client.inspect_network(name)
        else:
            return True
    labels = found.get("Labels") or {}
    options = found.get("Options") or {}
    if labels.get(L.DS01_SITE) != site or options.get(ICC_OPTION, "true") != icc:
        raise RuntimeError(
            f"network {name} exists but is not site {site}'s network with {ICC_OPTION}={icc}; "
            "remove it (docker network rm) once no container uses it, or name another in the "
            "Site's network.name"
        )
    return False


def start(client: docker.APIClient, container_id: str) -> None:
    client.start(container_id)


def stop(client: docker.APIClient, container_id: str, grace: int) -> None:
    client.stop(container_id, timeout=grace)


def remove(client: docker.APIClient, container_id: str) -> None:
    client.remove_container(container_id, force=True)


def update(client: docker.APIClient, container_id: str, spec: ContainerSpec) -> None:
    """The table's live-updatable rows in one call (memory and swap together, as the kernel
    needs). docker-py's `update_container` lacks NanoCpus and PidsLimit; the raw endpoint
    has them."""
    body: dict[str, Any] = {}
    for row in FIELDS:
        if row.on_change is OnChange.UPDATE and row.binding is not None:
            body.update(UPDATE[row.binding](row.given(spec)))
    url = client._url("/containers/{0}/update", container_id)
    client._raise_for_status(client._post_json(url, data=body))


def sessions(client: docker.APIClient, container_id: str) -> int:
    """Processes besides PID 1 in a running container: `docker exec` sessions and their jobs.

    mlc itself judges a container idle the same way (one process). Counted from the
    container's cgroup (`cgroup.procs`, v1 or v2) where this host shows it; `docker top`
    otherwise."""
    inspect = client.inspect_container(container_id)
    if not inspect["State"]["Running"]:
        return 0
    held = container_processes(str(inspect["Id"]), int(inspect["State"].get("Pid") or 0))
    if held is None:
        held = len(client.top(container_id).get("Processes") or [])
    return max(0, held - 1)


def untag(client: docker.APIClient, reference: str) -> None:
    """Drop a per-container tag (`<repo>:<name>._.<uid>`), as `mlc remove` does; keep others."""
    from docker.errors import APIError

    _, _, tag = reference.rpartition(":")
    if "._." not in tag:
        return
    with contextlib.suppress(APIError):  # already gone, or used by another container: leave it
        client.remove_image(reference, noprune=False)
