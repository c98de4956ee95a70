"""The build step: one Image's tag built through the driver, its log kept under the state
directory (`builds/<image>-<hash12>.log`), a progress line per build where someone watches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ds01ctl.errors import InternalError
from ds01ctl.model.imagebuild import ImageBuildSpec
from ds01ctl.names import docker_safe
from ds01ctl.plan.builds import build_labels

if TYPE_CHECKING:
    from ds01ctl.apply.executor import Context
    from ds01ctl.plan.actions import Action


def log_name(build: ImageBuildSpec) -> str:
    return f"{docker_safe(build.owner)}-{build.name}-{build.content_hash[:12]}.log"


def run_build(action: Action, ctx: Context) -> str | None:
    build = action.spec
    if not isinstance(build, ImageBuildSpec):
        raise InternalError(f"action {action.id} ({action.kind.value}) carries no build")
    log = None
    if ctx.build_logs is not None:
        ctx.build_logs.mkdir(parents=True, exist_ok=True)
        log = ctx.build_logs / log_name(build)
    report = ctx.build_progress

    def progress(line: str) -> None:
        if report is not None:
            report(build.tag, line)

    with ctx.image_lock(f"build:{build.tag}"):  # one build of a tag at a time
        image_id = ctx.driver.build_image(
            build, labels=build_labels(build), log=log, progress=progress
        )
    return f"{build.tag} is {image_id.removeprefix('sha256:')[:12]}" + (
        f"; log {log}" if log else ""
    )
