"""The driver protocol: everything the shell and the executor ask of a container backend.

Docker implements it today (`ds01ctl/drivers/docker/`); a Kubernetes driver would implement
the same methods (docs/architecture.md maps each one to the calls it makes). Signatures carry
only the core's types: ids are strings, specs are `ContainerSpec`, observations `Observed`.
Every method does what it says and decides nothing: what to do, and in which order, is the
plan's; a method that cannot do it raises.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ds01ctl.model.imagebuild import ImageBuildSpec
from ds01ctl.model.observed import Observed
from ds01ctl.model.spec import ContainerSpec


@dataclass(frozen=True)
class Snapshot:
    """A workspace's writable layer, kept before its container was removed or replaced."""

    reference: str
    image_id: str
    of: str  # `<kind>/<owner>/<name>`
    owner: str
    taken_at: str
    reason: str
    site: str
    size: int


@dataclass(frozen=True)
class DiskUse:
    """Bytes each owner's things hold on the engine's disk. An image counts only what it adds
    to the image it was made from: the base it shares with others is nobody's own."""

    writable_layers: Mapping[str, int]  # owner -> bytes, over this site's containers
    snapshots: Mapping[str, int]  # owner -> bytes, over this site's snapshots
    account_images: Mapping[int, int]  # uid -> bytes, over the images with an account in them


class Driver(Protocol):
    """A container backend. Costs are per call unless said otherwise."""

    @property
    def backend_id(self) -> str:
        """A stable id of the backend (the engine's, a cluster's): what one apply at a time
        is locked on and what a saved plan must be applied to."""
        ...

    # --- observing ---------------------------------------------------------------------

    def observe(self, site: str) -> Observed:
        """One observation: a list of containers, a detailed read of those that may be ours
        or hold GPUs, the local images. O(containers of interest) requests."""
        ...

    def with_layer_changes(self, observed: Observed, container_ids: Iterable[str]) -> Observed:
        """`observed` with the writable-layer changes of the named containers (costly: call
        it only for containers a plan removes)."""
        ...

    def disk_use(self, site: str) -> DiskUse:
        """What each owner's containers, snapshots and account images take on disk (costly:
        the engine measures every writable layer; only `ds01ctl limits` asks)."""
        ...

    def unavailable_images(self, references: Iterable[str]) -> dict[str, str]:
        """Of `references` not present locally, those that cannot be fetched, with why."""
        ...

    def sessions(self, container_id: str) -> int:
        """Processes besides the container's first one (interactive sessions, their jobs)."""
        ...

    # --- acting --------------------------------------------------------------------------

    def ensure_network(self, name: str, *, site: str, inter_container: bool) -> bool:
        """Make the site network unless it exists as this site's; True when it was made."""
        ...

    def prepare_image(self, spec: ContainerSpec, base: str | None = None) -> None:
        """Make `spec.image_tag`: the image (or `base`, a snapshot an adoption took) with the
        owner's account in it."""
        ...

    def create(self, spec: ContainerSpec) -> str:
        """Create the container `spec` describes, not started; its id."""
        ...

    def build_image(
        self,
        spec: ImageBuildSpec,
        *,
        labels: Mapping[str, str],
        log: Path | None,
        progress: Callable[[str], None] | None = None,
    ) -> str:
        """Build `spec.tag` from its Dockerfile and context under its limits, adding `labels`
        and the base's image ID; the image's ID. Raises `BuildFailed` (its step, its last
        lines); writes the build's output to `log`, and each step's line to `progress`."""
        ...

    def start(self, container_id: str) -> None: ...

    def stop(self, container_id: str, grace: int) -> None: ...

    def remove(self, container_id: str) -> None: ...

    def wait_healthy(
        self, container_id: str, spec: ContainerSpec, progress: Callable[[str], None]
    ) -> None:
        """Return once the container's server is Ready (`spec.ready_path` lists its served
        name) within `spec.start_timeout`, calling `progress` with a line now and then; raise
        with its last log lines when it exits or the timeout passes."""
        ...

    def update(self, container_id: str, spec: ContainerSpec) -> None:
        """Apply the live-updatable fields of `spec` to the running container."""
        ...

    def snapshot(
        self,
        container_id: str,
        *,
        target: str,
        site: str,
        reason: str,
        now: dt.datetime,
        keep_empty: bool = False,
    ) -> Snapshot | None:
        """Keep the container's writable layer, as it is now, as an image that passes for
        nothing managed; None when the layer has no changes (nothing to keep), unless
        `keep_empty` (something is made from the snapshot)."""
        ...

    def remove_image(self, reference: str) -> None:
        """Remove a leftover image reference: the image goes with its last reference, unless
        a container or another image is made from it (then the backend refuses)."""
        ...

    def release_image(self, reference: str) -> None:
        """Drop a per-container image reference the container was made from, if unused."""
        ...

    # --- snapshots -----------------------------------------------------------------------

    def snapshots(self, site: str) -> list[Snapshot]: ...

    def remove_snapshot(self, reference: str) -> None: ...

    def remove_build(self, reference: str) -> None:
        """Drop one tag of an Image's build (its layers stay while anything uses them)."""
        ...
