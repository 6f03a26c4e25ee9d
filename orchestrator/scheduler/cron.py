"""Nomad's cron expressions (gorhill/cronexpr semantics), parsed by hand and evaluated without a clock."""

from __future__ import annotations

import calendar
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

__all__ = ["PREDEFINED", "CronError", "CronSpec"]

ONE_SECOND = timedelta(seconds=1)

# cronexpr's aliases, expanded to its 7-field form (second minute hour dom month dow year).
PREDEFINED: Mapping[str, str] = {
    "@yearly": "0 0 0 1 1 * *",
    "@annually": "0 0 0 1 1 * *",
    "@monthly": "0 0 0 1 * * *",
    "@weekly": "0 0 0 * * 0 *",
    "@daily": "0 0 0 * * * *",
    "@midnight": "0 0 0 * * * *",
    "@hourly": "0 0 * * * * *",
}

# Spelled out rather than taken from `calendar`, whose names follow the process locale.
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_MONTH_NAMES = {n: i for i, name in enumerate(_MONTHS, start=1) for n in (name, name[:3])}
_DOW_NAMES = {n: i for i, name in enumerate(_WEEKDAYS) for n in (name, name[:3])}


class CronError(ValueError):
    """A cron expression (or the time zone it is evaluated in) is invalid."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int  # upper bound of `*` and of `a/n`
    names: Mapping[str, int]
    max_value: int  # largest literal accepted (day-of-week accepts 7 for Sunday)
    allow_question: bool = False  # `?` is a wildcard only in the two day fields
    allow_last: bool = False


_SECOND = _Field("second", 0, 59, {}, 59)
_MINUTE = _Field("minute", 0, 59, {}, 59)
_HOUR = _Field("hour", 0, 23, {}, 23)
_DOM = _Field("day-of-month", 1, 31, {}, 31, allow_question=True, allow_last=True)
_MONTH = _Field("month", 1, 12, _MONTH_NAMES, 12)
_DOW = _Field("day-of-week", 0, 6, _DOW_NAMES, 7, allow_question=True)
_YEAR = _Field("year", 1970, 2099, {}, 2099)
_FIELDS = (_SECOND, _MINUTE, _HOUR, _DOM, _MONTH, _DOW, _YEAR)


@dataclass(frozen=True)
class _ParsedField:
    values: frozenset[int]
    wildcard: bool  # a bare `*` or `?` appeared: the field does not restrict (matters for dom/dow)
    last_day: bool = False


@dataclass(frozen=True)
class CronSpec:
    """A parsed cron expression; every time set is a sorted tuple so lookups can bisect."""

    spec: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]
    years: tuple[int, ...]
    last_day_of_month: bool
    dom_restricted: bool
    dow_restricted: bool

    @classmethod
    def parse(cls, spec: str) -> CronSpec:
        """Parse 5 (m h dom mon dow), 6 (... year) or 7 (s ... year) fields, or an @alias."""
        if not isinstance(spec, str):
            raise CronError(f"cron spec must be a string, not {type(spec).__name__}")
        texts = _split_fields(spec)
        try:
            fields = [_parse_field(text, field) for text, field in zip(texts, _FIELDS, strict=True)]
        except CronError as err:
            raise CronError(f"invalid cron spec {spec!r}: {err}") from None
        second, minute, hour, dom, month, dow, year = fields
        return cls(
            spec=spec,
            seconds=_sorted(second),
            minutes=_sorted(minute),
            hours=_sorted(hour),
            days_of_month=_sorted(dom),
            months=_sorted(month),
            # 7 is an alias for Sunday (0), as in crontab(5).
            days_of_week=tuple(sorted({v % 7 for v in dow.values})),
            years=_sorted(year),
            last_day_of_month=dom.last_day,
            dom_restricted=not dom.wildcard,
            dow_restricted=not dow.wildcard,
        )

    def next_after(self, t: datetime) -> datetime | None:
        """First matching time strictly after the aware datetime `t`, in `t`'s time zone, or None.

        Matching happens on local wall-clock time. A wall time that does not exist (skipped by a
        DST jump forward) never fires; one that occurs twice (DST fall back) fires once, at its first
        occurrence.
        """
        tz = t.tzinfo
        if tz is None or t.utcoffset() is None:
            raise ValueError("next_after needs a timezone-aware datetime")
        wall = t.replace(tzinfo=None, microsecond=0)
        if t.fold == 1 and _is_repeated(wall, tz):
            # `t` is in the second pass of a repeated hour: every wall time of that hour already
            # fired during the first pass, so resume once the repetition is over.
            start = _window_end(wall, tz, _is_repeated)
        else:
            start = wall + ONE_SECOND
        return self._first_existing_from(start, tz, t)

    def matches(self, wall: datetime) -> bool:
        """Whether a (naive or aware) wall-clock time, to the second, is in this schedule."""
        return (
            wall.microsecond == 0
            and wall.year in self.years
            and wall.month in self.months
            and wall.day in self._days(wall.year, wall.month)
            and wall.hour in self.hours
            and wall.minute in self.minutes
            and wall.second in self.seconds
        )

    def _first_existing_from(self, start: datetime, tz: tzinfo, after: datetime) -> datetime | None:
        floor = after.timestamp()
        while True:
            wall = self._next_wall(start)
            if wall is None:
                return None
            if _is_skipped(wall, tz):
                start = _window_end(wall, tz, _is_skipped)
                continue
            found = wall.replace(tzinfo=tz, fold=0)
            # Same-tzinfo comparisons ignore fold, so compare instants explicitly.
            if found.timestamp() > floor:
                return found
            start = wall + ONE_SECOND

    def _next_wall(self, start: datetime) -> datetime | None:
        """Earliest naive wall time >= start that matches, jumping a whole field at a time."""
        year, month, day = start.year, start.month, start.day
        hour, minute, second = start.hour, start.minute, start.second
        while True:
            y = _ceil(self.years, year)
            if y is None:
                return None
            if y != year:
                year, month, day, hour, minute, second = y, 1, 1, 0, 0, 0
            m = _ceil(self.months, month)
            if m is None:
                year, month, day, hour, minute, second = year + 1, 1, 1, 0, 0, 0
                continue
            if m != month:
                month, day, hour, minute, second = m, 1, 0, 0, 0
            d = _ceil(self._days(year, month), day)
            if d is None:
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
                day, hour, minute, second = 1, 0, 0, 0
                continue
            if d != day:
                day, hour, minute, second = d, 0, 0, 0
            h = _ceil(self.hours, hour)
            if h is None:
                # Day 32 is fine here: no month has it, so the day lookup rolls the month over.
                day, hour, minute, second = day + 1, 0, 0, 0
                continue
            if h != hour:
                hour, minute, second = h, 0, 0
            mi = _ceil(self.minutes, minute)
            if mi is None:
                hour, minute, second = hour + 1, 0, 0
                continue
            if mi != minute:
                minute, second = mi, 0
            s = _ceil(self.seconds, second)
            if s is None:
                minute, second = minute + 1, 0
                continue
            return datetime(year, month, day, hour, minute, s)

    def _days(self, year: int, month: int) -> tuple[int, ...]:
        """Matching days of one month; when both dom and dow restrict, either may match."""
        length = calendar.monthrange(year, month)[1]
        if not self.dom_restricted and not self.dow_restricted:
            return tuple(range(1, length + 1))
        days: set[int] = set()
        if self.dom_restricted:
            days.update(d for d in self.days_of_month if d <= length)
            if self.last_day_of_month:
                days.add(length)
        if self.dow_restricted:
            first_dow = (date(year, month, 1).weekday() + 1) % 7
            days.update(d for d in range(1, length + 1) if (first_dow + d - 1) % 7 in self.days_of_week)
        return tuple(sorted(days))


def _split_fields(spec: str) -> list[str]:
    """Normalise to the 7-field form second minute hour dom month dow year."""
    text = spec.strip()
    if not text:
        raise CronError("empty cron spec")
    if text.startswith("@"):
        return _predefined(text).split()
    fields = text.split()
    if len(fields) == 5:
        return ["0", *fields, "*"]
    if len(fields) == 6:
        # cronexpr reads a sixth field as the year, not as seconds.
        return ["0", *fields]
    if len(fields) == 7:
        return fields
    raise CronError(
        f"invalid cron spec {spec!r}: expected 5, 6 or 7 fields "
        f"(minute hour day-of-month month day-of-week [year], or second first), got {len(fields)}"
    )


def _predefined(text: str) -> str:
    alias = text.lower()
    if alias in PREDEFINED:
        return PREDEFINED[alias]
    if alias.split()[0] == "@every":
        raise CronError(f"invalid cron spec {text!r}: @every is not a cron expression in Nomad")
    known = ", ".join(PREDEFINED)
    raise CronError(f"invalid cron spec {text!r}: unknown predefined schedule (known: {known})")


def _parse_field(text: str, field: _Field) -> _ParsedField:
    values: set[int] = set()
    wildcard = last_day = False
    for item in text.split(","):
        if item == "*" or (item == "?" and field.allow_question):
            wildcard = True
            values.update(range(field.low, field.high + 1))
        elif item.lower() == "l" and field.allow_last:
            last_day = True
        else:
            values.update(_parse_item(item, field))
    return _ParsedField(frozenset(values), wildcard, last_day)


def _parse_item(item: str, field: _Field) -> range:
    """One list element: `a`, `a-b`, `*/n`, `a/n` or `a-b/n`."""
    if not item:
        raise CronError(f"{field.name} field: empty list element")
    if _is_unsupported_special(item):
        raise CronError(
            f"{field.name} field: {item!r} is not supported (of L, W and #, only L in day-of-month is)"
        )
    base, sep, step_text = item.partition("/")
    step = _parse_step(step_text, item, field) if sep else 1
    if base == "*":
        first, last = field.low, field.high
    elif "-" in base:
        low_text, _, high_text = base.partition("-")
        first, last = _parse_value(low_text, item, field), _parse_value(high_text, item, field)
        if first > last:
            raise CronError(f"{field.name} field: range {item!r} runs backwards")
    else:
        first = _parse_value(base, item, field)
        # `a/n` means every n-th value from a to the field's end, as in cronexpr.
        last = field.high if sep else first
    return range(first, last + 1, step)


def _parse_step(text: str, item: str, field: _Field) -> int:
    if not text.isascii() or not text.isdigit():
        raise CronError(f"{field.name} field: bad step in {item!r}")
    step = int(text)
    if not 1 <= step <= field.high:
        raise CronError(f"{field.name} field: step {step} in {item!r} must be between 1 and {field.high}")
    return step


def _is_unsupported_special(item: str) -> bool:
    """Quartz-style `L`, `W`, `LW`, `5L` and `3#2`, which cronexpr knows and this port refuses."""
    lowered = item.lower()
    return "#" in item or lowered in ("l", "lw") or (item[:-1].isdigit() and lowered[-1] in "lw")


def _parse_value(text: str, item: str, field: _Field) -> int:
    if text.lower() in field.names:
        return field.names[text.lower()]
    if not text.isascii() or not text.isdigit():
        raise CronError(f"{field.name} field: invalid value {text!r} in {item!r}")
    value = int(text)
    if not field.low <= value <= field.max_value:
        raise CronError(f"{field.name} field: value {value} out of range {field.low}-{field.max_value}")
    return value


def _sorted(field: _ParsedField) -> tuple[int, ...]:
    return tuple(sorted(field.values))


def _ceil(values: tuple[int, ...], at_least: int) -> int | None:
    i = bisect_left(values, at_least)
    return values[i] if i < len(values) else None


def _offsets(wall: datetime, tz: tzinfo) -> tuple[timedelta, timedelta]:
    first = wall.replace(tzinfo=tz, fold=0).utcoffset()
    second = wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert first is not None and second is not None
    return first, second


def _is_repeated(wall: datetime, tz: tzinfo) -> bool:
    # PEP 495: in a fold the first occurrence has the larger offset.
    first, second = _offsets(wall, tz)
    return first > second


def _is_skipped(wall: datetime, tz: tzinfo) -> bool:
    # PEP 495: in a gap, fold=0 uses the (smaller) offset from before the jump.
    first, second = _offsets(wall, tz)
    return first < second


def _window_end(wall: datetime, tz: tzinfo, inside: Callable[[datetime, tzinfo], bool]) -> datetime:
    """First wall time after `wall` outside its gap or fold, found by bisection, not by stepping."""
    first, second = _offsets(wall, tz)
    # A gap or fold lasts exactly as long as the offset change, so wall + span is outside it.
    lo, hi = 0, int(abs(first - second).total_seconds())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if inside(wall + timedelta(seconds=mid), tz):
            lo = mid
        else:
            hi = mid
    return wall + timedelta(seconds=hi)
