"""The container field table: one row per field ds01ctl sets, read from both sides.

Each row says how to read the field from the observed container (`ObservedContainer`) and
from a `ContainerSpec`, how to compare them (`strict`, or `over_image` for env and labels,
which a container also inherits from its image), whether a change is applied in place (an
update of the live container) or forces a replace, and which driver binding carries the
value when a container is created or updated. The diff, the per-field tests and the driver's
create and update calls are generated from this table, so a new row cannot go untested,
unhandled or unmade: a driver spells each `Binding` in its own API (drivers/docker/fields.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ds01ctl import labels as L
from ds01ctl.model.observed import ContainerConfig, ObservedContainer
from ds01ctl.model.spec import LOG_OPTION_NAMES, ContainerSpec
from ds01ctl.plan.actions import FieldChange


class Compare(StrEnum):
    STRICT = "strict"  # equal after canonicalisation
    # Live is (everything, what the image hands down): equal when every desired entry is
    # there and every entry the image did not hand down was desired.
    OVER_IMAGE = "over_image"


class OnChange(StrEnum):
    UPDATE = "update"  # updated on the live container
    REPLACE = "replace"  # only a new container can carry it


class Binding(StrEnum):
    """What a driver sets when it creates (and, for `update` rows, updates) a container.

    The core says which binding a row is; each driver spells it in its own API."""

    CONTAINER_NAME = "container_name"
    IMAGE_TAG = "image_tag"
    USER = "user"
    COMMAND = "command"
    TTY = "tty"
    WORKING_DIR = "working_dir"
    ENV = "env"
    BINDS = "binds"
    NETWORK = "network"
    SHM_SIZE = "shm_size"
    ULIMITS = "ulimits"
    STOP_SIGNAL = "stop_signal"
    STOP_GRACE = "stop_grace"
    GPUS = "gpus"
    CAP_DROP = "cap_drop"
    CAP_ADD = "cap_add"
    SECURITY_OPT = "security_opt"
    LABELS = "labels"
    NANO_CPUS = "nano_cpus"
    MEMORY = "memory"
    MEMORY_SWAP = "memory_swap"
    PIDS = "pids"
    RESTART_POLICY = "restart_policy"
    LOG = "log"
    PORTS = "ports"
    DEVICES = "devices"


@dataclass(frozen=True, slots=True)
class ContainerField:
    name: str
    live: Callable[[ObservedContainer], Any]  # reads `config`: only inspected containers
    desired: Callable[[ContainerSpec], Any]  # the spec's value, in the comparison's form
    on_change: OnChange
    compare: Compare = Compare.STRICT
    # The driver binding that carries the value (None: carried by another row, as the
    # `image` label is by `labels`), and the value given to it when it differs from
    # `desired` (the labels with ds01ctl's bookkeeping, the env as pairs).
    binding: Binding | None = None
    value: Callable[[ContainerSpec], Any] | None = None

    def equal(self, live: Any, desired: Any) -> bool:
        if self.compare is Compare.OVER_IMAGE:
            everything = live[0]
            return all(everything.get(k) == v for k, v in desired.items()) and all(
                desired.get(k) == v for k, v in own(live).items()
            )
        return bool(live == desired)

    def given(self, spec: ContainerSpec) -> Any:
        """What the driver is given for this row when it creates or updates `spec`."""
        return (self.value or self.desired)(spec)


def own(live: tuple[dict[str, str], dict[str, str]]) -> dict[str, str]:
    """The entries of an OVER_IMAGE value that the image did not hand down."""
    everything, inherited = live
    return {k: v for k, v in everything.items() if inherited.get(k) != v}


def _made(c: ObservedContainer) -> ContainerConfig:
    assert c.config is not None, "only inspected containers are compared"
    return c.config


def _env(c: ObservedContainer) -> tuple[dict[str, str], dict[str, str]]:
    # Variables filled from the secret store are not the spec's to compare (it holds only
    # their versions, in the hash): they are never read, so never shown or journaled.
    secret = set(L.decode_list(L.get(_made(c).labels, L.DS01_SECRET_ENV)))
    everything = {k: v for k, v in _made(c).env.items() if k not in secret}
    return everything, dict(c.image_config.env)


# Labels that record how ds01ctl compares (not what the container is): the hash and the
# limits as created are compared on their own, so they never show up as label changes.
_BOOKKEEPING = (L.DS01_LIMITS, L.DS01_SPEC_HASH, L.DS01_HASH_VERSION)


def _labels(c: ObservedContainer) -> tuple[dict[str, str], dict[str, str]]:
    everything = dict(_made(c).labels)
    for key in _BOOKKEEPING:
        everything.pop(key, None)
    return everything, dict(c.image_config.labels)


def _log(c: ObservedContainer) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The log driver and the options ds01ctl sets (an engine's own log-opts are merged in
    beside them and are not ds01ctl's to compare)."""
    made = _made(c)
    return made.log_driver, tuple(o for o in made.log_options if o[0] in LOG_OPTION_NAMES)


