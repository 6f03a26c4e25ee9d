"""Tests for periodic launch times, the overlap rule and periodic child IDs."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from orchestrator.scheduler.cron import CronError
from orchestrator.scheduler.periodic import (
    PeriodicLaunch,
    next_launch,
    parse_spec,
    should_launch,
    unix_seconds,
)

NY = ZoneInfo("America/New_York")


def test_next_launch_matches_the_reference_transcript() -> None:
    # `nomad job status cron-echo` at 10:25:22Z showed "Next Periodic Launch = 2026-11-22T10:30:00Z".
    now = datetime(2026, 11, 22, 10, 25, 22, tzinfo=UTC)
    assert next_launch("*/15 * * * *", now) == datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


def test_next_launch_is_strictly_after_now() -> None:
    now = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    assert next_launch("*/15 * * * *", now) == datetime(2026, 11, 22, 10, 45, tzinfo=UTC)


def test_next_launch_is_in_the_job_time_zone() -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # 08:00 in New York (EDT)
    got = next_launch("0 9 * * *", now, "America/New_York")
    assert got == datetime(2026, 6, 1, 9, tzinfo=NY)
    assert got is not None and got.tzinfo == NY
    assert got.astimezone(UTC) == datetime(2026, 6, 1, 13, tzinfo=UTC)


def test_next_launch_converts_now_from_any_zone() -> None:
    now = datetime(2026, 6, 1, 21, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 12:00 UTC
    assert next_launch("0 13 * * *", now) == datetime(2026, 6, 1, 13, tzinfo=UTC)


def test_daily_launch_across_dst_change_keeps_local_time() -> None:
    # 2026-11-01 falls back in New York: 09:00 local moves from 13:00Z to 14:00Z.
    first = next_launch("0 9 * * *", datetime(2026, 10, 31, 12, tzinfo=UTC), "America/New_York")
    assert first is not None and first.astimezone(UTC) == datetime(2026, 10, 31, 13, tzinfo=UTC)
    second = next_launch("0 9 * * *", first, "America/New_York")
    assert second is not None and second.astimezone(UTC) == datetime(2026, 11, 1, 14, tzinfo=UTC)
    # Same-zone datetime subtraction ignores the offset change, so compare instants.
    assert second.timestamp() - first.timestamp() == timedelta(hours=25).total_seconds()


def test_next_launch_none_when_schedule_is_over() -> None:
    assert next_launch("0 0 1 1 * 2020", datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_unknown_time_zone_is_a_cron_error() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for name in ("Mars/Olympus_Mons", "", "../etc/passwd"):
        with pytest.raises(CronError, match="unknown time zone"):
            next_launch("* * * * *", now, name)


def test_bad_spec_is_a_cron_error() -> None:
    with pytest.raises(CronError, match="minute field"):
        next_launch("99 * * * *", datetime(2026, 1, 1, tzinfo=UTC))


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_launch("* * * * *", datetime(2026, 1, 1))


def test_specs_are_parsed_once() -> None:
    assert parse_spec("*/7 * * * *") is parse_spec("*/7 * * * *")


@pytest.mark.parametrize(
    ("prohibit_overlap", "running", "expected"),
    [(False, 0, True), (False, 3, True), (True, 0, True), (True, 1, False)],
)
def test_should_launch(prohibit_overlap: bool, running: int, expected: bool) -> None:
    assert should_launch(prohibit_overlap, running) is expected


def test_child_id_uses_unix_seconds_of_the_launch() -> None:
    launch = PeriodicLaunch("cron-echo", datetime(2026, 11, 22, 10, 25, 22, 900_000, tzinfo=UTC))
    assert launch.unix == 1795343122
    assert launch.child_id == "cron-echo/periodic-1795343122"
    # The zone of the launch time does not change the instant, so not the ID either.
    same = PeriodicLaunch("cron-echo", launch.launch_time.astimezone(NY))
    assert same.child_id == launch.child_id


def test_parent_of_child_id() -> None:
    assert PeriodicLaunch.parent_of("a/b/periodic-1795343122") == "a/b"
    assert PeriodicLaunch.parent_of("cron-echo") is None
    assert PeriodicLaunch.parent_of("cron-echo/periodic-x") is None
    assert PeriodicLaunch.parent_of("/periodic-1") is None


def test_unix_seconds_floors_like_go() -> None:
    assert unix_seconds(datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)) == -1
    assert unix_seconds(datetime(1970, 1, 1, 0, 0, 1, 999_999, tzinfo=UTC)) == 1
