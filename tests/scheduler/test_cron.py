"""Tests for the hand-written cron parser and its next-match search."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from orchestrator.scheduler.cron import CronError, CronSpec

NY = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def nxt(spec: str, t: datetime) -> datetime | None:
    return CronSpec.parse(spec).next_after(t)


@pytest.mark.parametrize(
    ("spec", "now", "expected"),
    [
        ("*/15 * * * *", utc(2026, 11, 22, 10, 25, 22), utc(2026, 11, 22, 10, 30)),
        ("*/15 * * * *", utc(2026, 11, 22, 10, 30), utc(2026, 11, 22, 10, 45)),
        ("*/15 * * * *", utc(2026, 11, 22, 23, 50), utc(2026, 11, 23, 0, 0)),
        # 7 fields: second first. From 12:00:01 the next multiple of 3 seconds is 12:00:03.
        ("0/3 * * * * * *", utc(2026, 1, 1, 12, 0, 1), utc(2026, 1, 1, 12, 0, 3)),
        ("0/3 * * * * * *", utc(2026, 1, 1, 12, 0, 57), utc(2026, 1, 1, 12, 1, 0)),
        ("0/1 * * * * * *", utc(2026, 1, 1, 12, 0, 1), utc(2026, 1, 1, 12, 0, 2)),
        ("0/1 * * * * * *", utc(2026, 12, 31, 23, 59, 59), utc(2027, 1, 1)),
        # 6 fields: the sixth is the year, not seconds (trailing blanks are fine).
        ("0 0 * * * 2030 ", utc(2026, 5, 5, 5, 5), utc(2030, 1, 1)),
        ("30 6 1 * * 2027-2029", utc(2026, 5, 5), utc(2027, 1, 1, 6, 30)),
        ("30 6 1 * * 2027-2029", utc(2029, 12, 1, 6, 30), None),
        ("15 30 6 1 * * 2027-2029", utc(2028, 3, 1, 6, 30, 15), utc(2028, 4, 1, 6, 30, 15)),
        ("0 0 0 1 1 * 2030/2", utc(2030, 1, 1), utc(2032, 1, 1)),
        ("@daily", utc(2026, 2, 28, 13, 0), utc(2026, 3, 1)),
        ("@midnight", utc(2026, 2, 28, 13, 0), utc(2026, 3, 1)),
        ("@hourly", utc(2026, 2, 28, 23, 0), utc(2026, 3, 1)),
        ("@weekly", utc(2026, 11, 22, 0, 0, 1), utc(2026, 11, 29)),  # 2026-11-22 is a Sunday
        ("@monthly", utc(2026, 12, 15), utc(2027, 1, 1)),
        ("@yearly", utc(2026, 12, 15), utc(2027, 1, 1)),
        ("@ANNUALLY", utc(2026, 12, 15), utc(2027, 1, 1)),
        # Names, case-insensitive, abbreviated or in full.
        ("0 9 * JUL mon", utc(2026, 1, 1), utc(2026, 7, 6, 9)),
        ("0 9 * jan-mar Sat,sun", utc(2026, 3, 29, 9), utc(2027, 1, 2, 9)),
        ("0 9 * december Friday", utc(2026, 1, 1), utc(2026, 12, 4, 9)),
        ("0 12 * * 7", utc(2026, 11, 17), utc(2026, 11, 22, 12)),  # 7 is Sunday too
        ("0 12 * * 5-7", utc(2026, 11, 17), utc(2026, 11, 20, 12)),
        # L: last day of the month, leap or not.
        ("0 0 L * *", utc(2026, 1, 31, 0, 0, 1), utc(2026, 2, 28)),
        ("0 0 L * *", utc(2028, 1, 31, 12), utc(2028, 2, 29)),
        ("0 0 L * *", utc(2026, 4, 1), utc(2026, 4, 30)),
        ("0 0 1,L * *", utc(2026, 4, 1, 1), utc(2026, 4, 30)),
        # Feb 29 only in leap years.
        ("0 0 29 2 *", utc(2013, 8, 29, 9, 28), utc(2016, 2, 29)),
        ("0 0 29 FEB *", utc(2024, 2, 29), utc(2028, 2, 29)),
        # Rollovers at the end of months and years.
        ("0 0 31 * *", utc(2026, 1, 31, 0, 0, 1), utc(2026, 3, 31)),
        ("59 23 31 12 *", utc(2026, 12, 31, 23, 59), utc(2027, 12, 31, 23, 59)),
        ("0 0 1 1 *", utc(2026, 12, 31, 23, 59, 59), utc(2027, 1, 1)),
        ("5-10/5 8-9 * * *", utc(2026, 6, 1, 9, 10), utc(2026, 6, 2, 8, 5)),
        # Microseconds: strictly after still means the next whole matching second.
        ("* * * * * * *", datetime(2026, 1, 1, 0, 0, 0, 500, tzinfo=UTC), utc(2026, 1, 1, 0, 0, 1)),
    ],
)
def test_next_after(spec: str, now: datetime, expected: datetime | None) -> None:
    assert nxt(spec, now) == expected


def test_dom_and_dow_both_restricted_match_either() -> None:
    # The 13th OR any Friday; 2026-11-13 is a Friday, 2026-11-20 a Friday, 2026-12-13 a Sunday.
    spec = CronSpec.parse("0 0 13 * FRI")
    t = utc(2026, 11, 13)
    seen = []
    for _ in range(5):
        t = spec.next_after(t)
        seen.append(t.date().isoformat())
    assert seen == ["2026-11-20", "2026-11-27", "2026-12-04", "2026-12-11", "2026-12-13"]


def test_star_day_field_leaves_the_other_to_decide() -> None:
    assert nxt("0 0 * * MON", utc(2026, 11, 17)) == utc(2026, 11, 23)
    assert nxt("0 0 15 * ?", utc(2026, 11, 17)) == utc(2026, 12, 15)
    assert nxt("0 0 ? * MON", utc(2026, 11, 17)) == utc(2026, 11, 23)


def test_stepped_day_field_counts_as_restricted() -> None:
    # cronexpr: only a bare * or ? leaves a day field unrestricted, so */10 ORs with Wednesday.
    spec = CronSpec.parse("0 0 */10 * WED")
    assert spec.dom_restricted and spec.dow_restricted
    assert spec.next_after(utc(2026, 11, 1)) == utc(2026, 11, 4)  # a Wednesday, not the 11th


def test_impossible_dates_return_none() -> None:
    assert nxt("0 0 30 2 *", utc(2026, 1, 1)) is None
    assert nxt("0 0 31 4,6,9,11 *", utc(2026, 1, 1)) is None
    assert nxt("* * * * * 1980", utc(2013, 8, 29)) is None


def test_result_keeps_the_input_time_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    got = nxt("0 9 * * *", datetime(2026, 1, 1, 10, tzinfo=tokyo))
    assert got == datetime(2026, 1, 2, 9, tzinfo=tokyo)
    assert got is not None and got.tzinfo is tokyo
    fixed = timezone(timedelta(hours=-3))
    assert nxt("0 9 * * *", datetime(2026, 1, 1, 8, tzinfo=fixed)) == datetime(2026, 1, 1, 9, tzinfo=fixed)


def test_naive_time_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CronSpec.parse("* * * * *").next_after(datetime(2026, 1, 1))


class TestDaylightSaving:
    """America/New_York: 2026-03-08 02:00 jumps to 03:00; 2026-11-01 02:00 falls back to 01:00."""

    def test_nonexistent_local_time_is_skipped(self) -> None:
        got = nxt("30 2 * * *", datetime(2026, 3, 7, 3, 0, tzinfo=NY))
        assert got == datetime(2026, 3, 9, 2, 30, tzinfo=NY)

    def test_every_second_jumps_over_the_gap(self) -> None:
        got = nxt("* * * * * * *", datetime(2026, 3, 8, 1, 59, 59, tzinfo=NY))
        assert got is not None
        assert (got.hour, got.minute, got.second, got.utcoffset()) == (3, 0, 0, timedelta(hours=-4))
        assert got.timestamp() - datetime(2026, 3, 8, 1, 59, 59, tzinfo=NY).timestamp() == 1

    def test_daily_job_across_spring_forward_keeps_wall_clock(self) -> None:
        t = datetime(2026, 3, 7, 9, tzinfo=NY)
        got = nxt("0 9 * * *", t)
        assert got == datetime(2026, 3, 8, 9, tzinfo=NY)
        assert got is not None and got.timestamp() - t.timestamp() == 23 * 3600

    def test_ambiguous_local_time_fires_once(self) -> None:
        spec = CronSpec.parse("30 1 * * *")
        first = spec.next_after(datetime(2026, 11, 1, 0, 0, tzinfo=NY))
        assert first is not None
        assert (first.hour, first.minute, first.utcoffset()) == (1, 30, timedelta(hours=-4))
        # Asking again from the fired time, or from inside the repeated hour, gives the next day.
        assert spec.next_after(first) == datetime(2026, 11, 2, 1, 30, tzinfo=NY)
        second_pass = datetime(2026, 11, 1, 1, 10, fold=1, tzinfo=NY)
        assert spec.next_after(second_pass) == datetime(2026, 11, 2, 1, 30, tzinfo=NY)

    def test_quarter_hourly_through_fall_back(self) -> None:
        spec = CronSpec.parse("*/15 * * * *")
        t = datetime(2026, 11, 1, 1, 30, tzinfo=NY)
        launches = []
        for _ in range(3):
            t = spec.next_after(t)
            launches.append((t.hour, t.minute, t.utcoffset()))
        est, edt = timedelta(hours=-5), timedelta(hours=-4)
        assert launches == [(1, 45, edt), (2, 0, est), (2, 15, est)]

    def test_inside_second_pass_resumes_after_the_repeat(self) -> None:
        got = nxt("* * * * * * *", datetime(2026, 11, 1, 1, 10, fold=1, tzinfo=NY))
        assert got is not None
        assert (got.hour, got.minute, got.second, got.utcoffset()) == (2, 0, 0, timedelta(hours=-5))


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("* * * *", "got 4"),
        ("* * * * * * * *", "got 8"),
        ("garbage", "got 1"),
        ("60 * * * *", "minute field: value 60 out of range 0-59"),
        ("* 24 * * *", "hour field: value 24"),
        ("* * 0 * *", "day-of-month field: value 0"),
        ("* * 32 * *", "day-of-month field: value 32"),
        ("* * * 13 *", "month field: value 13"),
        ("* * * * 8", "day-of-week field: value 8"),
        ("* * * * * 1969", "year field: value 1969"),
        ("* * * * * 2100", "year field: value 2100"),
        ("60 * * * * * *", "second field: value 60"),
        ("*/0 * * * *", "minute field: step 0"),
        ("*/60 * * * *", "minute field: step 60"),
        ("*/x * * * *", "minute field: bad step"),
        ("1/2/3 * * * *", "minute field: bad step"),
        ("5-1 * * * *", "minute field: range '5-1' runs backwards"),
        ("a * * * *", "minute field: invalid value 'a'"),
        ("-1 * * * *", "minute field: invalid value ''"),
        ("1,,2 * * * *", "minute field: empty list element"),
        ("? * * * *", "minute field: invalid value '?'"),
        ("* * * FOO *", "month field: invalid value 'FOO'"),
        ("* * * * MON-FUN", "day-of-week field: invalid value 'FUN'"),
        ("* * * JAN *x", "day-of-week field"),
        ("* * L * L", "day-of-week field: 'L' is not supported"),
        ("* * 15W * *", "day-of-month field: '15W' is not supported"),
        ("* * LW * *", "day-of-month field: 'LW' is not supported"),
        ("* * * * 5L", "day-of-week field: '5L' is not supported"),
        ("* * * * 1#2", "day-of-week field: '1#2' is not supported"),
        ("@every 5m", "@every is not a cron expression"),
        ("@reboot", "unknown predefined schedule"),
        ("@fortnightly", "unknown predefined schedule"),
    ],
)
def test_invalid_specs_name_the_problem(spec: str, fragment: str) -> None:
    with pytest.raises(CronError) as info:
        CronSpec.parse(spec)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(CronError, match="must be a string"):
        CronSpec.parse(None)  # type: ignore[arg-type]


def test_parsed_fields() -> None:
    spec = CronSpec.parse("1,2,5-9/2 * * * *")
    assert spec.minutes == (1, 2, 5, 7, 9)
    assert spec.seconds == (0,)
    assert spec.years == tuple(range(1970, 2100))
    assert CronSpec.parse("0 0 * * 0,7").days_of_week == (0,)
    assert CronSpec.parse("0 0 * * */2").days_of_week == (0, 2, 4, 6)
    assert CronSpec.parse("0 0 * * 2/2").days_of_week == (2, 4, 6)


def test_matches() -> None:
    spec = CronSpec.parse("0 0 L * *")
    assert spec.matches(datetime(2028, 2, 29))
    assert not spec.matches(datetime(2028, 2, 28))


def test_ten_thousand_searches_are_algorithmic() -> None:
    # Chained through many rollovers: each call jumps field by field rather than second by second.
    every_3s = CronSpec.parse("0/3 * * * * * *")
    quarter = CronSpec.parse("*/15 * * * *")
    rare = CronSpec.parse("0 0 29 2 *")
    t = t_q = utc(2026, 1, 1)
    for _ in range(10_000):
        t = every_3s.next_after(t)
        t_q = quarter.next_after(t_q)
    assert t == utc(2026, 1, 1, 8, 20)
    assert t_q == utc(2026, 1, 1) + timedelta(minutes=15 * 10_000)
    t_r = utc(1970, 1, 1)
    for _ in range(10_000):
        got = rare.next_after(t_r)
        if got is None:
            break
        t_r = got
    assert t_r == utc(2096, 2, 29)
