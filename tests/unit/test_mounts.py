"""Mount patterns of the site's policy, as a table."""

from __future__ import annotations

import pytest

from ds01ctl.manifests.mounts import _matches, clean_path_problem, is_engine_path


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/home/alice/**", "/home/alice", True),
        ("/home/alice/**", "/home/alice/x/y", True),
        ("/home/alice/**", "/home/alicex", False),
        ("/home/alice/**", "/home", False),
        ("/datasets/*/raw", "/datasets/a/raw", True),
        ("/datasets/*/raw", "/datasets/a/b/raw", False),
        ("/data?", "/data1", True),
        ("/data?", "/data12", False),
        ("/scratch", "/scratch", True),
        ("/scratch", "/scratch/x", False),
        ("/**", "/anything/at/all", True),
        ("/home/h.baker/**", "/home/hXbaker/x", False),  # a `.` in a login is literal
    ],
)
def test_mounts_pattern_table(pattern: str, path: str, expected: bool) -> None:
    assert _matches(pattern, path) is expected


@pytest.mark.parametrize(
    "path",
    [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/var/run",
        "/run",
        "/var",
        "/",
        "/var/lib/docker/volumes",
    ],
)
def test_mounts_engine_paths_are_recognised(path: str) -> None:
    assert is_engine_path(path)


@pytest.mark.parametrize("path", ["relative", "/a/../b", "/a/./b", "/a//b", "/a/", "/a:b", "~/x"])
def test_mounts_unclean_paths_are_named(path: str) -> None:
    assert clean_path_problem(path) is not None
