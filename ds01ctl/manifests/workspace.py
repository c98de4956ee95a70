"""The `Workspace` kind: a long-lived, mlc-style development container of one owner."""

from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, ConfigDict, Field, model_validator

from ds01ctl.manifests.common import (
    EnvName,
    EnvValue,
    FrameworkRef,
    ImageRef,
    Manifest,
    MigProfile,
    Model,
    Name,
    NetworkName,
    exactly_one,
    exactly_one_schema,
)
from ds01ctl.units import ByteSize, NanoCpus, Seconds


class Mount(Model):
    """A host directory mounted into the container."""

    path: str = Field(description="Absolute host path; {owner} is replaced by the owner's login.")
    read_only: bool = Field(False, description="Mount read-only.")


def _mount_shorthand(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


MountField = Annotated[Mount, BeforeValidator(_mount_shorthand, json_schema_input_type=str | Mount)]


class WorkspaceMounts(Model):
    """mlc's three mounts; a plain string is a read-write path."""

    workspace: MountField | None = Field(
        None, description="Mounted at /workspace; the site's default_workspace_mount when unset."
    )
    data: MountField | None = Field(None, description="Mounted at /data.")
    models: MountField | None = Field(None, description="Mounted at /models.")


class Lifecycle(Model):
    """Per-workspace lifecycle; each value may only be stricter than the owner's quota."""

    idle_timeout: Seconds | None = Field(None, description="Stop after being idle this long.")
    max_runtime: Seconds | None = Field(None, description="Stop after running this long.")
    gpu_hold_after_stop: Seconds | None = Field(
        None, description="Keep GPUs this long after a stop."
    )


class ImagePin(Model):
    """An Image of the same owner at one tag it was built at: a rollback to an older build."""

    name: Name = Field(description="The Image's name.")
    tag: Annotated[str, Field(pattern=r"^[0-9a-f]{12}$")] = Field(
        description="The 12-hex-digit tag of an earlier build (`ds01ctl images list`)."
    )


class WorkspaceSpec(Model):
    """What the workspace container looks like and what it may use."""

    model_config = ConfigDict(
        json_schema_extra={
            **exactly_one_schema("framework", "image", "image_ref"),
            "not": {
                "required": ["gpus", "mig"],
                "properties": {"gpus": {"exclusiveMinimum": 0}, "mig": {"type": "string"}},
            },
        }
    )

    framework: FrameworkRef | None = Field(
        None, description="A catalog framework and version (mlc create's framework/version)."
    )
    image: Name | ImagePin | None = Field(
        None,
        description=(
            "An Image declared by the same owner (its current build), or {name, tag} to pin an "
            "earlier build (a rollback)."
        ),
    )
    image_ref: ImageRef | None = Field(None, description="Any image reference.")
    gpus: int = Field(0, ge=0, le=16, description="Whole GPUs (0 for a CPU-only workspace).")
    mig: MigProfile | None = Field(
        None, description="One MIG instance of this profile, e.g. 1g.10gb, instead of whole GPUs."
    )
    cpus: NanoCpus | None = Field(
        None, description="CPUs (decimal cores); the owner's quota when unset."
    )
    memory: ByteSize | None = Field(None, description="Memory limit; the owner's quota when unset.")
    shm_size: ByteSize | None = Field(
        None, description="/dev/shm size; the owner's quota or the site default when unset."
    )
    pids: int | None = Field(None, ge=1, description="Process limit; the owner's quota when unset.")
    mounts: WorkspaceMounts = Field(
        WorkspaceMounts(), description="Host directories for /workspace, /data and /models."
    )
    env: dict[EnvName, EnvValue] = Field(default_factory=dict, description="Environment variables.")
    network: NetworkName | None = Field(
        None,
        description=(
            "Docker network; the site default when unset (host only where the site allows it)."
        ),
    )
    power: Literal["any", "running", "stopped"] = Field(
        "any",
        description=(
            "any leaves running/stopped to the user (mlc open/stop) and the lifecycle policy; "
            "running or stopped pins it."
        ),
    )
    lifecycle: Lifecycle = Field(Lifecycle(), description="Lifecycle overrides.")
    rollout: Literal["auto", "manual"] = Field(
        "auto",
        description=(
            "When its Image is rebuilt: auto replaces the workspace with the new build (its "
            "layer snapshotted as for any replace); manual keeps the running build and the plan "
            "says an image update is available."
        ),
    )
    on_replace: Literal["snapshot", "discard"] = Field(
        "snapshot",
        description=(
            "What happens to changes in the container's writable layer when it must be replaced."
        ),
    )
    adopt: bool = Field(
        False,
        description=(
            "Adopt the container `mlc create` made for the owner under this workspace's name: "
            "its writable layer is snapshotted and the workspace is made from that snapshot, "
            "with this manifest's shape and the container's mounts (which must be the ones "
            "declared here). Without it such a container leaves the workspace pending."
        ),
    )

    @property
    def image_name(self) -> str | None:
        """The Image it uses, pinned or not."""
        return self.image.name if isinstance(self.image, ImagePin) else self.image

    @model_validator(mode="after")
    def _image_and_gpus(self) -> Self:
        exactly_one(self, "framework", "image", "image_ref")
        if self.gpus and self.mig is not None:
            raise ValueError("ask for whole GPUs (gpus) or one MIG instance (mig), not both")
        return self


class Workspace(Manifest):
    """A per-user development container that mlc open, stop and list manage too."""

    kind: Literal["Workspace"] = Field(description="Workspace.")
    spec: WorkspaceSpec = Field(description="The container.")
