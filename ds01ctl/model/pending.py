"""A declared object that cannot be made now, and why (quota, no free GPU, a refused mount).

Resolve produces them and the plan shows them; apply records how long each has waited.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PendingItem:
    target: str  # `<kind>/<owner>/<name>`
    reason: str
