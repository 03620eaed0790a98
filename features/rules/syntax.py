"""Rule language: tokenizer, syntax tree, whitelisted functions, type checks and the recursive-descent parser."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import polars as pl

from features.rules.fields import MAX_EXPRESSION_LENGTH, MAX_NESTING_DEPTH, RuleSyntaxError, _COMPARISONS, _CONDITION, _FIELD_TYPES, _INT64_MAX, _KEYWORDS, _NUMERIC, _SINGLE_PUNCT, _WHITESPACE, _hours


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Token:
    kind: Literal["NAME", "STRING", "NUMBER", "OP", "EOF"]
    text: str
    value: object
    pos: int


def _is_name_start(ch: str) -> bool:
    return ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _is_name_char(ch: str) -> bool:
    return _is_name_start(ch) or _is_digit(ch)


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _scan_digits(text: str, i: int) -> int:
    while i < len(text) and _is_digit(text[i]):
        i += 1
    return i


def _scan_number(text: str, start: int) -> tuple[int, int | float]:
    """Scan ``digits [. digits] [e [+-] digits]`` from ``start``; return (end, value)."""
    end = _scan_digits(text, start)
    is_float = False
    if end < len(text) and text[end] == ".":
        frac_end = _scan_digits(text, end + 1)
        if frac_end == end + 1:
            raise RuleSyntaxError("malformed number", start)
        end, is_float = frac_end, True
    if end < len(text) and text[end] in "eE":
        exp_start = end + 1 + (end + 1 < len(text) and text[end + 1] in "+-")
        exp_end = _scan_digits(text, exp_start)
        if exp_end == exp_start:
            raise RuleSyntaxError("malformed number", start)
        end, is_float = exp_end, True
    if end < len(text) and (_is_name_char(text[end]) or text[end] == "."):
        raise RuleSyntaxError("malformed number", start)
    literal = text[start:end]
    if is_float:
        value = float(literal)
        if not math.isfinite(value):
            raise RuleSyntaxError("number out of range", start)
        return end, value
    if len(literal) > 19 or int(literal) > _INT64_MAX:
        raise RuleSyntaxError("integer out of range", start)
    return end, int(literal)


def _scan_string(text: str, start: int) -> tuple[int, str]:
    """Scan a quoted string from ``start`` (the quote); return (end, value)."""
    quote, chars, i = text[start], [], start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 < len(text) and text[i + 1] in "\\\"'":
                chars.append(text[i + 1])
                i += 2
                continue
            raise RuleSyntaxError("invalid escape in string", i)
        if ch == quote:
            return i + 1, "".join(chars)
        if ch in "\r\n":
            break
        chars.append(ch)
        i += 1
    raise RuleSyntaxError("unterminated string", start)


def _tokenize(text: str) -> list[_Token]:
    """Split ``text`` into tokens, ending with an EOF token at ``len(text)``."""
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _WHITESPACE:
            i += 1
        elif _is_name_start(ch):
            end = i + 1
            while end < len(text) and _is_name_char(text[end]):
                end += 1
            tokens.append(_Token("NAME", text[i:end], text[i:end], i))
            i = end
        elif _is_digit(ch):
            end, number = _scan_number(text, i)
            tokens.append(_Token("NUMBER", text[i:end], number, i))
            i = end
        elif ch in "\"'":
            end, string = _scan_string(text, i)
            tokens.append(_Token("STRING", text[i:end], string, i))
            i = end
        elif text[i : i + 2] in _COMPARISONS:
            tokens.append(_Token("OP", text[i : i + 2], None, i))
            i += 2
        elif ch in _SINGLE_PUNCT:
            tokens.append(_Token("OP", ch, None, i))
            i += 1
        elif ch == "=":
            raise RuleSyntaxError("unexpected '=' (use '==')", i)
        else:
            raise RuleSyntaxError(f"unexpected character {ch!r}", i)
    tokens.append(_Token("EOF", "", None, len(text)))
    return tokens


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class _Lit:
    pos: int
    type: str  # string, int, float, bool, null
    value: object


@dataclass(frozen=True)
class _ListLit:
    pos: int
    type: str  # always "list_literal"
    element_type: str | None  # None for an empty list
    values: tuple[object, ...]


@dataclass(frozen=True)
class _Field:
    pos: int
    type: str
    name: str


@dataclass(frozen=True)
class _Call:
    pos: int
    type: str
    name: str
    args: tuple[_Node, ...]


@dataclass(frozen=True)
class _Compare:
    pos: int  # start of the left operand
    type: str  # always "condition"
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Member:
    pos: int  # start of the operand
    type: str
    negated: bool
    operand: _Node
    values: _ListLit


@dataclass(frozen=True)
class _Not:
    pos: int
    type: str
    operand: _Node


@dataclass(frozen=True)
class _BoolOp:
    pos: int
    type: str
    op: Literal["and", "or"]
    operands: tuple[_Node, ...]


_Node = _Lit | _ListLit | _Field | _Call | _Compare | _Member | _Not | _BoolOp


# --------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class _Function:
    params: tuple[str, ...]  # a value type, or "string_literal" / "list_literal"
    returns: str
    build: Callable[..., pl.Expr]


def _fn_contains(value: pl.Expr, text: str) -> pl.Expr:
    return value.str.to_lowercase().str.contains(text.lower(), literal=True)


def _fn_any_in(values: pl.Expr, members: tuple[object, ...]) -> pl.Expr:
    wanted = pl.Series(list(members), dtype=pl.String()).implode()
    return values.list.eval(pl.element().is_in(wanted)).list.any()


FUNCTIONS: Mapping[str, _Function] = MappingProxyType({
    "startswith": _Function(("string", "string_literal"), _CONDITION, lambda v, p: v.str.starts_with(p)),
    "contains": _Function(("string", "string_literal"), _CONDITION, _fn_contains),
    "any_in": _Function(("list", "list_literal"), _CONDITION, _fn_any_in),
    "len": _Function(("list",), "int", lambda v: v.list.len().cast(pl.Int64)),
    "country": _Function(("string",), "string", lambda v: v.str.slice(0, 2)),
    "hour": _Function(("datetime",), "int", lambda v: v.dt.hour().cast(pl.Int64)),
    "hours_between": _Function(("datetime", "datetime"), "float", _hours),
    "lower": _Function(("string",), "string", lambda v: v.str.to_lowercase()),
})
"""Whitelisted functions (read-only): name -> (parameter kinds, return type, builder)."""


# --------------------------------------------------------------------------- type checks


def _require_condition(node: _Node) -> None:
    if node.type not in (_CONDITION, "bool"):
        raise RuleSyntaxError(f"expected a condition, got {_describe(node)}", node.pos)


def _require_value(node: _Node) -> None:
    if node.type == _CONDITION:
        raise RuleSyntaxError("expected a value, got a condition", node.pos)
    if node.type == "list_literal":
        raise RuleSyntaxError("a list is only allowed after 'in' or in any_in()", node.pos)


def _describe(node: _Node) -> str:
    return "a list literal" if node.type == "list_literal" else node.type


def _check_compare(op: _Token, left: _Node, right: _Node) -> None:
    """Reject comparisons whose operand types do not fit ``op``."""
    _require_value(left)
    _require_value(right)
    lt, rt = left.type, right.type
    if "null" in (lt, rt):
        if lt == rt:
            raise RuleSyntaxError("cannot compare null with null", op.pos)
        if op.text not in ("==", "!="):
            raise RuleSyntaxError("null can only be compared with '==' or '!='", op.pos)
        return
    if lt in _NUMERIC and rt in _NUMERIC:
        return
    if lt != rt or lt == "list":
        hint = "; use any_in() or len()" if "list" in (lt, rt) else ""
        raise RuleSyntaxError(f"cannot compare {lt} with {rt}{hint}", op.pos)
    if lt == "bool" and op.text not in ("==", "!="):
        raise RuleSyntaxError(f"'{op.text}' is not defined for bool", op.pos)


def _check_member(at: _Token, operand: _Node, values: _ListLit) -> None:
    """Reject ``operand in [...]`` when the operand is not a scalar of the list's type."""
    _require_value(operand)
    if operand.type == "null":
        raise RuleSyntaxError("null is only allowed in '== null' or '!= null'", operand.pos)
    if operand.type == "list":
        raise RuleSyntaxError("'in' needs a single value on the left, got list; use any_in()", at.pos)
    if operand.type == "datetime":
        raise RuleSyntaxError("'in' is not defined for datetime", at.pos)
    expected = values.element_type
    if expected is None:
        return
    compatible = operand.type == expected or (operand.type in _NUMERIC and expected in _NUMERIC)
    if not compatible:
        raise RuleSyntaxError(f"cannot look up {operand.type} in a list of {expected}", at.pos)


