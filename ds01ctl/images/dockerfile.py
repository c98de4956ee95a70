"""One generator, pure: an Image spec → Dockerfile text, build context, content hash and tag.

Everything that goes into a build comes in as data (the resolved base reference, the owner's
account, the presets' requirements, the requirements file's lines, the Site's package sources
with their files already read); nothing here reads the host or talks to Docker. The same inputs
always give the same bytes, so the hash of the Dockerfile, the context files and the base
reference names the image: `ds01-<owner, Docker-safe>/<name>:<hash12>`.

Tiers, in order, so that what changes least is built first and stays cached:

1. base: `FROM` the reference the caller resolved (pin it by digest or ID to make the hash
   follow the base);
2. system packages: apt, from the base's sources or the Site's (`images.apt_sources`), plus
   the Site's local repository (`images.apt_repo`) copied into the context;
3. presets, 4. the requirements file, 5. pip packages: each tier's file is copied just
   before the step that installs it (as repo2docker does), so a changed pip package rebuilds
   only the last tier;
6. env; 7. the user bake: passwd and group lines written directly (no `useradd`, so no sparse
   lastlog for a uid such as 228755 or 2^20+5), the home and `/workspace` owned by the user,
   and labels telling mlc and DS01 the user is set up. The labels that mark a managed
   container are blanked: an image never passes them on.

Python packages always go into a virtualenv at `/opt/venv`, created with
`--system-site-packages` (the base's own packages, e.g. PyTorch, stay importable), owned by the
user and first on PATH. That one rule serves every base: one that refuses system-wide installs
(PEP 668, e.g. Debian 12) and one that does not, with no probing; pip runs as the user, so a
package's build scripts never run as root, and the user can `pip install` more later. The base
needs `python3` with its `venv` module when the Image installs any pip package.

Nothing a user wrote reaches a shell line unquoted: package names are validated by the
manifest, requirements go into files pip reads (`-r`), and the few values in shell lines
(login, paths, apt names) are `shlex.quote`d; ENV and LABEL values are escaped for the
Dockerfile parser, so `$HOME` in a value stays literal.
"""

from __future__ import annotations

import hashlib
import io
import shlex
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ds01ctl import labels as L
from ds01ctl.manifests.image import ImageSpec
from ds01ctl.names import docker_safe
from ds01ctl.resolve.spec import UserAccount

HASH_VERSION = "1"  # bump when the generated text changes for unchanged inputs
VENV = "/opt/venv"
STAGE = "/tmp/ds01"  # where context files land in the image while a tier needs them
WORKSPACE = "/workspace"
PIP_FLAGS = ("--no-cache-dir", "--disable-pip-version-check", "--no-input")


@dataclass(frozen=True)
class BuildSources:
    """Where builds get packages from: the Site's `images` settings, files already read."""

    pip_index_url: str | None = None
    wheelhouse: Mapping[str, bytes] = field(default_factory=dict)  # wheel file name → bytes
    apt_sources: tuple[str, ...] | None = None  # replaces the base's sources when set
    apt_repo: Mapping[str, bytes] = field(default_factory=dict)  # flat repo: Packages, *.deb


@dataclass(frozen=True)
class ImageBuild:
    """What a build needs, and the name it gets."""

    dockerfile: str
    context: dict[str, bytes]  # file name in the context → bytes (the Dockerfile aside)
    content_hash: str
    tag: str

    def context_tar(self) -> bytes:
        """The build context as a tar (the Dockerfile at its top), the same bytes every time."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name, data in sorted(
                {"Dockerfile": self.dockerfile.encode(), **self.context}.items()
            ):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()


def image_repository(owner: str, name: str) -> str:
    """`ds01-<owner>/<name>`: an owner's images under one Docker-safe repository prefix."""
    return f"ds01-{docker_safe(owner)}/{name}"


