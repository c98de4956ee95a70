"""Identical inputs give byte-identical plans, whatever the order of files on disk and the
hash seed of the interpreter (sets and dicts must never leak their order into a plan).

A plan's inputs are the manifests, the clock and one observation of the engine and the GPUs.
The engine is shared: other tests (and people) create and remove containers on it all the
time, and a plan rightly reports them (other sites' containers by count, mlc and DS01 ones by
name), so two honest observations a second apart differ. Each run therefore observes the real
engine itself, under its own hash seed, and then keeps only the containers whose names carry
this test's token: its own foreign containers (two other sites', an mlc one holding a GPU, a
DS01 one, a plain one), made so that the unmanaged and GPU sections have something to order.
Nothing else is left out: the rest of the document depends on files, the fixed clock, the
test's private GPU fixture and whether the workspaces' image exists, which no test removes.
The second test churns other containers on the engine during and between the two runs and
still gets identical bytes, while a plan of the whole engine sees that churn.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from ds01ctl.live.docker import connect
from tests.docker.dockerlab import Lab

pytestmark = pytest.mark.docker

BASE_IMAGE = "ds01ctl-local/base:latest"

# argv: config root, then the token of the containers to keep ("" keeps all of them).
SCRIPT = """
import dataclasses, datetime as dt, sys
from pathlib import Path
import ds01ctl.live.docker as live
from ds01ctl.plan import render_human, render_json
from ds01ctl.workflow import make_plan
root, token = Path(sys.argv[1]), sys.argv[2]
observe, seen = live.observe_docker, []
def this_tests_containers(client, site):
    state = observe(client, site)
    seen.append(len(state.containers))
    mine = tuple(c for c in state.containers if token in c.name)
    return dataclasses.replace(state, containers=mine)
live.observe_docker = this_tests_containers
now = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
plan = make_plan(root, now=now).plan
if len(seen) != 1:
    sys.exit(f"make_plan observed the engine {len(seen)} times, not once through observe_docker")
doc = render_json.plan_document(plan)
sys.stdout.write(render_json.dumps(doc) + render_human.render(doc))
"""


def _plan_bytes(root: Path, seed: str, token: str) -> bytes:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), token],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def _rewrite_in_order(root: Path, order: list[Path]) -> None:
    """Recreate the manifests in `order`, so the directory lists them differently."""
    texts = {path: path.read_bytes() for path in order}
    for path in order:
        path.unlink()
    for path in order:
        path.write_bytes(texts[path])


def _device_request(uuid: str) -> list[docker.types.DeviceRequest]:
    return [docker.types.DeviceRequest(device_ids=[uuid], capabilities=[["gpu"]])]


def _foreign_containers(lab: Lab) -> dict[str, str]:
    """Containers ds01ctl does not manage for this site, named with the test's token (removed by
    cleanup): the mlc one names one of the fixture's 1g.10gb MIGs. Returns the other sites."""
    fixture = yaml.safe_load((lab.root.parent / "gpus.yaml").read_text())
    mig = next(m["uuid"] for g in fixture["gpus"] for m in g["migs"] if m["profile"] == "1g.10gb")
    sites = {"one": f"{lab.site}-one", "two": f"{lab.site}-two"}
    made: list[tuple[str, dict[str, str], list[Any] | None]] = [
        ("plain", {}, None),
        ("mlc", {"aime.mlc": "alice", "aime.mlc.USER": "alice", "aime.mlc.NAME": "old"}, [mig]),
        ("ds01", {"ds01.managed": "true", "ds01.user": "h.baker"}, None),
        ("one-a", {"ds01.interface": "ds01ctl", "ds01.site": sites["one"]}, None),
        ("two-a", {"ds01.interface": "ds01ctl", "ds01.site": sites["two"]}, None),
        ("two-b", {"ds01.interface": "ds01ctl", "ds01.site": sites["two"]}, None),
    ]
    for base, labels, gpus in made:
        host = lab.client.create_host_config(
            device_requests=_device_request(gpus[0]) if gpus else None
        )
        container = lab.client.create_container(
            BASE_IMAGE, "bash", labels=labels, name=lab.name(base), host_config=host
        )
        lab.track(container["Id"])
    return sites


