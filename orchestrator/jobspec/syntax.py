"""The one place that touches python-hcl2: parse text, convert lark trees to `nodes`, explain errors."""

from __future__ import annotations

import re

import hcl2
from hcl2.utils import process_escape_sequences
from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .diagnostics import Diagnostic, JobspecError
from .nodes import (
    Attribute,
    BinaryOp,
    Block,
    Body,
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

_SKIP = {"new_line_or_comment"}
_HEREDOC_HEAD = re.compile(r"<<-?([A-Za-z][A-Za-z0-9._-]*)\r?\n")


def parse_body(text: str, filename: str) -> Body:
    """Parse HCL text into a `Body`; a syntax error raises JobspecError with one located Diagnostic."""
    try:
        tree = hcl2.parses_to_tree(text)
    except UnexpectedInput as exc:
        raise JobspecError([_syntax_diagnostic(exc, filename)]) from None
    return _Converter(text).body(tree.children[0])


def parse_expression(text: str, line: int = 1, column: int = 1) -> Expr:
    """Parse one expression (used for heredoc interpolations and typed -var values).

    Raises ValueError when `text` is not a single valid expression. Positions are shifted so that
    the expression reports where it sits in its enclosing file.
    """
    try:
        tree = hcl2.parses_to_tree(f"x = {text}")
    except UnexpectedInput as exc:
        raise ValueError(_explain(exc)) from None
    attrs = [c for c in tree.children[0].children if isinstance(c, Tree) and c.data == "attribute"]
    if len(attrs) != 1 or len(tree.children[0].children) > 3:
        raise ValueError("not a single expression")
    return _Converter(f"x = {text}", line_shift=line - 1, column_shift=column - 5).expr(attrs[0].children[-1])


# ---- lark tree -> nodes --------------------------------------------------------------------------


def _kids(tree: Tree) -> list[Tree]:
    return [c for c in tree.children if isinstance(c, Tree) and c.data not in _SKIP]


def _name_of(tree: Tree | Token) -> str:
    """The text of an identifier, keyword, literal_value (as a name) or plain quoted string."""
    if isinstance(tree, Token):
        return str(tree)
    if tree.data == "string":
        return "".join(str(p.children[0]) for p in tree.children if isinstance(p, Tree))
    return str(tree.children[0])


class _Converter:
    def __init__(self, text: str, line_shift: int = 0, column_shift: int = 0):
        self.text = text
        self.line_shift = line_shift
        self.column_shift = column_shift

    def _pos(self, item: Tree | Token) -> tuple[int, int]:
        if isinstance(item, Token):
            line, col = item.line or 1, item.column or 1
        else:
            line, col = item.meta.line, item.meta.column
        # Column shifts only apply on the first line of a re-parsed fragment.
        return line + self.line_shift, col + (self.column_shift if line == 1 else 0)

    def body(self, tree: Tree) -> Body:
        out = Body()
        for child in _kids(tree):
            if child.data == "attribute":
                line, col = self._pos(child)
                out.attributes.append(
                    Attribute(line, col, _name_of(child.children[0]), self.expr(child.children[-1]))
                )
            elif child.data == "block":
                parts = _kids(child)
                line, col = self._pos(child)
                labels = [_name_of(p) for p in parts[1:-1]]
                out.blocks.append(Block(line, col, _name_of(parts[0]), labels, self.body(parts[-1])))
        return out

    def expr(self, tree: Tree | Token) -> Expr:
        line, col = self._pos(tree)
        if isinstance(tree, Token):
            return Unsupported(line, col, f"token {tree.type}")
        kind = tree.data
        kids = _kids(tree)
        if kind == "expr_term":
            # Either a wrapper around one term or a parenthesised expression.
            return self.expr(kids[0])
        if kind == "int_lit":
            return Literal(line, col, int(str(tree.children[0])))
        if kind == "float_lit":
            return Literal(line, col, float(str(tree.children[0])))
        if kind == "literal_value":
            return Literal(line, col, {"true": True, "false": False, "null": None}[str(tree.children[0])])
        if kind in ("identifier", "keyword"):
            return Variable(line, col, str(tree.children[0]))
        if kind == "string":
            return self._string(tree, line, col)
        if kind in ("heredoc_template", "heredoc_template_trim"):
            return self._heredoc(tree.children[0], kind.endswith("trim"), line, col)
        if kind == "tuple":
            return TupleExpr(line, col, [self.expr(k) for k in kids])
        if kind == "object":
            return ObjectExpr(line, col, [self._object_item(k) for k in kids])
        if kind == "function_call":
            return self._call(tree, line, col)
        if kind == "get_attr_expr_term":
            return GetAttr(line, col, self.expr(kids[0]), _name_of(_kids(kids[1])[0]))
        if kind == "index_expr_term":
            index = kids[1]
            if index.data == "short_index":  # a.0 is a legacy form of a[0]
                key: Expr = Literal(line, col, int(str(index.children[-1])))
            else:
                key = self.expr(_kids(index)[0])
            return Index(line, col, self.expr(kids[0]), key)
        if kind == "binary_op":
            term = kids[1]
            op_tree, right = _kids(term)
            return BinaryOp(line, col, str(op_tree.children[0]).strip(), self.expr(kids[0]), self.expr(right))
        if kind == "unary_op":
            return UnaryOp(line, col, str(tree.children[0]), self.expr(kids[0]))
        if kind == "conditional":
            return Conditional(line, col, self.expr(kids[0]), self.expr(kids[1]), self.expr(kids[2]))
        names = {
            "attr_splat_expr_term": "splat expressions (.*)",
            "full_splat_expr_term": "splat expressions ([*])",
            "for_tuple_expr": "for expressions",
            "for_object_expr": "for expressions",
            "template_string": "escaped template strings",
        }
        return Unsupported(line, col, names.get(kind, kind))

    def _object_item(self, elem: Tree) -> tuple[str | Expr, Expr]:
        key_tree, value = _kids(elem)
        inner = _kids(key_tree)[0] if _kids(key_tree) else key_tree.children[0]
        # A bare name or a plain quoted string is a literal key; anything else is evaluated.
        if isinstance(inner, Tree) and inner.data == "expr_term":
            inner = _kids(inner)[0] if _kids(inner) else inner
        if isinstance(inner, Token) or inner.data in ("identifier", "keyword", "literal_value"):
            return _name_of(inner), self.expr(value)
        key = self.expr(inner)
        if isinstance(key, Literal) and isinstance(key.value, str):
            return key.value, self.expr(value)
        return key, self.expr(value)

    def _call(self, tree: Tree, line: int, col: int) -> Call:
        kids = _kids(tree)
        name = _name_of(kids[0])
        args_tree = next((k for k in kids if k.data == "arguments"), None)
        args: list[Expr] = []
        expand = False
        if args_tree is not None:
            args = [self.expr(a) for a in _kids(args_tree)]
            expand = any(isinstance(t, Token) and t.type == "ELLIPSIS" for t in args_tree.children)
        return Call(line, col, name, args, expand)

    def _string(self, tree: Tree, line: int, col: int) -> Expr:
        parts: list[str | Interpolation] = []
        for part in tree.children:
            if not isinstance(part, Tree):
                continue  # the quote tokens
            piece = part.children[0]
            if isinstance(piece, Token):
                raw = str(piece)
                if piece.type == "ESCAPED_INTERPOLATION":
                    parts.append(raw[1:])  # $${x} is a literal ${x}
                elif piece.type == "ESCAPED_DIRECTIVE":
                    parts.append(raw[1:])
                else:
                    parts.append(process_escape_sequences(raw))
            elif piece.data == "interpolation":
                pline, pcol = self._pos(piece)
                source = self.text[piece.meta.start_pos : piece.meta.end_pos]
                parts.append(Interpolation(pline, pcol, self.expr(_kids(piece)[0]), source))
            else:
                return Unsupported(line, col, "template directives (%{...}); write %%{ for a literal %{")
        return _template(parts, line, col)

    def _heredoc(self, token: Token, trim: bool, line: int, col: int) -> Expr:
        raw = str(token)
        head = _HEREDOC_HEAD.match(raw)
        assert head is not None  # the grammar only produces tokens of this shape
        rest = raw[head.end() :]
        # The closing marker is the last non-empty line; everything before it is the content.
        lines = rest.splitlines(keepends=True)
        while lines and not lines[-1].strip():
            lines.pop()
        content_lines = lines[:-1]
        if trim:
            indents = [len(s) - len(s.lstrip(" \t")) for s in content_lines if s.strip()]
            cut = min(indents) if indents else 0
            content_lines = [s[min(cut, len(s) - len(s.lstrip(" \t"))) :] for s in content_lines]
        content = "".join(content_lines)
        if "${" not in content and "%{" not in content:
            return Literal(line, col, content)
        return _template(self._heredoc_parts(content, line + 1), line, col)

    def _heredoc_parts(self, content: str, first_line: int) -> list[str | Interpolation]:
        """Split heredoc text into literal runs and ${...} interpolations (hcl2 leaves them raw)."""
        parts: list[str | Interpolation] = []
        i = 0
        literal = []
        while i < len(content):
            if content.startswith("$${", i) or content.startswith("%%{", i):
                literal.append(content[i + 1 : i + 3])
                i += 3
                continue
            if content.startswith("${", i):
                end = _matching_brace(content, i + 1)
                if end is not None:
                    source = content[i : end + 1]
                    line = first_line + content.count("\n", 0, i)
                    column = i - content.rfind("\n", 0, i)
                    try:
                        expr = parse_expression(source[2:-1], line, column + 2)
                    except ValueError:
                        # Not HCL (e.g. a shell "${VAR:-x}" in a script): keep the text as written.
                        literal.append(source)
                    else:
                        parts.append("".join(literal))
                        literal = []
                        parts.append(Interpolation(line, column, expr, source))
                    i = end + 1
                    continue
            literal.append(content[i])
            i += 1
        parts.append("".join(literal))
        return parts


def _template(parts: list[str | Interpolation], line: int, col: int) -> Expr:
    merged: list[str | Interpolation] = []
    for p in parts:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        elif p != "":
            merged.append(p)
    if not merged:
        return Literal(line, col, "")
    if len(merged) == 1 and isinstance(merged[0], str):
        return Literal(line, col, merged[0])
    return Template(line, col, merged)


def _matching_brace(text: str, start: int) -> int | None:
    """Index of the '}' closing the '{' at `start`, skipping quoted strings; None if unbalanced."""
    depth = 0
    i = start
    quote = False
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quote = False
        elif ch == '"':
            quote = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        elif ch == "\n" and depth == 1:
            return None
        i += 1
    return None


# ---- syntax errors in plain words ----------------------------------------------------------------

_TOKEN_WORDS = {
    "RBRACE": "'}'",
    "LBRACE": "'{'",
    "RSQB": "']'",
    "LSQB": "'['",
    "RPAR": "')'",
    "LPAR": "'('",
    "COMMA": "','",
    "EQ": "'='",
    "DBLQUOTE": "'\"'",
    "NAME": "a name",
    "NL_OR_COMMENT": "a new line",
    "$END": "the end of the file",
    "STRING_CHARS": "text",
    "INT_LITERAL": "a number",
    "FLOAT_LITERAL": "a number",
    "COLON": "':'",
    "DOT": "'.'",
}


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    text = str(token).strip().splitlines()[0] if str(token).strip() else str(token)
    return f'"{text[:20]}"' if text else _TOKEN_WORDS.get(token.type, token.type)


def _explain(exc: UnexpectedInput) -> str:
    """Turn a lark error into HCL's own "Summary; Detail." where HCL has one, else a sentence of the same form."""
    if isinstance(exc, UnexpectedToken):
        expected = set(exc.expected)
        found = _describe_token(exc.token)
        at_end = exc.token.type == "$END"
        if {"COMMA", "RSQB"} <= expected:
            return "Missing item separator; Expected a comma to mark the beginning of the next item."
        if {"COMMA", "RPAR"} <= expected:
            return "Missing argument separator; A comma is required to separate each function argument from the next."
        if "STRING_CHARS" in expected and at_end:
            return "Unterminated template string; No closing marker was found for the string."
        if "RBRACE" in expected and at_end:
            return ("Unclosed configuration block; There is no closing brace for this block before the end of the "
                    "file. This may be caused by incorrect brace nesting elsewhere in this file.")
        if expected == {"$END"}:
            return f"Unexpected {found}; Nothing is open here for it to close (an extra '}}'?)."
        if expected == {"LBRACE"}:
            return f"Invalid block definition; Expected '{{' after the block's name and labels, not {found}."
        if "INT_LITERAL" in expected:
            return f"Invalid expression; Expected the start of an expression, but found {found}."
        if "EQ" in expected:
            return f"Missing '='; Expected '=' after the argument name, not {found}."
        if "NAME" in expected:
            return "Argument or block definition required; An argument or block definition is required here."
        wanted = sorted(_TOKEN_WORDS.get(t, t) for t in expected)[:6]
        return f"Unexpected {found}; Expected one of {', '.join(wanted)}."
    if isinstance(exc, UnexpectedCharacters):
        return f"Invalid character; The character {exc.char!r} is not valid HCL here."
    if isinstance(exc, UnexpectedEOF):
        return "Unexpected end of file; A block, list or string is not closed."
    return str(exc).splitlines()[0]


def _syntax_diagnostic(exc: UnexpectedInput, filename: str) -> Diagnostic:
    line = getattr(exc, "line", None)
    column = getattr(exc, "column", None)
    if line is not None and line < 1:
        line, column = None, None
    # The offending token's extent on its line, as HCL prints it ("3,3-8"); none for the end of the file.
    token = getattr(exc, "token", None)
    end = getattr(token, "end_column", None) if token is not None and token.type != "$END" else None
    if end is not None and (getattr(token, "end_line", line) != line or column is None):
        end = None
    return Diagnostic(filename, line, column, "", _explain(exc), end_column=end)
