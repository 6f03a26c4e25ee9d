"""Go duration strings to nanoseconds."""

import pytest

from orchestrator.jobspec import parse_duration


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("15s", 15_000_000_000),
        ("30m", 1_800_000_000_000),
        ("1h30m", 5_400_000_000_000),
        ("24h", 86_400_000_000_000),
        ("500ms", 500_000_000),
        ("1.5h", 5_400_000_000_000),
        ("0", 0),
        ("2us", 2_000),
        ("-1s", -1_000_000_000),
    ],
)
def test_parse_duration(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "words"), [("", "empty"), ("10", "missing unit"), ("5 sec", "invalid"), ("1d", "invalid")]
)
def test_bad_durations(text, words):
    with pytest.raises(ValueError, match=words):
        parse_duration(text)
