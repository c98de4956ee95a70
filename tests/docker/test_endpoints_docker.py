"""Endpoints on the real engine, served by the stand-in OpenAI server (no model, no GPU).

The stand-in (scripts/images/openai-standin) obeys the flags ds01ctl derives, so a wrong
`--port` or `--served-model-name` fails these tests; its readiness delay, a never-ready
variant and its API key come from its environment, as a recipe's env and a secret set them.
The Site here has a recipes_dir with two CPU recipes of a tiny model (one becomes ready after
a second, one never does: pinned only), a model cache holding that model (config.json and a
safetensors header), and a root-only secret store holding alice's API key.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import openai
import pytest
import yaml

from tests.docker.dockerlab import Lab

pytestmark = pytest.mark.docker

REPO_ROOT = Path(__file__).resolve().parents[2]
DEBIAN_ROOT_SCRIPT = REPO_ROOT / "scripts" / "debian-root"
STANDIN = REPO_ROOT / "scripts" / "images" / "openai-standin"
MODEL = "ds01test/tiny-chat"
SERVED = "tiny"
REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="session")
def standin_image(client: docker.APIClient) -> str:
    """The stand-in server on the Debian root, built once per session (tagged by content)."""
    done = subprocess.run(
        ["bash", str(DEBIAN_ROOT_SCRIPT)], capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"no Debian base for the stand-in: {done.stderr.strip()[-500:]}")
    base = done.stdout.strip()
    digest = hashlib.sha256()
    for name in ("Dockerfile", "server.py"):
        digest.update((STANDIN / name).read_bytes())
    tag = f"ds01ctl-local/openai-standin:{digest.hexdigest()[:12]}"
    try:
        client.inspect_image(tag)
    except docker.errors.ImageNotFound:
        for line in client.build(
            path=str(STANDIN), tag=tag, buildargs={"BASE": base}, rm=True, decode=True
        ):
            if "error" in line:
                pytest.fail(f"building the stand-in: {line['error']}")
    return tag


def _recipe(image: str, metric: str, env: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "id": f"vllm-cpu-bf16-tp1-{metric}",
        "version": 1,
        "model": {"family": MODEL, "id": MODEL},
        "engine": "vllm",
        "engine_version": "0.10.2",
        "image": image,
        "gpu": "cpu",
        "count": 1,
        "precision": "bf16",
        "metric": metric,
        "type": "optimized",
        "min_vram_gib": 1,
        "engine_args": {"max-model-len": 4096},
        "env": env,
        **extra,
    }


def _model_cache(root: Path) -> None:
    """A hub-layout cache holding MODEL: config.json and a safetensors header, no weights."""
    repo = root / f"models--{MODEL.replace('/', '--')}"
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    config = {
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "hidden_size": 256,
        "max_position_embeddings": 8192,
    }
    (snapshot / "config.json").write_text(json.dumps(config))
    header = json.dumps(
        {"w": {"dtype": "BF16", "shape": [1024, 1024], "data_offsets": [0, 2 * 1024 * 1024]}}
    ).encode()
    (snapshot / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    for path in (root, *root.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)


class EndpointLab:
    """The lab's config repo with an endpoint Site: recipes, model cache, secret store, pool."""

    def __init__(self, lab: Lab, image: str) -> None:
        self.lab = lab
        self.name = lab.name("chat")
        self.key_value = "sk-ds01test-" + uuid.uuid4().hex  # what no output may ever show
        top = Path(lab.host_dir())
        self.recipes = top / "recipes"
        self.cache = top / "models"
        self.secrets = top / "secrets"
        self.recipes.mkdir()
        ready = _recipe(image, "latency", {"STANDIN_READY_DELAY": "1"})
        never = _recipe(image, "throughput", {"STANDIN_NEVER_READY": "1"}, manual_only=True)
        (self.recipes / "tiny.yaml").write_text(yaml.safe_dump_all([ready, never]))
        _model_cache(self.cache)
        (self.secrets / "alice").mkdir(parents=True)
        self.secrets.chmod(0o700)
        (self.secrets / "alice" / "api-key").write_text(self.key_value + "\n")
        (self.secrets / "alice" / "api-key").chmod(0o600)
        self.pool_start = 20000 + int(lab.token, 16) % 20000
        site_file = lab.root / "site.yaml"
        site = yaml.safe_load(site_file.read_text())
        site["spec"].update(
            {
                "recipes_dir": str(self.recipes),
                "model_cache": str(self.cache),
                "secrets_dir": str(self.secrets),
                "endpoint_ports": {"start": self.pool_start, "end": self.pool_start + 7},
            }
        )
        site_file.write_text(yaml.safe_dump(site, sort_keys=False))
        self.write()

    def write(self, **spec: Any) -> None:
        body = {
            "model": {"id": MODEL, "served_name": SERVED},
            "accelerator": {"count": 0},
            "api_key": {"secret": "api-key"},
            "resources": {"cpus": 0.25, "memory": "128m"},
            "health": {"start_timeout": "40s"},
            **spec,
        }
        folder = self.lab.root / "users" / "alice"
        folder.mkdir(parents=True, exist_ok=True)
        document = {
            "apiVersion": "ds01/v1",
            "kind": "Endpoint",
            "metadata": {"name": self.name},
            "spec": body,
        }
        (folder / f"{self.name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))

    def endpoints(self) -> dict[str, Any]:
        done = self.lab.cli("endpoints", str(self.lab.root), "--json")
        assert done.code == 0, done.output
        rows = json.loads(done.stdout)["endpoints"]
        return next(r for r in rows if r["target"] == f"endpoint/alice/{self.name}")

    def running(self) -> list[dict[str, Any]]:
        return [c for c in self.lab.containers_of("alice", self.name) if c["State"] == "running"]


@pytest.fixture
def ep(lab: Lab, standin_image: str) -> Iterator[EndpointLab]:
    yield EndpointLab(lab, standin_image)


def _client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, timeout=10, max_retries=0)


