"""What each owner uses now, from one observation: GPU units, containers, CPUs, memory (pure).

Stopped containers count too: a stopped workspace still names its GPUs (`mlc open` would
start it on them), and its limits come back the moment it starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from ds01ctl.model.inventory import GpuInventory
from ds01ctl.model.observed import ObservedContainer


@dataclass(frozen=True)
class Usage:
    gpu_units: Fraction = Fraction(0)
    workspaces: int = 0
    endpoints: int = 0
    nano_cpus: int = 0
    memory: int = 0


def usage_by_owner(
    containers: Iterable[ObservedContainer], inventory: GpuInventory
) -> dict[str, Usage]:
    found: dict[str, Usage] = {}
    for container in containers:
        owner = container.owner
        if owner is None or container.config is None:
            continue
        limits = container.config.limits
        now = found.get(owner, Usage())
        units = sum(
            (inventory.units_of(u) for u in container.gpu_ids if inventory.device(u)), Fraction(0)
        )
        found[owner] = Usage(
            gpu_units=now.gpu_units + units,
            workspaces=now.workspaces + (container.kind == "workspace"),
            endpoints=now.endpoints + (container.kind == "endpoint"),
            nano_cpus=now.nano_cpus + limits.nano_cpus,
            memory=now.memory + limits.memory,
        )
    return found
