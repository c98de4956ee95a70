"""The whole label schema, in one place: Docker labels are ds01ctl's state of record.

Workspaces carry mlc's `aime.mlc.*` set (so `mlc open/list/stop/remove` manage them) and DS01's
`ds01.*` namespace plus ours. What ds01ctl owns is `ds01.interface=ds01ctl` AND
`ds01.site=<this site>`, never `ds01.managed` alone (DS01's wrapper sets that too). No label
value may hold a comma (mlc's `list` splits labels on commas and crashes); lists use `;`.
An empty value counts as absent: a committed snapshot inherits its container's labels, so we
blank ours in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

# --- mlc (aime-mlc v2, container version 4) -------------------------------------------------
MLC = "aime.mlc"  # value: the owner's raw login; `mlc list` filters on it
MLC_USER = "aime.mlc.USER"  # raw login; open/start/stop/remove look containers up by it
MLC_NAME = "aime.mlc.NAME"  # the workspace name, shown by `mlc list`
MLC_FRAMEWORK = "aime.mlc.FRAMEWORK"  # `<Framework>-<version>`, e.g. Pytorch-2.7.1
MLC_ARCH = "aime.mlc.ARCH"  # e.g. CUDA_AMPERE
MLC_WORK_MOUNT = "aime.mlc.WORK_MOUNT"  # host path mounted at /workspace
MLC_DATA_MOUNT = "aime.mlc.DATA_MOUNT"  # host path at /data, or `-`
MLC_MODELS_MOUNT = "aime.mlc.MODELS_MOUNT"  # host path at /models, or `-`
MLC_VERSION = "aime.mlc.MLC_VERSION"  # mlc's container format version
MLC_GPUS = "aime.mlc.GPUS"  # never read by mlc; we write the device UUIDs, `;`-separated
MLC_CONTAINER_VERSION = "4"
NO_MOUNT = "-"  # an mlc mount label with nothing mounted there
NO_GPUS = "-"  # aime.mlc.GPUS of a container without GPUs
NO_ARCH = "-"  # aime.mlc.ARCH of an image not from the catalog

# --- DS01's namespace (config/label-schema.yaml) --------------------------------------------
DS01_USER = "ds01.user"  # raw login of the owner
DS01_MANAGED = "ds01.managed"  # "true" on every DS01-managed container, ours included
DS01_NAME = "ds01.name"  # display name
DS01_FRAMEWORK = "ds01.framework"  # `<Framework>-<version>`
DS01_ARCH = "ds01.arch"
DS01_MLC_VERSION = "ds01.mlc_version"
DS01_CUSTOM_IMAGE = "ds01.custom_image"  # image reference when not from the catalog
DS01_GPU_UUIDS = "ds01.gpu.uuids"  # DS01 documents commas; we write `;` and read both
DS01_INTERFACE = "ds01.interface"  # who created it; ours is "ds01ctl"
DS01_PROTECTED = "ds01.protected"  # "true": the lifecycle policy never stops it (notices only)

# --- ds01ctl's own ----------------------------------------------------------------------------
INTERFACE = "ds01ctl"
DS01_SITE = "ds01.site"  # the Site's name: one engine may serve several config repos
DS01_KIND = "ds01.kind"  # workspace | endpoint
DS01_OWNER = "ds01.owner"  # raw login (same as ds01.user; kept for the kind/owner/name key)
DS01_SPEC_HASH = "ds01.spec-hash"  # hash of the replace-forcing fields
DS01_HASH_VERSION = "ds01.hash-version"  # which hash function computed it
DS01_IMAGE = "ds01.image"  # the image reference asked for (before the per-container tag)
DS01_HELPER = "ds01.helper"  # on a short-lived helper container: what it does
HELPER_ACCOUNT_SETUP = "account-setup"  # writes the owner's account into an image
DS01_SECRET_ENV = "ds01.secret-env"  # names of the variables filled from secrets, `;`-separated
DS01_RECIPE = "ds01.endpoint.recipe"  # an endpoint's recipe, `id@version`
DS01_PORT = "ds01.endpoint.port"  # an endpoint's host port: kept across applies
DS01_SERVED = "ds01.endpoint.served-name"  # the model name clients ask for
DS01_MODEL = "ds01.endpoint.model"  # the weights it loads (Hugging Face id)
DS01_SECRETS = "ds01.endpoint.secrets"  # `<variable>=<secret>@<version>;…`: versions, never values
DS01_LIMITS = "ds01.limits"  # the live-updatable limits as created: `cpus=…;memory=…`

# --- images built from an Image manifest (ds01ctl/images/) ------------------------------------
DS01_HAS_USER_SETUP = "ds01.has_user_setup"  # "true": the owner's account is baked in (DS01's)
DS01_USER_ID = "ds01.user_id"  # the baked-in uid
DS01_GROUP_ID = "ds01.group_id"  # the baked-in gid
DS01_USERNAME = "ds01.username"  # the baked-in login, raw
DS01_IMAGE_BASE = "ds01.image.base"  # the base reference built on, as resolved (digest or ID)
# Added by apply's build (not hashed: they describe the build, not its inputs).
DS01_IMAGE_BASE_ID = "ds01.image.base-id"  # the base's image ID when it was built
DS01_IMAGE_HASH = "ds01.image.hash"  # the content hash the tag abbreviates
DS01_IMAGE_OF = "ds01.image.of"  # `image/<owner>/<name>`: the Image it was built for
DS01_IMAGE_SITE = "ds01.image.site"  # the Site that built it (not ds01.site: a managed marker)
DS01_IMAGE_TIERS = "ds01.image.tiers"  # JSON: each tier's inputs, what the next plan diffs

# --- snapshots (images committed from a workspace before it is removed or replaced) ----------
SNAPSHOT_OF = "ds01.snapshot.of"  # `<kind>/<owner>/<name>`
SNAPSHOT_OWNER = "ds01.snapshot.owner"
SNAPSHOT_TAKEN_AT = "ds01.snapshot.taken-at"
SNAPSHOT_REASON = "ds01.snapshot.reason"
SNAPSHOT_SITE = "ds01.snapshot.site"

# --- images with an owner's account added (the Docker driver's account setup) ---------------
USER_SETUP = "ds01.user-setup"  # `<base image id>:<uid>`
# The site whose apply made it: each site has its own (the site is in the tag's hash), so a
# plan judges only its own site's leftover images, as it does containers.
USER_SETUP_SITE = "ds01.user-setup.site"
ACCOUNT_TAG_PREFIX = "ds01ctl-user-"  # `<repo>:ds01ctl-user-<hash>`

# Labels that mark a container as managed. A snapshot image blanks them so that nothing
# created from it is ever taken for a managed container (images hand their labels on).
MANAGED_MARKERS = (MLC, MLC_USER, DS01_MANAGED, DS01_INTERFACE, DS01_SITE, DS01_SPEC_HASH)


class Ownership(StrEnum):
    """Who a container belongs to, from its labels alone."""

    OURS = "ours"  # ds01ctl, this site
    OTHER_SITE = "other_site"  # ds01ctl, another site on the same engine
    HELPER = "helper"  # a helper container of this site (account setup): never a workspace
    ADOPTABLE = "adoptable"  # looks like mlc's or DS01's, not managed by ds01ctl
    FOREIGN = "foreign"  # no aime.mlc / ds01 labels: never touched, not reported


def get(labels: Mapping[str, str], key: str) -> str | None:
    """A label's value; empty counts as absent (see the module docstring)."""
    value = labels.get(key)
    return value or None


