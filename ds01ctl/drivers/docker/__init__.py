"""The Docker driver: `Driver` over one Docker engine's API (docker-py's low-level client).

`containers.py` creates, updates and prepares containers (spelling the field table's
bindings), `snapshots.py` commits writable layers, and observing is `live/docker.py`. This
class only routes each protocol method to them; it holds the client and nothing else.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ds01ctl.drivers.docker import build, containers, disk, health, snapshots
from ds01ctl.live import docker as live
from ds01ctl.model.driver import DiskUse, Snapshot
from ds01ctl.model.imagebuild import ImageBuildSpec
from ds01ctl.model.observed import Observed
from ds01ctl.model.spec import ContainerSpec
from ds01ctl.resolve.images import with_default_tag

if TYPE_CHECKING:
    import docker


class DockerDriver:
    def __init__(self, client: docker.APIClient) -> None:
        self.client = client
        self._engine_id: str | None = None

    @classmethod
    def connect(cls) -> DockerDriver:
        """The engine DOCKER_HOST (or the default socket) names."""
        return cls(live.connect())

    @property
    def backend_id(self) -> str:
        if self._engine_id is None:
            self._engine_id = live.engine_info(self.client).id
        return self._engine_id

    def observe(self, site: str) -> Observed:
        return live.observe_docker(self.client, site)

    def with_layer_changes(self, observed: Observed, container_ids: Iterable[str]) -> Observed:
        return live.with_layer_changes(self.client, observed, container_ids)

    def disk_use(self, site: str) -> DiskUse:
        return disk.disk_use(self.client, site)

    def unavailable_images(self, references: Iterable[str]) -> dict[str, str]:
        """`inspect_distribution` asks the registry for each missing one (no download)."""
        from docker.errors import DockerException

        local = {t for image in self.client.images() for t in image.get("RepoTags") or []}
        found = {}
        for reference in references:
            if with_default_tag(reference) in local:
                continue
            try:
                self.client.inspect_distribution(reference)
            except DockerException as exc:
                found[reference] = _pull_problem(exc)
        return found

    def sessions(self, container_id: str) -> int:
        return containers.sessions(self.client, container_id)

    def ensure_network(self, name: str, *, site: str, inter_container: bool) -> bool:
        return containers.ensure_network(
            self.client, name, site=site, inter_container=inter_container
        )

    def prepare_image(self, spec: ContainerSpec, base: str | None = None) -> None:
        containers.prepare_image(self.client, spec, base)

    def create(self, spec: ContainerSpec) -> str:
        return containers.create(self.client, spec)

    def build_image(
        self,
        spec: ImageBuildSpec,
        *,
        labels: Mapping[str, str],
        log: Path | None,
        progress: Callable[[str], None] | None = None,
    ) -> str:
        return build.build_image(self.client, spec, labels=labels, log=log, progress=progress)

    def start(self, container_id: str) -> None:
        containers.start(self.client, container_id)

    def stop(self, container_id: str, grace: int) -> None:
        containers.stop(self.client, container_id, grace)

    def remove(self, container_id: str) -> None:
        containers.remove(self.client, container_id)

    def wait_healthy(
        self, container_id: str, spec: ContainerSpec, progress: Callable[[str], None]
    ) -> None:
        health.wait_healthy(self.client, container_id, spec, progress)

    def update(self, container_id: str, spec: ContainerSpec) -> None:
        containers.update(self.client, container_id, spec)

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
        if not keep_empty and live.layer_changes(self.client, container_id).empty:
            return None
        return snapshots.take(
            self.client, container_id, target=target, site=site, reason=reason, now=now
        )

    def remove_image(self, reference: str) -> None:
        """Never forced: the engine refuses an image a container uses. One already gone is
        what the step wanted."""
        from docker.errors import NotFound

        with contextlib.suppress(NotFound):
            self.client.remove_image(reference, noprune=False)

    def release_image(self, reference: str) -> None:
        containers.untag(self.client, reference)

    def snapshots(self, site: str) -> list[Snapshot]:
        return snapshots.list_snapshots(self.client, site)

    def remove_snapshot(self, reference: str) -> None:
        self.client.remove_image(reference)

    def remove_build(self, reference: str) -> None:
        self.client.remove_image(reference, noprune=False)


def _pull_problem(exc: Exception) -> str:
    """What the engine's answer about a registry means, in a few words (its own text can run
    to a page)."""
    text = str(exc).lower()
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if "no such host" in text or "dial tcp" in text or "timeout" in text or "i/o" in text:
        return "its registry cannot be reached"
    if status == 404 or "not found" in text or "manifest unknown" in text:
        return "the registry has no such image or tag"
    if status in (401, 403) or "denied" in text or "unauthorized" in text:
        return "the registry refuses access: it does not exist or needs a login"
    return f"the engine answered {status}" if status else "the engine could not ask its registry"
