"""What endpoints need of the host, read for the pure core: the site's model cache, secret
versions, ports in use; and asking a server whether it is Ready.

Secrets are read only to hash them: the version of a secret is the start of its content's
SHA-256, which says that it changed and nothing of what it is. A secret is a regular file
`<secrets_dir>/<login>/<name>` (never followed through a symbolic link); anything else is
absent. Only the models and secrets the manifests name are looked at.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

from ds01ctl.catalog.modelfacts import ModelFactsError, facts_from_snapshot, snapshot_dir
from ds01ctl.manifests import Endpoint
from ds01ctl.manifests.common import SecretRef
from ds01ctl.manifests.secrets import full_name
from ds01ctl.manifests.site import MountRule, SiteSpec
from ds01ctl.manifests.validate import ConfigRepo
from ds01ctl.resolve.endpoints import EndpointFacts
from ds01ctl.resolve.memfit import ModelFacts

MAX_SECRET_BYTES = 64 * 1024
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def endpoint_facts(repo: ConfigRepo) -> EndpointFacts:
    assert repo.site is not None
    site = repo.site.spec
    endpoints = [m for m, _ in repo.of(Endpoint) if isinstance(m, Endpoint)]
    if not endpoints:
        return EndpointFacts()
    cached: dict[str, tuple[str, ...]] = {}
    facts: dict[str, ModelFacts] = {}
    if site.model_cache is not None:
        cache = Path(site.model_cache)
        cached = cached_models(cache)
        for model in sorted({e.spec.model.id for e in endpoints}):
            found = _facts(cache, model)
            if found is not None:
                facts[model.lower()] = found
    secrets: dict[str, str] = {}
    if site.secrets_dir is not None:
        for endpoint in endpoints:
            owner = endpoint.metadata.owner or ""
            for ref in secret_refs(endpoint):
                name = full_name(ref.secret, owner)
                version = secret_version(Path(site.secrets_dir), name)
                if version is not None:
                    secrets[name] = version
    return EndpointFacts(cached, facts, secrets, listening_ports())


def secret_refs(endpoint: Endpoint) -> list[SecretRef]:
    spec = endpoint.spec
    refs = [r for r in (spec.model.token, spec.api_key) if r is not None]
    return refs + [v for v in spec.engine.env.values() if isinstance(v, SecretRef)]


def cached_models(cache: Path) -> dict[str, tuple[str, ...]]:
    """Model id (lower-case) → the snapshot revisions a hub-layout cache holds."""
    found: dict[str, tuple[str, ...]] = {}
    try:
        names = os.listdir(cache)
    except OSError:
        return found
    for name in names:
        if not name.startswith("models--"):
            continue
        model = name.removeprefix("models--").replace("--", "/")
        try:
            revisions = tuple(sorted(os.listdir(cache / name / "snapshots")))
        except OSError:
            continue
        if revisions:
            found[model.lower()] = revisions
    return found


def _facts(cache: Path, model: str) -> ModelFacts | None:
    snapshot = snapshot_dir(cache, model)
    if snapshot is None:
        return None
    try:
        return facts_from_snapshot(cache, snapshot, model)
    except ModelFactsError:
        return None  # the shipped table, or no estimate (the plan says which)


def secret_version(directory: Path, name: str) -> str | None:
    """The version of secret `name` (`<login>/<name>`): a hash of its file, or None."""
    path = directory / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, MAX_SECRET_BYTES)
    finally:
        os.close(fd)
    return hashlib.sha256(data.strip()).hexdigest()[:12]


def listening_ports() -> frozenset[int]:
    """TCP ports something on the host listens on (IPv4 and IPv6)."""
    found: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _LISTEN:
                found.add(int(fields[1].rsplit(":", 1)[1], 16))
    return frozenset(found)


def cache_rules(site: SiteSpec) -> list[MountRule]:
    """The Site's mount policy plus its model cache, read-only: what an endpoint may mount."""
    if site.model_cache is None:
        return list(site.mount_policy)
    cache = site.model_cache.rstrip("/")
    return [
        *site.mount_policy,
        MountRule(path=cache, read_only=True),
        MountRule(path=f"{cache}/**", read_only=True),
    ]


def probe(url: str, served: str, key: str | None, timeout: float = 5) -> tuple[bool, str]:
    """Whether `url` (a server's /v1/models) lists `served`, and what it answered."""
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read(1024 * 1024) or b"{}")
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return False, type(exc).__name__
    names = [str(m.get("id")) for m in body.get("data") or [] if isinstance(m, dict)]
    if served in names:
        return True, "ready"
    return False, f"lists {', '.join(names) or 'no model'}, not {served}"


def read_secret(path: str) -> str | None:
    """A secret's value, for the one request that needs it (never printed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, MAX_SECRET_BYTES).decode(errors="replace").strip()
    finally:
        os.close(fd)
