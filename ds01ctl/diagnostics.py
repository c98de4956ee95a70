"""Diagnostics: every problem found in a config repo, with where it is and what to do.

Validation never stops at the first problem: each check appends `Diagnostic`s and the caller
reports them all. Codes form a closed set (`CODES`), pinned by a test, because they are part
of the JSON output that config-repo CI consumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


CODES: dict[str, str] = {
    # reading files
    "path.not_found": "the path given does not exist",
    "path.no_manifests": "a directory holds no *.yaml / *.yml file",
    "path.no_config_repo": "no directory from the path up to the git root holds a Site",
    "path.symlink": "a symbolic link in the config repo (never followed)",
    "path.not_regular": "a FIFO, socket or device in the config repo (never read)",
    "file.unreadable": "a file cannot be read (permissions, I/O error)",
    "file.too_large": "a file is larger than a manifest can be",
    "file.binary": "a file is not text",
    "file.empty": "a file holds no document",
    "yaml.syntax": "a file is not valid YAML",
    "yaml.duplicate_key": "a mapping names the same key twice",
    "yaml.too_complex": "aliases or nesting expand beyond what a manifest needs",
    # one document
    "manifest.not_mapping": "a document is not a mapping",
    "manifest.api_version": "apiVersion is missing or not ds01/v1",
    "manifest.kind": "kind is missing or unknown",
    "schema.unknown_key": "a key that the kind does not have",
    "schema.missing": "a required key is missing",
    "schema.invalid": "a value has the wrong type or form",
    # the config repo as a whole
    "object.duplicate": "two documents declare the same object",
    "site.missing": "no Site manifest",
    "site.multiple": "more than one Site manifest",
    "quota.multiple": "more than one QuotaPolicy manifest",
    "quota.two_groups": "a user is a member of two groups",
    "quota.unknown_user": "a per-user override or exemption names a user with no objects or group",
    "quota.exemption_expired": "a time-boxed exemption has expired and is ignored",
    "quota.lifecycle": "a workspace's lifecycle value is above its owner's quota",
    "quota.request": "a workspace asks more CPUs, memory, shm or pids than its owner's quota",
    "quota.gpus": "a workspace's GPUs break its owner's quota (whole GPUs, devices, budget)",
    "quota.workspaces": "an owner declares more workspaces than their quota allows",
    "site.duplicate_uid": "two logins are pinned to the same uid",
    "owner.missing": "an object that needs an owner has none",
    "owner.path_mismatch": "a file under users/<login>/ declares an object of another owner",
    "owner.no_group": "an owner is in no group and the policy has no default_group",
    "ref.image": "a workspace names an Image that its owner does not declare",
    "image.unknown_preset": "an Image names a preset neither ds01ctl nor the Site defines",
    "image.direct_reference": "a pip requirement names a URL and the Site does not allow it",
    "image.requirements_file": "an Image's requirements file is outside its owner's directory, "
    "not a regular file, or unreadable",
    "image.requirement": "a line of a requirements file is not a plain PEP 508 requirement",
    "ref.framework": "a framework is not in the catalog",
    "ref.version": "a framework version is not in the catalog",
    "ref.architecture": "a framework version is not built for the site's GPU architecture",
    "mount.invalid": "a mount path is not a clean absolute path",
    "mount.not_allowed": "a mount is outside the site's mount policy",
    "mount.read_only": "a mount asks for write access the policy allows read-only",
    "security.privileged": "privileged containers are never allowed",
    "security.docker_socket": "the Docker socket is never mounted into a user container",
    "security.host_network": "host networking is off unless the site allows it",
    "security.reserved_env": "environment variables that select GPUs are set by ds01ctl alone",
    "security.capability": "a Site may add only capabilities that give nothing beyond the uid",
    "security.network_not_allowed": "a network that is not the site's, none, or allowed",
    "security.image_not_allowed": "an image that is another user's, or not catalog or allowed",
    "catalog.unreadable": "the framework catalog file cannot be read",
    "ref.recipe": "an endpoint pins a recipe that does not exist, or no recipe serves its model",
    "recipe.invalid": "a file in the site's recipes_dir cannot be read or is not a valid recipe",
    "endpoint.engine_arg": "an engine arg that is not a flag users may set on the engine version",
    "endpoint.env": "an endpoint environment variable that users may not set for the vendor",
    "endpoint.port": "an endpoint's fixed host port outside the Site's endpoint pool",
    "endpoint.expose": "an endpoint asks for the lab network where the Site sets no lab address",
    "security.owned_flag": "an engine arg that sets a flag ds01ctl owns, however it is spelled",
    "security.literal_secret": "a literal value that looks like a token where a secret belongs",
    "secret.scope": "a secret that is another owner's and that the Site does not grant",
    "unsupported": "declared, but not supported yet by this version",
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem: severity, a stable code, a one-line message, where, and what to do."""

    severity: Severity
    code: str
    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None
    hint: str | None = None

    def __post_init__(self) -> None:
        assert self.code in CODES, f"unknown diagnostic code {self.code!r}"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    @property
    def where(self) -> str:
        if self.file is None:
            return ""
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.col or 1}"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file or "", self.line or 0, self.col or 0, self.code, self.message)

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "hint": self.hint,
        }

    def __str__(self) -> str:
        text = f"{self.severity.value}[{self.code}]: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return f"{self.where}: {text}" if self.where else text


def error(code: str, message: str, **where: Any) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, message, **where)


def warning(code: str, message: str, **where: Any) -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, message, **where)
