"""What a container ds01ctl makes may do beyond its user's own uid: nothing (pure).

Every container runs as its user's uid:gid with `no-new-privileges` (a setuid-root binary or
one with file capabilities gains nothing), every capability dropped, and the engine's default
seccomp and AppArmor profiles (never `unconfined`). A Site may add a few capabilities that
give no power over files, other identities or the host; the rest are refused by name.

A Site may allow sudo inside (`allow_sudo`) only where root inside cannot reach the host: an
engine with user-namespace remapping or a rootless engine. Such containers keep the engine's
default capabilities (minus MKNOD and NET_RAW) and lose `no-new-privileges`, which sudo needs.

The environment variables that select devices are ds01ctl's alone: a manifest may not set
them, and every container gets `NVIDIA_VISIBLE_DEVICES` (its GPUs' UUIDs, or `void`), so an
image's baked value never selects GPUs under an engine whose default runtime is nvidia.
"""

from __future__ import annotations

from collections.abc import Iterable

NO_NEW_PRIVILEGES = "no-new-privileges"

# Linux capabilities as Docker spells them (no CAP_ prefix), up to Linux 6.x.
KNOWN_CAPABILITIES = frozenset(
    {
        "AUDIT_CONTROL",
        "AUDIT_READ",
        "AUDIT_WRITE",
        "BLOCK_SUSPEND",
        "BPF",
        "CHECKPOINT_RESTORE",
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "IPC_LOCK",
        "IPC_OWNER",
        "KILL",
        "LEASE",
        "LINUX_IMMUTABLE",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "MKNOD",
        "NET_ADMIN",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_RAW",
        "PERFMON",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYSLOG",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_CHROOT",
        "SYS_MODULE",
        "SYS_NICE",
        "SYS_PACCT",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "WAKE_ALARM",
    }
)
# The ones a Site may add: none bypasses file permissions, changes identity, or reaches the
# host, the network beyond the container, or other processes than the user's own. Every other
# capability is refused (SYS_ADMIN, SYS_PTRACE, NET_ADMIN, NET_RAW, SYS_MODULE,
# DAC_READ_SEARCH, DAC_OVERRIDE, SETUID, SYS_NICE (real-time scheduling), ...).
ALLOWED_CAPABILITIES = frozenset({"AUDIT_WRITE", "IPC_LOCK", "KILL", "NET_BIND_SERVICE"})

# With sudo allowed (root inside is an unprivileged host uid): the engine's default set, less
# these two (device nodes; raw packets on the shared bridge).
SUDO_DROPPED = ("MKNOD", "NET_RAW")

# Names that choose which GPUs or accelerators a container or a process sees. NVIDIA's runtime
# reads the first three (and IMEX channels); the rest pick devices inside CUDA, ROCm and HIP.
# NVIDIA_DRIVER_CAPABILITIES is not here: it picks driver features (compute, video,
# graphics), not devices, and CUDA images set it themselves.
RESERVED_ENV = frozenset(
    {
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_MIG_CONFIG_DEVICES",
        "NVIDIA_MIG_MONITOR_DEVICES",
        "NVIDIA_IMEX_CHANNELS",
        "CUDA_VISIBLE_DEVICES",
        "HIP_VISIBLE_DEVICES",
        "ROCR_VISIBLE_DEVICES",
        "GPU_DEVICE_ORDINAL",
        "AMD_VISIBLE_DEVICES",
    }
)

# `docker info` SecurityOptions entries under which root in a container is not host root.
ROOT_ISOLATING = ("name=userns", "name=rootless")


def capability_problem(name: str) -> str | None:
    """Why a Site may not add capability `name`; None when it may."""
    if name not in KNOWN_CAPABILITIES:
        bare = name.upper().removeprefix("CAP_")
        if bare in KNOWN_CAPABILITIES and bare != name:
            return f"capability {name!r} is spelled {bare!r} here"
        return f"{name!r} is not a Linux capability"
    if name not in ALLOWED_CAPABILITIES:
        return (
            f"capability {name} gives a container more than its user's own uid; "
            "ds01ctl never adds it"
        )
    return None


def isolates_root(security_options: Iterable[str]) -> bool:
    """Whether the engine maps root in a container to an unprivileged host uid."""
    return any(
        option == wanted or option.startswith(wanted + ",")
        for option in security_options
        for wanted in ROOT_ISOLATING
    )


def container_confinement(
    capabilities: Iterable[str], allow_sudo: bool
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(CapDrop, CapAdd, SecurityOpt) for a container of a Site with these settings."""
    added = tuple(sorted(set(capabilities)))
    if allow_sudo:
        return SUDO_DROPPED, added, ()
    return ("ALL",), added, (NO_NEW_PRIVILEGES,)
