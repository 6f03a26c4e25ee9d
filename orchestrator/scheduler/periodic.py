"""Next launch time, overlap rule and child job ID of a Nomad periodic job; `now` is always passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.scheduler.cron import CronError, CronSpec

__all__ = [
    "PERIODIC_LAUNCH_SUFFIX",
    "PeriodicLaunch",
    "next_launch",
    "parse_spec",
    "should_launch",
    "unix_seconds",
    "zone",
]

# Nomad names a periodic child `<parent>/periodic-<unix seconds of the launch>`.
PERIODIC_LAUNCH_SUFFIX = "/periodic-"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=512)
def parse_spec(spec: str) -> CronSpec:
    """Parse a cron spec once; every periodic job re-asks for its next launch on each tick."""
    return CronSpec.parse(spec)


@lru_cache(maxsize=128)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; an unknown or malformed name is a CronError, like a bad spec."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise CronError(f"unknown time zone {name!r}") from err


def next_launch(spec: str, now: datetime, time_zone: str = "UTC") -> datetime | None:
    """First launch strictly after the aware datetime `now`, as an aware datetime in `time_zone`.

    None when the spec never matches again (e.g. a year range in the past).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("next_launch needs a timezone-aware `now`")
    cron = parse_spec(spec)
    return cron.next_after(now.astimezone(zone(time_zone)))


def should_launch(prohibit_overlap: bool, running_children: int) -> bool:
    """With prohibit_overlap, Nomad skips a launch while an earlier child is still running."""
    return not prohibit_overlap or running_children == 0


def unix_seconds(t: datetime) -> int:
    """Whole seconds since the epoch, floored like Go's Time.Unix()."""
    return (t - _EPOCH) // timedelta(seconds=1)


@dataclass(frozen=True)
class PeriodicLaunch:
    """One launch of a periodic parent at `launch_time` (aware)."""

    parent_id: str
    launch_time: datetime

    @property
    def unix(self) -> int:
        return unix_seconds(self.launch_time)

    @property
    def child_id(self) -> str:
        return f"{self.parent_id}{PERIODIC_LAUNCH_SUFFIX}{self.unix}"

    @staticmethod
    def parent_of(child_id: str) -> str | None:
        """The parent ID of a periodic child ID, or None if `child_id` is not one."""
        parent, sep, stamp = child_id.rpartition(PERIODIC_LAUNCH_SUFFIX)
        if not sep or not parent or not stamp.isascii() or not stamp.isdigit():
            return None
        return parent
