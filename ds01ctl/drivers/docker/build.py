"""Building an Image's tag through the engine's classic builder (`POST /build`).

Why the classic builder, not BuildKit (`POST /build?version=2`): the classic builder honours
the per-step container limits the API takes (`memory`, `memswap`, `cpuquota`/`cpuperiod`) and
the network mode, so a user's `setup.py` runs with the Site's limits and network policy; its
JSON stream names each step in plain text (`Step 7/12 : RUN …`), which is how a failure names
its step; and it needs no gRPC session, which docker-py does not have. What BuildKit would add
(cache mounts, secrets) the generated Dockerfile does not use. docker-py's `build()` refuses
the CPU quota keys, so the request is made with the client's own session, as `build()` makes
it (the same headers and stream reader).

A build's RUN steps get no host mounts and no Docker socket (the classic builder gives none),
the Site's build network, memory (no swap beyond it) and CPUs; the whole build is ended when it
runs past the Site's time limit (closing the request cancels a classic build). The context is
assembled here from the step's data: generated files inline, the Site's wheelhouse and apt
files read from their host paths and refused if they differ from what the plan hashed.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ds01ctl import labels as L
from ds01ctl.model.imagebuild import BuildFailed, ImageBuildSpec
from ds01ctl.resolve.images import with_default_tag

if TYPE_CHECKING:
    import docker

TAIL = 20  # lines of a failed build's output shown with the failure
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # pip colours its errors
CPU_PERIOD = 100_000  # microseconds: the CFS period the quota is a share of


def context_tar(build: ImageBuildSpec) -> bytes:
    """The build context (the Dockerfile at its top) as a GNU tar, the same bytes every time."""
    files: dict[str, bytes] = {"Dockerfile": build.dockerfile.encode()}
    for item in build.context:
        if item.text is not None:
            data = item.text.encode()
        else:
            assert item.source is not None
            with open(item.source, "rb") as handle:
                data = handle.read()
        if hashlib.sha256(data).hexdigest() != item.sha256:
            raise BuildFailed(
                build.tag,
                None,
                (f"{item.source or item.name} changed since the plan; plan again",),
                None,
            )
        files[item.name] = data
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_params(build: ImageBuildSpec, labels: Mapping[str, str]) -> dict[str, Any]:
    """The query of `POST /build`: tag, labels, the build containers' network and limits."""
    params: dict[str, Any] = {
        "t": build.tag,
        "rm": "1",
        "forcerm": "1",  # the intermediate container of a failed step goes too
        "pull": "0",
        "networkmode": build.network,
        "labels": json.dumps(dict(labels)),
    }
    if build.memory:
        params["memory"] = build.memory
        params["memswap"] = build.memory  # no swap beyond it
    if build.nano_cpus:
        params["cpuperiod"] = CPU_PERIOD
        params["cpuquota"] = build.nano_cpus * CPU_PERIOD // 10**9
    return params


def build_image(
    client: docker.APIClient,
    build: ImageBuildSpec,
    *,
    labels: Mapping[str, str],
    log: Path | None,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Build `build.tag`; its image ID. Raises `BuildFailed` naming the failing step."""
    tar = context_tar(build)
    base_id = _base_id(client, build)
    params = build_params(build, {**labels, L.DS01_IMAGE_BASE_ID: base_id})
    response = client._post(
        client._url("/build"),
        data=tar,
        params=params,
        headers={"Content-Type": "application/x-tar"},
        stream=True,
        timeout=build.timeout,
    )
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        response.close()  # the engine cancels a classic build whose client went away

    timer = threading.Timer(build.timeout, expire)
    timer.daemon = True
    timer.start()
    seen = _Output(progress)
    started = time.monotonic()
    sink = open(log, "w", encoding="utf-8") if log is not None else None  # noqa: SIM115
    try:
        client._raise_for_status(response)
        for chunk in client._stream_helper(response, decode=True):
            text = seen.read(chunk)
            if sink is not None and text:
                sink.write(text)
    except Exception as exc:
        if not expired.is_set():
            raise BuildFailed(build.tag, seen.step, (*seen.tail, str(exc)), _shown(log)) from None
    finally:
        timer.cancel()
        if sink is not None:
            sink.write(f"\n# {time.monotonic() - started:.1f}s\n")
            sink.close()
    if expired.is_set():
        why = f"stopped: the build ran past the Site's images.build_timeout ({build.timeout}s)"
        raise BuildFailed(build.tag, seen.step, (*seen.tail, why), _shown(log))
    if seen.error is not None:
        raise BuildFailed(build.tag, seen.step, tuple(seen.tail), _shown(log))
    return seen.image_id or str(client.inspect_image(build.tag)["Id"])


class _Output:
    """What the build's JSON stream said: the step it is in, its last lines, the image."""

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.progress = progress
        self.tail: deque[str] = deque(maxlen=TAIL)
        self.step: str | None = None
        self.image_id: str | None = None
        self.error: str | None = None

    def read(self, chunk: Mapping[str, Any]) -> str:
        """Take one message in; the text it adds to the log."""
        text = str(chunk.get("stream") or "")
        if chunk.get("error"):
            self.error = str(chunk["error"])
            text += self.error + "\n"
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            self.image_id = str(aux["ID"])
        for line in text.splitlines():
            if line.startswith("Step "):
                self.step = line.strip()
                if self.progress is not None:
                    self.progress(self.step)
            shown = _ANSI.sub("", line).rstrip()
            if shown.strip():
                self.tail.append(shown)
        return text


def _base_id(client: docker.APIClient, build: ImageBuildSpec) -> str:
    """The base's image ID as the build will use it (pulled first if it is not here)."""
    from docker.errors import DockerException, ImageNotFound

    reference = with_default_tag(build.base)
    try:
        return str(client.inspect_image(reference)["Id"])
    except ImageNotFound:
        pass
    try:
        client.pull(reference)
        return str(client.inspect_image(reference)["Id"])
    except DockerException as exc:
        why = str(getattr(exc, "explanation", None) or exc).splitlines()[0]
        raise BuildFailed(build.tag, "FROM", (f"base {build.base}: {why}",), None) from None


def _shown(log: Path | None) -> str | None:
    return None if log is None else str(log)
