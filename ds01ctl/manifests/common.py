"""Building blocks shared by every manifest kind: the envelope, metadata and common field types.

Models are frozen pydantic v2 models that forbid unknown keys; each field's docstring becomes
its description in the JSON Schemas under `schemas/`.
"""

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ds01ctl.names import LOGIN_RE, NAME_RE, check_login, check_name

API_VERSION = "ds01/v1"

# The JSON Schemas carry the same patterns, so that editors refuse what the loader refuses.
# ASCII throughout: a schema's \d and \w are ASCII, Python's would also take other scripts.
_MIG_RE = re.compile(r"^[1-7]g\.[0-9]+gb(\+me)?$")
_IMAGE_REF_RE = re.compile(
    r"^(?:[a-z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$",
    re.ASCII,
)
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Docker's grammar for network names (moby's restricted name pattern); it also keeps out
# `container:<name>`, which would join another container's network namespace.
_NETWORK_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")

_LOGIN_PATTERN = r"^(?!.*\.$)" + LOGIN_RE.pattern.removeprefix("^")  # and not ending in "."

Name = Annotated[
    str,
    AfterValidator(check_name),
    Field(json_schema_extra={"format": "dns-label", "pattern": NAME_RE.pattern}),
]
Login = Annotated[
    str, AfterValidator(check_login), Field(json_schema_extra={"pattern": _LOGIN_PATTERN})
]


def _check_mig(value: str) -> str:
    if not _MIG_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a MIG profile such as 1g.10gb or 3g.40gb")
    return value


def _check_image_ref(value: str) -> str:
    if not _IMAGE_REF_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an image reference such as registry.example/team/img:tag"
        )
    return value


def _check_env_name(value: str) -> str:
    if not _ENV_NAME_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


def _check_env_value(value: str) -> str:
    # The engine accepts the container, then fails to start it: execve takes C strings.
    if "\0" in value:
        raise ValueError("an environment value cannot contain a NUL character (\\0)")
    return value


def _check_network(value: str) -> str:
    # `container:<name>` is Docker grammar, refused by the site's network policy with its own
    # message (manifests/validate.py); anything else must be a plain network name.
    kind, colon, rest = value.partition(":")
    if colon and kind == "container" and _NETWORK_RE.fullmatch(rest):
        return value
    if not _NETWORK_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Docker network name: letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    return value


MigProfile = Annotated[
    str, AfterValidator(_check_mig), Field(json_schema_extra={"pattern": _MIG_RE.pattern})
]
ImageRef = Annotated[
    str,
    AfterValidator(_check_image_ref),
    Field(json_schema_extra={"pattern": _IMAGE_REF_RE.pattern}),
]
EnvName = Annotated[
    str, AfterValidator(_check_env_name), Field(json_schema_extra={"pattern": _ENV_NAME_RE.pattern})
]
EnvValue = Annotated[
    str, AfterValidator(_check_env_value), Field(json_schema_extra={"pattern": r"^[^\x00]*$"})
]
NetworkName = Annotated[
    str,
    AfterValidator(_check_network),
    Field(json_schema_extra={"pattern": r"^(container:)?" + _NETWORK_RE.pattern.removeprefix("^")}),
]


class Model(BaseModel):
    """Base of every manifest model: frozen, unknown keys refused, docstrings as descriptions.

    Strict: a value has the type the JSON Schema names (no `gpus: "2"`, `gpus: true` or
    `read_only: 1`), so that the schemas accept what the loader accepts. The documented
    shorthands (sizes, durations, CPUs, GPU units, mount paths) are parsed by their own
    validators, which the schemas spell out too.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Metadata(Model):
    """Identity of an object."""

    name: Name = Field(
        description=(
            "Object name: 1-63 lower-case letters, digits and '-'; unique per kind and owner."
        )
    )
    owner: Login | None = Field(
        None,
        description=(
            "Login that owns the object (raw form, e.g. h.baker or 228755@uni.example). Inferred "
            "from the path under users/<login>/ in a config repo; required elsewhere for owned "
            "kinds."
        ),
    )
    description: str | None = Field(
        None, description="Free text for people reading the config repo."
    )


class Manifest(Model):
    """The envelope every document has: apiVersion, kind, metadata, spec."""

    api_version: Literal["ds01/v1"] = Field(alias="apiVersion", description="Always ds01/v1.")
    metadata: Metadata = Field(description="Name and owner.")

    OWNED: ClassVar[bool] = True  # Site and QuotaPolicy are not owned by a user

    @property
    def key(self) -> tuple[str, str, str]:
        """(kind, owner, name): what identifies the object across files and in Docker labels."""
        return (type(self).__name__, self.metadata.owner or "", self.metadata.name)

    @property
    def ref(self) -> str:
        kind, owner, name = self.key
        return f"{kind.lower()} {owner}/{name}" if owner else f"{kind.lower()} {name}"


class FrameworkRef(Model):
    """A framework and version from the catalog (AIME's ml_images.repo format)."""

    name: str = Field(
        description=(
            "Framework as the catalog spells it, e.g. Pytorch or Tensorflow (case-insensitive)."
        )
    )
    version: str = Field(description="Version as the catalog lists it, e.g. 2.7.1 or 2.8.0-aime.")


class SecretRef(Model):
    """A secret by reference: its value never appears in manifests, plans or logs."""

    secret: Name = Field(description="Name of the secret in the site's secret store.")
    version: str | None = Field(
        None,
        description="Version of the secret; a new version replaces the containers that use it.",
    )


def exactly_one_schema(*fields: str) -> dict[str, Any]:
    """JSON Schema for `exactly_one(model, *fields)`: one of them set and not null."""
    return {
        "oneOf": [{"required": [f], "properties": {f: {"not": {"type": "null"}}}} for f in fields]
    }


def exactly_one(model: Any, *fields: str) -> None:
    given = [f for f in fields if getattr(model, f) is not None]
    if len(given) != 1:
        names = ", ".join(fields)
        which = f"got {', '.join(given)}" if given else "got none"
        raise ValueError(f"set exactly one of {names} ({which})")


__all__ = [
    "API_VERSION",
    "EnvName",
    "EnvValue",
    "FrameworkRef",
    "ImageRef",
    "Login",
    "Manifest",
    "Metadata",
    "MigProfile",
    "Model",
    "Name",
    "NetworkName",
    "SecretRef",
    "exactly_one",
    "exactly_one_schema",
]
