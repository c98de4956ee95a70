"""Which engine flags and environment variables an endpoint's owner may set.

An allow-list, per engine version: vLLM's parser accepts `--served-model` for
`--served-model-name` (argparse takes any unambiguous prefix), `-tp` for
`--tensor-parallel-size`, and `_` for `-`, so a deny-list of spellings always misses one.
A user's key is normalised first (dashes, `=value`, `_`, case of the aliases), then it must be
a flag of the list for its exact name; a prefix of a flag is refused, naming the flag.

ds01ctl itself sets the flags that follow from the manifest (OWNED) and those that would
take the server out of its hands (config files, other GPUs or hosts, the API key, which is a
secret): no user spelling reaches them.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass

# Set by ds01ctl from the manifest; never from engine args.
OWNED = frozenset({"model", "served-model-name", "port", "host", "tensor-parallel-size"})
# Never settable: secrets (by reference only), other files or processes deciding the flags,
# and flags that change how many GPUs the server uses.
FORBIDDEN = frozenset(
    {
        "api-key",
        "config",
        "revision",
        "download-dir",
        "pipeline-parallel-size",
        "data-parallel-size",
        "data-parallel-address",
        "ssl-keyfile",
        "ssl-certfile",
        "root-path",
        "allowed-local-media-path",
        "uds",
        "headless",
    }
)
ALIASES = {
    "tp": "tensor-parallel-size",
    "pp": "pipeline-parallel-size",
    "dp": "data-parallel-size",
    "q": "quantization",
    "o": "compilation-config",
}

_COMMON = frozenset(
    {
        "dtype",
        "max-model-len",
        "gpu-memory-utilization",
        "max-num-seqs",
        "max-num-batched-tokens",
        "kv-cache-dtype",
        "quantization",
        "enable-prefix-caching",
        "no-enable-prefix-caching",
        "enable-chunked-prefill",
        "no-enable-chunked-prefill",
        "enforce-eager",
        "swap-space",
        "cpu-offload-gb",
        "block-size",
        "seed",
        "trust-remote-code",
        "tokenizer-mode",
        "max-logprobs",
        "disable-log-stats",
        "disable-sliding-window",
        "disable-custom-all-reduce",
        "distributed-executor-backend",
        "max-seq-len-to-capture",
        "enable-auto-tool-choice",
        "tool-call-parser",
        "chat-template",
        "response-role",
        "rope-scaling",
        "rope-theta",
        "limit-mm-per-prompt",
        "guided-decoding-backend",
        "scheduling-policy",
        "preemption-mode",
        "num-scheduler-steps",
        "long-prefill-token-threshold",
        "max-num-partial-prefills",
        "uvicorn-log-level",
        "generation-config",
        "override-generation-config",
        "compilation-config",
        "speculative-config",
    }
)
# vLLM minor version → the flags a user may set with it.
VLLM: dict[str, frozenset[str]] = {
    "0.6": _COMMON | {"disable-log-requests", "num-speculative-tokens", "speculative-model"},
    "0.8": _COMMON | {"disable-log-requests", "enable-reasoning", "reasoning-parser"},
    "0.9": _COMMON | {"disable-log-requests", "reasoning-parser"},
    "0.10": _COMMON
    | {"disable-log-requests", "enable-log-requests", "reasoning-parser", "async-scheduling"},
    "0.11": (_COMMON - {"num-scheduler-steps", "guided-decoding-backend"})
    | {"enable-log-requests", "reasoning-parser", "async-scheduling", "structured-outputs-config"},
}
NEWEST = "0.11"

# Environment names by vendor: shell-style patterns. The device-selection variables are
# ds01ctl's (it places GPUs), so is the hub token (a secret reference on the model).
ENV_COMMON = (
    "VLLM_LOGGING_LEVEL",
    "VLLM_ATTENTION_BACKEND",
    "VLLM_USE_V1",
    "VLLM_WORKER_MULTIPROC_METHOD",
    "VLLM_ALLOW_LONG_MAX_MODEL_LEN",
    "VLLM_ENGINE_ITERATION_TIMEOUT_S",
    "VLLM_USE_PRECOMPILED",
    "TOKENIZERS_PARALLELISM",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HUB_ENABLE_HF_TRANSFER",
    "OMP_NUM_THREADS",
    "PYTORCH_CUDA_ALLOC_CONF",
    "NCCL_DEBUG",
    "NCCL_P2P_DISABLE",
    "NCCL_IB_DISABLE",
    "NCCL_MIN_NCHANNELS",
    "TZ",
)
ENV_VENDOR = {
    "nvidia": ("CUDA_LAUNCH_BLOCKING", "CUDA_DEVICE_MAX_CONNECTIONS", "VLLM_FLASH_ATTN_VERSION"),
    "amd": (
        "VLLM_ROCM_USE_AITER",
        "VLLM_ROCM_USE_AITER_*",
        "HSA_NO_SCRATCH_RECLAIM",
        "GPU_ARCHS",
        "PYTORCH_ROCM_ARCH",
        "TORCH_BLAS_PREFER_HIPBLASLT",
        "HIP_FORCE_DEV_KERNARG",
        "RCCL_MSCCL_ENABLE",
    ),
}
ENV_OWNED = frozenset(
    {
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
        "HIP_VISIBLE_DEVICES",
        "ROCR_VISIBLE_DEVICES",
        "GPU_DEVICE_ORDINAL",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "VLLM_API_KEY",
        "HF_HOME",
        "HF_HUB_CACHE",
    }
)
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True, slots=True)
class FlagProblem:
    message: str
    hint: str
    owned: bool  # a flag ds01ctl sets (however spelled), not merely an unknown one


def normalise(key: str) -> str:
    """A user's spelling of a flag as vLLM's parser sees it: `--Tensor_Parallel_Size=2` and
    `tensor-parallel-size` are the same flag, `-tp` is its alias."""
    name = key.strip().lstrip("-").split("=", 1)[0].replace("_", "-")
    lower = name.lower()
    return ALIASES.get(lower, lower)


def flags_for(version: str | None) -> tuple[str, frozenset[str]]:
    """The allow-list for a vLLM version (`0.10.2` → 0.10's); the newest known for None or a
    newer version than the table has."""
    if version is not None:
        minor = ".".join(version.split(".")[:2])
        if minor in VLLM:
            return minor, VLLM[minor]
    return NEWEST, VLLM[NEWEST]


def flag_problem(key: str, version: str | None = None) -> FlagProblem | None:
    """Why the user may not set engine flag `key` with vLLM `version`, or None."""
    raw = key.strip()
    if not _KEY.fullmatch(raw.lstrip("-").split("=", 1)[0]) or " " in raw:
        return FlagProblem(
            f"{key!r} is not a flag name",
            "write the flag without dashes, e.g. max-model-len",
            False,
        )
    name = normalise(raw)
    shown = f"{key!r}" if name == raw else f"{key!r} (that is --{name})"
    if name in OWNED:
        return FlagProblem(
            f"engine arg {shown} is set by ds01ctl",
            _owned_hint(name),
            True,
        )
    if name in FORBIDDEN:
        return FlagProblem(f"engine arg {shown} may not be set", _forbidden_hint(name), True)
    minor, allowed = flags_for(version)
    if name in allowed:
        return None
    targets = sorted(f for f in OWNED | FORBIDDEN | allowed if f.startswith(name))
    if targets:
        owned = [t for t in targets if t in OWNED or t in FORBIDDEN]
        if owned:
            return FlagProblem(
                f"engine arg {key!r} abbreviates --{owned[0]}, which ds01ctl sets",
                _owned_hint(owned[0]) if owned[0] in OWNED else _forbidden_hint(owned[0]),
                True,
            )
        return FlagProblem(
            f"engine arg {key!r} is an abbreviation", f"write it in full: {targets[0]}", False
        )

    close = difflib.get_close_matches(name, sorted(allowed), n=1, cutoff=0.6)
    return FlagProblem(
        f"engine arg {key!r} is not a flag users may set on vLLM {minor}",
        f"did you mean {close[0]!r}?" if close else "see the allowed flags in ds01ctl's docs",
        False,
    )


def _owned_hint(name: str) -> str:
    return {
        "model": "set spec.model.id",
        "served-model-name": "set spec.model.served_name",
        "port": "set spec.port (the container port is fixed)",
        "host": "ds01ctl binds the server; remove it",
        "tensor-parallel-size": "set spec.accelerator.count",
    }.get(name, "remove it")


def _forbidden_hint(name: str) -> str:
    if name == "api-key":
        return "name the key's secret on the endpoint; it never goes on the command line"
    if name in {"pipeline-parallel-size", "data-parallel-size", "data-parallel-address"}:
        return "the GPUs follow from spec.accelerator; remove it"
    if name == "revision":
        return "set spec.model.revision"
    return "remove it"


def env_problem(name: str, vendor: str | None) -> str | None:
    """Why the user may not set environment variable `name` for `vendor` (None: either), or
    None."""
    if name in ENV_OWNED:
        return f"{name} is set by ds01ctl"
    patterns = list(ENV_COMMON)
    vendors = [vendor] if vendor is not None else sorted(ENV_VENDOR)
    for v in vendors:
        patterns.extend(ENV_VENDOR[v])
    if any(fnmatch.fnmatchcase(name, p) for p in patterns):
        return None
    where = f"{vendor} " if vendor else ""
    return f"{name} is not an environment variable users may set on {where}engines"
