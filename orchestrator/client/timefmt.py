"""Time spelled as Nomad's Go client spells it: Duration.String(), RFC 3339 timestamps, unix nanoseconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime

NS = 1_000_000_000
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": NS, "m": 60 * NS, "h": 3600 * NS}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def to_ns(seconds: float) -> int:
    """Unix seconds (the runtime's `now`) to integer nanoseconds, as TaskEvent.Time carries them."""
    return round(seconds * NS)


def go_duration(ns: int) -> str:
    """Go's `time.Duration.String()`: "5s", "1m30s", "30m0s", "24h0m0s", "16.25s", "1.5ms", "0s"."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(int(ns))
    if u < NS:
        # Below a second Go switches to the largest unit that keeps an integer part.
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if u >= size:
                return sign + _with_fraction(u, size) + unit
    whole, frac = divmod(u, NS)
    text = f"{whole % 60}{_fraction(frac, 9)}s"
    minutes = whole // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes // 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def _with_fraction(value: int, size: int) -> str:
    whole, frac = divmod(value, size)
    return f"{whole}{_fraction(frac, len(str(size)) - 1)}"


def _fraction(frac: int, digits: int) -> str:
    """".25" for 250000000 of 9 digits; "" when there is no fraction (Go drops the point)."""
    if not frac or not digits:
        return ""
    return "." + f"{frac:0{digits}d}".rstrip("0")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string ("1m30s", "250ms"); ValueError when it is not one."""
    body = text.strip()
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        m = _DURATION.match(body, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)] / NS
        pos = m.end()
    if not body:
        raise ValueError("empty duration")
    return total


def seconds_to_go_duration(seconds: float) -> str:
    return go_duration(to_ns(seconds))


def rfc3339(seconds: float) -> str:
    """Go's RFC3339Nano in UTC, as Nomad's API prints StartedAt/FinishedAt: "2024-05-01T10:00:00.5Z"."""
    whole, frac = divmod(to_ns(seconds), NS)
    stamp = datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}{_fraction(frac, 9)}Z"


def parse_rfc3339(text: str | None) -> float | None:
    """The inverse of `rfc3339` (None for an absent or zero timestamp)."""
    if not text or text.startswith("0001-01-01"):
        return None
    body = text[:-1] if text.endswith("Z") else text
    base, _, frac = body.partition(".")
    whole = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return whole + (int(frac.ljust(9, "0")[:9]) / NS if frac else 0.0)