def _check_call(name: _Token, spec: _Function, args: list[_Node]) -> _Call:
    """Check the argument count and kinds of a whitelisted call and build its node."""
    if len(args) != len(spec.params):
        plural = "argument" if len(spec.params) == 1 else "arguments"
        raise RuleSyntaxError(f"'{name.text}' expects {len(spec.params)} {plural}, got {len(args)}", name.pos)
    for index, (kind, arg) in enumerate(zip(spec.params, args, strict=True), start=1):
        _check_argument(name.text, index, kind, arg)
    return _Call(name.pos, spec.returns, name.text, tuple(args))


def _check_argument(function: str, index: int, kind: str, arg: _Node) -> None:
    if kind == "string_literal":
        if not (isinstance(arg, _Lit) and arg.type == "string"):
            raise RuleSyntaxError(f"'{function}' expects a string literal as argument {index}", arg.pos)
    elif kind == "list_literal":
        if not isinstance(arg, _ListLit) or arg.element_type not in (None, "string"):
            raise RuleSyntaxError(f"'{function}' expects a list of strings as argument {index}", arg.pos)
    elif arg.type != kind:
        field_hint = " field" if kind == "list" else ""
        raise RuleSyntaxError(
            f"'{function}' expects a {kind}{field_hint} as argument {index}, got {_describe(arg)}", arg.pos
        )


