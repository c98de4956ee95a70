"""An Image's requirements file: a file of the owner's own, read without trusting it.

`requirements_file` is written by the owner and names a path relative to the manifest. It must
stay inside the owner's own directory of the config repo (`users/<owner>/`): `..` cannot reach
another user's files or the host's, and no component may be a symbolic link (each is checked
with `lstat`, the file itself opened with O_NOFOLLOW by `repofiles.read_regular`). Its lines
must be plain PEP 508 requirements (`packages.parse_requirements_file`).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ds01ctl.manifests.loader import USERS, Loaded
from ds01ctl.manifests.packages import (
    RequirementLine,
    RequirementProblem,
    parse_requirements_file,
)
from ds01ctl.manifests.repofiles import MAX_FILE_BYTES, NotRegularFile, file_type, read_regular


@dataclass
class RequirementsFile:
    """What reading one Image's requirements file found: its place, lines and problems."""

    shown: str  # the file as diagnostics name it
    lines: list[RequirementLine] = field(default_factory=list)
    problems: list[RequirementProblem] = field(default_factory=list)
    refused: str | None = None  # why the file itself cannot be used

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(line.text for line in self.lines)


def manifest_path(root: Path, item: Loaded, display_root: str) -> Path:
    """The real path of the file a manifest was loaded from."""
    return root / os.path.relpath(item.file, display_root or ".")


def read_requirements(
    root: Path, item: Loaded, display_root: str, relative: str, owner: str
) -> RequirementsFile:
    """Read `relative` (as the manifest at `item` names it) from `users/<owner>/` of `root`."""
    here = manifest_path(root, item, display_root).parent
    shown = os.path.normpath(os.path.join(os.path.dirname(item.file), relative))
    result = RequirementsFile(shown)
    owner_dir = root / USERS / owner
    if os.path.isabs(relative) or "\0" in relative:
        result.refused = f"{relative!r} is not a path relative to the manifest"
        return result
    target = Path(os.path.normpath(here / relative))
    try:
        inside = target.relative_to(owner_dir)
    except ValueError:
        result.refused = f"{relative!r} lies outside {USERS}/{owner}/, the owner's own directory"
        return result
    if not inside.parts:
        result.refused = f"{relative!r} is a directory, not a file"
        return result
    problem = _components(root, PurePosixPath(USERS, owner, *inside.parts))
    if problem is not None:
        result.refused = f"{relative!r}: {problem}"
        return result
    try:
        data = read_regular(target)
    except NotRegularFile as exc:
        result.refused = f"{relative!r} is a {exc.what}, not a regular file"
        return result
    except FileNotFoundError:
        result.refused = f"{relative!r} does not exist"
        return result
    except OSError as exc:
        result.refused = f"{relative!r} cannot be read ({exc.strerror or exc})"
        return result
    if len(data) > MAX_FILE_BYTES:
        result.refused = f"{relative!r} is larger than a requirements file can be"
        return result
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        result.refused = f"{relative!r} is not UTF-8 text"
        return result
    result.lines, result.problems = parse_requirements_file(text)
    return result


def _components(root: Path, inside: PurePosixPath) -> str | None:
    """Why a directory on the way from the repo's root to the file is unusable."""
    current = root
    for part in inside.parts[:-1]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return f"directory {part!r} does not exist"
        except OSError as exc:
            return f"{part!r} cannot be read ({exc.strerror or exc})"
        if not stat.S_ISDIR(mode):
            return f"{part!r} is a {file_type(mode)}, not a directory"
    return None
