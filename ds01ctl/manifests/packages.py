"""What an Image may ask to install: pip requirements and apt package names, checked before
anything is built.

Both are untrusted text that ends up in a build. A pip entry must be one PEP 508 requirement
(`name[extras] (version) ; marker` or `name @ url`); pip options (`--index-url`, `-e`, `-r`)
and bare paths are not requirements and are refused here, and `name @ url` direct references
only pass when the Site allows them (`images.allow_direct_references`, checked by validate).
An apt entry must be a Debian package name (policy §5.6.1: lower-case letters, digits, `+`,
`-`, `.`), optionally `=version`: no shell metacharacter can pass. The generator still quotes
every value it puts in a shell line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement

APT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
APT_VERSION_RE = re.compile(r"^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_pip_requirement(value: str) -> str:
    """A pip requirement as pip will read it; raises ValueError saying what is wrong."""
    text = value.strip()
    if _CONTROL.search(value):
        raise ValueError(f"{value!r} holds a control character (a newline or tab)")
    if text.startswith("-"):
        raise ValueError(
            f"{value!r} is a pip option, not a requirement: name packages such as "
            "transformers==4.47.0 (package indexes are the Site's choice)"
        )
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        detail = str(exc).splitlines()[0]
        raise ValueError(
            f"{value!r} is not a PEP 508 requirement such as transformers==4.47.0 ({detail})"
        ) from None
    return str(requirement)


def check_apt_package(value: str) -> str:
    """A Debian package name, optionally `=version`; raises ValueError saying what is wrong."""
    name, equals, version = value.partition("=")
    if not APT_NAME_RE.fullmatch(name):
        raise ValueError(
            f"{value!r} is not a Debian package name: lower-case letters, digits, '+', '-' and "
            "'.', at least two, starting with a letter or digit (optionally =version)"
        )
    if equals and not APT_VERSION_RE.fullmatch(version):
        raise ValueError(f"{value!r} has a version apt would not accept: {version!r}")
    return value


def direct_reference(requirement: str) -> str | None:
    """The URL of a `name @ url` requirement, or None."""
    return Requirement(requirement).url


@dataclass(frozen=True, slots=True)
class RequirementLine:
    """One line of a requirements file: its 1-based line and column, and what it says."""

    line: int
    col: int
    text: str


@dataclass(frozen=True, slots=True)
class RequirementProblem:
    line: int
    col: int
    message: str


def parse_requirements_file(
    text: str,
) -> tuple[list[RequirementLine], list[RequirementProblem]]:
    """The requirements of a requirements file (one per line, `#` comments, `\\` continuations),
    normalised, and a problem per line that is not a plain requirement: pip options such as
    `--index-url`, `-r` or `-e` would let the file choose where code comes from."""
    found: list[RequirementLine] = []
    problems: list[RequirementProblem] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        start = index
        raw = lines[index]
        while raw.endswith("\\") and index + 1 < len(lines):
            index += 1
            raw = raw[:-1] + lines[index]
        index += 1
        content = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not content:
            continue
        col = len(raw) - len(raw.lstrip()) + 1
        try:
            found.append(RequirementLine(start + 1, col, check_pip_requirement(content)))
        except ValueError as exc:
            problems.append(RequirementProblem(start + 1, col, str(exc)))
    return found, problems
