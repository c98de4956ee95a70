"""Object names, logins, uid/gid bounds, and the one Docker-safe form of a login."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ds01ctl.manifests.site import UserPin
from ds01ctl.names import LOGIN_RE, MAX_ID, check_login, check_name, docker_safe

# Docker's reference grammar for one path component of a repository name
# (distribution/reference: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`).
DOCKER_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*")  # use fullmatch


@pytest.mark.parametrize("name", ["thesis", "qwen3-32b", "a", "0", "a" * 63, "cv-env", "a--b"])
def test_names_name_accepted(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["Thesis", "-a", "a-", "", "a" * 64, "a_b", "a.b", "a b", "ä", "a/b", "thesis\n"]
)
def test_names_name_refused(name: str) -> None:
    with pytest.raises(ValueError, match="is not a valid name: use 1-63 lower-case letters"):
        check_name(name)


@pytest.mark.parametrize(
    "login",
    ["alice", "h.baker", "228755@uni.example", "_svc", "a-b", "Alice", "x", "a" * 64, "a_b.c-d"],
)
def test_names_login_accepted(login: str) -> None:
    assert check_login(login) == login


@pytest.mark.parametrize(
    "login",
    [
        ".alice",
        "-alice",
        "alice.",
        "al ice",
        "a/b",
        "a,b",
        "a:b",
        "a=b",
        "",
        "a" * 65,
        "é",
        "alice\n",
    ],
)
def test_names_login_refused(login: str) -> None:
    with pytest.raises(ValueError, match="is not a valid login"):
        check_login(login)


@pytest.mark.parametrize("uid", [1, 1000, 1722000101, MAX_ID])
def test_names_uid_in_bounds(uid: int) -> None:
    pin = UserPin(uid=uid, gid=uid)
    assert (pin.uid, pin.gid) == (uid, uid)


@pytest.mark.parametrize("uid", [0, -1, MAX_ID + 1, 2**32])
def test_names_uid_out_of_bounds(uid: int) -> None:
    with pytest.raises(ValidationError):
        UserPin(uid=uid, gid=1000)
    with pytest.raises(ValidationError):
        UserPin(uid=1000, gid=uid)


def test_names_max_id_leaves_out_the_reserved_minus_one() -> None:
    assert MAX_ID == 2**32 - 2


@pytest.mark.parametrize(
    ("login", "expected"),
    [("alice", "alice"), ("h.baker", "h.baker"), ("a_b", "a_b"), ("a--b", "a--b")],
)
def test_names_docker_safe_keeps_what_docker_accepts(login: str, expected: str) -> None:
    assert docker_safe(login) == expected


@pytest.mark.parametrize(
    ("login", "prefix"),
    [
        ("228755@uni.example", "228755-uni-example-"),
        ("Alice", "alice-"),
        ("_svc", "svc-"),
        ("alice\n", "alice-"),
    ],
)
def test_names_docker_safe_rewrites_the_rest(login: str, prefix: str) -> None:
    safe = docker_safe(login)
    assert safe.startswith(prefix)
    assert re.fullmatch(r"[0-9a-f]{8}", safe.removeprefix(prefix))
    assert DOCKER_COMPONENT.fullmatch(safe)


def test_names_docker_safe_login_that_looks_hashed_keeps_its_own_name() -> None:
    # `Alice` becomes alice-<hash>; a user who picks that very login must not share its images
    taken = docker_safe("Alice")
    assert docker_safe(taken) != taken


logins = st.from_regex(LOGIN_RE, fullmatch=True).filter(lambda s: not s.endswith("."))


@given(logins)
def test_names_docker_safe_matches_docker_grammar(login: str) -> None:
    safe = docker_safe(login)
    assert DOCKER_COMPONENT.fullmatch(safe), safe
    assert len(safe) <= 64


@given(st.text(max_size=80))
def test_names_docker_safe_matches_docker_grammar_for_any_text(login: str) -> None:
    assert DOCKER_COMPONENT.fullmatch(docker_safe(login))


@given(logins, logins)
def test_names_docker_safe_distinct_logins_stay_distinct(first: str, second: str) -> None:
    if first != second:
        assert docker_safe(first) != docker_safe(second)


@given(st.lists(logins, unique=True, min_size=2, max_size=50))
def test_names_docker_safe_injective_on_sets(batch: list[str]) -> None:
    assert len({docker_safe(login) for login in batch}) == len(batch)


@given(logins)
def test_names_docker_safe_stable(login: str) -> None:
    assert docker_safe(login) == docker_safe(login)
