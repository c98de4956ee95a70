"""Which images a workspace may be made from: an owner's manifest cannot run another's work.

An image reference in a manifest is untrusted input. `ds01ctl-snapshot/vic:…` would run vic's
saved work as mal, an Image's build (`ds01-vic/…`) holds vic's packages, environment and
account, and the tags apply makes per container (`<repo>:<name>._.<uid>`) and per
account (`<repo>:ds01ctl-user-<hash>`) hold another user's files and account. So a reference
is allowed when it is one of the owner's own snapshots, a catalog image, or matched by the
Site's `allowed_images`; another owner's snapshot, Image build or per-container tag, any
account image, and bare image IDs are refused whatever the allow-list says.

The check reads the reference as the manifest writes it: the Site's `image_mirrors` rewrite it
afterwards, so a lab that mirrors the catalog keeps its catalog references allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase

from ds01ctl.names import docker_safe

SNAPSHOT_REPOSITORY = "ds01ctl-snapshot"  # drivers/docker/snapshots.py commits to this repository
CONTAINER_TAG_MARK = "._."  # `<name>._.<uid>`: mlc's container name, used as a tag
ACCOUNT_TAG_PREFIX = "ds01ctl-user-"  # the Docker driver's image with an account baked in
BUILD_PREFIX = "ds01-"  # `ds01-<owner>/<name>`: images/dockerfile.py's builds of Images
_HEX = re.compile(r"^[0-9a-f]+$")
# Docker Hub's spellings of the default registry and namespace name the same local image.
_DEFAULT_PREFIXES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")


def familiar(reference: str) -> str:
    """The reference as Docker shows it locally: no default registry, no library/."""
    for prefix in _DEFAULT_PREFIXES:
        if reference.startswith(prefix):
            reference = reference[len(prefix) :]
            break
    return reference.removeprefix("library/")


def _parts(reference: str) -> tuple[str, str | None]:
    """(repository, tag or None) of a familiar reference; a digest is dropped."""
    name = reference.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, None


def container_tag_uid(reference: str) -> str | None:
    """The uid part of a per-container tag (`…:<name>._.<uid>`), or None for other tags."""
    _, tag = _parts(familiar(reference))
    if tag is None or CONTAINER_TAG_MARK not in tag:
        return None
    return tag.rpartition(CONTAINER_TAG_MARK)[2]


def image_problem(
    reference: str,
    owner: str,
    *,
    uid: int | None,
    allowed: Iterable[str],
    catalog: Iterable[str],
) -> str | None:
    """Why `owner` may not use `reference`, or None.

    `uid` is the owner's uid where known; a per-container tag with an unknown owner uid is
    left to the caller (see `container_tag_uid`), which decides once the uid is known.
    """
    ref = familiar(reference)
    repo, tag = _parts(ref)
    if "/" not in repo and tag is None and "@" not in ref and _HEX.fullmatch(repo):
        return f"image {reference!r} looks like an image ID; name an image by repository and tag"
    if tag is not None and tag.startswith(ACCOUNT_TAG_PREFIX):
        return f"image {reference!r} is an image ds01ctl made for one user's account"
    tag_uid = container_tag_uid(ref)
    if tag_uid is not None and uid is not None and tag_uid != str(uid):
        return f"image {reference!r} is the image of another user's container (uid {tag_uid})"
    namespace, slash, _ = repo.partition("/")
    if (
        slash
        and namespace.startswith(BUILD_PREFIX)
        and namespace != BUILD_PREFIX + docker_safe(owner)
    ):
        return f"image {reference!r} is an Image built for another user"
    if repo.startswith(SNAPSHOT_REPOSITORY + "/"):
        if repo == f"{SNAPSHOT_REPOSITORY}/{docker_safe(owner)}":
            return None
        return f"image {reference!r} is a snapshot of another user's workspace"
    if tag_uid is None and _with_tag(ref) in {_with_tag(familiar(c)) for c in catalog}:
        return None
    if any(fnmatchcase(ref, pattern) or fnmatchcase(reference, pattern) for pattern in allowed):
        return None
    return f"image {reference!r} is not a catalog image, one of {owner}'s snapshots, or allowed"


def _with_tag(reference: str) -> str:
    _, tag = _parts(reference)
    return reference if tag is not None or "@" in reference else f"{reference}:latest"


IMAGE_HINT = (
    "use a catalog framework, one of your own snapshots (ds01ctl snapshots list), or ask an "
    "admin to add the image to the Site's allowed_images"
)
