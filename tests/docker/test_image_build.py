"""The generator's Dockerfile builds on a real engine, offline, and bakes the user in.

The base is a Debian minbase root with python3 (scripts/debian-root, made once and cached).
The build runs with no network at all: the pip tier installs a wheel made here from a fixture
(the Site's wheelhouse, copied into the context), the apt tier a .deb made here (the Site's
local apt repository, a trusted `file:` source, replacing the base's sources). The classic
builder through the SDK, as apply will call it: a custom context tar.
"""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from ds01ctl import labels as L
from ds01ctl.catalog.presets import shipped
from ds01ctl.images.dockerfile import BuildSources, ImageBuild, generate
from ds01ctl.live.buildfiles import read_directory
from ds01ctl.manifests.image import ImageSpec
from ds01ctl.model.spec import UserAccount

pytestmark = pytest.mark.docker

REPO_ROOT = Path(__file__).resolve().parents[2]
DEBIAN_ROOT_SCRIPT = REPO_ROOT / "scripts" / "debian-root"
UID = 2**20 + 5  # above 2^20: a useradd without -l would write a lastlog of ~300 MB
LOGIN = "228755@uni.example"
GREETING = 'say "hi" to $USER `id` \\o/'
BUILD_TIMEOUT = 600


def _wheel(folder: Path, version: str = "1.0") -> Path:
    """A pure-Python wheel of one module, written by hand: no build backend, no index."""
    name = "ds01hello"
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b'VALUE = "hello from the wheelhouse"\n'
        + f"VERSION = {version!r}\n".encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    target = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as wheel:
        for path, data in files.items():
            wheel.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), data)
    return target


def _apt_repo(folder: Path, work: Path) -> None:
    """A flat apt repository of one package made here (dpkg-deb, dpkg-scanpackages)."""
    package = work / "pkg"
    (package / "DEBIAN").mkdir(parents=True)
    (package / "usr/share/ds01hello").mkdir(parents=True)
    (package / "usr/share/ds01hello/hello").write_text("hello from the apt repo\n")
    (package / "DEBIAN/control").write_text(
        "Package: ds01-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: tests <t@example>\n"
        "Description: test package\n"
    )
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(package), str(folder / "ds01-hello.deb")],
        check=True,
        capture_output=True,
    )
    scan = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", ".", "/dev/null"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    (folder / "Packages").write_bytes(scan.stdout)


@pytest.fixture
def built(
    client: docker.APIClient, debian_base: str, tmp_path: Path
) -> Iterator[tuple[ImageBuild, str]]:
    wheels, repo = tmp_path / "wheels", tmp_path / "apt"
    wheels.mkdir()
    repo.mkdir()
    _wheel(wheels)
    _apt_repo(repo, tmp_path)
    spec = ImageSpec.model_validate(
        {
            "base": {"image": "ds01ctl-local/debian:bookworm"},
            "apt_packages": ["ds01-hello"],
            "pip_packages": ["ds01hello==1.0"],
            "env": {"GREETING": GREETING},
        }
    )
    build = generate(
        spec,
        owner=LOGIN,
        name=f"t-{uuid.uuid4().hex[:8]}",
        base=debian_base,  # pinned by image ID, as plan will pin it
        account=UserAccount(LOGIN, UID, UID),
        presets=shipped(),
        sources=BuildSources(
            wheelhouse=read_directory(wheels), apt_sources=(), apt_repo=read_directory(repo)
        ),
    )
    log = []
    for chunk in client.build(
        fileobj=io.BytesIO(build.context_tar()),
        custom_context=True,
        tag=build.tag,
        rm=True,
        forcerm=True,
        network_mode="none",
        decode=True,
        timeout=BUILD_TIMEOUT,
    ):
        log.append(chunk.get("stream", "") + chunk.get("error", ""))
        assert "error" not in chunk, "".join(log)[-3000:]
    try:
        yield build, str(client.inspect_image(build.tag)["Id"])
    finally:
        client.remove_image(build.tag, force=True)


def _run_as_user(client: docker.APIClient, image: str, script: str) -> str:
    container = client.create_container(
        image, command=["sh", "-c", script], user=f"{UID}:{UID}", network_disabled=True
    )
    try:
        client.start(container)
        status = client.wait(container, timeout=60)
        output: str = client.logs(container).decode()
        assert status["StatusCode"] == 0, output
        return output
    finally:
        client.remove_container(container, force=True)


def test_image_build_bakes_user_and_installs_tiers_offline(
    client: docker.APIClient, built: tuple[ImageBuild, str], debian_base: str
) -> None:
    _, image_id = built
    output = _run_as_user(
        client,
        image_id,
        'id -un; pwd; python -c "import ds01hello; print(ds01hello.VALUE)"; '
        'cat /usr/share/ds01hello/hello; printf "%s\\n" "$GREETING"; '
        "stat -c %u /opt/venv /workspace /home/228755@uni.example; "
        "stat -c %s /var/log/lastlog 2>/dev/null || echo 0",
    )
    *lines, lastlog = output.splitlines()
    assert lines == [
        LOGIN,
        "/workspace",
        "hello from the wheelhouse",
        "hello from the apt repo",
        GREETING,  # literal: no $USER expansion, no command substitution
        str(UID),
        str(UID),
        str(UID),
    ]
    assert int(lastlog) < 1024**2  # its apparent size: a uid's entry would sit at uid * 292
    labels = client.inspect_image(image_id)["Config"]["Labels"]
    assert labels[L.DS01_HAS_USER_SETUP] == "true"
    assert labels[L.DS01_USER_ID] == labels[L.DS01_GROUP_ID] == str(UID)
    assert labels[L.DS01_USERNAME] == LOGIN
    assert labels[L.DS01_IMAGE_BASE] == debian_base
    assert all(not labels.get(marker) for marker in L.MANAGED_MARKERS)
    # The tiers add a venv with pip (~15 MB) and two tiny packages; a sparse lastlog or a
    # copied tree would add hundreds of MB.
    added = client.inspect_image(image_id)["Size"] - client.inspect_image(debian_base)["Size"]
    assert added < 60 * 1024**2, f"the build added {added / 1024**2:.0f} MB"
