"""Which of the inventory's devices a container can reach, from its raw claims (pure).

A container holds a GPU however it got it: a device request by UUID, by index or `i:j`, by
count; a CDI name; `NVIDIA_VISIBLE_DEVICES` under an NVIDIA runtime; `/dev/nvidiaN` nodes;
or privileged. The observation carries the claims as the engine recorded them
(`GpuAccess`); this module turns them into device UUIDs with one inventory snapshot, so that
a GPU somebody took by hand is never placed again.

Resolution follows NVIDIA's device-id grammar (gpu.md §3.2), erring towards "held": `all`
and count -1 are every device; count N is the GPUs of index 0..N-1 (what the engine does
with a count); a GPU, by UUID, PCI bus id or index, is every device on it (its MIG
instances too: its device node is in the container); `i:j` is the j-th MIG instance of GPU
i in the inventory's order; `/dev/nvidiaN` is GPU index N (the node's minor number, which
NVML numbers like the index on the hosts we know). An id no device here has reaches
nothing (the container is reported by its raw ids where they are UUIDs).
"""

from __future__ import annotations

from collections.abc import Iterable

from ds01ctl.model.inventory import Device, GpuInventory
from ds01ctl.model.observed import GpuAccess

CDI_GPU = "nvidia.com/gpu="  # the CDI kind NVIDIA's toolkit names its devices with
NOTHING = frozenset({"", "void", "none"})  # NVIDIA_VISIBLE_DEVICES values that give no GPU
_NODE = "/dev/nvidia"


def reached(access: GpuAccess, inventory: GpuInventory) -> tuple[str, ...]:
    """The device UUIDs a container with `access` can reach, in placement order."""
    if not access.any:
        return ()
    devices = inventory.devices(include_unhealthy=True)
    if access.privileged or access.count < 0:
        return tuple(d.uuid for d in devices)
    found: set[str] = set()
    found.update(d.uuid for d in devices if d.gpu_index < access.count)
    for device_id in _ids(access):
        found.update(d.uuid for d in _by_id(device_id, devices, inventory))
    return tuple(d.uuid for d in devices if d.uuid in found)


def _ids(access: GpuAccess) -> Iterable[str]:
    yield from access.ids
    yield from (name[len(CDI_GPU) :] for name in access.cdi if name.startswith(CDI_GPU))
    if access.visible is not None and access.visible.strip().lower() not in NOTHING:
        yield from (part.strip() for part in access.visible.split(","))
    yield from (path[len(_NODE) :] for path in access.nodes if path[len(_NODE) :].isdigit())


def _by_id(
    device_id: str, devices: tuple[Device, ...], inventory: GpuInventory
) -> Iterable[Device]:
    wanted = device_id.strip().lower()
    if wanted == "all":
        return devices
    if wanted.isdigit():
        return [d for d in devices if d.gpu_index == int(wanted)]
    gpu_index, colon, mig_index = wanted.partition(":")
    if colon and gpu_index.isdigit() and mig_index.isdigit():
        gpu = next((g for g in inventory.gpus if g.index == int(gpu_index)), None)
        if gpu is None or int(mig_index) >= len(gpu.migs):
            return []
        uuid = gpu.migs[int(mig_index)].uuid
        return [d for d in devices if d.uuid == uuid]
    return [
        d
        for d in devices
        if wanted in (d.uuid.lower(), d.gpu_uuid.lower()) or wanted == _bus_id(d, inventory)
    ]


def _bus_id(device: Device, inventory: GpuInventory) -> str | None:
    gpu = inventory.gpu(device.gpu_uuid)
    return None if gpu is None else gpu.pci_bus_id.lower()


def how(access: GpuAccess) -> str:
    """The ways `access` claims GPUs, in words: for a plan line about who holds one."""
    ways = []
    if access.ids:
        ways.append(f"device request {','.join(access.ids)}")
    if access.count:
        ways.append(
            "device request for all GPUs"
            if access.count < 0
            else (f"device request for {access.count} GPU(s)")
        )
    if access.cdi:
        ways.append(f"CDI device {','.join(access.cdi)}")
    if access.visible is not None and access.visible.strip().lower() not in NOTHING:
        ways.append(f"NVIDIA runtime with NVIDIA_VISIBLE_DEVICES={access.visible}")
    if access.nodes:
        ways.append(f"device {','.join(access.nodes)}")
    if access.privileged:
        ways.append("privileged")
    return "; ".join(ways)
