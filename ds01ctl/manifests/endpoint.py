"""The `Endpoint` kind: an OpenAI-compatible model server (vLLM-style) chosen by recipe."""

from typing import Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from ds01ctl.manifests.common import (
    EnvName,
    EnvValue,
    ImageRef,
    Manifest,
    MigProfile,
    Model,
    SecretRef,
)
from ds01ctl.units import ByteSize, NanoCpus, Seconds

# ds01ctl derives these from the manifest; setting them by hand would contradict it.
RESERVED_ENGINE_ARGS = frozenset(
    {"model", "port", "host", "tensor-parallel-size", "served-model-name", "api-key", "revision"}
)


class ModelSource(Model):
    """The model to serve."""

    id: str = Field(min_length=1, description="Hugging Face repository id, e.g. Qwen/Qwen3-32B.")
    revision: str | None = Field(None, description="Commit to pin the weights to.")
    served_name: str | None = Field(
        None, description="Name clients ask for; the endpoint's name when unset."
    )
    token: SecretRef | None = Field(None, description="Hub token, by reference.")


class RecipeSelect(Model):
    """How to pick a recipe from the catalog when none is pinned."""

    precision: Literal["auto", "bf16", "fp16", "fp8", "int8", "int4", "fp4"] = Field(
        "auto", description="Weight precision; auto takes the best the hardware allows."
    )
    metric: Literal["latency", "throughput"] = Field(
        "latency", description="What the recipe is tuned for."
    )
    min_type: Literal["optimized", "preview", "unoptimized", "generic"] = Field(
        "optimized", description="Lowest recipe maturity accepted."
    )
    allow_fallback: bool = Field(
        False, description="May fall back to a generic recipe (the plan says so)."
    )


class Recipe(Model):
    """A pinned recipe or a selection, not both."""

    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["ref", "select"],
                "properties": {"ref": {"type": "string"}, "select": {"type": "object"}},
            }
        }
    )

    ref: str | None = Field(
        None, description="Exact recipe id and version, e.g. vllm-h100-bf16-tp2-latency@3."
    )
    select: RecipeSelect | None = Field(None, description="Selection criteria.")

    @model_validator(mode="after")
    def _not_both(self) -> Self:
        if self.ref is not None and self.select is not None:
            raise ValueError("pin a recipe (ref) or ask for selection (select), not both")
        return self


class Accelerator(Model):
    """GPUs for the server."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["mig"], "properties": {"mig": {"type": "string"}}},
            "then": {"properties": {"count": {"const": 1}}},
        }
    )

    count: int = Field(1, ge=0, le=16, description="Whole GPUs (tensor-parallel size).")
    mig: MigProfile | None = Field(
        None, description="One MIG instance of this profile instead of whole GPUs."
    )

    @model_validator(mode="after")
    def _mig_alone(self) -> Self:
        if self.mig is not None and self.count != 1:
            raise ValueError("a MIG endpoint uses exactly one instance: leave count at 1")
        return self


class Engine(Model):
    """The serving engine's container."""

    image: ImageRef | None = Field(None, description="Engine image; the recipe's when unset.")
    args: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description=(
            "Tuning arguments (max-model-len …) without the leading dashes, merged over the "
            "recipe's; only flags the engine version allows, never those ds01ctl sets."
        ),
        json_schema_extra={
            "propertyNames": {"not": {"pattern": f"^-*({'|'.join(sorted(RESERVED_ENGINE_ARGS))})$"}}
        },
    )
    env: dict[EnvName, EnvValue | SecretRef] = Field(
        default_factory=dict, description="Environment; secrets by reference only."
    )

    @field_validator("args")
    @classmethod
    def _not_reserved(
        cls, args: dict[str, str | int | float | bool]
    ) -> dict[str, str | int | float | bool]:
        taken = sorted(RESERVED_ENGINE_ARGS & {a.lstrip("-") for a in args})
        if taken:
            raise ValueError(f"ds01ctl sets {', '.join(taken)} itself; remove it from args")
        return args


class EndpointResources(Model):
    """CPU, memory and shared memory for the server."""

    cpus: NanoCpus | None = Field(None, description="CPUs; the owner's quota when unset.")
    memory: ByteSize | None = Field(None, description="Memory; the owner's quota when unset.")
    shm_size: ByteSize | None = Field(None, description="/dev/shm size.")


class Health(Model):
    """How readiness is checked."""

    path: str = Field("/v1/models", description="Readiness path.")
    liveness_path: str = Field("/health", description="Liveness path.")
    start_timeout: Seconds = Field(
        1800,
        description="How long the server may take to become ready (large models load for minutes).",
    )


class EndpointSpec(Model):
    """The model server."""

    model: ModelSource = Field(description="Model to serve.")
    recipe: Recipe = Field(Recipe(), description="Recipe pin or selection.")
    accelerator: Accelerator = Field(Accelerator(), description="GPUs.")
    engine: Engine = Field(Engine(), description="Engine container.")
    resources: EndpointResources = Field(EndpointResources(), description="CPU and memory.")
    port: int | Literal["auto"] = Field(
        "auto",
        description="Host port on 127.0.0.1; auto takes one from the site's pool.",
        json_schema_extra={"minimum": 1024, "maximum": 65535},  # applies to the number only
    )
    health: Health = Field(Health(), description="Health checks.")
    api_key: SecretRef | None = Field(
        None,
        description=(
            "The key clients must send (Authorization: Bearer …), by reference; the server "
            "gets it in its environment (VLLM_API_KEY), never on its command line."
        ),
    )
    expose: Literal["local", "lab"] = Field(
        "local",
        description=(
            "local: the host port listens on 127.0.0.1 only; lab: on the Site's "
            "endpoint_lab_address (only where the Site sets one)."
        ),
    )
    rollback: Literal["auto", "none"] = Field(
        "auto",
        description=(
            "auto: a replacement that does not become ready within health.start_timeout "
            "gives way to the container it replaced; none: it is left Failed for inspection."
        ),
    )

    @field_validator("port")
    @classmethod
    def _port_range(cls, port: int | str) -> int | str:
        if isinstance(port, int) and not 1024 <= port <= 65535:
            raise ValueError("port must be auto or between 1024 and 65535")
        return port


class Endpoint(Manifest):
    """An OpenAI-compatible model server of one owner."""

    kind: Literal["Endpoint"] = Field(description="Endpoint.")
    spec: EndpointSpec = Field(description="The server.")
