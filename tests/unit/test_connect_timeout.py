"""A hung engine (a socket that accepts and never answers) is reported as a timeout after the
connect timeout, not as "no engine" after a minute per command."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ds01ctl.errors import DockerUnavailable
from ds01ctl.live.docker import connect


@pytest.fixture
def hung_socket(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not done.is_set():
            try:
                accepted.append(server.accept()[0])  # held open, never read or answered
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"unix://{path}"
    done.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_hung_engine_times_out_after_the_connect_timeout(
    hung_socket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", hung_socket)
    monkeypatch.setenv("DS01CTL_CONNECT_TIMEOUT", "1.5")
    started = time.monotonic()
    with pytest.raises(DockerUnavailable) as info:
        connect()
    took = time.monotonic() - started
    assert 1.4 < took < 10, took
    assert str(info.value.message) == (
        f"the Docker engine at {hung_socket} did not answer within 1.5 s (timed out)"
    )
    assert "DS01CTL_CONNECT_TIMEOUT" in (info.value.hint or "")


def test_connect_timeout_that_is_not_seconds_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DS01CTL_CONNECT_TIMEOUT", "soon")
    with pytest.raises(DockerUnavailable, match="DS01CTL_CONNECT_TIMEOUT='soon' is not a number"):
        connect()