def ownership(labels: Mapping[str, str], site: str) -> Ownership:
    if get(labels, DS01_INTERFACE) == INTERFACE and get(labels, DS01_SITE) is not None:
        return Ownership.OURS if get(labels, DS01_SITE) == site else Ownership.OTHER_SITE
    if get(labels, DS01_HELPER) and get(labels, DS01_SITE) == site:
        return Ownership.HELPER
    if any(get(labels, key) for key in (MLC, MLC_USER, DS01_MANAGED, DS01_USER)):
        return Ownership.ADOPTABLE
    return Ownership.FOREIGN


def encode_list(values: Iterable[str]) -> str:
    return ";".join(values)


def decode_list(value: str | None) -> list[str]:
    return [item for item in (value or "").split(";") if item]


def encode_pairs(pairs: Mapping[str, str | int]) -> str:
    return ";".join(f"{k}={v}" for k, v in sorted(pairs.items()))


def decode_pairs(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    return dict(item.partition("=")[::2] for item in value.split(";") if "=" in item)


def check_values(labels: Mapping[str, str]) -> None:
    """Refuse a comma in any value: it would crash `mlc list` for every user on the host."""
    bad = sorted(k for k, v in labels.items() if "," in v)
    if bad:
        raise ValueError(f"label values may not contain commas: {', '.join(bad)}")


def blanked(labels: Iterable[str] = MANAGED_MARKERS) -> dict[str, str]:
    """Labels to set on a committed snapshot so it marks nothing as managed."""
    return dict.fromkeys(labels, "")
