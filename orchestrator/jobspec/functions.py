"""The HCL2 standard functions a jobspec may call, as plain Python callables over JSON-like values."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from typing import Any

Function = Callable[..., Any]


def to_hcl_string(value: Any) -> str:
    """HCL's conversion of a primitive to string (bools lowercase, whole floats without '.0')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    if value is None:
        raise ValueError("a null value cannot be converted to a string")
    raise ValueError(f"a {type_name(value)} cannot be converted to a string")


def to_hcl_number(value: Any) -> int | float:
    """HCL's conversion to number: numbers pass, numeric strings convert, anything else fails."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"a {type_name(value)} cannot be converted to a number")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f'"{value}" is not a number') from None
            if math.isnan(number) or math.isinf(number):
                raise ValueError(f'"{value}" is not a number') from None
            return number
    raise ValueError(f"a {type_name(value)} cannot be converted to a number")


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _format(fmt: str, *args: Any) -> str:
    """Go's fmt verbs as HCL's format() accepts them: %s %v %d %f %q %t %x %e %g %%."""
    out: list[str] = []
    pos = 0
    arg_index = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2) or "", m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if arg_index >= len(args):
            raise ValueError(f"not enough arguments for format string {fmt!r}")
        arg = args[arg_index]
        arg_index += 1
        spec = flags.replace("#", "") + width + (f".{prec}" if prec is not None else "")
        if verb in ("s", "v"):
            text = json.dumps(arg) if isinstance(arg, list | dict) else to_hcl_string(arg)
            out.append(format(text, ("<" if "-" in flags else ">") + width if width else ""))
        elif verb == "d":
            out.append(format(int(to_hcl_number(arg)), spec.replace("-", "<")))
        elif verb in "feEgG":
            out.append(format(float(to_hcl_number(arg)), spec.replace("-", "<") + verb))
        elif verb == "q":
            out.append(json.dumps(to_hcl_string(arg), ensure_ascii=False))
        elif verb == "t":
            if not isinstance(arg, bool):
                raise ValueError("%t needs a bool")
            out.append(to_hcl_string(arg))
        elif verb in "xX":
            value = arg.encode().hex() if isinstance(arg, str) else format(int(to_hcl_number(arg)), "x")
            out.append(value.upper() if verb == "X" else value)
        else:
            raise ValueError(f"unsupported format verb %{verb}")
    out.append(fmt[pos:])
    if arg_index < len(args):
        raise ValueError(f"too many arguments for format string {fmt!r}")
    return "".join(out)


def _replace(text: str, old: str, new: str) -> str:
    # HCL treats a "/.../" search string as a regular expression with $1-style references.
    if len(old) >= 2 and old.startswith("/") and old.endswith("/"):
        python_new = re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", new)
        return re.sub(old[1:-1], python_new, text)
    return text.replace(old, new)


def _substr(text: str, offset: int, length: int) -> str:
    offset, length = int(offset), int(length)
    if offset < 0:
        offset = max(len(text) + offset, 0)
    return text[offset:] if length < 0 else text[offset : offset + length]


def _lookup(mapping: dict, key: str, *default: Any) -> Any:
    if key in mapping:
        return mapping[key]
    if default:
        return default[0]
    raise ValueError(f'the map has no key "{key}" and no default was given')


def _merge(*maps: dict) -> dict:
    out: dict = {}
    for m in maps:
        if m is None:
            continue
        if not isinstance(m, dict):
            raise ValueError(f"merge() takes maps, not a {type_name(m)}")
        out.update(m)
    return out


def _coalesce(*values: Any) -> Any:
    for v in values:
        if v is not None and v != "":
            return v
    raise ValueError("no non-null, non-empty argument")


def _toset(values: list) -> list:
    unique = list(dict.fromkeys(json.dumps(v, sort_keys=True) for v in values))
    items = [json.loads(v) for v in unique]
    # HCL orders sets of strings lexically; JSON has no set, so a sorted list stands in for one.
    return sorted(items) if all(isinstance(v, str) for v in items) else items


def _tobool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ValueError(f"cannot convert {value!r} to bool")


def _flatten(values: list) -> list:
    out: list = []
    for v in values:
        out.extend(_flatten(v) if isinstance(v, list) else [v])
    return out


def _range(*args: Any) -> list:
    nums = [to_hcl_number(a) for a in args]
    if len(nums) == 1:
        start, stop, step = 0, nums[0], 1
    elif len(nums) == 2:
        start, stop, step = nums[0], nums[1], 1 if nums[1] >= nums[0] else -1
    else:
        start, stop, step = nums
    out = []
    value = start
    while (step > 0 and value < stop) or (step < 0 and value > stop):
        out.append(value)
        value += step
    return out


def _numbers(*values: Any) -> list[int | float]:
    if not values:
        raise ValueError("at least one number is required")
    return [to_hcl_number(v) for v in values]


FUNCTIONS: dict[str, Function] = {
    "upper": lambda s: to_hcl_string(s).upper(),
    "lower": lambda s: to_hcl_string(s).lower(),
    "title": lambda s: to_hcl_string(s).title(),
    "format": _format,
    "formatlist": lambda fmt, *lists: [_format(fmt, *row) for row in zip(*lists, strict=True)],
    "join": lambda sep, *lists: sep.join(to_hcl_string(v) for lst in lists for v in lst),
    "split": lambda sep, s: s.split(sep),
    "concat": lambda *lists: [v for lst in lists for v in lst],
    "length": lambda v: len(v),
    "min": lambda *v: min(_numbers(*v)),
    "max": lambda *v: max(_numbers(*v)),
    "abs": lambda n: abs(to_hcl_number(n)),
    "ceil": lambda n: math.ceil(to_hcl_number(n)),
    "floor": lambda n: math.floor(to_hcl_number(n)),
    "trimspace": lambda s: s.strip(),
    "trim": lambda s, chars: s.strip(chars),
    "trimprefix": lambda s, p: s[len(p) :] if s.startswith(p) else s,
    "trimsuffix": lambda s, p: s[: -len(p)] if p and s.endswith(p) else s,
    "chomp": lambda s: s.rstrip("\r\n"),
    "startswith": lambda s, p: s.startswith(p),
    "endswith": lambda s, p: s.endswith(p),
    "strrev": lambda s: s[::-1],
    "replace": _replace,
    "substr": _substr,
    "lookup": _lookup,
    "merge": _merge,
    "keys": lambda m: sorted(m),
    "values": lambda m: [m[k] for k in sorted(m)],
    "contains": lambda lst, v: v in lst,
    "coalesce": _coalesce,
    "compact": lambda lst: [v for v in lst if v not in (None, "")],
    "distinct": lambda lst: [
        json.loads(v) for v in dict.fromkeys(json.dumps(x, sort_keys=True) for x in lst)
    ],
    "element": lambda lst, i: lst[int(i) % len(lst)],
    "index": lambda lst, v: lst.index(v),
    "flatten": _flatten,
    "range": _range,
    "reverse": lambda lst: list(reversed(lst)),
    "sort": lambda lst: sorted(to_hcl_string(v) for v in lst),
    "zipmap": lambda ks, vs: dict(zip(ks, vs, strict=True)),
    "tostring": lambda v: None if v is None else to_hcl_string(v),
    "tonumber": lambda v: None if v is None else to_hcl_number(v),
    "tobool": _tobool,
    "tolist": lambda v: list(v),
    "toset": _toset,
    "tomap": lambda v: dict(v),
    "jsonencode": lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False),
    "jsondecode": lambda s: json.loads(s),
    "base64encode": lambda s: base64.b64encode(s.encode()).decode(),
    "base64decode": lambda s: base64.b64decode(s.encode()).decode(),
}
