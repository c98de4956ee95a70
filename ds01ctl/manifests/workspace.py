"""The `Workspace` kind: a long-lived, mlc-style development container of one owner."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from ds01ctl.manifests.common import (
    EnvName,
    FrameworkRef,
    ImageRef,
    Manifest,
    MigProfile,
    Model,
    Name,
    exactly_one,
)
from ds01ctl.units import ByteSize, NanoCpus, Seconds


class Mount(Model):
    """A host directory mounted into the container."""

    path: str
    """Absolute host path; {owner} is replaced by the owner's login."""
    read_only: bool = False
    """Mount read-only."""


def _mount_shorthand(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


MountField = Annotated[Mount, BeforeValidator(_mount_shorthand)]


class WorkspaceMounts(Model):
    """mlc's three mounts; a plain string is a read-write path."""

    workspace: MountField | None = None
    """Mounted at /workspace; the site's default_workspace_mount when unset."""
    data: MountField | None = None
    """Mounted at /data."""
    models: MountField | None = None
    """Mounted at /models."""


class Lifecycle(Model):
    """Per-workspace lifecycle; each value may only be stricter than the owner's quota."""

    idle_timeout: Seconds | None = None
    """Stop after being idle this long."""
    max_runtime: Seconds | None = None
    """Stop after running this long."""
    gpu_hold_after_stop: Seconds | None = None
    """Keep GPUs this long after a stop."""


class WorkspaceSpec(Model):
    """What the workspace container looks like and what it may use."""

    framework: FrameworkRef | None = None
    """A catalog framework and version (mlc create's framework/version)."""
    image: Name | None = None
    """An Image declared by the same owner."""
    image_ref: ImageRef | None = None
    """Any image reference."""
    gpus: int = Field(0, ge=0, le=16)
    """Whole GPUs (0 for a CPU-only workspace)."""
    mig: MigProfile | None = None
    """One MIG instance of this profile, e.g. 1g.10gb, instead of whole GPUs."""
    cpus: NanoCpus | None = None
    """CPUs (decimal cores); the owner's quota when unset."""
    memory: ByteSize | None = None
    """Memory limit; the owner's quota when unset."""
    shm_size: ByteSize | None = None
    """/dev/shm size; the owner's quota or the site default when unset."""
    pids: int | None = Field(None, ge=1)
    """Process limit; the owner's quota when unset."""
    mounts: WorkspaceMounts = WorkspaceMounts()
    """Host directories for /workspace, /data and /models."""
    env: dict[EnvName, str] = Field(default_factory=dict)
    """Environment variables."""
    network: str | None = None
    """Docker network; the site default when unset (host only where the site allows it)."""
    power: Literal["any", "running", "stopped"] = "any"
    """any leaves running/stopped to the user (mlc open/stop) and the lifecycle policy;
    running or stopped pins it."""
    lifecycle: Lifecycle = Lifecycle()
    """Lifecycle overrides."""
    on_replace: Literal["snapshot", "discard"] = "snapshot"
    """What happens to changes in the container's writable layer when it must be replaced."""

    @model_validator(mode="after")
    def _image_and_gpus(self) -> WorkspaceSpec:
        exactly_one(self, "framework", "image", "image_ref")
        if self.gpus and self.mig is not None:
            raise ValueError("ask for whole GPUs (gpus) or one MIG instance (mig), not both")
        return self


class Workspace(Manifest):
    """A per-user development container that mlc open, stop and list manage too."""

    kind: Literal["Workspace"]
    """Workspace."""
    spec: WorkspaceSpec
    """The container."""
