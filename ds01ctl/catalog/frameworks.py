"""The framework catalog: AIME's `ml_images.repo` (framework, version, [archs], image per line).

ds01ctl ships a copy; a Site can point at the host's own file so that ds01ctl and mlc agree.
Lookups are case-insensitive on the framework and suggest the nearest name or version.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from ds01ctl.errors import Ds01Error

# mlc's names, mapped to the GPU generations a Site is likely to have
ARCHITECTURES = ("CUDA", "CUDA_AMPERE", "CUDA_ADA", "CUDA_BLACKWELL", "ROCM5", "ROCM6")


class CatalogError(Ds01Error):
    code = "catalog"


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    framework: str
    version: str
    architectures: tuple[str, ...]
    image: str

    @property
    def label(self) -> str:
        """mlc's aime.mlc.FRAMEWORK value: `<Framework>-<version>`."""
        return f"{self.framework}-{self.version}"


@dataclass(frozen=True, slots=True)
class Problem:
    code: str  # ref.framework | ref.version | ref.architecture
    message: str
    hint: str | None


class FrameworkCatalog:
    """Rows of an ml_images.repo, in file order (mlc keeps file order for versions)."""

    def __init__(self, entries: tuple[CatalogEntry, ...], source: str):
        self.entries = entries
        self.source = source
        self._by_framework: dict[str, list[CatalogEntry]] = {}
        for entry in entries:
            self._by_framework.setdefault(entry.framework.lower(), []).append(entry)

    @classmethod
    def parse(cls, text: str, source: str) -> FrameworkCatalog:
        entries = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = [f.strip() for f in line.split(",")]
            if len(fields) != 4 or not all(fields):
                raise CatalogError(
                    f"{source}:{number}: expected 'framework, version, [ARCH;…], image'",
                    code="catalog.unreadable",
                )
            framework, version, archs, image = fields
            arch_list = tuple(a.strip() for a in archs.strip("[]").split(";") if a.strip())
            entries.append(CatalogEntry(framework, version, arch_list, image))
        return cls(tuple(entries), source)

    @classmethod
    def load(cls, path: Path | None = None) -> FrameworkCatalog:
        """The file at `path`, or the copy shipped with ds01ctl."""
        if path is None:
            return _packaged()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(
                f"cannot read the framework catalog {path}: {exc}",
                hint="fix the Site's spec.catalog.path, or remove it to use the shipped catalog",
                code="catalog.unreadable",
            ) from None
        return cls.parse(text, str(path))

    def frameworks(self) -> list[str]:
        return sorted({e.framework for e in self.entries})

    def versions(self, framework: str) -> list[str]:
        return list(dict.fromkeys(e.version for e in self._by_framework.get(framework.lower(), [])))

    def lookup(
        self, framework: str, version: str, architecture: str | None
    ) -> CatalogEntry | Problem:
        """The entry for framework+version built for `architecture` (any, when None)."""
        rows = self._by_framework.get(framework.lower())
        if rows is None:
            return Problem(
                "ref.framework",
                f"framework {framework!r} is not in the catalog",
                _suggest(framework, self.frameworks(), "frameworks"),
            )
        matches = [e for e in rows if e.version == version]
        if not matches:
            return Problem(
                "ref.version",
                f"{rows[0].framework} {version} is not in the catalog",
                _suggest(version, self.versions(framework), "versions"),
            )
        if architecture is None:
            return matches[0]
        for entry in matches:
            if architecture in entry.architectures:
                return entry
        built = sorted({a for e in matches for a in e.architectures})
        return Problem(
            "ref.architecture",
            f"{rows[0].framework} {version} is not built for {architecture}",
            f"it is built for {', '.join(built)}; choose a version built for {architecture}",
        )


def _suggest(value: str, choices: list[str], what: str) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"known {what}: {', '.join(choices[:12])}" + (" …" if len(choices) > 12 else "")


@cache
def _packaged() -> FrameworkCatalog:
    text = resources.files("ds01ctl.catalog").joinpath("ml_images.repo").read_text("utf-8")
    return FrameworkCatalog.parse(text, "ds01ctl:ml_images.repo")
