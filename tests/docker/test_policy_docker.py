"""Site policy against a real engine: users' workspaces are isolated from each other.

Files under users/<login>/ are untrusted: a workspace must not reach another user's ports on
the default network, nor join another container's network namespace.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.docker.dockerlab import Lab

pytestmark = pytest.mark.docker

ICC = "com.docker.network.bridge.enable_icc"
SERVE = (
    "mkdir -p /tmp/www && echo secret-of-alice > /tmp/www/index.html && httpd -p 8080 -h /tmp/www"
)


def _inspect(lab: Lab, owner: str, name: str) -> dict[str, Any]:
    return dict(lab.client.inspect_container(lab.container_name(owner, name)))


def _get(lab: Lab, container: str, ip: str) -> tuple[int, str]:
    """An HTTP GET from inside `container` to ip:8080 (busybox nc; the exit status and reply)."""
    request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 8080"
    done = lab.docker("exec", container, "sh", "-c", request, check=False)
    return done.code, done.stdout


# Two users' workspaces on the default network: alice serves a port; h.baker cannot reach it.
def test_policy_docker_default_network_isolates_users(lab: Lab) -> None:
    alice = lab.workspace("alice", "srv", power="running")
    baker = lab.workspace("h.baker", "cli", power="running")
    done = lab.apply("--json")
    assert done.code == 0, done.output
    network = f"ds01-{lab.site}"
    assert f"network {network} created" in done.stdout  # the step is visible in apply's output

    made = lab.client.inspect_network(network)
    assert made["Driver"] == "bridge" and made["Options"][ICC] == "false"
    assert made["Labels"] == {"ds01.interface": "ds01ctl", "ds01.site": lab.site}
    server, client = _inspect(lab, "alice", alice), _inspect(lab, "h.baker", baker)
    assert server["HostConfig"]["NetworkMode"] == network
    assert client["HostConfig"]["NetworkMode"] == network
    ip = server["NetworkSettings"]["Networks"][network]["IPAddress"]

    lab.docker("exec", "-d", server["Id"], "sh", "-c", SERVE)
    # The server answers on its address (from inside its own container) ...
    for _ in range(20):
        code, reply = _get(lab, server["Id"], ip)
        if "secret-of-alice" in reply:
            break
    assert "secret-of-alice" in reply, (code, reply)
    # ... and not to another user's workspace on the same network.
    code, reply = _get(lab, client["Id"], ip)
    assert code != 0 and "secret-of-alice" not in reply, (code, reply)
    lab.assert_converged()


# network: container:<h.baker's workspace> would put alice in h.baker's network namespace.
def test_policy_docker_container_network_refused_at_validate(lab: Lab) -> None:
    baker = lab.workspace("h.baker", "victim", power="running")
    assert lab.apply().code == 0
    before = {c["Id"] for c in lab.containers()}
    victim = lab.container_name("h.baker", baker)
    alice = lab.workspace("alice", "intruder", network=f"container:{victim}", power="running")
    text = (lab.root / "users" / "alice" / f"{alice}.yaml").read_text().splitlines()
    line = next(i for i, t in enumerate(text, start=1) if t.lstrip().startswith("network:"))
    col = text[line - 1].index("container:") + 1

    validated = lab.cli("validate", str(lab.root), "--json")
    assert validated.code == 1, validated.output
    found = [d for d in json.loads(validated.stdout)["diagnostics"] if d["severity"] == "error"]
    assert [(d["code"], d["line"], d["col"]) for d in found] == [
        ("security.network_not_allowed", line, col)
    ]
    assert found[0]["file"].endswith(f"users/alice/{alice}.yaml")

    # On the server the invalid workspace is pending with its error; the rest of the lab goes on.
    planned = lab.plan_cli("--json")
    assert planned.code == 0, planned.output
    [pending] = json.loads(planned.stdout)["pending"]
    assert pending["target"] == f"workspace/alice/{alice}"
    assert (
        f"users/alice/{alice}.yaml:{line}:{col}: error[security.network_not_allowed]"
        in (pending["reason"])
    )
    refused = lab.apply()
    assert refused.code == 0, refused.output
    assert "Traceback" not in refused.output
    assert {c["Id"] for c in lab.containers()} == before  # nothing created
