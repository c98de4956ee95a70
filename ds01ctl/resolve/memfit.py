"""Will the model fit? An estimate of GPU memory before anything is launched.

vLLM loads the weights, keeps an overhead (activations, CUDA graphs, the allocator), and turns
what is left of `gpu_memory_utilization` × the GPU's memory into KV cache; it refuses to start
when that cache cannot hold one sequence of `max_model_len` tokens. So, per GPU:

    weights  = params × bytes per weight (+5% scales when quantised) / TP
    kv/token = 2 (K and V) × layers × KV heads per GPU × head_dim × bytes per KV element
    free     = gpu_memory_utilization × memory − weights − overhead
    fits     = ⌊free / (kv/token × max_model_len)⌋ sequences at full length

Tensor parallelism splits attention heads across GPUs: TP must divide the attention heads,
and the KV heads (or be a multiple of them: vLLM then replicates each KV head). Pure: the
model's facts and the devices' memory are arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
BYTES_PER_WEIGHT = {
    "bf16": 2.0,
    "fp16": 2.0,
    "fp32": 4.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    "fp4": 0.5,
}
BYTES_PER_KV = {"auto": 2.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp8_e4m3": 1.0, "fp8_e5m2": 1.0}
QUANT_SCALES = 1.05  # per-group scales and zero points of a quantised checkpoint
DEFAULT_OVERHEAD = 2 * GIB  # activations, CUDA graphs, the allocator's slack


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What the estimate needs to know about a model."""

    name: str
    params: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    max_position: int


@dataclass(frozen=True, slots=True)
class Fit:
    """The model fits: how many full-length sequences at once, and the numbers behind it."""

    sequences: int
    weights_per_gpu: float  # bytes
    kv_per_sequence: float  # bytes per GPU
    usable_per_gpu: float  # bytes
    max_model_len: int
    devices: str

    @property
    def message(self) -> str:
        return (
            f"fits {self.sequences} concurrent sequence{'s' if self.sequences != 1 else ''} "
            f"at max_model_len {self.max_model_len} on {self.devices} "
            f"(weights {_gib(self.weights_per_gpu)}/GPU, KV {_gib(self.kv_per_sequence)} "
            f"per sequence, usable {_gib(self.usable_per_gpu)}/GPU)"
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """It does not fit, or cannot be split this way: why, with the numbers, and what to do."""

    message: str
    hint: str


def _gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


def tp_problem(facts: ModelFacts, tp: int) -> Refusal | None:
    """Why `tp` GPUs cannot split this model's attention, or None."""
    if facts.heads % tp:
        ok = [n for n in (1, 2, 4, 8, 16) if facts.heads % n == 0 and _kv_ok(facts.kv_heads, n)]
        return Refusal(
            f"tensor-parallel size {tp} does not divide {facts.name}'s "
            f"{facts.heads} attention heads",
            f"use {' or '.join(map(str, ok))} GPUs",
        )
    if not _kv_ok(facts.kv_heads, tp):
        ok = [n for n in (1, 2, 4, 8, 16) if facts.heads % n == 0 and _kv_ok(facts.kv_heads, n)]
        return Refusal(
            f"tensor-parallel size {tp} does not divide {facts.name}'s {facts.kv_heads} KV "
            f"heads (nor is a multiple of them)",
            f"use {' or '.join(map(str, ok))} GPUs",
        )
    return None


def _kv_ok(kv_heads: int, tp: int) -> bool:
    return kv_heads % tp == 0 if tp <= kv_heads else tp % kv_heads == 0


def estimate(
    facts: ModelFacts,
    *,
    precision: str,
    tp: int,
    memory_per_gpu: int,
    devices: str,
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.9,
    kv_cache_dtype: str = "auto",
    overhead: int = DEFAULT_OVERHEAD,
) -> Fit | Refusal:
    """How many sequences of `max_model_len` fit on `tp` GPUs of `memory_per_gpu` bytes."""
    problem = tp_problem(facts, tp)
    if problem is not None:
        return problem
    length = max_model_len or facts.max_position
    if length > facts.max_position:
        return Refusal(
            f"max_model_len {length} is longer than {facts.name}'s {facts.max_position} positions",
            f"set max-model-len to at most {facts.max_position}",
        )
    per_weight = BYTES_PER_WEIGHT[precision]
    weights = facts.params * per_weight * (QUANT_SCALES if per_weight < 2 else 1.0) / tp
    kv_heads_per_gpu = max(1, facts.kv_heads // tp)
    kv_token = 2 * facts.layers * kv_heads_per_gpu * facts.head_dim * BYTES_PER_KV[kv_cache_dtype]
    kv_sequence = kv_token * length
    usable = gpu_memory_utilization * memory_per_gpu
    free = usable - weights - overhead
    sequences = int(free // kv_sequence) if free > 0 else 0
    if sequences < 1:
        return Refusal(
            f"{facts.name} at {precision} does not fit {devices}: per GPU it needs "
            f"{_gib(weights)} weights + {_gib(overhead)} overhead + {_gib(kv_sequence)} KV "
            f"for one {length}-token sequence = {_gib(weights + overhead + kv_sequence)}, "
            f"but {gpu_memory_utilization:g} × {_gib(memory_per_gpu)} = {_gib(usable)}",
            "use more or larger GPUs, a lower precision, or a shorter max-model-len",
        )
    return Fit(sequences, weights, kv_sequence, usable, length, devices)
