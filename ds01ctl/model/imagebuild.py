"""An image build as a plan step carries it: the generated Dockerfile, the context's files
and the limits the build runs under, all plan data.

The context is listed, not carried: generated files (the pip tiers, an apt sources list) are
inline text; the Site's wheelhouse and apt repository files are named by host path with the
sha256 the plan hashed, so a plan file stays small and apply refuses a file that changed
since the plan (the tag would no longer name what is built).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ContextFile:
    name: str  # its path in the build context
    sha256: str
    text: str | None = None  # generated: the bytes are this text, UTF-8
    source: str | None = None  # read from this host path at build time


@dataclass(frozen=True, slots=True)
class ImageBuildSpec:
    """One Image's build: what goes in, the tag it gets, what it may use while it runs."""

    owner: str
    name: str
    tag: str  # `ds01-<owner, Docker-safe>/<name>:<hash12>`
    content_hash: str  # sha256 of everything that goes into the build
    base: str  # the base reference the Dockerfile's FROM names
    dockerfile: str
    context: tuple[ContextFile, ...]
    # Each tier's inputs, (tier, items), in build order: the next plan diffs them.
    tiers: tuple[tuple[str, tuple[str, ...]], ...]
    site: str
    network: str  # the network RUN steps get (`none`: no network at all)
    memory: int  # bytes, per RUN step's container (0: the engine's default)
    nano_cpus: int  # per RUN step's container (0: no limit)
    timeout: int  # seconds the whole build may take
    rebuild: bool = False  # the tag exists and the admin asked for a rebuild (a newer base)
    # Why memory/nano_cpus are below the Site's build limits: the owner's per-container quota
    # (e.g. "alice's quota: memory (group students)"); None when the Site's limits apply.
    capped_by: str | None = None
    kind: str = "image"

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.owner}/{self.name}"

    @property
    def repository(self) -> str:
        return self.tag.rpartition(":")[0]


class BuildFailed(Exception):
    """A build that did not finish: the step it failed in and the last lines it printed."""

    def __init__(self, tag: str, step: str | None, tail: tuple[str, ...], log: str | None):
        self.tag, self.step, self.tail, self.log = tag, step, tail, log
        where = f" at {step}" if step else ""
        super().__init__(f"build of {tag} failed{where}")

    def report(self) -> str:
        """One line naming the step and the log, then the last lines of its output."""
        head = str(self) + (f" (log: {self.log})" if self.log else "")
        return "\n".join([head, *(f"    | {line}" for line in self.tail)])
