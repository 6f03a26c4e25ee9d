"""Evaluates HCL expressions: variables, locals, functions and operators; runtime ${...} stay text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import did_you_mean
from .functions import FUNCTIONS, to_hcl_number, to_hcl_string, type_name
from .nodes import (
    BinaryOp,
    Call,
    Conditional,
    Expr,
    GetAttr,
    Index,
    Interpolation,
    Literal,
    ObjectExpr,
    Template,
    TupleExpr,
    UnaryOp,
    Unsupported,
    Variable,
)


class EvalError(Exception):
    """An expression that cannot be evaluated; carries the position of the offending part."""

    def __init__(self, line: int, column: int, message: str, quiet: bool = False):
        super().__init__(message)
        self.line = line
        self.column = column
        self.message = message
        # Quiet errors follow from a problem already reported (a required variable with no value).
        self.quiet = quiet


class RuntimeReference(Exception):
    """The expression names something Nomad only knows at run time (node.*, attr.*, NOMAD_*...)."""

    def __init__(self, node: Variable):
        super().__init__(node.name)
        self.node = node


@dataclass
class Scope:
    """What expressions can see: input variables, locals (evaluated lazily) and functions."""

    variables: dict[str, Any] = field(default_factory=dict)
    unset: set[str] = field(default_factory=set)  # declared, but no value was given
    locals: dict[str, Expr] = field(default_factory=dict)
    functions: dict[str, Callable[..., Any]] = field(default_factory=lambda: dict(FUNCTIONS))
    _local_values: dict[str, Any] = field(default_factory=dict)
    _in_progress: list[str] = field(default_factory=list)

    def local(self, name: str, node: GetAttr) -> Any:
        if name in self._local_values:
            return self._local_values[name]
        if name not in self.locals:
            raise EvalError(
                node.line,
                node.column,
                f'unknown local value "local.{name}"' + did_you_mean(name, self.locals),
            )
        if name in self._in_progress:
            cycle = " -> ".join([*self._in_progress, name])
            raise EvalError(node.line, node.column, f"local values refer to each other in a cycle: {cycle}")
        self._in_progress.append(name)
        try:
            value = evaluate(self.locals[name], self)
        finally:
            self._in_progress.pop()
        self._local_values[name] = value
        return value


def evaluate(expr: Expr, scope: Scope) -> Any:
    """The value of `expr`; RuntimeReference escapes when it depends on a run-time name."""
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Template):
        return _template(expr, scope)
    if isinstance(expr, TupleExpr):
        return [evaluate(item, scope) for item in expr.items]
    if isinstance(expr, ObjectExpr):
        out: dict[str, Any] = {}
        for key, value in expr.items:
            name = key if isinstance(key, str) else _as_string(evaluate(key, scope), key)
            out[name] = evaluate(value, scope)
        return out
    if isinstance(expr, Variable):
        if expr.name == "var":
            return dict(scope.variables)
        if expr.name == "local":
            raise EvalError(expr.line, expr.column, 'use "local.<name>" to refer to a local value')
        raise RuntimeReference(expr)
    if isinstance(expr, GetAttr):
        return _get_attr(expr, scope)
    if isinstance(expr, Index):
        return _index(expr, scope)
    if isinstance(expr, Call):
        return _call(expr, scope)
    if isinstance(expr, BinaryOp):
        return _binary(expr, scope)
    if isinstance(expr, UnaryOp):
        value = evaluate(expr.operand, scope)
        if expr.op == "!":
            if not isinstance(value, bool):
                raise EvalError(expr.line, expr.column, f"'!' needs a bool, not a {type_name(value)}")
            return not value
        return -_number(value, expr)
    if isinstance(expr, Conditional):
        cond = evaluate(expr.cond, scope)
        if not isinstance(cond, bool):
            raise EvalError(expr.line, expr.column, f"a condition must be a bool, not a {type_name(cond)}")
        return evaluate(expr.then if cond else expr.otherwise, scope)
    if isinstance(expr, Unsupported):
        raise EvalError(expr.line, expr.column, f"{expr.what} are not supported in jobspecs")
    raise EvalError(expr.line, expr.column, f"cannot evaluate {type(expr).__name__}")


def _template(expr: Template, scope: Scope) -> Any:
    # "${var.list}" alone yields the list itself, as HCL does; otherwise parts are joined as text.
    if len(expr.parts) == 1 and isinstance(expr.parts[0], Interpolation):
        part = expr.parts[0]
        try:
            return evaluate(part.expr, scope)
        except RuntimeReference:
            return part.source
    pieces: list[str] = []
    for part in expr.parts:
        if isinstance(part, str):
            pieces.append(part)
            continue
        try:
            value = evaluate(part.expr, scope)
        except RuntimeReference:
            # Nomad fills ${node.class}, ${attr.x}, ${NOMAD_META_x}... when it places the task.
            pieces.append(part.source)
            continue
        pieces.append(_as_string(value, part))
    return "".join(pieces)


def _as_string(value: Any, node: Any) -> str:
    try:
        return to_hcl_string(value)
    except ValueError as exc:
        raise EvalError(node.line, node.column, f"cannot use this value in a string: {exc}") from None


def _number(value: Any, node: Any) -> int | float:
    try:
        return to_hcl_number(value)
    except ValueError as exc:
        raise EvalError(node.line, node.column, f"a number is required: {exc}") from None


def _get_attr(expr: GetAttr, scope: Scope) -> Any:
    if isinstance(expr.obj, Variable) and expr.obj.name == "var":
        if expr.name in scope.unset:
            raise EvalError(expr.line, expr.column, f'variable "{expr.name}" has no value', quiet=True)
        if expr.name not in scope.variables:
            raise EvalError(
                expr.line,
                expr.column,
                f'undeclared input variable "var.{expr.name}"; declare it '
                f'with a variable "{expr.name}" block' + did_you_mean(expr.name, scope.variables),
            )
        return scope.variables[expr.name]
    if isinstance(expr.obj, Variable) and expr.obj.name == "local":
        return scope.local(expr.name, expr)
    obj = evaluate(expr.obj, scope)
    if isinstance(obj, dict):
        if expr.name not in obj:
            raise EvalError(
                expr.line,
                expr.column,
                f'this object has no attribute "{expr.name}"' + did_you_mean(expr.name, obj),
            )
        return obj[expr.name]
    raise EvalError(expr.line, expr.column, f'cannot read attribute "{expr.name}" of a {type_name(obj)}')


def _index(expr: Index, scope: Scope) -> Any:
    obj = evaluate(expr.obj, scope)
    key = evaluate(expr.key, scope)
    if isinstance(obj, list):
        try:
            i = int(to_hcl_number(key))
        except ValueError:
            raise EvalError(expr.line, expr.column, "a list index must be a number") from None
        if not 0 <= i < len(obj):
            raise EvalError(expr.line, expr.column, f"index {i} is out of range for a list of {len(obj)}")
        return obj[i]
    if isinstance(obj, dict):
        name = _as_string(key, expr)
        if name not in obj:
            raise EvalError(expr.line, expr.column, f'the map has no key "{name}"')
        return obj[name]
    raise EvalError(expr.line, expr.column, f"cannot index a {type_name(obj)}")


def _call(expr: Call, scope: Scope) -> Any:
    fn = scope.functions.get(expr.name)
    if fn is None:
        raise EvalError(
            expr.line,
            expr.column,
            f'unknown function "{expr.name}"' + did_you_mean(expr.name, scope.functions),
        )
    args = [evaluate(a, scope) for a in expr.args]
    if expr.expand_last:
        if not args or not isinstance(args[-1], list):
            raise EvalError(expr.line, expr.column, "'...' needs a list as the last argument")
        args = args[:-1] + args[-1]
    try:
        return fn(*args)
    except EvalError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError) as exc:
        raise EvalError(expr.line, expr.column, f"invalid arguments to {expr.name}(): {exc}") from None


_COMPARE = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _binary(expr: BinaryOp, scope: Scope) -> Any:
    op = expr.op
    left = evaluate(expr.left, scope)
    if op in ("&&", "||"):
        if not isinstance(left, bool):
            raise EvalError(expr.line, expr.column, f"'{op}' needs bools, not a {type_name(left)}")
        if (op == "&&" and not left) or (op == "||" and left):
            return left
        right = evaluate(expr.right, scope)
        if not isinstance(right, bool):
            raise EvalError(expr.line, expr.column, f"'{op}' needs bools, not a {type_name(right)}")
        return right
    right = evaluate(expr.right, scope)
    if op == "==":
        return left == right and type_name(left) == type_name(right)
    if op == "!=":
        return not (left == right and type_name(left) == type_name(right))
    a, b = _number(left, expr), _number(right, expr)
    if op in _COMPARE:
        return _COMPARE[op](a, b)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0 and op in ("/", "%"):
        raise EvalError(expr.line, expr.column, "division by zero")
    if op == "/":
        quotient = a / b
        return (
            int(quotient) if quotient.is_integer() and isinstance(a, int) and isinstance(b, int) else quotient
        )
    return a % b
