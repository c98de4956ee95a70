"""A container ds01ctl makes can never do more than its user's own uid (real engine).

The attack: a user's `image_ref` carries a setuid-root copy of bash and a copy with file
capabilities (cap_dac_override,cap_setuid+ep). Run unconfined, as the user, they give EUID 0
and those capabilities (checked first, so the attack is real); in a workspace ds01ctl made they
give nothing. The image's ENTRYPOINT leaves a mark if it runs: the account-setup helper must
never run it.
"""

from __future__ import annotations

import contextlib
import io
import struct
import tarfile
from collections.abc import Iterator

import docker
import pytest

from ds01ctl import labels as L
from tests.docker.dockerlab import UIDS, Lab

pytestmark = pytest.mark.docker

BASE = "ds01ctl-local/base:latest"
SUIDBASH = "/usr/local/bin/suidbash"
CAPBASH = "/usr/local/bin/capbash"
MARK = "entrypoint-ran"
# vfs_cap_data revision 2, effective flag; permitted = CAP_DAC_OVERRIDE (1) | CAP_SETUID (7).
CAPABILITY_XATTR = struct.pack("<IIIII", 0x02000001, (1 << 1) | (1 << 7), 0, 0, 0)
XATTR_KEY = "SCHILY.xattr.security.capability"
READ_STATUS = 'while read -r l; do echo "$l"; done < /proc/self/status'


def _file_from(client: docker.APIClient, container: str, path: str) -> tarfile.TarFile:
    stream, _ = client.get_archive(container, path)
    return tarfile.open(fileobj=io.BytesIO(b"".join(stream)))


