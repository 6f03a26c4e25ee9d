"""Constraint operators and `${node.*}`/`${attr.*}`/`${meta.*}` target resolution against a node."""

from __future__ import annotations

import re
from functools import lru_cache

from orchestrator.structs import Constraint, Node

_MISSING = object()


def resolve_target(target: str, node: Node) -> tuple[object, bool]:
    """The value a constraint target names on this node, and whether the node has it at all."""
    if not target.startswith("${"):
        return target, True
    name = target[2:-1] if target.endswith("}") else target[2:]
    if name.startswith("attr."):
        value = node.attributes.get(name[5:], _MISSING)
    elif name.startswith("meta."):
        value = node.meta.get(name[5:], _MISSING)
    elif name in ("node.unique.id", "node.id"):
        value = node.id
    elif name == "node.unique.name":
        value = node.name
    elif name == "node.datacenter":
        value = node.datacenter
    elif name == "node.class":
        value = node.node_class
    elif name == "node.region":
        value = node.attributes.get("nomad.region", "global")
    elif name == "node.pool":
        value = node.attributes.get("node.pool", "default")
    else:
        value = _MISSING
    return (None, False) if value is _MISSING else (value, True)


def target_is_unique(target: str) -> bool:
    """Targets whose value differs on every node defeat per-class caching of feasibility."""
    return "unique." in target


def constraint_escapes_class(constraint: Constraint) -> bool:
    return target_is_unique(constraint.l_target) or target_is_unique(constraint.r_target)


def check_constraint(constraint: Constraint, node: Node) -> bool:
    """Whether the node satisfies a constraint; placement-wide operators (distinct_*) always pass here."""
    operand = constraint.operand
    if operand in ("distinct_hosts", "distinct_property"):
        return True
    lval, lfound = resolve_target(constraint.l_target, node)
    rval, rfound = resolve_target(constraint.r_target, node)
    return check_operand(operand, lval, rval, lfound, rfound)


def check_operand(operand: str, lval: object, rval: object, lfound: bool, rfound: bool) -> bool:
    if operand == "is_set":
        return lfound
    if operand == "is_not_set":
        return not lfound
    if operand in ("=", "==", "is"):
        return lfound and rfound and lval == rval
    if operand in ("!=", "not"):
        # A missing attribute is "not equal" to anything, as in Nomad.
        return not (lfound and rfound and lval == rval)
    if not (lfound and rfound):
        return False
    left, right = str(lval), str(rval)
    if operand in ("<", "<=", ">", ">="):
        return _check_order(operand, left, right)
    if operand == "regexp":
        pattern = _compile(right)
        return pattern is not None and pattern.search(left) is not None
    if operand in ("version", "semver"):
        return check_version(left, right, strict=operand == "semver")
    if operand in ("set_contains", "set_contains_all"):
        have = _as_set(left)
        return all(item in have for item in _as_set(right))
    if operand == "set_contains_any":
        have = _as_set(left)
        return any(item in have for item in _as_set(right))
    return False


def _as_set(text: str) -> set[str]:
    return {part.strip() for part in text.split(",") if part.strip()}


def _check_order(operand: str, left: str, right: str) -> bool:
    # Numbers compare as numbers when both sides parse, strings lexically otherwise (Nomad's checkOrder).
    lnum, rnum = _number(left), _number(right)
    a: object
    b: object
    a, b = (lnum, rnum) if lnum is not None and rnum is not None else (left, right)
    if operand == "<":
        return a < b  # type: ignore[operator]
    if operand == "<=":
        return a <= b  # type: ignore[operator]
    if operand == ">":
        return a > b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_STRICT_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def parse_version(text: str, strict: bool = False) -> tuple[tuple[int, ...], tuple] | None:
    """(numeric segments padded to 3, prerelease key) or None when the text is not a version."""
    match = (_STRICT_SEMVER if strict else _VERSION).match(text.strip())
    if not match:
        return None
    if strict:
        numbers = tuple(int(match.group(i)) for i in (1, 2, 3))
        pre = match.group(4)
    else:
        numbers = tuple(int(p) for p in match.group(1).split("."))
        pre = match.group(2)
    numbers = numbers + (0,) * (3 - len(numbers)) if len(numbers) < 3 else numbers
    # A release sorts after all its prereleases; prerelease parts compare numerically when numeric.
    pre_key: tuple = (1,) if not pre else (0, *((0, int(p), "") if p.isdigit() else (1, 0, p)
                                               for p in pre.split(".")))
    return numbers, pre_key


@lru_cache(maxsize=1024)
def _parse_version_constraint(spec: str, strict: bool) -> tuple[tuple[str, tuple], ...] | None:
    clauses = []
    for part in spec.split(","):
        match = re.match(r"^\s*(>=|<=|!=|~>|=|>|<)?\s*(\S+)\s*$", part)
        if not match:
            return None
        version = parse_version(match.group(2), strict)
        if version is None:
            return None
        clauses.append((match.group(1) or "=", (version, match.group(2))))
    return tuple(clauses)


def check_version(value: str, spec: str, strict: bool = False) -> bool:
    """Whether `value` satisfies a go-version style constraint such as `>= 1.2, < 2.0` or `~> 1.4`."""
    have = parse_version(value, strict)
    clauses = _parse_version_constraint(spec, strict)
    if have is None or clauses is None:
        return False
    for op, (want, raw) in clauses:
        if op == "~>":
            # Pessimistic: >= want, and below the next release of the second-to-last given segment.
            segments = len(raw.lstrip("v").split("-")[0].split("."))
            upper = list(want[0][: max(segments - 1, 1)])
            upper[-1] += 1
            if have < want or have[0][: len(upper)] >= tuple(upper):
                return False
            continue
        ok = {"=": have == want, "!=": have != want, ">": have > want, "<": have < want,
              ">=": have >= want, "<=": have <= want}[op]
        if not ok:
            return False
    return True
