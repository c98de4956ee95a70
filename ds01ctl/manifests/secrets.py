"""Secrets by reference, and whose they are.

A manifest names a secret, never holds it: the value lives in a root-only directory on the
server. Names are scoped: `<login>/<name>` is that login's secret; a bare `<name>` is the
owner's own (`<owner>/<name>`). An owner may name their own secrets and those the Site grants
them (`secret_grants`), nobody else's. A literal value that looks like a token (a Hugging Face
`hf_…`, an OpenAI-style `sk-…`, …) is refused wherever a manifest sets an environment value:
it would sit in the config repo, the plan and `docker inspect` for everyone to read.
"""

from __future__ import annotations

import re

from ds01ctl.names import check_login, check_name

# Prefix, then enough token alphabet that a word such as "sk-learn" is not mistaken for one.
TOKEN_PATTERNS = (
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{20,}")),
    ("an API key (sk-…)", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}")),
    ("a GitHub token", re.compile(r"\b(?:ghp|gho|ghs|ghu)_[A-Za-z0-9]{30,}|\bgithub_pat_\w{30,}")),
    ("an NVIDIA API key", re.compile(r"\bnvapi-[A-Za-z0-9_-]{30,}")),
    ("an AWS access key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("a Slack token", re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}")),
)


def check_secret_name(value: str) -> str:
    """`<name>` or `<login>/<name>`: a DNS-label name, scoped by a raw login."""
    scope, slash, name = value.rpartition("/")
    check_name(name)
    if slash:
        check_login(scope)
    return value


def full_name(secret: str, owner: str) -> str:
    """The secret's scoped name: a bare name is the owner's own."""
    return secret if "/" in secret else f"{owner}/{secret}"


def scope_problem(secret: str, owner: str, grants: dict[str, list[str]]) -> str | None:
    """Why `owner` may not use `secret`, or None."""
    name = full_name(secret, owner)
    if name.rpartition("/")[0] == owner:
        return None
    granted = grants.get(name, [])
    if owner in granted or "*" in granted:
        return None
    return f"secret {name!r} is not {owner}'s and the Site does not grant it to {owner}"


def token_kind(value: str) -> str | None:
    """What kind of token `value` looks like, or None."""
    for kind, pattern in TOKEN_PATTERNS:
        if pattern.search(value):
            return kind
    return None
