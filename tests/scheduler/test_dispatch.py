"""Tests for parameterized job dispatch checks, child IDs and meta merging."""

import re
from random import Random

import pytest

from orchestrator.scheduler.dispatch import (
    DISPATCH_PAYLOAD_SIZE_LIMIT,
    dispatch_child_id,
    merge_dispatch_meta,
    validate_dispatch,
)


def check(meta, required=("k",), optional=(), payload=None, mode="optional") -> list[str]:
    return validate_dispatch(meta, list(required), list(optional), payload, mode)


def test_valid_dispatch_has_no_errors() -> None:
    assert check({"k": "v"}) == []
    assert check({"k": "v", "opt": "1"}, optional=["opt"]) == []
    assert check({}, required=[], optional=["opt"]) == []


def test_missing_required_meta_matches_nomad_wording() -> None:
    # From the reference transcript: `nomad job dispatch param-echo` with no -meta.
    assert check({}) == ["Dispatch did not provide required meta keys: [k]"]


def test_unpermitted_meta_matches_nomad_wording() -> None:
    # From the reference transcript: `-meta k=v -meta bogus=1`.
    assert check({"k": "v", "bogus": "1"}) == ["Dispatch request included unpermitted metadata keys: [bogus]"]


def test_key_lists_are_sorted_and_space_separated_like_go() -> None:
    errors = check({"z": "1", "a": "2"}, required=["k", "b"])
    assert errors == [
        "Dispatch request included unpermitted metadata keys: [a z]",
        "Dispatch did not provide required meta keys: [b k]",
    ]


def test_optional_keys_are_allowed_but_not_required() -> None:
    assert check({"k": "v"}, optional=["o1", "o2"]) == []
    assert check({"k": "v", "o2": ""}, optional=["o1", "o2"]) == []


@pytest.mark.parametrize(
    ("mode", "payload", "expected"),
    [
        ("optional", None, []),
        ("optional", b"data", []),
        ("", b"data", []),  # an unset mode is Nomad's default, optional
        ("required", b"data", []),
        ("required", None, ["Payload is not provided but required by parameterized job"]),
        ("required", b"", ["Payload is not provided but required by parameterized job"]),
        ("forbidden", None, []),
        ("forbidden", b"", []),
        ("forbidden", b"data", ["Payload provided but forbidden by parameterized job"]),
        ("sometimes", None, ['Unknown payload requirement: "sometimes"']),
    ],
)
def test_payload_modes(mode: str, payload: bytes | None, expected: list[str]) -> None:
    assert check({"k": "v"}, payload=payload, mode=mode) == expected


def test_payload_size_limit_is_16_kib() -> None:
    assert DISPATCH_PAYLOAD_SIZE_LIMIT == 16384
    assert check({"k": "v"}, payload=b"x" * 16384) == []
    assert check({"k": "v"}, payload=b"x" * 16385) == ["Payload exceeds maximum size; 16385 > 16384"]


def test_errors_come_in_nomad_order() -> None:
    errors = check({"bogus": "1"}, payload=b"x" * 20000, mode="forbidden")
    assert errors == [
        "Payload provided but forbidden by parameterized job",
        "Payload exceeds maximum size; 20000 > 16384",
        "Dispatch request included unpermitted metadata keys: [bogus]",
        "Dispatch did not provide required meta keys: [k]",
    ]


def test_child_id_format() -> None:
    child = dispatch_child_id("param-echo", 1795343117, Random(1))
    assert re.fullmatch(r"param-echo/dispatch-1795343117-[0-9a-f]{8}", child)


def test_child_id_is_deterministic_for_a_seeded_rng() -> None:
    first = [dispatch_child_id("p", 100, Random(42)) for _ in range(2)]
    assert first[0] == first[1]
    rng = Random(42)
    ids = {dispatch_child_id("p", 100, rng) for _ in range(50)}
    assert len(ids) == 50  # successive draws from one generator differ


def test_merge_meta_dispatch_overrides_parent() -> None:
    parent = {"owner": "ops", "k": "default"}
    merged = merge_dispatch_meta(parent, {"k": "v", "extra": "1"})
    assert merged == {"owner": "ops", "k": "v", "extra": "1"}
    assert parent == {"owner": "ops", "k": "default"}  # the parent job is left untouched
    assert merge_dispatch_meta(None, {"k": "v"}) == {"k": "v"}
    assert merge_dispatch_meta(None, {}) == {}