R, U = OnChange.REPLACE, OnChange.UPDATE

FIELDS: tuple[ContainerField, ...] = (
    ContainerField(
        "container_name",
        lambda c: _made(c).name,
        lambda s: s.container_name,
        R,
        binding=Binding.CONTAINER_NAME,
    ),
    ContainerField("image", lambda c: L.get(c.labels, L.DS01_IMAGE), lambda s: s.image, R),
    ContainerField(
        "image_tag",
        lambda c: _made(c).image_tag,
        lambda s: s.image_tag,
        R,
        binding=Binding.IMAGE_TAG,
    ),
    ContainerField("user", lambda c: _made(c).user, lambda s: s.user, R, binding=Binding.USER),
    ContainerField(
        "command", lambda c: _made(c).command, lambda s: s.command, R, binding=Binding.COMMAND
    ),
    ContainerField("tty", lambda c: _made(c).tty, lambda s: s.tty, R, binding=Binding.TTY),
    ContainerField(
        "working_dir",
        lambda c: _made(c).working_dir,
        lambda s: s.working_dir,
        R,
        binding=Binding.WORKING_DIR,
    ),
    ContainerField(
        "env",
        _env,
        lambda s: dict(s.environment),
        R,
        Compare.OVER_IMAGE,
        binding=Binding.ENV,
        value=lambda s: s.environment,
    ),
    ContainerField(
        "binds",
        lambda c: _made(c).binds,
        lambda s: tuple(sorted(b.text for b in s.binds)),
        R,
        binding=Binding.BINDS,
        value=lambda s: tuple(b.text for b in s.binds),
    ),
    ContainerField(
        "network", lambda c: _made(c).network, lambda s: s.network, R, binding=Binding.NETWORK
    ),
    ContainerField(
        "shm_size", lambda c: _made(c).shm_size, lambda s: s.shm_size, R, binding=Binding.SHM_SIZE
    ),
    ContainerField(
        "ulimits",
        lambda c: _made(c).ulimits,
        lambda s: tuple(sorted((n, v, v) for n, v in s.ulimits)),
        R,
        binding=Binding.ULIMITS,
    ),
    ContainerField(
        "stop_signal",
        lambda c: _made(c).stop_signal,
        lambda s: s.stop_signal,
        R,
        binding=Binding.STOP_SIGNAL,
    ),
    ContainerField(
        "stop_grace",
        lambda c: _made(c).stop_grace,
        lambda s: s.stop_grace,
        R,
        binding=Binding.STOP_GRACE,
    ),
    ContainerField(
        "gpus",
        lambda c: c.gpu_ids,
        lambda s: tuple(sorted(s.gpus)),
        R,
        binding=Binding.GPUS,
        value=lambda s: s.nvidia_gpus,  # AMD GPUs go as device nodes (the devices row)
    ),
    # Confinement: a container whose capabilities or security options differ (run with
    # seccomp=unconfined, say) is replaced; a privileged one drops no capability, so it is too.
    ContainerField(
        "cap_drop",
        lambda c: _made(c).cap_drop,
        lambda s: tuple(sorted(s.cap_drop)),
        R,
        binding=Binding.CAP_DROP,
    ),
    ContainerField(
        "cap_add",
        lambda c: _made(c).cap_add,
        lambda s: tuple(sorted(s.cap_add)),
        R,
        binding=Binding.CAP_ADD,
    ),
    ContainerField(
        "security_opt",
        lambda c: _made(c).security_opt,
        lambda s: tuple(sorted(s.security_opt)),
        R,
        binding=Binding.SECURITY_OPT,
    ),
    # The engine cannot change a container's log configuration in place.
    ContainerField(
        "log",
        _log,
        lambda s: (s.log_driver, tuple(sorted(s.log_options))),
        R,
        binding=Binding.LOG,
    ),
    ContainerField(
        "labels",
        _labels,
        lambda s: {k: v for k, v in s.labels if k not in _BOOKKEEPING},
        R,
        Compare.OVER_IMAGE,
        binding=Binding.LABELS,
        value=lambda s: s.label_map,
    ),
    ContainerField(
        "nano_cpus",
        lambda c: _made(c).limits.nano_cpus,
        lambda s: s.nano_cpus,
        U,
        binding=Binding.NANO_CPUS,
    ),
    ContainerField(
        "memory", lambda c: _made(c).limits.memory, lambda s: s.memory, U, binding=Binding.MEMORY
    ),
    ContainerField(
        "memory_swap",
        lambda c: _made(c).limits.memory_swap,
        lambda s: s.memory_swap,
        U,
        binding=Binding.MEMORY_SWAP,
    ),
    ContainerField(
        "pids", lambda c: _made(c).limits.pids, lambda s: s.pids, U, binding=Binding.PIDS
    ),
    ContainerField(
        "restart_policy",
        lambda c: _made(c).restart_policy,
        lambda s: s.restart_policy,
        U,
        binding=Binding.RESTART_POLICY,
    ),
)
# Rows only endpoints need (their tables are FIELDS + these): published ports and device
# nodes. A workspace's table stays FIELDS, so its plans and fingerprints are unchanged.
ENDPOINT_FIELDS: tuple[ContainerField, ...] = (
    *FIELDS,
    ContainerField(
        "ports",
        lambda c: _made(c).ports,
        lambda s: tuple(sorted(s.ports)),
        R,
        binding=Binding.PORTS,
    ),
    ContainerField(
        "devices",
        lambda c: _made(c).devices,
        lambda s: tuple(sorted(s.devices)),
        R,
        binding=Binding.DEVICES,
    ),
)
BY_NAME = {f.name: f for f in ENDPOINT_FIELDS}
LIMIT_FIELDS = tuple(f.name for f in FIELDS if f.on_change is OnChange.UPDATE)


def differences(
    container: ObservedContainer,
    spec: ContainerSpec,
    table: tuple[ContainerField, ...] = FIELDS,
) -> list[FieldChange]:
    """Every field of `table` whose live value differs from the spec, in table order."""
    changes = []
    for row in table:
        live, desired = row.live(container), row.desired(spec)
        if not row.equal(live, desired):
            if row.compare is Compare.OVER_IMAGE:  # show only the entries that differ
                everything, mine = live[0], own(live)
                keys = sorted(set(desired) | set(mine))
                live = {k: everything.get(k) for k in keys if everything.get(k) != desired.get(k)}
                desired = {k: desired.get(k) for k in sorted(live)}
            changes.append(FieldChange(row.name, live, desired, row.on_change is OnChange.REPLACE))
    return changes


def recorded_limits(labels: Mapping[str, str]) -> dict[str, int | str]:
    """The live-updatable values the container was created with (label `ds01.limits`)."""
    raw = L.decode_pairs(L.get(labels, L.DS01_LIMITS))
    return {k: (int(v) if v.lstrip("-").isdigit() else v) for k, v in raw.items()}