def _attack_layer(bash: bytes) -> bytes:
    """A tar with the setuid copy (mode 4755, root) and the file-capability copy (an xattr)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, mode, pax in (
            (SUIDBASH, 0o4755, {}),
            (CAPBASH, 0o755, {XATTR_KEY: CAPABILITY_XATTR.decode("utf-8", "surrogateescape")}),
        ):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid = len(bash), mode, 0, 0
            info.pax_headers = pax
            tar.addfile(info, io.BytesIO(bash))
    return out.getvalue()


@pytest.fixture
def attack_image(lab: Lab) -> Iterator[str]:
    """An image of the base with both binaries and an ENTRYPOINT that leaves a mark."""
    client = lab.client
    reference = f"ds01ctl-local/attack-{lab.token}:latest"
    build = client.create_container(BASE, ["true"], user="0:0")["Id"]
    try:
        [member] = [m for m in _file_from(client, build, "/bin/bash").getmembers() if m.isfile()]
        bash = _file_from(client, build, "/bin/bash").extractfile(member.name)
        assert bash is not None
        assert client.put_archive(build, "/", _attack_layer(bash.read()))
        repo, _, tag = reference.rpartition(":")
        entry = f'touch /{MARK} 2>/dev/null; exec "$@"'
        client.commit(
            build,
            repository=repo,
            tag=tag,
            conf={"Entrypoint": ["/bin/sh", "-c", entry, "entry"], "Cmd": ["bash"]},
        )
    finally:
        client.remove_container(build, force=True)
    lab.made_tags.add(reference)
    try:
        yield reference
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.remove_image(reference, force=True)


def _status(output: str) -> dict[str, list[str]]:
    fields = {}
    for line in output.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.split()
    return fields


def _run_as_user(lab: Lab, target: list[str], binary: str) -> dict[str, list[str]]:
    uid = UIDS["alice"]
    done = lab.docker(
        *target[:1], "-u", f"{uid}:{uid}", *target[1:], binary, "-p", "-c", READ_STATUS
    )
    return _status(done.stdout)


def test_attack_image_really_escalates_when_unconfined(lab: Lab, attack_image: str) -> None:
    """The control: the binaries carry setuid and file capabilities, and work as such."""
    check = lab.client.create_container(attack_image, ["true"])["Id"]
    lab.track(check)
    [capbash] = _file_from(lab.client, check, CAPBASH).getmembers()
    assert capbash.pax_headers.get(XATTR_KEY, "").encode("utf-8", "surrogateescape") == (
        CAPABILITY_XATTR
    )
    run = ["run", "--rm", "--entrypoint", "", attack_image]
    suid = _run_as_user(lab, run, SUIDBASH)
    assert suid["Uid"][1] == "0"  # EUID 0 from the setuid bit
    caps = _run_as_user(lab, run, CAPBASH)
    assert int(caps["CapEff"][0], 16) == (1 << 1) | (1 << 7)


def test_setuid_and_file_capabilities_give_nothing_in_a_workspace(
    lab: Lab, attack_image: str
) -> None:
    uid = UIDS["alice"]
    name = lab.workspace("alice", "suid", framework=None, image_ref=attack_image, power="running")
    lab.apply_json()
    container = lab.container_name("alice", name)
    for binary in (SUIDBASH, "bash"):
        status = _run_as_user(lab, ["exec", container], binary)
        assert status["Uid"] == [str(uid)] * 4, (binary, status["Uid"])
        assert status["Gid"] == [str(uid)] * 4, (binary, status["Gid"])
        assert int(status["CapEff"][0], 16) == 0, (binary, status["CapEff"])
        assert int(status["CapPrm"][0], 16) == 0, (binary, status["CapPrm"])
        assert int(status["CapBnd"][0], 16) == 0, (binary, status["CapBnd"])
        assert status["NoNewPrivs"] == ["1"]
    # The file-capability binary asks for capabilities outside the (empty) bounding set: the
    # kernel refuses to run it at all rather than run it without them.
    refused = lab.docker(
        "exec", "-u", f"{uid}:{uid}", container, CAPBASH, "-c", READ_STATUS, check=False
    )
    assert refused.code != 0 and "operation not permitted" in refused.output, refused.output
    inspect = lab.client.inspect_container(container)
    host = inspect["HostConfig"]
    assert "no-new-privileges" in (host["SecurityOpt"] or [])
    assert not any("unconfined" in o for o in host["SecurityOpt"] or [])
    assert host["CapDrop"] == ["ALL"]
    assert not host["CapAdd"]
    assert host["Privileged"] is False
    assert inspect["Config"]["User"] == f"{uid}:{uid}"
    env = dict(e.partition("=")[::2] for e in inspect["Config"]["Env"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"  # no GPU, whatever the runtime


def test_account_setup_never_runs_the_image_entrypoint(lab: Lab, attack_image: str) -> None:
    name = lab.workspace("alice", "entry", framework=None, image_ref=attack_image)
    lab.apply_json()
    prepared = lab.client.inspect_container(lab.container_name("alice", name))["Image"]
    labels = lab.client.inspect_image(prepared)["Config"]["Labels"] or {}
    assert not labels.get("ds01.helper")  # nothing made from it passes for a helper
    probe = lab.track(lab.client.create_container(prepared, ["true"])["Id"])
    with pytest.raises(docker.errors.NotFound):
        lab.client.get_archive(probe, f"/{MARK}")
    lab.client.get_archive(probe, "/home/alice")  # the account was set up


def test_leftover_helper_is_planned_and_removed(lab: Lab) -> None:
    def helper(site: str) -> str:
        labels = {L.DS01_HELPER: L.HELPER_ACCOUNT_SETUP, L.DS01_SITE: site, L.DS01_OWNER: "alice"}
        return lab.track(lab.client.create_container(BASE, ["true"], labels=labels)["Id"])

    ours, theirs = helper(lab.site), helper(f"other-{lab.token}")
    planned = lab.plan_cli("--json")
    assert planned.code == 0, planned.output
    text = lab.plan_cli()
    assert f"helper alice/{ours[:12]} will be removed" in text.stdout, text.output
    plan, _ = lab.apply_json()
    [action] = plan["actions"]
    assert (action["kind"], action["reason"], action["container_id"]) == (
        "cleanup",
        "leftover_helper",
        ours,
    )
    with pytest.raises(docker.errors.NotFound):
        lab.client.inspect_container(ours)
    lab.client.inspect_container(theirs)  # another site's helper is left alone
    lab.assert_converged()


def test_prepared_image_of_an_image_without_entrypoint_has_none(lab: Lab) -> None:
    """The helper's own entrypoint never reaches the image the workspace runs."""
    build = lab.client.create_container(BASE, ["true"])["Id"]
    reference = f"ds01ctl-local/plain-{lab.token}:latest"
    try:
        lab.client.commit(build, repository=reference.rpartition(":")[0], tag="latest")
    finally:
        lab.client.remove_container(build, force=True)
    lab.made_tags.add(reference)
    name = lab.workspace("alice", "plain", framework=None, image_ref=reference, power="running")
    lab.apply_json()
    inspect = lab.client.inspect_container(lab.container_name("alice", name))
    assert not inspect["Config"]["Entrypoint"]
    assert inspect["State"]["Running"], inspect["State"]
    lab.assert_converged()
