"""The pure image generator against golden files, and the properties its output must keep.

Each case writes `tests/golden/images/<case>/Dockerfile` and `context.txt` (every context file
with its size and sha256, then the tag); `DS01CTL_UPDATE_GOLDEN=1` rewrites them. Review every
changed line: a changed Dockerfile changes every image's tag.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest

from ds01ctl import labels as L
from ds01ctl.catalog.presets import shipped
from ds01ctl.images.dockerfile import BuildSources, ImageBuild, generate
from ds01ctl.images.render import render_image
from ds01ctl.manifests.image import ImageSpec
from ds01ctl.manifests.validate import validate_path
from ds01ctl.resolve.spec import UserAccount

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "images"
REPO_ROOT = Path(__file__).resolve().parents[2]
UPDATE = os.environ.get("DS01CTL_UPDATE_GOLDEN") == "1"
BIG_UID = 2**20 + 5
LOGIN = "228755@uni.example"
HOSTILE_PIP = 'zope.interface[test]>=5; python_version >= "3.8" and os_name != "nt"'
HOSTILE_ENV = 'say "hi" to $USER `id` \\o/'


def _spec(**fields: Any) -> ImageSpec:
    return ImageSpec.model_validate({"base": {"image": "ds01ctl-local/debian:bookworm"}, **fields})


def _hostile() -> ImageBuild:
    spec = _spec(
        apt_packages=["g++", "libstdc++6=12.2.0-14"],
        presets=["jupyter"],
        pip_packages=[HOSTILE_PIP, "six==1.16.0"],
        env={"GREETING": HOSTILE_ENV},
    )
    return generate(
        spec,
        owner=LOGIN,
        name="env1",
        base="sha256:" + "ab" * 32,
        account=UserAccount(LOGIN, BIG_UID, BIG_UID),
        presets=shipped(),
        requirements=["numpy==2.1.0"],
        sources=BuildSources(
            wheelhouse={"six-1.16.0-py2.py3-none-any.whl": b"wheel"},
            apt_sources=(),
            apt_repo={"Packages": b"Package: hello\n", "hello_1.0_all.deb": b"deb"},
        ),
    )


def _minimal() -> ImageBuild:
    return generate(
        _spec(),
        owner="h.baker",
        name="plain",
        base="ds01ctl-local/debian:bookworm",
        account=UserAccount("h.baker", 1005, 100),
        presets=shipped(),
    )


def _lab() -> ImageBuild:
    repo = validate_path(REPO_ROOT / "examples" / "lab", today=dt.date(2025, 1, 1))
    assert not repo.errors
    return render_image(repo, "carol", "cv-env")


CASES = {"hostile-valid": _hostile, "minimal": _minimal, "lab-carol": _lab}


def _listing(build: ImageBuild) -> str:
    lines = [
        f"{name}  {len(data)}  {hashlib.sha256(data).hexdigest()[:16]}"
        for name, data in sorted(build.context.items())
    ]
    return "\n".join([*lines, f"tag: {build.tag}"]) + "\n"


@pytest.mark.parametrize("case", sorted(CASES))
def test_image_dockerfile_golden(case: str) -> None:
    build = CASES[case]()
    folder = GOLDEN / case
    if UPDATE:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "Dockerfile").write_text(build.dockerfile, encoding="utf-8")
        (folder / "context.txt").write_text(_listing(build), encoding="utf-8")
    assert (folder / "Dockerfile").exists(), f"no golden for {case}: DS01CTL_UPDATE_GOLDEN=1"
    assert build.dockerfile == (folder / "Dockerfile").read_text(encoding="utf-8")
    assert _listing(build) == (folder / "context.txt").read_text(encoding="utf-8")


def test_image_dockerfile_same_inputs_same_bytes_and_tag() -> None:
    first, second = _hostile(), _hostile()
    assert first.context_tar() == second.context_tar()
    assert first.tag == second.tag
    assert re.fullmatch(r"ds01-228755-uni-example-[0-9a-f]{8}/env1:[0-9a-f]{12}", first.tag)


def test_image_dockerfile_tag_follows_every_input() -> None:
    build = _minimal()
    account = UserAccount("h.baker", 1005, 100)
    changed = [
        generate(
            _spec(),
            owner="h.baker",
            name="plain",
            base="other:1",
            account=account,
            presets=shipped(),
        ),
        generate(
            _spec(pip_packages=["six"]),
            owner="h.baker",
            name="plain",
            base="ds01ctl-local/debian:bookworm",
            account=account,
            presets=shipped(),
        ),
        generate(
            _spec(),
            owner="h.baker",
            name="plain",
            base="ds01ctl-local/debian:bookworm",
            account=UserAccount("h.baker", 1006, 100),
            presets=shipped(),
        ),
    ]
    assert len({build.tag, *(c.tag for c in changed)}) == 4


def test_image_dockerfile_changed_pip_package_keeps_earlier_tiers() -> None:
    """Dependency files come before what changes often: a new pip package leaves the text
    of every earlier tier as it was, so the engine's layer cache keeps them."""
    one = _hostile().dockerfile
    spec = _spec(
        apt_packages=["g++", "libstdc++6=12.2.0-14"],
        presets=["jupyter"],
        pip_packages=[HOSTILE_PIP, "six==1.17.0"],
        env={"GREETING": HOSTILE_ENV},
    )
    two = generate(
        spec,
        owner=LOGIN,
        name="env1",
        base="sha256:" + "ab" * 32,
        account=UserAccount(LOGIN, BIG_UID, BIG_UID),
        presets=shipped(),
        requirements=["numpy==2.1.0"],
        sources=BuildSources(
            wheelhouse={"six-1.16.0-py2.py3-none-any.whl": b"wheel"},
            apt_sources=(),
            apt_repo={"Packages": b"Package: hello\n", "hello_1.0_all.deb": b"deb"},
        ),
    ).dockerfile
    assert one == two  # the packages live in a context file, not the Dockerfile
    prefix = one.split("COPY ds01/pip/packages.txt")[0]
    assert "# tier: presets" in prefix and "# tier: requirements" in prefix


