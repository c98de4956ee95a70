"""Image references: from what a manifest asks for to what a container is created from.

A catalog framework resolves to AIME's image for the site's GPU architecture; the site's
mirrors rewrite references (air-gapped labs); and every workspace gets its own tag
`<repo>:<name>._.<uid>`, as mlc makes it, because `mlc remove` deletes the reference its
container was created from: a shared tag would vanish under other users.
"""

from __future__ import annotations

from collections.abc import Sequence

from ds01ctl.manifests.site import ImageMirror

# GPU generation (from the inventory) → the catalog architecture whose images run on it.
# AIME builds no Hopper images: H100/H200 run the CUDA 12 (Ada) builds.
ARCH_OF_GENERATION = {
    "ampere": "CUDA_AMPERE",
    "ada": "CUDA_ADA",
    "hopper": "CUDA_ADA",
    "blackwell": "CUDA_BLACKWELL",
}


def mirrored(reference: str, mirrors: Sequence[ImageMirror]) -> str:
    for mirror in mirrors:
        if reference.startswith(mirror.prefix):
            return mirror.replacement + reference[len(mirror.prefix) :]
    return reference


def repository(reference: str) -> str:
    """The reference without its tag or digest (`registry:5000/a/b:tag` → `registry:5000/a/b`)."""
    name = reference.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def with_default_tag(reference: str) -> str:
    if "@" in reference:
        return reference
    return reference if ":" in reference[reference.rfind("/") + 1 :] else f"{reference}:latest"


def container_tag(reference: str, container_name: str) -> str:
    return f"{repository(reference)}:{container_name}"
