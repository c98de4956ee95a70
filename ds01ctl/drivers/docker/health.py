"""Waiting for a model server to be Ready: `/v1/models` lists its served name.

The server is reached where it is published on the host (the container's port binding), as
its clients reach it, with its API key when it has one (read from the secret file the spec
names, never printed). A container that exits while loading fails at once; one that is still
not Ready at the timeout fails. Either way the error carries its last log lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ds01ctl import labels as L
from ds01ctl.live.endpoints import probe, read_secret
from ds01ctl.model.spec import ContainerSpec

if TYPE_CHECKING:
    import docker

POLL_SECONDS = 1.0
PROGRESS_SECONDS = 10.0  # a line this often while waiting: large models load for minutes
LOG_LINES = 15
API_KEY_ENV = "VLLM_API_KEY"


class NotReady(RuntimeError):
    """The server did not become Ready; the message ends with its last log lines."""


def wait_healthy(
    client: docker.APIClient,
    container_id: str,
    spec: ContainerSpec,
    progress: Callable[[str], None],
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Return once the container's server lists its served name; raise `NotReady` if it
    exits or the spec's start timeout passes first."""
    started = clock()
    deadline = started + spec.start_timeout
    next_progress = started + PROGRESS_SECONDS
    key = _api_key(spec)
    last = "no answer yet"
    while True:
        inspect = client.inspect_container(container_id)
        state = inspect.get("State") or {}
        if not state.get("Running"):
            raise NotReady(
                f"its container exited (status {state.get('ExitCode')}) before it was ready"
                + _logs(client, container_id)
            )
        url = _url(inspect, spec.ready_path)
        served = L.get((inspect.get("Config") or {}).get("Labels") or {}, L.DS01_SERVED)
        if url is not None and served is not None:
            ready, last = probe(url, served, key)
            if ready:
                return
        now = clock()
        if now >= deadline:
            raise NotReady(
                f"not ready within {spec.start_timeout}s ({spec.ready_path}: {last})"
                + _logs(client, container_id)
            )
        if now >= next_progress:
            progress(f"not ready after {now - started:.0f}s of {spec.start_timeout}s ({last})")
            next_progress = now + PROGRESS_SECONDS
        time.sleep(POLL_SECONDS)


def _api_key(spec: ContainerSpec) -> str | None:
    for name, path, _ in spec.secret_env:
        if name == API_KEY_ENV:
            return read_secret(path)  # the create read it a moment ago; a 401 says the rest
    return None


def _url(inspect: dict[str, Any], path: str) -> str | None:
    bindings = (inspect.get("HostConfig") or {}).get("PortBindings") or {}
    for hosts in bindings.values():
        for host in hosts or []:
            address = str(host.get("HostIp") or "") or "127.0.0.1"
            if address == "0.0.0.0":
                address = "127.0.0.1"
            return f"http://{address}:{host.get('HostPort')}{path}"
    return None


def _logs(client: docker.APIClient, container_id: str) -> str:
    try:
        raw = client.logs(container_id, tail=LOG_LINES)
    except Exception:  # a log read failing must not hide why the wait failed
        return ""
    lines = raw.decode(errors="replace").strip().splitlines()
    if not lines:
        return "; it logged nothing"
    return f"; its last {len(lines)} log line(s):\n" + "\n".join(f"    {line}" for line in lines)
