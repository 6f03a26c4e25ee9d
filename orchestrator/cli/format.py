"""Output as Nomad's CLI prints it: columnize tables and k = v blocks, short IDs, times, byte sizes, JSON."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime
from typing import Any

SHORT_ID = 8
FULL_ID = 36
NS = 1_000_000_000


def columnize(rows: list[str], *, glue: str = "  ", empty: str = "", no_trim: bool = False) -> str:
    """ryanuber/columnize: "|"-separated cells padded to each column's widest cell; the last cell unpadded."""
    cells = []
    for row in rows:
        parts = row.split("|")
        if not no_trim:
            parts = [part.strip() for part in parts]
        cells.append([part or empty for part in parts])
    widths: list[int] = []
    for parts in cells:
        for i, part in enumerate(parts):
            if i == len(widths):
                widths.append(0)
            widths[i] = max(widths[i], len(part))
    lines = []
    for parts in cells:
        lines.append("".join(part.ljust(widths[i]) + glue for i, part in enumerate(parts[:-1])) + parts[-1])
    return "\n".join(lines)


def format_kv(rows: list[str]) -> str:
    """Nomad's formatKV: aligned `key = value` lines, "<none>" for empty values."""
    return columnize(rows, glue=" = ", empty="<none>")


def format_list(rows: list[str]) -> str:
    """Nomad's formatList: an aligned table, "<none>" for empty cells so awk sees every column."""
    return columnize(rows, empty="<none>")


def format_list_with_spaces(rows: list[str]) -> str:
    return columnize(rows)


def limit(text: str | None, length: int) -> str:
    text = text or ""
    return text if len(text) < length else text[:length]


def short(text: str | None, verbose: bool = False) -> str:
    return limit(text, FULL_ID if verbose else SHORT_ID)


# -- time ----------------------------------------------------------------------------------------------

_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def to_seconds(value: Any) -> float | None:
    """Unix seconds from what the API sends: unix nanoseconds (ints) or RFC 3339 strings; None when unset."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return value / NS if value else None
    match = _RFC3339.match(str(value))
    if match is None or match.group(1).startswith("0001-"):
        return None
    base, frac, zone = match.groups()
    stamp = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).timestamp()
    return stamp + (float(frac) if frac else 0.0)


def format_time(value: Any) -> str:
    """Go's "2006-01-02T15:04:05Z07:00" in local time ("Z" when local time is UTC); "" for unset times."""
    seconds = value if isinstance(value, float) else to_seconds(value)
    if seconds is None or seconds < 1:
        return ""
    local = datetime.fromtimestamp(seconds, tz=UTC).astimezone()
    offset = local.utcoffset()
    suffix = "Z" if not offset else local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]
    return local.strftime("%Y-%m-%dT%H:%M:%S") + suffix


def format_task_time(value: Any) -> str:
    return format_time(value) or "N/A"


_now = time.time


def clock() -> float:
    """Now, in unix seconds; the one clock relative times are measured against (tests freeze `_now`)."""
    return _now()


def pretty_time_diff(value: Any, now: float | None = None) -> str:
    """Nomad's prettyTimeDiff: the two largest units, "3m51s ago", "3d7h from now"; "" for unset times."""
    first = value if isinstance(value, float) else to_seconds(value)
    if first is None:
        return ""
    now = clock() if now is None else now
    delta = round(now) - round(first)
    suffix = "ago" if delta >= 0 else "from now"
    remaining = abs(delta)
    parts = []
    for unit, size in (("y", 360 * 86400), ("mo", 30 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        # Go's version peels units off from seconds upward with 30-day months and 12-month years.
        count = remaining // size
        remaining -= count * size
        if count:
            parts.append(f"{count}{unit}")
    return ("".join(parts[:2]) or "0s") + " " + suffix


def time_difference(first: float, second: float) -> str:
    """Go's formatTimeDifference(first, second, time.Second): whole seconds between them as a duration."""
    from orchestrator.structs.timefmt import go_duration

    return go_duration((math.floor(second) - math.floor(first)) * NS)


def duration(ns: int | float | None) -> str:
    """A Go time.Duration as Go prints it ("1h0m0s", "110.085µs")."""
    from orchestrator.structs.timefmt import go_duration

    return go_duration(int(ns or 0))


# -- sizes ---------------------------------------------------------------------------------------------

_SIZES = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def ibytes(size: int | float) -> str:
    """go-humanize IBytes: "0 B", "52 KiB", "24 GiB", "1.5 MiB"."""
    size = int(size)
    if size < 10:
        return f"{size} B"
    exponent = min(math.floor(math.log(size) / math.log(1024)), len(_SIZES) - 1)
    value = math.floor(size / 1024**exponent * 10 + 0.5) / 10
    return f"{value:.0f} {_SIZES[exponent]}" if value >= 10 else f"{value:.1f} {_SIZES[exponent]}"


def megabytes(mb: int | float | None) -> str:
    return ibytes(int(mb or 0) * 1024 * 1024)


# -- JSON ----------------------------------------------------------------------------------------------


def go_json(data: Any) -> str:
    """json.MarshalIndent(data, "", "    "): 4-space indent, UTF-8 kept, HTML characters escaped as Go does."""
    text = json.dumps(data, indent=4, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def go_bool(value: Any) -> str:
    return "true" if value else "false"