def generate(
    spec: ImageSpec,
    *,
    owner: str,
    name: str,
    base: str,
    account: UserAccount | None,
    presets: Mapping[str, Iterable[str]],
    requirements: Iterable[str] = (),
    sources: BuildSources | None = None,
) -> ImageBuild:
    """The build of `owner`'s Image `name` on `base` (a resolved reference).

    `account` is required when the spec bakes the user in (`user_setup`); `presets` maps every
    preset the spec names to its requirements; `requirements` are the lines of its
    requirements file, already validated.
    """
    sources = sources or BuildSources()
    if spec.user_setup and account is None:
        raise ValueError("an Image that bakes the user in needs the owner's account")
    baked = account if spec.user_setup else None
    lines = [
        f"# {image_repository(owner, name)}: generated by ds01ctl; do not edit",
        f"FROM {base}",
    ]
    lines.append("USER root")
    context: dict[str, bytes] = {}
    _apt_tier(spec, sources, lines, context)
    _python_tiers(spec, baked, presets, tuple(requirements), sources, lines, context)
    if spec.env:
        lines.append("ENV " + " ".join(f"{k}={_dockerfile_quote(v)}" for k, v in spec.env.items()))
    if baked is not None:
        _user_bake(baked, lines)
    lines.append(
        "LABEL " + " ".join(f"{k}={_dockerfile_quote(v)}" for k, v in _labels(base, baked))
    )
    dockerfile = "\n".join(lines) + "\n"
    digest = content_hash(base, dockerfile, context)
    return ImageBuild(dockerfile, context, digest, f"{image_repository(owner, name)}:{digest[:12]}")


def content_hash(base: str, dockerfile: str, context: Mapping[str, bytes]) -> str:
    """sha256 of everything that goes into the build, lengths included so no two inputs
    run together."""
    h = hashlib.sha256()
    for part in (HASH_VERSION.encode(), base.encode(), dockerfile.encode()):
        h.update(b"%d:" % len(part) + part)
    for name, data in sorted(context.items()):
        h.update(b"%d:" % len(name.encode()) + name.encode() + b"%d:" % len(data))
        h.update(data)
    return h.hexdigest()


def _apt_tier(
    spec: ImageSpec, sources: BuildSources, lines: list[str], context: dict[str, bytes]
) -> None:
    if not spec.apt_packages:
        return
    lines.append("")
    lines.append("# tier: system packages")
    source_lines = list(sources.apt_sources or ())
    if sources.apt_repo:
        for file_name, data in sources.apt_repo.items():
            context[f"ds01/apt/repo/{file_name}"] = data
        source_lines.append(f"deb [trusted=yes] file:{STAGE}/apt/repo ./")
    apt = "apt-get -q"
    steps = ["set -eu", "export DEBIAN_FRONTEND=noninteractive"]
    cleanup = f"rm -rf /var/lib/apt/lists/* {STAGE}/apt"
    if source_lines:
        context["ds01/apt/sources.list"] = ("\n".join(source_lines) + "\n").encode()
        lines.append(f"COPY ds01/apt/ {STAGE}/apt/")
        if sources.apt_sources is not None:  # the Site's sources instead of the base's
            apt += f" -o Dir::Etc::SourceList={STAGE}/apt/sources.list -o Dir::Etc::SourceParts=-"
        else:  # the base's sources, and the local repository beside them
            steps.append(f"cp {STAGE}/apt/sources.list /etc/apt/sources.list.d/ds01-build.list")
            cleanup += " /etc/apt/sources.list.d/ds01-build.list"
    packages = " ".join(shlex.quote(p) for p in spec.apt_packages)
    steps += [
        f"{apt} update",
        f"{apt} install -y --no-install-recommends {packages}",
        cleanup,
    ]
    lines.append(_run(steps))


