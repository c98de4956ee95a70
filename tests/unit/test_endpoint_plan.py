"""Endpoints at plan time: what only the host can tell (GPUs, the model cache, the secret store,
ports) makes an endpoint pending with one line saying why and what to do; the placement is one
over every kind, so an endpoint counts against its owner's GPU budget and `max_endpoints`."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from ds01ctl import labels as L
from ds01ctl.plan.diff import diff
from ds01ctl.resolve.desired import Desired, World, resolve
from ds01ctl.resolve.memfit import ModelFacts
from ds01ctl.workflow import gpu_inventory, load_repo
from tests.observed import observed_entry, observed_state, when
from tests.unit.test_scenarios import endpoint_facts

CASE = Path(__file__).resolve().parents[1] / "scenarios" / "endpoints-nvidia"


@pytest.fixture
def case(tmp_path: Path) -> Path:
    shutil.copytree(CASE, tmp_path / "case")
    return tmp_path / "case"


def _endpoint(case: Path, owner: str, name: str, spec: dict[str, Any]) -> None:
    folder = case / "manifests" / "users" / owner
    folder.mkdir(parents=True, exist_ok=True)
    document = {"apiVersion": "ds01/v1", "kind": "Endpoint", "metadata": {"name": name}}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({**document, "spec": spec}))


def _resolve(case: Path, **facts: Any) -> tuple[Desired, World]:
    observed = yaml.safe_load((case / "observed.yaml").read_text())
    now = when(observed["now"])
    repo = load_repo(case / "manifests", now.date())
    assert repo.site is not None and repo.catalog is not None
    known = dataclasses.replace(endpoint_facts(observed), **facts)
    state = observed_state(observed, repo.site.metadata.name)
    world = World(state, gpu_inventory(repo), {}, now, endpoint_facts=known)
    return resolve(repo, world, repo.catalog), world


def _pending(desired: Desired) -> dict[str, str]:
    return {p.target: p.reason for p in desired.pending}


def test_endpoint_too_large_for_its_devices_is_refused_with_the_numbers(case: Path) -> None:
    _endpoint(
        case,
        "carol",
        "qwen",
        {
            "model": {"id": "meta-llama/Llama-3.1-70B-Instruct"},
            "recipe": {"select": {"allow_fallback": True}},
        },
    )
    reason = _pending(_resolve(case)[0])["endpoint/carol/qwen"]
    assert reason.startswith(
        "refused: meta-llama/Llama-3.1-70B-Instruct at bf16 does not fit 1 × H100-80GB: per GPU "
        "it needs 131.4 GiB weights + 2.0 GiB overhead + "
    ), reason
    assert "but 0.9 × 79.6 GiB = 71.7 GiB" in reason
    assert "(use more or larger GPUs, a lower precision, or a shorter max-model-len)" in reason


def test_endpoint_tp_that_does_not_divide_the_heads_is_refused(case: Path) -> None:
    odd = ModelFacts("ds01/odd", 10**9, 8, 5, 5, 64, 4096)
    _endpoint(
        case,
        "carol",
        "qwen",
        {
            "model": {"id": "ds01/odd"},
            "accelerator": {"count": 2},
            "recipe": {"select": {"allow_fallback": True}},
        },
    )
    desired, _ = _resolve(case, facts={"ds01/odd": odd})
    assert _pending(desired)["endpoint/carol/qwen"] == (
        "refused: tensor-parallel size 2 does not divide ds01/odd's 5 attention heads (use 1 GPUs)"
    )


def test_endpoint_secret_missing_on_the_server_is_pending_with_where_it_goes(case: Path) -> None:
    facts = {"secrets": {"alice/hf": "3f1c0a9e7b52"}}  # alice/chat-key is not on this server
    reason = _pending(_resolve(case, **facts)[0])["endpoint/alice/chat"]
    assert reason == (
        "secret alice/chat-key does not exist on this server (an admin writes it to "
        "/etc/ds01ctl/secrets/alice/chat-key, mode 0600, owned by root)"
    )


def test_endpoint_counts_against_the_owners_gpu_budget(case: Path) -> None:
    quota = case / "manifests" / "quota.yaml"
    quota.write_text(quota.read_text().replace("gpu_budget: 2", "gpu_budget: 1"))
    reason = _pending(_resolve(case)[0])["endpoint/bob/big"]
    assert "budget" in reason, reason


def test_endpoint_beyond_max_endpoints_is_pending(case: Path) -> None:
    _endpoint(case, "alice", "second", {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}})
    reason = _pending(_resolve(case)[0])["endpoint/alice/second"]
    assert reason == "alice may have 1 endpoint(s) (defaults)", reason


def test_endpoint_and_workspace_never_share_a_device(case: Path) -> None:
    desired, _ = _resolve(case)
    held = [u for s in desired.specs for u in s.gpus]
    assert len(held) == len(set(held)) == 4, held


def test_endpoint_port_is_kept_across_plans_and_a_taken_one_skipped(case: Path) -> None:
    desired, world = _resolve(case)
    first = {s.key: s.ports for s in desired.specs if s.kind == "endpoint"}
    assert first == {
        "endpoint/alice/chat": ((8000, "127.0.0.1", 8101),),  # 8100 is in use on the host
        "endpoint/bob/big": ((8000, "127.0.0.1", 8102),),
    }
    # After apply: bob's container runs on 8102; alice's does not exist (yet). Something else
    # now listens on 8101: bob keeps 8102, alice takes the next free one.
    bob = next(s for s in desired.specs if s.key == "endpoint/bob/big")
    observed = yaml.safe_load((case / "observed.yaml").read_text())
    observed["containers"] = [observed_entry(bob, id="b" * 64, state="running")]
    observed["endpoints"]["bound_ports"] = [8100, 8101, 8102]
    (case / "observed.yaml").write_text(yaml.safe_dump(observed))
    again, _ = _resolve(case)
    ports = {s.key: s.ports[0][2] for s in again.specs if s.kind == "endpoint"}
    assert ports == {"endpoint/alice/chat": 8103, "endpoint/bob/big": 8102}
    plan = diff(again, observed_state(observed, "lab"), world.inventory, prune=False)
    assert [a.target for a in plan.actions] == ["endpoint/alice/chat", "workspace/dave/notebook"]
    # An admin narrows the pool below bob's port: his endpoint moves into it (never keeps a
    # port the Site no longer hands out).
    site = case / "manifests" / "site.yaml"
    site.write_text(
        site.read_text().replace("{start: 8100, end: 8109}", "{start: 8104, end: 8109}")
    )
    narrowed, _ = _resolve(case)
    ports = {s.key: s.ports[0][2] for s in narrowed.specs if s.kind == "endpoint"}
    assert ports == {"endpoint/alice/chat": 8104, "endpoint/bob/big": 8105}


def _vllm_reads(command: tuple[str, ...]) -> argparse.Namespace | None:
    """The command as vLLM's parser (`vllm serve [model_tag]`) reads it; None if it refuses it."""
    parser = argparse.ArgumentParser(exit_on_error=False, add_help=False)
    parser.add_argument("model_tag", nargs="?")
    for flag in ("--model", "--host", "--port", "--api-key", "--tensor-parallel-size"):
        parser.add_argument(flag)
    for flag in ("--gpu-memory-utilization", "--kv-cache-dtype", "--max-model-len"):
        parser.add_argument(flag)  # the recipe's
    parser.add_argument("--quantization")
    parser.add_argument("--enable-prefix-caching", action="store_true")
    parser.add_argument("--served-model-name", nargs="+")
    parser.add_argument("--max-num-seqs", type=int)
    for flag in ("--enforce-eager", "--disable-log-stats", "--trust-remote-code"):
        parser.add_argument(flag, action="store_true")
    try:
        return parser.parse_args(list(command))
    except (argparse.ArgumentError, SystemExit):
        return None


