"""The layers hold: the pure core (model/, resolve/, plan/) never names an engine's wire
format. Which package may import which is checked by `lint-imports` (pyproject.toml)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ds01ctl"
CORE = ("model", "resolve", "plan")
# Keys of Docker's inspect and API JSON: the driver's business, never the core's.
DOCKER_KEYS = (
    "HostConfig",
    "DeviceRequests",
    "DeviceIDs",
    "NanoCpus",
    "PidsLimit",
    "MemorySwap",
    "RestartPolicy",
    "NetworkMode",
    "SecurityOpt",
    "CapDrop",
    "CapAdd",
    "ShmSize",
    "Ulimits",
    "Binds",
    "StopTimeout",
    "WorkingDir",
    "FinishedAt",
    "State",
    "Config",
    "Env",
    "Labels",
    "Cmd",
    "SizeRw",
    "RepoTags",
)
_QUOTED = re.compile(r"""["']([A-Za-z.]+)["']""")


def _core_modules() -> list[Path]:
    return sorted(p for part in CORE for p in (PACKAGE / part).rglob("*.py"))


@pytest.mark.parametrize("module", _core_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_core_module_names_no_docker_key(module: Path) -> None:
    text = module.read_text(encoding="utf-8")
    named = {m for m in _QUOTED.findall(text) for k in DOCKER_KEYS if k in m.split(".")}
    named |= {k for k in DOCKER_KEYS if re.search(rf"\.get\(\s*[\"']{k}[\"']", text)}
    assert not named, f"{module.name} reads Docker's JSON: {sorted(named)}"


def test_layers_the_check_finds_a_docker_key(tmp_path: Path) -> None:
    sample = 'host = inspect.get("HostConfig") or {}\nlimit = host["NanoCpus"]\n'
    found = {m for m in _QUOTED.findall(sample) for k in DOCKER_KEYS if k in m.split(".")}
    assert found == {"HostConfig", "NanoCpus"}


def test_layers_import_contracts_hold() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "BROKEN" not in done.stdout
