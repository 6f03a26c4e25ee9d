"""Go-style duration strings ("1h30m", "500ms") to integer nanoseconds, as Nomad's JSON stores them."""

from __future__ import annotations

import re
from fractions import Fraction

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
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


def format_duration(ns: int) -> str:
    """The shortest Go-style spelling of `ns` (used in messages)."""
    if ns == 0:
        return "0s"
    out = []
    rest = abs(ns)
    for unit, size in (("h", _UNITS["h"]), ("m", _UNITS["m"]), ("s", _UNITS["s"]), ("ms", _UNITS["ms"])):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    if rest:
        out.append(f"{rest}ns")
    return ("-" if ns < 0 else "") + "".join(out)
