"""Manifests: the pydantic models of the five kinds, loading YAML with positions, validation."""

from ds01ctl.manifests.common import Manifest
from ds01ctl.manifests.endpoint import Endpoint
from ds01ctl.manifests.image import Image
from ds01ctl.manifests.quota import QuotaPolicy
from ds01ctl.manifests.site import Site
from ds01ctl.manifests.workspace import Workspace

KINDS: dict[str, type[Manifest]] = {
    cls.__name__: cls for cls in (Site, QuotaPolicy, Image, Workspace, Endpoint)
}

__all__ = ["KINDS", "Endpoint", "Image", "Manifest", "QuotaPolicy", "Site", "Workspace"]
