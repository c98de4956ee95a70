"""ds01ctl: declarative, GitOps-style control of a shared multi-user GPU server.

Manifests in a config repo declare workspaces, endpoints, quotas and images; `validate` checks
them offline, `plan` diffs them against live Docker and GPU state, and `apply` carries out the plan.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
