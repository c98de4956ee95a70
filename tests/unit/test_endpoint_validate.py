"""Endpoint manifests at validate time: engine flags by allow-list, env by vendor, recipe refs,
scoped secrets and literal tokens, each one line with file:line:col."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ds01ctl.catalog.engine_flags import env_problem, flag_problem, normalise
from ds01ctl.manifests.validate import validate_path

SITE = """\
apiVersion: ds01/v1
kind: Site
metadata: {name: lab}
spec:
  secret_grants:
    lab/hf-readonly: [alice]
---
apiVersion: ds01/v1
kind: QuotaPolicy
metadata: {name: q}
spec:
  default_group: students
  groups: {students: {members: []}}
"""


@pytest.mark.parametrize(
    "key",
    [
        "model",
        "--model",
        "served-model-name",
        "served_model_name",
        "--served-model",  # argparse would take the prefix
        "served-model",
        "tp",
        "-tp",
        "TP",
        "tensor_parallel_size",
        "--tensor-parallel-size=2",
        "--tensor-parallel",
        "port",
        "--po",
        "host",
        "api-key",
        "pipeline-parallel-size",
        "pp",
        "config",
    ],
)
def test_endpoint_flags_owned_however_spelled(key: str) -> None:
    problem = flag_problem(key, "0.10.2")
    assert problem is not None and problem.owned, key


@pytest.mark.parametrize(
    ("key", "normal"),
    [
        ("max_model_len", "max-model-len"),
        ("--gpu-memory-utilization=0.9", "gpu-memory-utilization"),
        ("-q", "quantization"),
    ],
)
def test_endpoint_flags_allowed_spellings(key: str, normal: str) -> None:
    assert normalise(key) == normal
    assert flag_problem(key, "0.10.2") is None


def test_endpoint_flags_per_version() -> None:
    assert flag_problem("async-scheduling", "0.10.2") is None
    problem = flag_problem("async-scheduling", "0.8.5")
    assert problem is not None and not problem.owned
    assert (
        problem.message == "engine arg 'async-scheduling' is not a flag users may set on vLLM 0.8"
    )
    assert flag_problem("max-model", "0.10.2") is not None  # a prefix is never enough


def test_endpoint_env_by_vendor() -> None:
    assert env_problem("VLLM_ROCM_USE_AITER", "amd") is None
    assert env_problem("VLLM_ROCM_USE_AITER", "nvidia") is not None
    assert env_problem("NCCL_DEBUG", "nvidia") is None
    assert env_problem("LD_PRELOAD", None) is not None
    assert env_problem("CUDA_VISIBLE_DEVICES", "nvidia") == "CUDA_VISIBLE_DEVICES is set by ds01ctl"


ENDPOINT = """\
apiVersion: ds01/v1
kind: Endpoint
metadata: {name: chat}
spec:
  model:
    id: meta-llama/Llama-3.1-8B-Instruct
    token: {secret: bob/hf-token}
  recipe: {ref: vllm-h100-bf16-tp1-latncy@1}
  engine:
    args:
      max-model-len: 8192
      served_model: x
      --tp: 2
      no-such-flag: 1
    env:
      HF_TOKEN: hf_abcdefghijklmnopqrstuvwxyz0123
      LD_PRELOAD: /tmp/x.so
      OPENAI_KEY: {secret: lab/hf-readonly}
      NOTE: sk-proj-abcdefghijklmnopqrstuvwxyz
