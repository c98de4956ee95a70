"""No input crashes the loader: arbitrary text and YAML-shaped data give diagnostics or models.

Every diagnostic code comes from the closed set `CODES`, and every position lies inside the file
it names.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import typing
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from ds01ctl.diagnostics import CODES, Diagnostic
from ds01ctl.manifests import KINDS, Manifest
from ds01ctl.manifests.loader import load_path
from ds01ctl.manifests.validate import validate_path

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TODAY = dt.date(2026, 1, 1)
LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")

SITE = """\
apiVersion: ds01/v1
kind: Site
metadata: {name: lab}
spec:
  mount_policy: [{path: /home/{owner}/**}, {path: /datasets/**, read_only: true}]
"""
QUOTA = """\
apiVersion: ds01/v1
kind: QuotaPolicy
metadata: {name: lab}
spec: {default_group: g, groups: {g: {members: [alice]}}}
"""


def _field_names() -> list[str]:
    """Every key any manifest model has, so that generated mappings reach deep validation."""
    names: set[str] = set()
    todo: list[Any] = list(KINDS.values())
    seen: set[Any] = set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(info.alias or name)
            stack = [info.annotation]
            while stack:
                annotation = stack.pop()
                if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                    todo.append(annotation)
                stack.extend(typing.get_args(annotation))
    return sorted(names)


FIELD_NAMES = _field_names()
PLAUSIBLE = [
    "32g", "512Mi", "1.5g", "lots", "0.5", "30m", "1g.10gb", "7g.80gb", "alice", "bob",
    "h.baker", "228755@uni.example", "/home/alice/x", "/home/{owner}/**", "/datasets/a",
    "/etc", "/var/run/docker.sock", "/home/alice/../bob", "host", "bridge", "Pytorch", "2.7.1",
    "CUDA_AMPERE", "fixture", "nvml", "auto", "any", "running", "snapshot", "ds01/v1",
    "Workspace", "Site", "aimehub/pytorch:1", "2020-01-01", "", "Thesis", "x",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(PLAUSIBLE),
    st.dates(),
)
keys = st.one_of(
    st.sampled_from(FIELD_NAMES),
    st.text(st.characters(codec="utf-8"), max_size=10),
    st.integers(),
)
yaml_data = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)
spec_like = st.dictionaries(st.sampled_from(FIELD_NAMES), yaml_data, max_size=6) | yaml_data

YAML_CHARS = [*":-[]{},&*!|>'\"#%@`?<= \n\t\r.~0123456789abcdefgsxyz", "\u00e9", "\ufeff"]
yaml_ish_text = st.text(st.sampled_from(YAML_CHARS), max_size=200)
any_text = st.text(st.characters(codec="utf-8"), max_size=200)
# YAML's own syntax in pieces: tags, anchors, merges, dates that do not exist, huge numbers
TOKENS = [
    "a", "b", "x", ":", ": ", "- ", "\n", "  ", "\t", "[", "]", "{", "}", ", ", "? ", "---\n",
    "&a ", "*a", "*b", "<<: ", "!!int ", "!!float ", "!!bool ", "!!set ", "!!map ", "!!seq ",
    "!!binary ", "!!timestamp ", "!!str ", "!!null ", "!x ", "!!python/name:os.system ",
    "2020-02-30", "2020-01-01", "2001-12-14t21:59:43.10-05:00", "0x1F", "0o17", "1_000", "1e5",
    ".inf", ".nan", "~", "null", "true", "no", "'q'", '"\\x07"', "|\n", ">-\n", "#c", "%",
    "1" * 5000, "\x85", "\u2028", "\ufeff", "\r\n",
]  # fmt: skip
yaml_tokens = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


def _check(diagnostics: list[Diagnostic], texts: dict[Path, str]) -> None:
    for diag in diagnostics:
        assert isinstance(diag, Diagnostic)
        assert diag.code in CODES, diag
        assert diag.message and "\n" not in diag.message, diag
        if diag.line is None:
            continue
        assert diag.file is not None, diag
        text = texts[Path(diag.file).resolve()]
        # lines as libyaml counts them; it ends a last line that has no break itself, so the
        # end of the input may be the start of the line after it
        lines = [*LINE_BREAK.split(text), ""]
        assert 1 <= diag.line <= len(lines), (diag, text)
        assert diag.col is not None
        assert 1 <= diag.col <= len(lines[diag.line - 1]) + 1, (diag, text)


def _write(root: Path, files: dict[str, str | bytes]) -> dict[Path, str]:
    texts = {}
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
            texts[path.resolve()] = content.decode("utf-8", errors="replace")
        else:
            path.write_bytes(content.encode("utf-8"))
            texts[path.resolve()] = content.removeprefix("\ufeff")
    return texts


def _load_and_check(files: dict[str, str | bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        texts = _write(root, files)
        loaded = load_path(root)
        assert all(isinstance(item.manifest, Manifest) for item in loaded.loaded)
        _check(loaded.diagnostics, texts)
        repo = validate_path(root, today=TODAY)
        assert all(isinstance(item.manifest, Manifest) for item in repo.loaded)
        _check([d for d in repo.diagnostics if d.line is not None], texts)
        assert {d.code for d in repo.diagnostics} <= set(CODES)


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@FUZZ
@given(text=st.one_of(any_text, yaml_ish_text, yaml_tokens))
def test_loader_fuzz_arbitrary_text(text: str) -> None:
    _load_and_check({"site.yaml": SITE, "a.yaml": text})


@FUZZ
@given(data=st.binary(max_size=200))
def test_loader_fuzz_arbitrary_bytes(data: bytes) -> None:
    _load_and_check({"site.yaml": SITE, "a.yaml": data})


@FUZZ
@given(data=yaml_data)
def test_loader_fuzz_yaml_shaped_data(data: Any) -> None:
    _load_and_check({"site.yaml": SITE, "a.yaml": _dump(data)})


@FUZZ
@example(kind="Image", spec={"env": {"\n": None}}, under_users=False, metadata={"name": "x"})
@given(
    kind=st.sampled_from(sorted(KINDS)),
    spec=spec_like,
    under_users=st.booleans(),
    metadata=st.one_of(
        st.just({"name": "x", "owner": "alice"}),
        st.just({"name": "x"}),
        st.dictionaries(st.sampled_from(["name", "owner", "description", "nme"]), scalars),
    ),
)
def test_loader_fuzz_manifest_envelope(
    kind: str, spec: Any, under_users: bool, metadata: Any
) -> None:
    document = {"apiVersion": "ds01/v1", "kind": kind, "metadata": metadata, "spec": spec}
    name = "users/alice/a.yaml" if under_users else "a.yaml"
    _load_and_check({"site.yaml": SITE, "quota.yaml": QUOTA, name: _dump(document)})


@settings(FUZZ, max_examples=100)  # each example is several documents: fewer suffice
@given(documents=st.lists(st.tuples(st.sampled_from(sorted(KINDS)), spec_like), max_size=4))
def test_loader_fuzz_several_documents(documents: list[tuple[str, Any]]) -> None:
    text = "---\n".join(
        _dump({"apiVersion": "ds01/v1", "kind": kind, "metadata": {"name": "x"}, "spec": spec})
        for kind, spec in documents
    )
    _load_and_check({"site.yaml": SITE, "quota.yaml": QUOTA, "users/alice/a.yaml": text})
