"""The small HCL syntax tree the rest of the package works on (positions on every node)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    line: int
    column: int


# ---- expressions ---------------------------------------------------------------------------------


@dataclass
class Literal(Node):
    value: Any


@dataclass
class Interpolation(Node):
    expr: Expr
    source: str  # the exact "${...}" text, kept when the value is only known at run time


@dataclass
class Template(Node):
    parts: list[str | Interpolation]


@dataclass
class TupleExpr(Node):
    items: list[Expr]


@dataclass
class ObjectExpr(Node):
    # A key is a plain name (bare identifier or quoted string) or an expression to evaluate.
    items: list[tuple[str | Expr, Expr]]


@dataclass
class Variable(Node):
    name: str


@dataclass
class GetAttr(Node):
    obj: Expr
    name: str


@dataclass
class Index(Node):
    obj: Expr
    key: Expr


@dataclass
class Call(Node):
    name: str
    args: list[Expr]
    expand_last: bool = False


@dataclass
class BinaryOp(Node):
    op: str
    left: Expr
    right: Expr


@dataclass
class UnaryOp(Node):
    op: str
    operand: Expr


@dataclass
class Conditional(Node):
    cond: Expr
    then: Expr
    otherwise: Expr


@dataclass
class Unsupported(Node):
    what: str


Expr = (
    Literal
    | Template
    | TupleExpr
    | ObjectExpr
    | Variable
    | GetAttr
    | Index
    | Call
    | BinaryOp
    | UnaryOp
    | Conditional
    | Unsupported
)


# ---- structure -----------------------------------------------------------------------------------


@dataclass
class Attribute(Node):
    name: str
    expr: Expr


@dataclass
class Block(Node):
    type: str
    labels: list[str]
    body: Body


@dataclass
class Body:
    attributes: list[Attribute] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