def _plans_of_two_orders(
    lab: Lab, *, token: str, between: Callable[[], None] = lambda: None
) -> tuple[bytes, bytes]:
    """The same config planned twice, the files written in reverse order and the hash seed
    changed in between; `between` runs after the first plan."""
    for owner, base in (
        ("alice", "a"),
        ("alice", "b"),
        ("h.baker", "c"),
        ("228755@uni.example", "d"),
    ):
        lab.workspace(owner, base, env={"Z_LAST": "1", "A_FIRST": "2", "M_MID": "3"})
    lab.workspace("h.baker", "g", mig="1g.10gb")
    files = sorted(lab.root.rglob("*.yaml"))
    first = _plan_bytes(lab.root, "1", token)
    _rewrite_in_order(lab.root, list(reversed(files)))
    between()
    second = _plan_bytes(lab.root, "4242", token)
    return first, second


def test_plan_is_byte_identical_across_file_order_and_hash_seed(lab: Lab) -> None:
    sites = _foreign_containers(lab)
    first, second = _plans_of_two_orders(lab, token=lab.token)
    text = first.decode()
    assert "will be created" in text
    # what the test made for the unmanaged and GPU sections is there, and nothing else is
    assert f"1 container(s): managed by ds01ctl for site {sites['one']}" in text
    assert f"2 container(s): managed by ds01ctl for site {sites['two']}" in text
    assert lab.name("mlc") in text and lab.name("ds01") in text
    assert lab.name("plain") not in text
    assert first == second


class _Churn:
    """Another tenant of the engine: creates and removes uniquely named containers of each
    kind a plan reports (another site's, mlc, DS01) and plain ones, in a thread."""

    def __init__(self) -> None:
        self.client = connect()  # its own connection: the test's is not shared across threads
        self.tag = f"churn-{uuid.uuid4().hex[:8]}"
        self.live: list[str] = []
        self.made = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def step(self) -> None:
        """One of each kind more, then the oldest of them gone: the engine is never the same."""
        kinds: list[dict[str, str]] = [
            {},
            {"aime.mlc": "alice", "aime.mlc.USER": "alice", "aime.mlc.NAME": self.tag},
            {"ds01.managed": "true", "ds01.user": "alice"},
            {"ds01.interface": "ds01ctl", "ds01.site": f"{self.tag}-{self.made % 3}"},
        ]
        with self._lock:
            for labels in kinds:
                name = f"{self.tag}-{self.made}"
                self.made += 1
                found = self.client.create_container(BASE_IMAGE, "true", labels=labels, name=name)
                self.live.append(found["Id"])
            while len(self.live) > 6:
                self.client.remove_container(self.live.pop(0), force=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(0.05):
                self.step()
        except BaseException as exc:  # reported by the test, never swallowed
            self.errors.append(exc)

    def __enter__(self) -> _Churn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        with self._lock:
            for container in self.live:
                with contextlib.suppress(docker.errors.NotFound):
                    self.client.remove_container(container, force=True)
            self.live.clear()


@pytest.fixture
def churn() -> Iterator[_Churn]:
    with _Churn() as running:
        yield running


def test_plan_stays_byte_identical_while_others_churn_the_engine(lab: Lab, churn: _Churn) -> None:
    sites = _foreign_containers(lab)
    start = churn.made
    first, second = _plans_of_two_orders(lab, token=lab.token, between=churn.step)
    assert churn.errors == []
    assert churn.made - start > 4, "the thread churned while the plans ran, not only between"
    assert f"2 container(s): managed by ds01ctl for site {sites['two']}" in first.decode()
    assert first == second
    # The churn was real and a plan sees it: without the narrowing the two runs differ.
    whole = _plan_bytes(lab.root, "1", "")
    churn.step()
    assert churn.tag in whole.decode()
    assert _plan_bytes(lab.root, "1", "") != whole
    assert churn.errors == []