def test_endpoint_arg_values_never_become_flags_of_their_own(case: Path) -> None:
    # An allowed flag's value that reads as another flag (or as the positional model) would
    # set what ds01ctl sets: each value stays bound to its own flag.
    args = {
        "enforce-eager": "--api-key=stolen",
        "disable-log-stats": "evil/model",
    }
    big = yaml.safe_load((case / "manifests/users/bob/big.yaml").read_text())["spec"]
    spec = {**big, "engine": {"args": args}}
    _endpoint(case, "bob", "big", spec)
    desired, _ = _resolve(case)
    (bob,) = [s for s in desired.specs if s.key == "endpoint/bob/big"]
    read = _vllm_reads(bob.command)
    assert read is None, vars(read)  # the server refuses to start, and says why
    for name, value in args.items():
        assert f"--{name}={value}" in bob.command
    # The same server with honest values reads exactly what ds01ctl and the owner said.
    honest = {"enforce-eager": True, "max-num-seqs": 64, "disable-log-stats": False}
    _endpoint(case, "bob", "big", {**spec, "engine": {"args": honest}})
    desired, _ = _resolve(case)
    (bob,) = [s for s in desired.specs if s.key == "endpoint/bob/big"]
    read = _vllm_reads(bob.command)
    assert read is not None, bob.command
    assert (read.api_key, read.model_tag, read.port, read.host) == (None, None, "8000", "0.0.0.0")
    assert (read.max_num_seqs, read.enforce_eager, read.disable_log_stats) == (64, True, False)


# The model id is the owner's text: it names a model of the site's cache (hub layout, one
# directory `models--org--name`), never a path, so `..` or `/` reach nothing outside it.
@pytest.mark.parametrize("model", ["../../etc", "/etc/shadow", "models--x/../../../root"])
def test_endpoint_model_id_never_names_a_path_outside_the_cache(case: Path, model: str) -> None:
    spec = {"model": {"id": model}, "recipe": {"select": {"allow_fallback": True}}}
    _endpoint(case, "carol", "qwen", spec)
    desired, _ = _resolve(case)
    reason = _pending(desired).get("endpoint/carol/qwen", "")
    assert "not in the site's model cache" in reason, reason
    assert not [s for s in desired.specs if s.key == "endpoint/carol/qwen"]


