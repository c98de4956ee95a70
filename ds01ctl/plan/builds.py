"""Image builds in the plan: which Images need a build and what changed, tier by tier (pure).

A build's tag is the hash of its inputs, so an Image whose tag is on the engine is up to date:
no build. Otherwise its previous build (the newest image of this site built for it) recorded
each tier's inputs in a label, and the plan names what changed (`+ pip: transformers==4.47`).
A build that exists but was made on an older image than its base reference names now is
"base update available": rebuilt only when the admin asks (`apply --rebuild OWNER/NAME`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ds01ctl import labels as L
from ds01ctl.model.imagebuild import ImageBuildSpec
from ds01ctl.model.observed import Observed, ObservedImage
from ds01ctl.plan.actions import FieldChange, Reason
from ds01ctl.resolve.images import with_default_tag
from ds01ctl.units import format_cpus, format_duration, format_size


@dataclass(frozen=True)
class BuildNeed:
    build: ImageBuildSpec
    reason: Reason
    changes: tuple[FieldChange, ...]
    note: str | None


def tiers_label(build: ImageBuildSpec) -> str:
    """`ds01.image.tiers`: each tier's inputs, as the next plan reads them back."""
    return json.dumps({tier: list(items) for tier, items in build.tiers}, sort_keys=True)


def needed(build: ImageBuildSpec, observed: Observed) -> BuildNeed | None:
    """The build `build` needs, or None when its tag is on the engine (up to date); its note
    ends with the limits it runs under, so an admin sees what the owner is charged."""
    need = _needed(build, observed)
    if need is None:
        return None
    return BuildNeed(need.build, need.reason, need.changes, f"{need.note}; {limits_line(build)}")


def limits_line(build: ImageBuildSpec) -> str:
    """`runs with memory 1g, 1 CPUs, up to 1h (alice's quota: memory (group students))`."""
    memory = f"memory {format_size(build.memory)}" if build.memory else "no memory limit"
    cpus = f"{format_cpus(build.nano_cpus)} CPUs" if build.nano_cpus else "no CPU limit"
    why = f" ({build.capped_by})" if build.capped_by else ""
    return f"runs with {memory}, {cpus}, up to {format_duration(build.timeout)}{why}"


def _needed(build: ImageBuildSpec, observed: Observed) -> BuildNeed | None:
    if build.tag in observed.images and not build.rebuild:
        return None
    if build.rebuild:
        note = f"rebuild of {build.tag} asked (--rebuild): on the base's newest image"
        return BuildNeed(build, Reason.REBUILD, (), note)
    previous = next(iter(observed.builds_of(build.key, build.site)), None)
    if previous is None:
        return BuildNeed(build, Reason.NEW, (), f"build {build.tag}")
    changes = _tier_changes(previous, build)
    lines = [line for c in changes for line in _lines(c)]
    if not lines:
        lines = ["build inputs changed (the Site's package sources or ds01ctl's generator)"]
    was = previous.tags[0] if previous.tags else previous.id[:19]
    note = f"build {build.tag} (was {was}): " + "; ".join(lines)
    return BuildNeed(build, Reason.SPEC_CHANGED, changes, note)


def base_update(build: ImageBuildSpec, observed: Observed) -> str | None:
    """A note when the base reference now names a newer image than the build was made on."""
    made = next((i for i in observed.built_images if build.tag in i.tags), None)
    if made is None or build.rebuild:
        return None
    recorded = L.get(made.labels, L.DS01_IMAGE_BASE_ID)
    now = observed.images.get(with_default_tag(build.base))
    if recorded is None or now is None or now == recorded:
        return None
    return (
        f"{build.key}: base update available ({build.base} is now {now[7:19]}, built on "
        f"{recorded[7:19]}); rebuild with `ds01ctl apply --rebuild {build.owner}/{build.name}`"
    )


def _tier_changes(previous: ObservedImage, build: ImageBuildSpec) -> tuple[FieldChange, ...]:
    try:
        raw = json.loads(L.get(previous.labels, L.DS01_IMAGE_TIERS) or "{}")
    except ValueError:
        raw = {}
    before = {str(k): tuple(str(i) for i in v) for k, v in raw.items() if isinstance(v, list)}
    return tuple(
        FieldChange(tier, before.get(tier, ()), items)
        for tier, items in build.tiers
        if before.get(tier, ()) != items
    )


def _lines(change: FieldChange) -> list[str]:
    before, after = set(change.before), set(change.after)
    added = [f"+ {change.field}: {i}" for i in change.after if i not in before]
    removed = [f"- {change.field}: {i}" for i in change.before if i not in after]
    return removed + added or [f"~ {change.field}: order changed"]


def build_labels(build: ImageBuildSpec) -> dict[str, str]:
    """Labels apply adds to a build (the base's ID is the driver's, read when it builds)."""
    return {
        L.DS01_IMAGE_HASH: build.content_hash,
        L.DS01_IMAGE_OF: build.key,
        L.DS01_IMAGE_SITE: build.site,
        L.DS01_IMAGE_TIERS: tiers_label(build),
    }
