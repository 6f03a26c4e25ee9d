"""Input variables (defaults, -var-file, -var) and locals: builds the Scope expressions see."""

from __future__ import annotations

import json
from typing import Any

from .diagnostics import Collector, Diagnostic, JobspecError, did_you_mean
from .evaluator import EvalError, RuntimeReference, Scope, evaluate
from .functions import to_hcl_number, to_hcl_string, type_name
from .nodes import Block, Body, Call, Expr, Variable
from .syntax import parse_body, parse_expression

_VARIABLE_KEYS = {"type", "default", "description", "sensitive", "nullable"}
_PRIMITIVES = {"string", "number", "bool", "any"}


def build_scope(
    body: Body,
    collector: Collector,
    cli_vars: dict[str, str] | None,
    var_files: list[tuple[str, str]],
) -> Scope:
    """Declared variables with their final values, and the file's locals, gathered into a Scope."""
    scope = Scope()
    declared: dict[str, Block] = {}
    types: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for block in (b for b in body.blocks if b.type == "variable"):
        name = _declare(block, collector, declared, types, values)
        if name:
            declared[name] = block

    for filename, text in var_files:
        for name, value, line, column in _read_var_file(filename, text, collector):
            if name in declared:
                values[name] = _convert(value, types.get(name), collector, filename, line, column, name)
            # Like Nomad, a var-file may carry values for other jobs: undeclared names are ignored.

    for name, raw in (cli_vars or {}).items():
        if name not in declared:
            collector.error(
                None,
                None,
                "",
                f'-var "{name}": no variable "{name}" is declared in the jobspec'
                + did_you_mean(name, declared),
            )
            continue
        values[name] = _from_cli(raw, types.get(name), collector, name)

    for name, block in declared.items():
        if name not in values:
            scope.unset.add(name)
            collector.error(
                block.line,
                block.column,
                f'variable "{name}"',
                f'no value for required variable "{name}": give it a default, '
                f"or set it with -var {name}=... or a -var-file",
            )
    scope.variables = values

    for block in (b for b in body.blocks if b.type == "locals"):
        for attr in block.body.attributes:
            if attr.name in scope.locals:
                collector.error(
                    attr.line, attr.column, "locals", f'local value "{attr.name}" is defined twice'
                )
            scope.locals[attr.name] = attr.expr
        for inner in block.body.blocks:
            collector.error(
                inner.line, inner.column, "locals", f'blocks are not allowed in locals ("{inner.type}")'
            )
    _check_validations(body, scope, collector)
    return scope


def _declare(block: Block, collector: Collector, declared: dict, types: dict, values: dict) -> str | None:
    path = f'variable "{block.labels[0]}"' if block.labels else "variable"
    if len(block.labels) != 1:
        collector.error(block.line, block.column, path, "a variable block needs exactly one name label")
        return None
    name = block.labels[0]
    if name in declared:
        collector.error(block.line, block.column, path, f'variable "{name}" is declared twice')
        return None
    for attr in block.body.attributes:
        if attr.name not in _VARIABLE_KEYS:
            collector.error(
                attr.line,
                attr.column,
                path,
                f'unknown key "{attr.name}" in variable block' + did_you_mean(attr.name, _VARIABLE_KEYS),
            )
        elif attr.name == "type":
            try:
                types[name] = _type_of(attr.expr)
            except ValueError as exc:
                collector.error(attr.line, attr.column, path, str(exc))
    for inner in block.body.blocks:
        if inner.type != "validation":
            collector.error(
                inner.line,
                inner.column,
                path,
                f'unknown block "{inner.type}" in variable block' + did_you_mean(inner.type, ["validation"]),
            )
    default = next((a for a in block.body.attributes if a.name == "default"), None)
    if default is not None:
        try:
            value = evaluate(default.expr, Scope())
        except (EvalError, RuntimeReference) as exc:
            collector.error(default.line, default.column, path, f"invalid default: {_message(exc)}")
        else:
            values[name] = _convert(
                value, types.get(name), collector, collector.filename, default.line, default.column, name
            )
    return name


def _type_of(expr: Expr) -> Any:
    """A type constraint as a small tuple: ("string",), ("list", inner), ("map", inner)..."""
    if isinstance(expr, Variable) and expr.name in _PRIMITIVES:
        return (expr.name,)
    if isinstance(expr, Call) and expr.name in ("list", "set", "map") and len(expr.args) == 1:
        return (expr.name, _type_of(expr.args[0]))
    if isinstance(expr, Call) and expr.name in ("object", "tuple"):
        return (expr.name,)
    raise ValueError("invalid type: use string, number, bool, any, list(T), set(T), map(T), object or tuple")


