"""`ds01ctl images list` and `ds01ctl images prune`: the builds of this site's Images."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ds01ctl.images.dockerfile import image_repository
from ds01ctl.images.retention import BuildRow, builds
from ds01ctl.manifests import Workspace
from ds01ctl.manifests.workspace import ImagePin
from ds01ctl.model.driver import Driver
from ds01ctl.units import about_size


def build_rows(path: Path, driver: Driver | None = None) -> tuple[list[BuildRow], Driver]:
    from ds01ctl.drivers.docker import DockerDriver
    from ds01ctl.workflow import load_repo

    repo = load_repo(path, dt.datetime.now(dt.UTC).date())
    assert repo.site is not None
    driver = driver or DockerDriver.connect()
    pinned = [
        f"{image_repository(ws.metadata.owner or '', ws.spec.image.name)}:{ws.spec.image.tag}"
        for ws, _ in repo.of(Workspace)
        if isinstance(ws.spec.image, ImagePin)
    ]
    site = repo.site.metadata.name
    return builds(driver.observe(site), site, repo.site.spec.images.keep_tags, pinned), driver


def table(rows: list[BuildRow]) -> list[str]:
    if not rows:
        return ["No image builds."]
    lines = [("IMAGE", "TAG", "SIZE", "BUILT", "USED BY", "KEPT")]
    for r in rows:
        built = dt.datetime.fromtimestamp(r.created, dt.UTC).strftime("%Y-%m-%d %H:%M")
        used = ", ".join(r.used_by) or "-"
        lines.append((r.of, r.tag, about_size(r.size), built, used, r.keep or "no: pruned"))
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in lines
    ]
