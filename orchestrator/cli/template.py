"""`-t`: the part of Go's text/template people use with Nomad (fields, range, if/else, with, printf, len, index)."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from .flags import CommandError

_ACTION = re.compile(r"{{(-?)\s*(.*?)\s*(-?)}}", re.S)


def render(template: str, data: Any) -> str:
    tokens = _tokenize(template)
    nodes, rest = _parse(tokens, 0, ())
    if rest != len(tokens):
        raise CommandError(f"Error formatting the data: template: unexpected {{{{{tokens[rest][1]}}}}}")
    return _execute(nodes, data, data)


def _tokenize(template: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    for match in _ACTION.finditer(template):
        text = template[pos:match.start()]
        if match.group(1):
            text = text.rstrip()
        if tokens and tokens[-1][0] == "trim":
            tokens.pop()
            text = text.lstrip()
        tokens.append(("text", text))
        tokens.append(("action", match.group(2)))
        if match.group(3):
            tokens.append(("trim", ""))
        pos = match.end()
    text = template[pos:]
    if tokens and tokens[-1][0] == "trim":
        tokens.pop()
        text = text.lstrip()
    tokens.append(("text", text))
    return tokens


def _parse(tokens: list[tuple[str, str]], i: int, stop: tuple[str, ...]) -> tuple[list, int]:
    nodes: list = []
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "text":
            nodes.append(("text", value))
            i += 1
            continue
        word = value.split(" ", 1)[0]
        if word in stop:
            return nodes, i
        if word in ("range", "if", "with"):
            body, i = _parse(tokens, i + 1, ("end", "else"))
            other: list = []
            if i < len(tokens) and tokens[i][1] == "else":
                other, i = _parse(tokens, i + 1, ("end",))
            if i >= len(tokens):
                raise CommandError(f"Error formatting the data: template: unexpected EOF in {word}")
            nodes.append((word, value[len(word):].strip(), body, other))
            i += 1
            continue
        nodes.append(("expr", value))
        i += 1
    return nodes, i


def _execute(nodes: list, dot: Any, root: Any) -> str:
    parts = []
    for node in nodes:
        if node[0] == "text":
            parts.append(node[1])
        elif node[0] == "expr":
            parts.append(_show(_evaluate(node[1], dot, root)))
        else:
            word, expr, body, other = node
            value = _evaluate(expr, dot, root)
            if word == "range":
                items = list(value.values()) if isinstance(value, dict) else list(value or [])
                if items:
                    parts.extend(_execute(body, item, root) for item in items)
                else:
                    parts.append(_execute(other, dot, root))
            elif _truthy(value):
                parts.append(_execute(body, value if word == "with" else dot, root))
            else:
                parts.append(_execute(other, dot, root))
    return "".join(parts)


def _evaluate(expr: str, dot: Any, root: Any) -> Any:
    words = shlex.split(expr, posix=False)
    if not words:
        return dot
    name, args = words[0], [_operand(w, dot, root) for w in words[1:]]
    if name == "printf":
        return _printf(str(args[0]), args[1:])
    if name == "len":
        return len(args[0] or [])
    if name == "index":
        value = args[0]
        for key in args[1:]:
            value = value[key] if value is not None else None
        return value
    if name in ("json", "toJson"):
        return json.dumps(args[0] if args else dot)
    return _operand(name, dot, root)


def _operand(word: str, dot: Any, root: Any) -> Any:
    if word.startswith('"') and word.endswith('"'):
        return json.loads(word)
    if word.lstrip("-").isdigit():
        return int(word)
    if word == ".":
        return dot
    if word.startswith("$"):
        value, word = root, word[1:]
    elif word.startswith("."):
        value = dot
    else:
        raise CommandError(f'Error formatting the data: template: function "{word}" not defined')
    for field in filter(None, word.split(".")):
        value = value.get(field) if isinstance(value, dict) else None
    return value


def _printf(fmt: str, args: list[Any]) -> str:
    values = iter(args)
    return re.sub(r"%[-+# 0-9.]*[svdqtf%]",
                  lambda m: "%" if m.group() == "%%" else _verb(m.group(), next(values, None)), fmt)


def _verb(verb: str, value: Any) -> str:
    if verb.endswith("q"):
        return json.dumps(_show(value))
    if verb.endswith(("d", "f")) and isinstance(value, int | float):
        return ("%" + verb[1:]) % value
    width = verb[1:-1]
    return ("%" + width + "s") % _show(value) if width else _show(value)


def _truthy(value: Any) -> bool:
    return bool(value)


def _show(value: Any) -> str:
    """Go's %v: true/false, <no value> for missing fields, [a b] for lists, map[k:v] for maps."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_show(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)
