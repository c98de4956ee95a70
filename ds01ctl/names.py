"""Names and logins: the rules objects follow, and the one place a login is made Docker-safe.

Object names are DNS-label-like (`thesis`, `qwen3-32b`), valid as mlc names and Docker names.
Logins are kept raw (`h.baker`, `228755@uni.example`) wherever mlc or the host reads them;
`docker_safe` makes the form Docker's image-reference grammar demands, and nothing else does.
"""

from __future__ import annotations

import hashlib
import re

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# What LDAP/SSSD and local accounts produce; no `/`, `,`, `=`, `:` or whitespace, so a login is
# safe in a path component, a label value (mlc's list splits labels on commas) and --user.
LOGIN_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")
MAX_ID = 2**32 - 2  # (uid_t)-1 is reserved; LDAP uids reach ~2^31
_REPO_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HASH_SUFFIX_RE = re.compile(r"-[0-9a-f]{8}\Z")  # what docker_safe appends


def check_name(value: str) -> str:
    if not NAME_RE.fullmatch(value):  # fullmatch: `$` alone lets "name\n" through
        raise ValueError(
            f"{value!r} is not a valid name: use 1-63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def check_login(value: str) -> str:
    if not LOGIN_RE.fullmatch(value) or value.endswith("."):
        raise ValueError(
            f"{value!r} is not a valid login: use letters, digits and . _ @ - "
            "(at most 64, not starting with . or -)"
        )
    return value


def docker_safe(login: str) -> str:
    """A login as one component of an image repository name; distinct logins stay distinct.

    A login that already fits Docker's grammar is kept; otherwise it is lower-cased, every run
    of other characters becomes `-`, and a short hash of the raw login keeps it unique. A login
    that itself ends like such a hash (`alice-3bc51062`) is hashed too, so that it cannot take
    the name of another (`Alice`).
    """
    fits = _REPO_COMPONENT_RE.fullmatch(login) and len(login) <= 64
    if fits and not _HASH_SUFFIX_RE.search(login):
        return login
    base = re.sub(r"[^a-z0-9]+", "-", login.lower()).strip("-")[:48] or "user"
    digest = hashlib.sha256(login.encode()).hexdigest()[:8]
    return f"{base}-{digest}"
