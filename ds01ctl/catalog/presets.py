"""Presets: named pip package sets an Image installs before the user's own packages.

They are data: the shipped catalogue (`presets.yaml`, beside this module) and a Site's own
(`images.presets`), where a Site's preset of the same name replaces the shipped one (a lab that
pins versions). An Image naming a preset in neither is refused by validate.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources

import yaml

from ds01ctl.manifests.packages import check_pip_requirement


@cache
def shipped() -> dict[str, tuple[str, ...]]:
    """The presets shipped with ds01ctl, each requirement normalised."""
    text = resources.files("ds01ctl.catalog").joinpath("presets.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    return {str(k): tuple(check_pip_requirement(str(r)) for r in v) for k, v in data.items()}


def catalogue(site: Mapping[str, tuple[str, ...] | list[str]]) -> dict[str, tuple[str, ...]]:
    """Shipped presets with a Site's own laid over them."""
    return {**shipped(), **{name: tuple(reqs) for name, reqs in site.items()}}