def test_image_dockerfile_user_text_never_unquoted_in_shell() -> None:
    build = _hostile()
    text = build.dockerfile
    assert HOSTILE_PIP not in text and "zope" not in text  # in a file pip reads, not a shell line
    assert b"zope.interface[test]>=5" in build.context["ds01/pip/packages.txt"]
    assert 'GREETING="say \\"hi\\" to \\$USER `id` \\\\o/"' in text
    commands = [x for x in text.splitlines() if not x.startswith("#")]
    assert not any("useradd" in x or "adduser" in x for x in commands)
    labels = _labels(text)
    assert labels[L.DS01_HAS_USER_SETUP] == "true"
    assert labels[L.DS01_USER_ID] == str(BIG_UID)
    assert labels[L.DS01_GROUP_ID] == str(BIG_UID)
    assert labels[L.DS01_USERNAME] == LOGIN
    assert all(labels.get(marker, "") == "" for marker in L.MANAGED_MARKERS)


def test_image_dockerfile_needs_account_for_user_setup() -> None:
    with pytest.raises(ValueError, match="account"):
        generate(_spec(), owner="a", name="b", base="x:1", account=None, presets=shipped())
    build = generate(
        _spec(user_setup=False), owner="a", name="b", base="x:1", account=None, presets=shipped()
    )
    assert "passwd" not in build.dockerfile
    assert L.DS01_HAS_USER_SETUP not in _labels(build.dockerfile)


def _labels(dockerfile: str) -> dict[str, str]:
    line = next(x for x in dockerfile.splitlines() if x.startswith("LABEL "))
    return {k: v for k, v in re.findall(r'(\S+?)="((?:[^"\\]|\\.)*)"', line)}