def _python_tiers(
    spec: ImageSpec,
    account: UserAccount | None,
    presets: Mapping[str, Iterable[str]],
    requirements: tuple[str, ...],
    sources: BuildSources,
    lines: list[str],
    context: dict[str, bytes],
) -> None:
    preset_reqs = _unique(r for p in spec.presets for r in presets[p])
    tiers = [
        ("presets", preset_reqs),
        ("requirements", requirements),
        ("packages", tuple(spec.pip_packages)),
    ]
    tiers = [(tier, reqs) for tier, reqs in tiers if reqs]
    if not tiers:
        return
    lines.append("")
    lines.append(f"# tier: python environment ({VENV}, owned by the user)")
    lines.append(f"ENV VIRTUAL_ENV={VENV} PATH={VENV}/bin:$PATH")
    if account is not None:  # the venv is the user's; pip and build scripts run as the user
        lines.append(f"RUN install -d -o {account.uid} -g {account.gid} {VENV}")
        lines.append(f"USER {account.uid}:{account.gid}")
    lines.append(f"RUN python3 -m venv --system-site-packages {VENV}")
    pip = [f"{VENV}/bin/python", "-m", "pip", "install", *PIP_FLAGS]
    if sources.pip_index_url is not None:
        pip += ["--index-url", sources.pip_index_url]
    if sources.wheelhouse:
        for file_name, data in sources.wheelhouse.items():
            context[f"ds01/pip/wheels/{file_name}"] = data
        lines.append(f"COPY ds01/pip/wheels/ {STAGE}/pip/wheels/")
        pip += ["--find-links", f"{STAGE}/pip/wheels"]
        if sources.pip_index_url is None:
            pip.append("--no-index")
    for tier, reqs in tiers:
        file_name = f"ds01/pip/{tier}.txt"
        context[file_name] = ("\n".join(reqs) + "\n").encode()
        lines.append("")
        lines.append(f"# tier: {tier}")
        lines.append(f"COPY {file_name} {STAGE}/pip/{tier}.txt")
        lines.append("RUN " + shlex.join([*pip, "-r", f"{STAGE}/pip/{tier}.txt"]))
    if account is not None:
        lines.append("USER root")


def _user_bake(account: UserAccount, lines: list[str]) -> None:
    login, uid, gid = shlex.quote(account.login), account.uid, account.gid
    home = shlex.quote(account.home)
    keep_passwd = shlex.quote("$3 == 0 || ($1 != name && $3 != uid)")
    has_group = shlex.quote("$1 == name || $3 == gid { found = 1 } END { exit !found }")
    lines.append("")
    lines.append("# tier: user (passwd and group written directly: no useradd, no lastlog)")
    lines.append(
        _run(
            [
                "set -eu",
                f"awk -F: -v name={login} -v uid={uid} {keep_passwd} /etc/passwd "
                "> /etc/passwd.ds01",
                "cat /etc/passwd.ds01 > /etc/passwd",
                "rm -f /etc/passwd.ds01",
                "shell=/bin/sh",
                "if [ -x /bin/bash ]; then shell=/bin/bash; fi",
                f"printf '%s:x:%s:%s:%s:%s:%s\\n' {login} {uid} {gid} {login} {home} \"$shell\" "
                ">> /etc/passwd",
                f"if ! awk -F: -v name={login} -v gid={gid} {has_group} /etc/group; then "
                f"printf '%s:x:%s:\\n' {login} {gid} >> /etc/group; fi",
                f"mkdir -p {home} {WORKSPACE}",
                f"chown {uid}:{gid} {home} {WORKSPACE}",
                f"rm -rf {STAGE}",
            ]
        )
    )
    lines.append(f"WORKDIR {WORKSPACE}")
    lines.append(f"USER {uid}:{gid}")


def _labels(base: str, account: UserAccount | None) -> list[tuple[str, str]]:
    labels = dict.fromkeys(L.MANAGED_MARKERS, "")  # never pass on what marks a managed container
    labels[L.DS01_IMAGE_BASE] = base
    if account is not None:
        labels[L.DS01_HAS_USER_SETUP] = "true"
        labels[L.DS01_USER_ID] = str(account.uid)
        labels[L.DS01_GROUP_ID] = str(account.gid)
        labels[L.DS01_USERNAME] = account.login
    return sorted(labels.items())


def _run(steps: list[str]) -> str:
    return "RUN " + "; \\\n    ".join(steps)


def _dockerfile_quote(value: str) -> str:
    """A double-quoted Dockerfile word: the builder reads `\\`, `"` and `$` literally."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
