"""The `Image` kind: a custom per-user image built in tiers on a framework base."""

from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from ds01ctl.manifests.common import (
    FrameworkRef,
    ImageRef,
    Manifest,
    Model,
    exactly_one,
    exactly_one_schema,
)

Preset = Literal["jupyter", "ds-core", "nlp", "cv"]


class ImageBase(Model):
    """What the image is built on: a catalog framework or an image reference."""

    model_config = ConfigDict(json_schema_extra=exactly_one_schema("framework", "image"))

    framework: FrameworkRef | None = Field(
        None, description="A framework and version from the catalog."
    )
    image: ImageRef | None = Field(None, description="Any image reference.")

    @model_validator(mode="after")
    def _one(self) -> Self:
        exactly_one(self, "framework", "image")
        return self


class ImageSpec(Model):
    """Tiers, in build order: base, system packages, presets, user packages, user setup."""

    base: ImageBase = Field(description="The base image.")
    apt_packages: list[str] = Field(default_factory=list, description="System (apt) packages.")
    presets: list[Preset] = Field(default_factory=list, description="Curated package sets.")
    pip_packages: list[str] = Field(
        default_factory=list, description="User pip requirements, e.g. transformers==4.44.0."
    )
    requirements_file: str | None = Field(
        None, description="A requirements.txt beside the manifest."
    )
    user_setup: bool = Field(
        True, description="Bake the owner's account (uid, gid, login, home) into the image."
    )


class Image(Manifest):
    """A custom image of one owner."""

    kind: Literal["Image"] = Field(description="Image.")
    spec: ImageSpec = Field(description="Base and tiers.")