def _convert(
    value: Any,
    vtype: Any,
    collector: Collector,
    filename: str,
    line: int | None,
    column: int | None,
    name: str,
) -> Any:
    try:
        return _coerce(value, vtype)
    except ValueError as exc:
        collector.diagnostics.append(
            _diag(filename, line, column, f'variable "{name}"', f"invalid value: {exc}")
        )
        return value


def _coerce(value: Any, vtype: Any) -> Any:
    if vtype is None or vtype[0] in ("any", "object", "tuple") or value is None:
        return value
    kind = vtype[0]
    if kind == "string":
        return to_hcl_string(value)
    if kind == "number":
        return to_hcl_number(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise ValueError(f"a bool is required, not {value!r}")
    if kind in ("list", "set"):
        if not isinstance(value, list):
            raise ValueError(f"a list is required, not a {type_name(value)}")
        return [_coerce(v, vtype[1]) for v in value]
    if not isinstance(value, dict):
        raise ValueError(f"a map is required, not a {type_name(value)}")
    return {k: _coerce(v, vtype[1]) for k, v in value.items()}


def _from_cli(raw: str, vtype: Any, collector: Collector, name: str) -> Any:
    """A -var value: plain text for strings, parsed as an HCL expression for other types."""
    if vtype is None or vtype[0] == "string":
        return raw
    if vtype[0] in ("number", "bool"):
        return _convert(raw, vtype, collector, collector.filename, None, None, name)
    try:
        value = evaluate(parse_expression(raw), Scope())
    except (ValueError, EvalError, RuntimeReference) as exc:
        collector.error(None, None, "", f'-var "{name}": cannot parse {raw!r}: {_message(exc)}')
        return raw
    return _convert(value, vtype, collector, collector.filename, None, None, name)


def _read_var_file(
    filename: str, text: str, collector: Collector
) -> list[tuple[str, Any, int | None, int | None]]:
    """(name, value, line, column) for each assignment in a var file (HCL, or JSON if *.json)."""
    if filename.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            collector.diagnostics.append(
                _diag(filename, exc.lineno, exc.colno, "", f"invalid JSON: {exc.msg}")
            )
            return []
        if not isinstance(data, dict):
            collector.diagnostics.append(_diag(filename, 1, 1, "", "a JSON var file must hold an object"))
            return []
        return [(k, v, None, None) for k, v in data.items()]
    try:
        body = parse_body(text, filename)
    except JobspecError as exc:
        collector.diagnostics.extend(exc.diagnostics)
        return []
    out = []
    for block in body.blocks:
        collector.diagnostics.append(
            _diag(
                filename,
                block.line,
                block.column,
                "",
                f'a var file holds only "name = value" lines, not blocks ("{block.type}")',
            )
        )
    for attr in body.attributes:
        try:
            out.append((attr.name, evaluate(attr.expr, Scope()), attr.line, attr.column))
        except (EvalError, RuntimeReference) as exc:
            collector.diagnostics.append(_diag(filename, attr.line, attr.column, "", _message(exc)))
    return out


def _check_validations(body: Body, scope: Scope, collector: Collector) -> None:
    for block in (b for b in body.blocks if b.type == "variable" and len(b.labels) == 1):
        for rule in (b for b in block.body.blocks if b.type == "validation"):
            attrs = {a.name: a for a in rule.body.attributes}
            if "condition" not in attrs or block.labels[0] not in scope.variables:
                continue
            try:
                ok = evaluate(attrs["condition"].expr, scope)
                message = evaluate(attrs["error_message"].expr, scope) if "error_message" in attrs else None
            except (EvalError, RuntimeReference) as exc:
                if not getattr(exc, "quiet", False):
                    collector.error(rule.line, rule.column, f'variable "{block.labels[0]}"', _message(exc))
                continue
            if ok is False:
                collector.error(
                    rule.line,
                    rule.column,
                    f'variable "{block.labels[0]}"',
                    f"invalid value: {message or 'the validation condition failed'}",
                )


def _message(exc: Exception) -> str:
    if isinstance(exc, RuntimeReference):
        return f'unknown name "{exc.node.name}" (only literals, functions and var.* are allowed here)'
    return getattr(exc, "message", str(exc))


def _diag(filename: str, line: int | None, column: int | None, path: str, message: str) -> Diagnostic:
    return Diagnostic(filename, line, column, path, message)