"""


def _repo(tmp_path: Path, endpoint: str, owner: str = "alice") -> list[str]:
    (tmp_path / "site.yaml").write_text(SITE)
    where = tmp_path / "users" / owner
    where.mkdir(parents=True)
    (where / "ep.yaml").write_text(endpoint)
    repo = validate_path(tmp_path, today=dt.date(2026, 1, 1))
    return [str(d) for d in repo.diagnostics]


def test_endpoint_validate_each_problem_one_line_with_place(tmp_path: Path) -> None:
    lines = _repo(tmp_path, ENDPOINT)
    at = "users/alice/ep.yaml"
    expected = [
        (f"{at}:7:", "secret.scope", "secret 'bob/hf-token' is not alice's"),
        (f"{at}:8:", "ref.recipe", "did you mean 'vllm-h100-bf16-tp1-latency@1'?"),
        (f"{at}:12:7", "security.owned_flag", "abbreviates --served-model-name"),
        (f"{at}:13:7", "security.owned_flag", "(that is --tensor-parallel-size) is set by ds01ctl"),
        (f"{at}:14:7", "endpoint.engine_arg", "'no-such-flag' is not a flag users may set"),
        (f"{at}:16:7", "security.reserved_env", "sets HF_TOKEN, which ds01ctl sets"),
        (f"{at}:16:", "security.literal_secret", "HF_TOKEN looks like a Hugging Face token"),
        (f"{at}:17:7", "endpoint.env", "LD_PRELOAD is not an environment variable"),
        (f"{at}:19:", "security.literal_secret", "NOTE looks like an API key"),
    ]
    for place, code, text in expected:
        assert any(place in line and f"[{code}]" in line and text in line for line in lines), (
            place,
            code,
            lines,
        )
    # the granted secret and the allowed arg raise nothing; the token never appears
    assert not any("lab/hf-readonly" in line for line in lines)
    assert not any("max-model-len" in line for line in lines)
    assert not any("abcdefghijklmnopqrstuvwxyz" in line for line in lines)


def test_endpoint_validate_own_and_granted_secrets_pass(tmp_path: Path) -> None:
    endpoint = ENDPOINT.split("  recipe:", maxsplit=1)[0].replace("bob/hf-token", "hf-token")
    endpoint += "  recipe: {ref: vllm-h100-bf16-tp1-latency@1}\n"
    endpoint += "  engine:\n    env:\n      HF_TOKEN: {secret: lab/hf-readonly}\n"
    assert _repo(tmp_path, endpoint) == []


def test_endpoint_validate_model_without_recipe(tmp_path: Path) -> None:
    endpoint = (
        ENDPOINT.split("  model:", maxsplit=1)[0].replace("chat", "x")
        + "  model: {id: org/nothing}\n"
    )
    (line,) = _repo(tmp_path, endpoint)
    assert "[ref.recipe]: endpoint alice/x: no recipe serves org/nothing" in line
    assert "allow_fallback" in line


def test_endpoint_validate_port_outside_the_pool_and_lab_without_an_address(
    tmp_path: Path,
) -> None:
    endpoint = (
        ENDPOINT.split("  recipe:", maxsplit=1)[0].replace("bob/hf-token", "hf-token")
        + "  port: 9000\n  expose: lab\n"
    )
    lines = _repo(tmp_path, endpoint)
    assert len(lines) == 2, lines
    port = next(line for line in lines if "[endpoint.port]" in line)
    assert "users/alice/ep.yaml:8:" in port
    assert "port 9000 is outside the Site's endpoint pool 8100-8199" in port
    assert "(use a port from 8100 to 8199, or port: auto)" in port
    lab = next(line for line in lines if "[endpoint.expose]" in line)
    assert "expose: lab, but the Site sets no endpoint_lab_address" in lab
    assert ":9:" in lab


# A secret is the file `<secrets_dir>/<login>/<name>`: however a name is spelled, it must not
# reach another login's file (or any other) through `..`, a leading `/` or an empty scope.
@pytest.mark.parametrize(
    "name",
    [
        "../bob/hf-token",
        "/bob/hf-token",
        "bob/../alice/hf-token",
        "alice/../bob/hf-token",
        "alice/../../etc/shadow",
        "./hf-token",
        "alice//hf-token",
        "/etc/shadow",
        "..",
        "alice/..",
    ],
)
def test_endpoint_secret_name_cannot_walk_to_another_file(tmp_path: Path, name: str) -> None:
    endpoint = ENDPOINT.split("  recipe:", maxsplit=1)[0].replace("bob/hf-token", f"'{name}'")
    endpoint += "  recipe: {ref: vllm-h100-bf16-tp1-latency@1}\n"
    (line,) = _repo(tmp_path, endpoint)
    assert "users/alice/ep.yaml:7:" in line and "error" in line, line
    assert "not a valid" in line, line