def _list_element_type(types: list[tuple[str, int]]) -> str | None:
    """Common type of list literal elements (int and float mix to float)."""
    if not types:
        return None
    kinds = {t for t, _ in types}
    if kinds <= _NUMERIC:
        return "float" if "float" in kinds else "int"
    if len(kinds) > 1:
        raise RuleSyntaxError("mixed literal types in list", types[0][1])
    return kinds.pop()


# --------------------------------------------------------------------------- parser


class _Parser:
    """Recursive-descent parser producing a type-checked syntax tree."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self._depth = 0

    def parse(self) -> _Node:
        if self._peek().kind == "EOF":
            raise RuleSyntaxError("expression is empty", 0)
        node = self._or()
        self._expect_end()
        _require_condition(node)
        return node

    # -- helpers
    def _peek(self, ahead: int = 0) -> _Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _advance(self) -> _Token:
        token = self._peek()
        self._index += 1
        return token

    def _at(self, kind: str, text: str) -> bool:
        token = self._peek()
        return token.kind == kind and token.text == text

    def _expect(self, text: str) -> _Token:
        if not self._at("OP", text):
            raise RuleSyntaxError(f"expected '{text}'", self._peek().pos)
        return self._advance()

    def _expect_end(self) -> None:
        token = self._peek()
        if token.kind != "EOF":
            raise RuleSyntaxError(f"unexpected {token.text!r}", token.pos)

    @contextmanager
    def _nested(self, pos: int) -> Iterator[None]:
        self._depth += 1
        if self._depth > MAX_NESTING_DEPTH:
            raise RuleSyntaxError(f"nesting too deep (max {MAX_NESTING_DEPTH})", pos)
        try:
            yield
        finally:
            self._depth -= 1

    # -- boolean structure
    def _or(self) -> _Node:
        return self._chain("or", self._and)

    def _and(self) -> _Node:
        return self._chain("and", self._not)

    def _chain(self, keyword: Literal["and", "or"], parse_part: Callable[[], _Node]) -> _Node:
        parts = [parse_part()]
        while self._at("NAME", keyword):
            self._advance()
            parts.append(parse_part())
        if len(parts) == 1:
            return parts[0]
        for part in parts:
            _require_condition(part)
        return _BoolOp(parts[0].pos, _CONDITION, keyword, tuple(parts))

    def _not(self) -> _Node:
        if not self._at("NAME", "not"):
            return self._comparison()
        token = self._advance()
        with self._nested(token.pos):
            operand = self._not()
        _require_condition(operand)
        return _Not(token.pos, _CONDITION, operand)

    def _comparison(self) -> _Node:
        left = self._operand()
        token = self._peek()
        if token.kind == "OP" and token.text in _COMPARISONS:
            self._advance()
            right = self._operand()
            _check_compare(token, left, right)
            return _Compare(left.pos, _CONDITION, token.text, left, right)
        negated = self._at("NAME", "not") and self._peek(1).kind == "NAME" and self._peek(1).text == "in"
        if negated or self._at("NAME", "in"):
            self._index += 2 if negated else 1
            if not self._at("OP", "["):
                raise RuleSyntaxError("expected '[' after 'in'", self._peek().pos)
            values = self._list()
            _check_member(token, left, values)
            return _Member(left.pos, _CONDITION, negated, left, values)
        return left

    # -- operands
    def _operand(self) -> _Node:
        token = self._peek()
        if token.kind == "EOF":
            raise RuleSyntaxError("unexpected end of expression", token.pos)
        if self._at("OP", "("):
            return self._parenthesised()
        if token.kind == "NAME" and token.text not in ("true", "false", "null"):
            return self._name()
        if token.kind in ("STRING", "NUMBER", "NAME") or self._at("OP", "-"):
            return self._literal()
        raise RuleSyntaxError(f"unexpected {token.text!r}", token.pos)

    def _parenthesised(self) -> _Node:
        opening = self._advance()
        with self._nested(opening.pos):
            inner = self._or()
        self._expect(")")
        return inner

    def _name(self) -> _Node:
        token = self._peek()
        if token.text in _KEYWORDS:
            raise RuleSyntaxError(f"unexpected {token.text!r}", token.pos)
        if self._peek(1).kind == "OP" and self._peek(1).text == "(":
            return self._call()
        self._advance()
        if token.text not in _FIELD_TYPES:
            raise RuleSyntaxError(f"unknown field {token.text!r}", token.pos)
        return _Field(token.pos, _FIELD_TYPES[token.text], token.text)

    def _call(self) -> _Node:
        name = self._advance()
        spec = FUNCTIONS.get(name.text)
        if spec is None:
            raise RuleSyntaxError(f"unknown function {name.text!r}", name.pos)
        opening = self._advance()
        args: list[_Node] = []
        with self._nested(opening.pos):
            if not self._at("OP", ")"):
                args.append(self._argument())
                while self._at("OP", ","):
                    self._advance()
                    args.append(self._argument())
        self._expect(")")
        return _check_call(name, spec, args)

    def _argument(self) -> _Node:
        return self._list() if self._at("OP", "[") else self._or()

    def _list(self) -> _ListLit:
        opening = self._advance()
        values: list[object] = []
        types: list[tuple[str, int]] = []
        with self._nested(opening.pos):
            while not self._at("OP", "]"):
                item = self._literal()
                if item.type == "null":
                    raise RuleSyntaxError("null is not allowed in a list", item.pos)
                values.append(item.value)
                types.append((item.type, item.pos))
                if not self._at("OP", ","):
                    break
                self._advance()
        self._expect("]")
        return _ListLit(opening.pos, "list_literal", _list_element_type(types), tuple(values))

    def _literal(self) -> _Lit:
        token = self._advance()
        if token.kind == "STRING":
            return _Lit(token.pos, "string", token.value)
        if token.kind == "NUMBER":
            return _Lit(token.pos, "int" if isinstance(token.value, int) else "float", token.value)
        if token.kind == "OP" and token.text == "-":
            number = self._advance()
            if number.kind != "NUMBER":
                raise RuleSyntaxError("expected a number after '-'", number.pos)
            value = -number.value  # type: ignore[operator]
            return _Lit(token.pos, "int" if isinstance(value, int) else "float", value)
        if token.kind == "NAME" and token.text in ("true", "false"):
            return _Lit(token.pos, "bool", token.text == "true")
        if token.kind == "NAME" and token.text == "null":
            return _Lit(token.pos, "null", None)
        if token.kind == "EOF":
            raise RuleSyntaxError("unexpected end of expression", token.pos)
        raise RuleSyntaxError(f"expected a literal, got {token.text!r}", token.pos)


def _parse(expression: str) -> _Node:
    """Tokenize, parse and type-check ``expression``; raise :class:`RuleSyntaxError`."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise RuleSyntaxError(f"expression too long (max {MAX_EXPRESSION_LENGTH} characters)", MAX_EXPRESSION_LENGTH)
    return _Parser(_tokenize(expression)).parse()