def test_endpoint_is_created_ready_replaced_and_keeps_its_port_and_its_secret(
    ep: EndpointLab,
) -> None:
    lab = ep.lab
    outputs: list[str] = []
    # Something else listens on the pool's first port: it is skipped, and the plan says so.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ep.pool_start))
        taken.listen()
        plan = lab.plan_cli()
        outputs.append(plan.output)
        assert f"endpoint port {ep.pool_start} of the pool is in use" in plan.stdout
        assert "recipe vllm-cpu-bf16-tp1-latency@1 (selected;" in plan.stdout, plan.output
        assert (
            "rejected vllm-cpu-bf16-tp1-throughput@1 (site): manual selection only" in plan.stdout
        ), plan.output
        outputs.append(lab.plan_cli("--json").stdout)
        done = lab.apply()
        outputs.append(done.output)
        assert done.code == 0, done.output
    assert "ready" in done.stdout, done.output
    row = ep.endpoints()
    port = ep.pool_start + 1
    assert (row["phase"], row["url"]) == ("Ready", f"http://127.0.0.1:{port}"), row
    assert row["recipe"] == "vllm-cpu-bf16-tp1-latency@1"

    # The official client, through the URL `ds01ctl endpoints` prints, with the key only.
    client = _client(row["url"], ep.key_value)
    assert [m.id for m in client.models.list().data] == [SERVED]
    reply = client.chat.completions.create(
        model=SERVED, messages=[{"role": "user", "content": "hello there"}]
    )
    assert reply.choices[0].message.content == "echo: hello there"
    with pytest.raises(openai.AuthenticationError):
        _client(row["url"], "wrong").models.list()

    # Published on 127.0.0.1 only, running as alice, confined; no mlc label.
    (first,) = ep.running()
    inspect = lab.client.inspect_container(first["Id"])
    host = inspect["HostConfig"]
    assert host["PortBindings"] == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert inspect["Config"]["User"] == "61001:61001"
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"][0]
    assert not any(k.startswith("aime.mlc") for k in inspect["Config"]["Labels"])
    assert f"{ep.cache}:/models:ro" in host["Binds"]
    assert host["LogConfig"]["Config"] == {"max-file": "2", "max-size": str(10 * 1024**2)}
    lab.assert_converged()

    # A spec change replaces it; the port stays its own.
    ep.write(engine={"args": {"max-model-len": 2048}})
    plan = lab.plan_cli()
    outputs.append(plan.output)
    assert "must be replaced" in plan.stdout, plan.output
    done = lab.apply()
    outputs.append(done.output)
    assert done.code == 0, done.output
    (second,) = ep.running()
    assert second["Id"] != first["Id"]
    assert lab.containers_of("alice", ep.name) == [second], "the old one is removed once Ready"
    row = ep.endpoints()
    assert (row["phase"], row["url"]) == ("Ready", f"http://127.0.0.1:{port}"), row
    args = lab.client.inspect_container(second["Id"])["Args"]
    assert "--max-model-len=2048" in args  # one word: a value is never a flag of its own
    assert args[args.index("--port") + 1] == "8000" and "--served-model-name" in args
    lab.assert_converged()

    # Rotating the secret rolls the endpoint: its version is in the spec hash.
    (ep.secrets / "alice" / "api-key").write_text(ep.key_value + "-rotated\n")
    plan = lab.plan_cli()
    outputs.append(plan.output)
    assert "must be replaced" in plan.stdout, plan.output
    (ep.secrets / "alice" / "api-key").write_text(ep.key_value + "\n")  # back, for the greps

    # No output shows the secret: plans, applies, the journal, docker inspect, ps.
    outputs.append((lab.state_dir / "journal.jsonl").read_text())
    outputs += [json.dumps(ep.endpoints())]
    for container in lab.containers_of("alice", ep.name):
        made = lab.client.inspect_container(container["Id"])
        outputs.append(json.dumps([made["Args"], made["Config"]["Cmd"], made["Path"]]))
    ps = subprocess.run(["ps", "-eo", "args"], check=True, capture_output=True, text=True).stdout
    assert "openai-standin --model ds01test/tiny-chat" in ps, "the server is in ps"
    outputs.append(ps)
    for text in outputs:
        assert ep.key_value not in text


def test_broken_replacement_fails_with_its_logs_and_rolls_back(ep: EndpointLab) -> None:
    lab = ep.lab
    assert lab.apply().code == 0
    (first,) = ep.running()

    # A replacement that never becomes Ready: rolled back to the container it replaced.
    ep.write(recipe={"ref": "vllm-cpu-bf16-tp1-throughput@1"}, health={"start_timeout": "4s"})
    done = lab.apply()
    assert done.code != 0
    assert "its replacement failed, rolled back" in done.output, done.output
    assert f"serving {SERVED} on http://0.0.0.0:8000" in done.output, "its last log lines"
    (back,) = ep.running()
    assert back["Id"] == first["Id"]
    assert len(lab.containers_of("alice", ep.name)) == 1, "the failed replacement is removed"
    assert ep.endpoints()["phase"] == "Ready"

    # Without rollback it is left Failed, with its logs, for its owner to look at.
    ep.write(
        recipe={"ref": "vllm-cpu-bf16-tp1-throughput@1"},
        health={"start_timeout": "4s"},
        rollback="none",
    )
    done = lab.apply()
    assert done.code != 0
    assert f"endpoint/alice/{ep.name} is Failed: not ready within 4s" in done.output, done.output
    assert "log line(s)" in done.output
    row = ep.endpoints()
    assert row["phase"] in ("Starting", "Degraded"), row
    assert "HTTP 503" in (row["detail"] or ""), row


def test_endpoint_model_not_in_the_cache_is_pending_with_the_command(ep: EndpointLab) -> None:
    cached = ep.cache / f"models--{MODEL.replace('/', '--')}"
    cached.rename(ep.cache / "elsewhere")
    plan = ep.lab.plan_cli()
    assert plan.code == 0, plan.output
    assert (
        f"model {MODEL} is not in the site's model cache {ep.cache}; an admin fetches it with: "
        f"huggingface-cli download {MODEL} --cache-dir {ep.cache}"
    ) in plan.stdout, plan.output
    assert ep.endpoints()["phase"] == "Pending"
    os.rename(ep.cache / "elsewhere", cached)
