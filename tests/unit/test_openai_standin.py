"""The stand-in OpenAI-compatible server obeys its argv, as the endpoint tests need.

It runs as a subprocess on 127.0.0.1 and the official `openai` client talks to it: a wrong
derived flag (port, served name) must make a test fail, so the server must really use them.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

SERVER = Path(__file__).resolve().parents[2] / "scripts/images/openai-standin/server.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    argv = [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", str(port), *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=1).close()
            return proc, base
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the stand-in did not listen: {proc.communicate()[1]}")


@pytest.fixture
def server() -> Iterator[str]:
    proc, base = _start("--model", "/models/qwen", "--served-model-name", "qwen-small")
    yield base
    proc.terminate()
    proc.wait(timeout=5)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_standin_openai_client_lists_model_and_completes(server: str) -> None:
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == ["qwen-small"]
    reply = client.chat.completions.create(
        model="qwen-small", messages=[{"role": "user", "content": "hello there"}]
    )
    assert reply.choices[0].message.content == "echo: hello there"


def test_standin_wrong_served_name_fails(server: str) -> None:
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(
            model="/models/qwen", messages=[{"role": "user", "content": "hi"}]
        )


def test_standin_ready_delay_then_ready() -> None:
    proc, base = _start("--model", "m", "--ready-delay", "1.5")
    try:
        assert _status(f"{base}/health") == 200
        assert _status(f"{base}/v1/models") == 503
        time.sleep(1.7)
        with urllib.request.urlopen(f"{base}/v1/models", timeout=2) as response:
            assert [m["id"] for m in json.load(response)["data"]] == ["m"]  # --model when unnamed
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_standin_never_ready() -> None:
    proc, base = _start("--model", "m", "--never-ready")
    try:
        assert _status(f"{base}/health") == 200
        assert _status(f"{base}/v1/models") == 503
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.mark.parametrize("flag", ["--no-such-flag", "--served-model", "--prot"])
def test_standin_refuses_unknown_args_like_vllm(flag: str) -> None:
    result = subprocess.run(
        [sys.executable, str(SERVER), "--model", "m", flag, "x"],
        check=False,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr
