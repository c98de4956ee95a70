"""The `Image` kind: a custom per-user image built in tiers on a framework base.

Tiers, in build order: base, system packages (apt), presets, the user's requirements file and
pip packages, env, then the user bake (the owner's account, home and /workspace). What the
fields may hold is checked here (package grammar, `manifests/packages.py`); what depends on
the Site (known presets, direct references, the image policy) and on the repo (the
requirements file) is checked by `manifests/validate.py`.
"""

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from ds01ctl.manifests.common import (
    EnvName,
    EnvValue,
    FrameworkRef,
    ImageRef,
    Manifest,
    Model,
    Name,
    exactly_one,
    exactly_one_schema,
)
from ds01ctl.manifests.packages import (
    APT_NAME_RE,
    APT_VERSION_RE,
    check_apt_package,
    check_pip_requirement,
)

# The schema states what it can of the checks (editors flag the worst at once): a requirement
# starts with a project name, never an option or a path; apt names follow Debian's grammar.
PipRequirement = Annotated[
    str,
    AfterValidator(check_pip_requirement),
    Field(json_schema_extra={"pattern": r"^[A-Za-z0-9][^\x00-\x1f\x7f]*$"}),
]
AptPackage = Annotated[
    str,
    AfterValidator(check_apt_package),
    Field(
        json_schema_extra={
            "pattern": APT_NAME_RE.pattern.removesuffix("$")
            + "(="
            + APT_VERSION_RE.pattern.removeprefix("^").removesuffix("$")
            + ")?$"
        }
    ),
]


def _check_image_env_value(value: str) -> str:
    # A Dockerfile is line-based: a newline would start an instruction of the user's own.
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("an image's environment value cannot hold a newline or control character")
    return value


ImageEnvValue = Annotated[
    EnvValue,
    AfterValidator(_check_image_env_value),
    Field(json_schema_extra={"pattern": r"^[^\x00-\x1f\x7f]*$"}),
]


class ImageBase(Model):
    """What the image is built on: a catalog framework or an image reference."""

    model_config = ConfigDict(json_schema_extra=exactly_one_schema("framework", "image"))

    framework: FrameworkRef | None = Field(
        None, description="A framework and version from the catalog."
    )
    image: ImageRef | None = Field(
        None,
        description=(
            "An image reference the Site's image policy allows (catalog images, your own "
            "snapshots, the Site's allowed_images)."
        ),
    )

    @model_validator(mode="after")
    def _one(self) -> Self:
        exactly_one(self, "framework", "image")
        return self


class ImageSpec(Model):
    """Tiers, in build order: base, system packages, presets, user packages, env, user setup."""

    base: ImageBase = Field(description="The base image.")
    apt_packages: list[AptPackage] = Field(
        default_factory=list,
        description="System (apt) packages: Debian package names, optionally =version.",
    )
    presets: list[Name] = Field(
        default_factory=list,
        description=(
            "Curated pip package sets: jupyter, ds-core, ml, cv, nlp, rl, audio, ts, llm, or one "
            "of the Site's own (images.presets)."
        ),
    )
    requirements_file: str | None = Field(
        None,
        description=(
            "A pip requirements file in the owner's own directory of the config repo, relative "
            "to this manifest (a regular file; one PEP 508 requirement per line, no options)."
        ),
    )
    pip_packages: list[PipRequirement] = Field(
        default_factory=list,
        description=(
            "PEP 508 requirements, e.g. transformers==4.47.0. `name @ url` only where the Site "
            "allows direct references; pip options (--index-url, -e) never."
        ),
    )
    env: dict[EnvName, ImageEnvValue] = Field(
        default_factory=dict,
        description="Environment variables baked into the image (literal values, no $expansion).",
    )
    user_setup: bool = Field(
        True, description="Bake the owner's account (uid, gid, login, home) into the image."
    )


class Image(Manifest):
    """A custom image of one owner."""

    kind: Literal["Image"] = Field(description="Image.")
    spec: ImageSpec = Field(description="Base and tiers.")
