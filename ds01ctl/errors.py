"""The one user-facing error type and its subclasses.

Every failure a user can cause or fix is a `Ds01Error`: a stable `code` (snake_case, part of the
JSON contract), a one-line `message`, an optional `hint` saying what to do, and an exit code.
`cli.py` catches it in one place; any other exception escaping the core is a bug.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ds01ctl.diagnostics import Diagnostic

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2  # plan --detailed-exitcode: changes present


class Ds01Error(Exception):
    """A failure written for a person: what went wrong and what to do about it."""

    code = "error"
    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} ({self.hint})"


class InternalError(Ds01Error):
    """An impossible state inside ds01ctl: a bug, never the user's doing."""

    code = "internal"


class ManifestError(Ds01Error):
    """A file that cannot be read as manifests, with its position."""

    code = "manifest"

    def __init__(
        self,
        message: str,
        *,
        file: str,
        line: int | None = None,
        col: int | None = None,
        hint: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message, hint=hint, code=code)
        self.file, self.line, self.col = file, line, col

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.col or 1}"
        return f"{where}: {super().__str__()}"


class ValidationFailed(Ds01Error):
    """The manifests have errors; the diagnostics say which."""

    code = "validation_failed"

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        errors = [d for d in diagnostics if d.is_error]
        super().__init__(
            f"the manifests have {len(errors)} error(s)",
            hint="run `ds01ctl validate` for the full list",
        )
        self.diagnostics = tuple(diagnostics)


class InventoryError(Ds01Error):
    """The GPU inventory cannot be read (NVML missing or broken, a malformed fixture)."""

    code = "gpu_inventory"


class DockerUnavailable(Ds01Error):
    """No Docker engine answers, or it refuses us."""

    code = "docker_unavailable"


class PlanRejected(Ds01Error):
    """The desired state cannot be planned (a request the host or policy can never satisfy)."""

    code = "plan_rejected"

    def __init__(self, problems: Sequence[str]):
        super().__init__(
            f"cannot plan: {len(problems)} problem(s)",
            hint="fix them in the manifests, the Site, or on the host",
        )
        self.problems = tuple(problems)

    def __str__(self) -> str:
        return "\n".join([super().__str__(), *(f"  - {p}" for p in self.problems)])


class StalePlan(Ds01Error):
    """A saved plan no longer matches what is live."""

    code = "stale_plan"


class LockHeld(Ds01Error):
    """Another apply holds the engine's lock."""

    code = "lock_held"


class ApplyFailed(Ds01Error):
    """Some actions of an apply failed; the summary says what was done, failed and skipped."""

    code = "apply_failed"
