"""Time spelled as Nomad (Go) spells it: duration strings both ways, RFC 3339 timestamps, unix nanoseconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from fractions import Fraction

NS = 1_000_000_000
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": NS, "m": 60 * NS, "h": 3600 * NS}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """Nanoseconds in a Go duration string; ValueError with a readable reason when it is not one."""
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    pos = 0
    total = Fraction(0)
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            if re.fullmatch(r"\d+(\.\d+)?", s[pos:]):
                raise ValueError(f'missing unit in duration "{text}" (use e.g. "{s[pos:]}s")')
            raise ValueError(f'invalid duration "{text}" (use a number and a unit: ns, us, ms, s, m, h)')
        # Fractions keep "1.5h" exact before truncating to whole nanoseconds, as Go does.
        total += Fraction(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * int(total)


def duration_seconds(text: str) -> float:
    """Seconds in a Go duration string ("1m30s", "250ms"); ValueError when it is not one."""
    return parse_duration(text) / NS


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


def seconds_to_go_duration(seconds: float) -> str:
    return go_duration(to_ns(seconds))


def rfc3339(seconds: float) -> str:
    """Go's RFC3339Nano in UTC, as Nomad's API prints StartedAt/FinishedAt: "2024-05-01T10:00:00.5Z"."""
    return rfc3339_ns(to_ns(seconds))


def rfc3339_ns(unix_ns: int) -> str:
    """The same from unix nanoseconds (what Raft commands carry)."""
    whole, frac = divmod(unix_ns, NS)
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


def parse_rfc3339_lenient(text: str | None) -> float | None:
    """`parse_rfc3339` for times a client wrote: None when absent or malformed, never an error."""
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None