# The pending reason hands the admin a command to paste into a root shell: the owner's model
# id and revision are one quoted word each in it, never shell of their own.
def test_endpoint_fetch_command_shown_to_the_admin_quotes_the_owners_text(case: Path) -> None:
    model, revision = "org/x; touch /tmp/pwned #", "main$(id)"
    spec = {
        "model": {"id": model, "revision": revision},
        "recipe": {"select": {"allow_fallback": True}},
    }
    _endpoint(case, "carol", "qwen", spec)
    desired, _ = _resolve(case)
    reason = _pending(desired)["endpoint/carol/qwen"]
    command = reason.split("an admin fetches it with: ", 1)[1].split(" (a gated model", 1)[0]
    assert shlex.split(command) == [
        "huggingface-cli",
        "download",
        model,
        "--revision",
        revision,
        "--cache-dir",
        "/srv/models",
    ], command


# --- a host with two GPU models ------------------------------------------------------------
# examples/gpus/mixed-a100-h100.yaml: GPU 0 an A100 40GB, GPU 1 an H100 80GB. Selection sees
# both SKUs and prefers the H100 recipe; the placement must then put the server on the H100
# its recipe and memory fit were chosen for, never on the first free GPU.
MIXED = Path(__file__).resolve().parents[2] / "examples" / "gpus" / "mixed-a100-h100.yaml"
MIXED_A100 = "GPU-5a7c9e1b-3d2f-4a6b-8c0e-1f3a5b7d9e24"
MIXED_H100 = "GPU-b4e6d8f0-2a1c-4e3b-9d5f-7a9c1e3b5d68"
LLAMA8 = {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}}


@pytest.fixture
def mixed_case(case: Path) -> Path:
    shutil.copy(MIXED, case / "gpus.yaml")
    shutil.rmtree(case / "manifests" / "users")
    return case


def _gpus(desired: Desired) -> dict[str, tuple[str, ...]]:
    return {s.key: s.gpus for s in desired.specs}


def test_endpoint_on_a_mixed_host_goes_to_its_recipes_gpu(mixed_case: Path) -> None:
    _endpoint(mixed_case, "alice", "chat", LLAMA8)
    desired, _ = _resolve(mixed_case)
    assert _gpus(desired) == {"endpoint/alice/chat": (MIXED_H100,)}  # not GPU 0, the A100
    (spec,) = desired.specs
    assert dict(spec.labels)[L.DS01_RECIPE] == "vllm-h100-bf16-tp1-latency@1", spec.labels
    notes = "\n".join(desired.notes)
    assert "recipe vllm-h100-bf16-tp1-latency@1 (selected;" in notes
    assert "rejected vllm-a100-40gb-bf16-tp1-latency@1: less preferred than" in notes
    assert "on 1 × H100-80GB" in notes  # the memory fit was checked on the H100


def test_endpoint_waits_when_only_another_gpu_model_is_free(mixed_case: Path) -> None:
    # Both ask for the same H100 recipe: alice (first in fair order) gets the H100; carol
    # waits for one rather than landing on the A100 her recipe's fit was never checked on.
    _endpoint(mixed_case, "alice", "chat", LLAMA8)
    _endpoint(mixed_case, "carol", "chat", LLAMA8)
    desired, _ = _resolve(mixed_case)
    assert _gpus(desired) == {"endpoint/alice/chat": (MIXED_H100,)}
    assert _pending(desired)["endpoint/carol/chat"] == (
        "no free H100-80GB device for 1 whole GPU; free now: 1× whole GPU (NVIDIA A100-SXM4-40GB)"
    )


def test_endpoint_pinned_to_the_other_sku_goes_to_that_gpu(mixed_case: Path) -> None:
    _endpoint(mixed_case, "alice", "chat", LLAMA8)
    pinned = {**LLAMA8, "recipe": {"ref": "vllm-a100-40gb-bf16-tp1-latency@1"}}
    _endpoint(mixed_case, "carol", "chat", pinned)
    desired, _ = _resolve(mixed_case)
    assert _gpus(desired) == {
        "endpoint/alice/chat": (MIXED_H100,),
        "endpoint/carol/chat": (MIXED_A100,),
    }
    assert desired.pending == ()


def test_generic_recipe_on_a_mixed_host_may_go_on_any_gpu_its_fit_was_checked_on(
    mixed_case: Path,
) -> None:
    # The generic recipe passes on both SKUs; its memory fit is checked on the smaller (the
    # A100), so either GPU will do and the placement takes the first free one.
    small = ModelFacts("ds01/small", 10**9, 8, 8, 8, 64, 32768)
    spec = {"model": {"id": "ds01/small"}, "recipe": {"select": {"allow_fallback": True}}}
    _endpoint(mixed_case, "alice", "chat", spec)
    cached = {"ds01/small": ("0" * 40,)}
    desired, _ = _resolve(mixed_case, facts={"ds01/small": small}, cached=cached)
    assert _pending(desired) == {}
    assert _gpus(desired) == {"endpoint/alice/chat": (MIXED_A100,)}
    assert "on 1 × A100-40GB" in "\n".join(desired.notes)
