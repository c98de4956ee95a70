"""Users' numeric identities from the host's passwd, for owners the Site does not pin."""

from __future__ import annotations

import pwd
from collections.abc import Iterable

from ds01ctl.model.spec import UserAccount


def lookup_accounts(logins: Iterable[str]) -> dict[str, UserAccount]:
    """uid/gid of each login the host knows (NSS: local files, LDAP/SSSD); others are absent."""
    found = {}
    for login in sorted(set(logins)):
        try:
            entry = pwd.getpwnam(login)
        except KeyError:
            continue
        if entry.pw_uid != 0:  # never run a workspace as root
            found[login] = UserAccount(login, entry.pw_uid, entry.pw_gid)
    return found


def uid_logins(uids: Iterable[int]) -> dict[int, str]:
    """Logins of numeric uids the host knows (for GPU processes outside containers)."""
    found = {}
    for uid in sorted(set(uids)):
        try:
            found[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            continue
    return found
