"""Rule profiles (ASYCUDA-style selectivity criteria) as data, in a small safe language.

A rule profile is a code, a plain-language reason shown to officers, a
validity window, a level (national or port) and a selection weight, plus a
boolean *expression* over manifest fields. Expressions are parsed by a
hand-written tokenizer and recursive-descent parser, type-checked against the
manifest contract (:data:`features.data.contracts.MANIFESTS`) and compiled to a
Polars expression. Python is never evaluated: there is no ``eval``/``exec``,
no attribute access, no subscripts and no calls except the whitelisted
functions below.

Grammar
-------
::

    rule       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := operand [ CMP operand | "in" list | "not" "in" list ]
    CMP        := "==" | "!=" | "<" | "<=" | ">" | ">="
    operand    := literal | FIELD | FUNCTION "(" [arg ("," arg)*] ")" | "(" or_expr ")"
    arg        := or_expr | list
    list       := "[" [literal ("," literal)* [","]] "]"
    literal    := STRING | ["-"] NUMBER | "true" | "false" | "null"

Keywords are lower case. Strings are single- or double-quoted (escapes:
``\\\\``, ``\\"`` and ``\\'`` only). Numbers are ``123``, ``1.5``, ``2e3``.
``null`` may only appear in ``field == null`` / ``field != null``.
Comparisons do not chain (``a < b < c`` is an error).

Fields: every column of the manifest contract, plus the derived fields

- ``hs_chapter`` (string): first 2 digits of ``hs_code``;
- ``hs_heading`` (string): first 4 digits of ``hs_code``;
- ``origin_country`` (string): country (first two letters) of ``port_of_loading``;
- ``transshipment_count`` (int): number of transshipment ports, 0 when null or empty;
- ``value_per_kg`` (float): ``declared_value / gross_mass_kg``, null when the mass is <= 0 or null;
- ``house_bl_only`` (bool): a house B/L is present (NVOCC consolidation);
- ``filing_lead_hours`` (float): ``eta - filed_at`` in hours.

Functions (all other names are rejected):

- ``startswith(s, "prefix")`` -> condition, case-sensitive;
- ``contains(s, "text")`` -> condition, case-insensitive substring;
- ``any_in(list_field, ["A", "B"])`` -> condition, true when any element is in the list;
- ``len(list_field)`` -> int (null when the list field is null);
- ``country(locode)`` -> string, the first two letters of a UN/LOCODE;
- ``hour(ts)`` -> int, hour of day 0..23 in UTC;
- ``hours_between(ts_a, ts_b)`` -> float, ``ts_b - ts_a`` in hours;
- ``lower(s)`` -> string, lower-cased.

Types are checked at compile time: strings compare with strings, numbers with
numbers (int and float mix), datetimes with datetimes, booleans only with
``==``/``!=``; lists only through ``any_in``, ``len`` or ``== null``.
Membership (``in``/``not in``) and string comparisons are case-sensitive.

Examples::

    reefer and hs_heading == "0803" and origin_country in ["EC", "CO"]
    any_in(transshipment_ports, ['PAMIT', 'JMKIN']) and transshipment_count >= 2
    contains(goods_description, "said to contain") or lower(goods_description) == "fak"
    house_bl_only and freight_payment not in ["PP"]
    hours_between(amended_at, eta) < 48 and not (consignee_country == "NL")

Null semantics
--------------
A rule never fires because a field is missing. Every *atomic* predicate (a
comparison, a membership test, ``startswith``/``contains``/``any_in``, or a
boolean field used as a condition) is false when a value it reads is null
(``fill_null(False)``). ``not`` is pushed down to the atomic predicates first
(De Morgan), and a negated atom is also false on null: ``not (x == "A")`` and
``x != "A"`` are both false when ``x`` is null. Only ``x == null`` and
``x != null`` look at missingness explicitly. (This equals SQL/Kleene
three-valued logic where an unknown result counts as "does not fire".)

Time semantics
--------------
Timestamps are ``Datetime("us", "UTC")``; ``hour`` is the UTC hour. A profile
is active at ``t`` when ``valid_from <= t < valid_to`` (``valid_to`` exclusive,
``None`` open-ended).

Errors
------
Every problem with an expression raises :class:`RuleSyntaxError` (a
``ValueError``) whose message is ``"<problem> at <offset>"`` with the
0-based character offset, e.g. ``unknown field 'consigne_id' at 0`` or
``expected ')' at 17``.

>>> import polars as pl
>>> frame = pl.DataFrame({"port_of_loading": ["ECGYE", "NLRTM", None]})
>>> frame.select(hit=compile_rule('origin_country in ["EC", "CO"]'))["hit"].to_list()
[True, False, False]
>>> validate_expression("consigne_id == 'X'")
Traceback (most recent call last):
...
features.rules.language.RuleSyntaxError: unknown field 'consigne_id' at 0
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Annotated, Literal

import polars as pl
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from features.data.contracts import MANIFESTS

__all__ = [
    "DERIVED_FIELDS",
    "FUNCTIONS",
    "MAX_EXPRESSION_LENGTH",
    "MAX_NESTING_DEPTH",
    "RULESET_FORMAT",
    "RuleProfile",
    "RuleSyntaxError",
    "compile_rule",
    "default_rule_profiles",
    "evaluate_rules",
    "field_types",
    "referenced_columns",
    "ruleset_hash",
    "validate_expression",
]

MAX_EXPRESSION_LENGTH = 2_000
"""Longest accepted expression, in characters."""
MAX_NESTING_DEPTH = 32
"""Deepest accepted nesting of parentheses, lists, calls and ``not``."""
RULESET_FORMAT = "ccp-rules/1"
"""Format tag included in :func:`ruleset_hash`'s canonical JSON."""

_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
_SINGLE_PUNCT = "<>()[],-"
_WHITESPACE = " \t\r\n"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# Type names used in messages: string, int, float, bool, datetime, list, null,
# and "condition" for predicates (comparisons, and/or/not, predicate calls).
_NUMERIC = frozenset({"int", "float"})
_CONDITION = "condition"


class RuleSyntaxError(ValueError):
    """A rule expression is malformed, ill-typed or unsafe.

    The message is ``"<problem> at <position>"``; ``problem`` and ``position``
    (0-based character offset) are also attributes.
    """

    def __init__(self, problem: str, position: int) -> None:
        super().__init__(f"{problem} at {position}")
        self.problem = problem
        self.position = position


# --------------------------------------------------------------------------- fields


def _type_name(dtype: pl.DataType) -> str:
    if dtype == pl.String():
        return "string"
    if dtype == pl.Boolean():
        return "bool"
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype == pl.List(pl.String()):
        return "list"
    raise TypeError(f"manifest column dtype {dtype} has no rule type")  # pragma: no cover


def _hs_chapter() -> pl.Expr:
    """First 2 digits of ``hs_code``; null when ``hs_code`` is null."""
    return pl.col("hs_code").str.slice(0, 2)


def _hs_heading() -> pl.Expr:
    """First 4 digits of ``hs_code``; null when ``hs_code`` is null."""
    return pl.col("hs_code").str.slice(0, 4)


def _origin_country() -> pl.Expr:
    """Country code of ``port_of_loading``; null when it is null."""
    return pl.col("port_of_loading").str.slice(0, 2)


def _transshipment_count() -> pl.Expr:
    """Number of transshipment ports; 0 for a null or empty list."""
    return pl.col("transshipment_ports").list.len().cast(pl.Int64).fill_null(0)


def _value_per_kg() -> pl.Expr:
    """``declared_value / gross_mass_kg``; null when the mass is null or <= 0."""
    return pl.when(pl.col("gross_mass_kg") > 0).then(pl.col("declared_value") / pl.col("gross_mass_kg"))


def _house_bl_only() -> pl.Expr:
    """A non-blank house B/L is present; never null."""
    house = pl.col("house_bl")
    return (house.is_not_null() & (house.str.strip_chars() != "")).fill_null(False)


def _hours(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """``end - start`` in hours (Float64); null when either is null."""
    return (end - start).dt.total_microseconds().cast(pl.Float64) / 3_600_000_000.0


def _filing_lead_hours() -> pl.Expr:
    """``eta - filed_at`` in hours; null when either is null."""
    return _hours(pl.col("filed_at"), pl.col("eta"))


@dataclass(frozen=True)
class _Derived:
    type: str
    columns: tuple[str, ...]
    build: Callable[[], pl.Expr]


DERIVED_FIELDS: Mapping[str, _Derived] = MappingProxyType({
    "hs_chapter": _Derived("string", ("hs_code",), _hs_chapter),
    "hs_heading": _Derived("string", ("hs_code",), _hs_heading),
    "origin_country": _Derived("string", ("port_of_loading",), _origin_country),
    "transshipment_count": _Derived("int", ("transshipment_ports",), _transshipment_count),
    "value_per_kg": _Derived("float", ("declared_value", "gross_mass_kg"), _value_per_kg),
    "house_bl_only": _Derived("bool", ("house_bl",), _house_bl_only),
    "filing_lead_hours": _Derived("float", ("filed_at", "eta"), _filing_lead_hours),
})
"""Derived fields (read-only): name -> (type, manifest columns read, expression builder)."""

_CONTRACT_TYPES: dict[str, str] = {c.name: _type_name(c.dtype) for c in MANIFESTS.columns}
assert not set(_CONTRACT_TYPES) & set(DERIVED_FIELDS)


def field_types() -> dict[str, str]:
    """Return every field a rule may read, mapped to its rule type name."""
    return {**_CONTRACT_TYPES, **{name: d.type for name, d in DERIVED_FIELDS.items()}}


_FIELD_TYPES = field_types()


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


# --------------------------------------------------------------------------- compiler

_LITERAL_DTYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
}


def _value(node: _Node) -> pl.Expr:
    """Polars expression of a value node (field, literal or value-returning call)."""
    if isinstance(node, _Field):
        derived = DERIVED_FIELDS.get(node.name)
        return derived.build() if derived else pl.col(node.name)
    if isinstance(node, _Lit):
        return pl.lit(node.value, dtype=_LITERAL_DTYPES.get(node.type))
    if isinstance(node, _Call):
        return _call(node)
    raise AssertionError(f"not a value node: {node!r}")  # pragma: no cover


def _call(node: _Call) -> pl.Expr:
    spec = FUNCTIONS[node.name]
    args = [_argument(kind, arg) for kind, arg in zip(spec.params, node.args, strict=True)]
    return spec.build(*args)


def _argument(kind: str, node: _Node) -> object:
    if kind == "string_literal":
        assert isinstance(node, _Lit)
        return node.value
    if kind == "list_literal":
        assert isinstance(node, _ListLit)
        return node.values
    return _value(node)


def _compare(node: _Compare) -> pl.Expr:
    """Raw (null-propagating) comparison; ``== null``/``!= null`` test missingness."""
    left, right = node.left, node.right
    if "null" in (left.type, right.type):
        present = _value(right if left.type == "null" else left)
        return present.is_null() if node.op == "==" else present.is_not_null()
    a, b = _value(left), _value(right)
    operators: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
        "==": pl.Expr.eq,
        "!=": pl.Expr.ne,
        "<": pl.Expr.lt,
        "<=": pl.Expr.le,
        ">": pl.Expr.gt,
        ">=": pl.Expr.ge,
    }
    return operators[node.op](a, b)


def _member(node: _Member) -> pl.Expr:
    """Raw ``operand [not] in [...]``; null when the operand is null.

    Numbers compare as Float64 when the operand or any list element is a float.
    """
    operand = _value(node.operand)
    kind = node.operand.type
    if kind in _NUMERIC:
        kind = "float" if "float" in (kind, node.values.element_type) else "int"
        operand = operand.cast(_LITERAL_DTYPES[kind])
    values = list(node.values.values)
    if kind == "float":
        values = [float(v) for v in values]  # type: ignore[arg-type]
    found = operand.is_in(pl.Series(values, dtype=_LITERAL_DTYPES[kind]).implode())
    return ~found if node.negated else found


def _atom(node: _Node) -> pl.Expr:
    """Raw boolean of an atomic predicate; may be null."""
    if isinstance(node, _Compare):
        return _compare(node)
    if isinstance(node, _Member):
        return _member(node)
    return _value(node)


def _predicate(node: _Node, negated: bool = False) -> pl.Expr:
    """Null-safe boolean: negation pushed to atoms, each atom ``fill_null(False)``."""
    if isinstance(node, _Not):
        return _predicate(node.operand, not negated)
    if isinstance(node, _BoolOp):
        parts = [_predicate(part, negated) for part in node.operands]
        conjunction = (node.op == "and") != negated
        return pl.all_horizontal(parts) if conjunction else pl.any_horizontal(parts)
    raw = _atom(node)
    return (~raw if negated else raw).fill_null(False)


@functools.lru_cache(maxsize=1024)
def _compiled(expression: str) -> tuple[pl.Expr, frozenset[str]]:
    tree = _parse(expression)
    return _predicate(tree), frozenset(_columns(tree))


def _columns(node: _Node) -> Iterator[str]:
    """Manifest columns read by ``node`` (derived fields expanded)."""
    if isinstance(node, _Field):
        derived = DERIVED_FIELDS.get(node.name)
        yield from derived.columns if derived else (node.name,)
    for child in _children(node):
        yield from _columns(child)


def _children(node: _Node) -> tuple[_Node, ...]:
    if isinstance(node, _Call):
        return node.args
    if isinstance(node, _Compare):
        return (node.left, node.right)
    if isinstance(node, _Member):
        return (node.operand,)
    if isinstance(node, _Not):
        return (node.operand,)
    if isinstance(node, _BoolOp):
        return node.operands
    return ()


def compile_rule(expression: str) -> pl.Expr:
    """Compile a rule expression to a Boolean Polars expression.

    Parameters
    ----------
    expression
        Text in the rule language (see the module docstring), at most
        :data:`MAX_EXPRESSION_LENGTH` characters.

    Returns
    -------
    pl.Expr
        A Boolean expression over a frame with the manifest contract's
        columns. It is never null: an atomic predicate reading a null value is
        false, and so is its negation. Timestamps are read as UTC.

    Raises
    ------
    RuleSyntaxError
        The expression is malformed, ill-typed, too long, too deep, or uses an
        unknown field or function. The message names the character offset.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"hs_code": ["080390", "090111"], "reefer": [True, True]})
    >>> frame.filter(compile_rule('reefer and hs_heading == "0803"'))["hs_code"].to_list()
    ['080390']
    """
    return _compiled(_require_text(expression))[0]


def _require_text(expression: object) -> str:
    if not isinstance(expression, str):
        raise RuleSyntaxError("expression must be a string", 0)
    return expression


def referenced_columns(expression: str) -> frozenset[str]:
    """Return the manifest columns ``expression`` reads (derived fields expanded).

    Raises :class:`RuleSyntaxError` like :func:`compile_rule`.

    >>> sorted(referenced_columns("value_per_kg < 1 and reefer"))
    ['declared_value', 'gross_mass_kg', 'reefer']
    """
    return _compiled(_require_text(expression))[1]


def validate_expression(expression: str) -> None:
    """Raise :class:`RuleSyntaxError` unless ``expression`` compiles to a Boolean rule.

    Besides parsing and type checking, the compiled expression is resolved
    against an empty frame with the manifest contract's schema, so any
    expression that validates also runs. Never raises any other exception.
    """
    predicate = compile_rule(expression)
    try:
        dtype = _EMPTY_MANIFESTS.select(predicate.alias("hit")).collect_schema()["hit"]
    except Exception as exc:  # pragma: no cover - defence in depth: the type checker should prevent this
        raise RuleSyntaxError(f"expression cannot be evaluated ({type(exc).__name__})", 0) from None
    if dtype != pl.Boolean():  # pragma: no cover
        raise RuleSyntaxError(f"expression is not boolean ({dtype})", 0)


_EMPTY_MANIFESTS = pl.LazyFrame(schema=MANIFESTS.schema)


# --------------------------------------------------------------------------- profiles

_LOCODE = r"^[A-Z]{2}[A-Z2-9]{3}$"
RuleCode = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Z0-9_-]+$")]
RuleReason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class RuleProfile(BaseModel):
    """One selectivity rule: what it matches, why, where and when it applies, and its weight.

    Attributes
    ----------
    code
        Stable identifier, 1..32 characters of ``A-Z 0-9 _ -``.
    reason
        Plain-language reason shown to officers (1..300 characters).
    expression
        Rule-language condition; validated by compiling it.
    valid_from, valid_to
        Timezone-aware validity window, ``valid_from`` inclusive, ``valid_to``
        exclusive (``None``: open-ended). ``valid_to`` must be after ``valid_from``.
    level, port
        ``"NATIONAL"`` (no port; applies at every port) or ``"PORT"`` with the
        port's UN/LOCODE.
    weight
        Selection weight, ``0 < weight <= 100``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: RuleCode
    reason: RuleReason
    expression: str = Field(min_length=1, max_length=MAX_EXPRESSION_LENGTH)
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None
    level: Literal["NATIONAL", "PORT"] = "NATIONAL"
    port: str | None = Field(default=None, pattern=_LOCODE)
    weight: float = Field(gt=0, le=100, allow_inf_nan=False)

    @field_validator("expression")
    @classmethod
    def _expression_compiles(cls, value: str) -> str:
        validate_expression(value)
        return value

    @model_validator(mode="after")
    def _window_and_level(self) -> RuleProfile:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        if self.level == "PORT" and self.port is None:
            raise ValueError("port is required when level is PORT")
        if self.level == "NATIONAL" and self.port is not None:
            raise ValueError("port must be empty when level is NATIONAL")
        return self

    def is_active(self, at: datetime, port: str) -> bool:
        """True when ``valid_from <= at < valid_to`` and the rule applies at ``port``.

        ``at`` must be timezone-aware. A NATIONAL rule applies at every port;
        a PORT rule only at its own port.
        """
        _require_aware(at, "at")
        return self.is_current(at) and (self.level == "NATIONAL" or self.port == port)

    def is_current(self, at: datetime) -> bool:
        """True when ``valid_from <= at < valid_to`` (``at`` timezone-aware), whatever the port."""
        _require_aware(at, "at")
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)

    def canonical(self) -> dict[str, object]:
        """JSON-ready dict with timestamps as UTC ISO-8601 strings (input of :func:`ruleset_hash`)."""
        return {
            "code": self.code,
            "reason": self.reason,
            "expression": self.expression,
            "valid_from": _utc_iso(self.valid_from),
            "valid_to": None if self.valid_to is None else _utc_iso(self.valid_to),
            "level": self.level,
            "port": self.port,
            "weight": float(self.weight),
        }


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _utc_iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def ruleset_hash(rules: Sequence[RuleProfile]) -> str:
    """sha256 (hex) of the canonical JSON of ``rules``, independent of their order.

    Timestamps are normalised to UTC, so the same instants in other offsets
    hash the same. Duplicated profiles count (the rules form a multiset).
    """
    entries = sorted(_canonical_json(rule.canonical()) for rule in rules)
    payload = _canonical_json({"format": RULESET_FORMAT, "rules": [json.loads(e) for e in entries]})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# --------------------------------------------------------------------------- evaluation


def _active_rules(rules: Sequence[RuleProfile], at: datetime, port: str | None) -> list[RuleProfile]:
    """Rules active at ``at`` (and ``port`` when given), ordered by weight desc then code."""
    active = [r for r in rules if (r.is_current(at) if port is None else r.is_active(at, port))]
    codes = [r.code for r in active]
    duplicated = sorted({c for c in codes if codes.count(c) > 1})
    if duplicated:
        raise ValueError(f"duplicate active rule codes: {', '.join(duplicated)}")
    return sorted(active, key=lambda r: (-r.weight, r.code))


def _rule_hit(rule: RuleProfile, port: str | None) -> pl.Expr:
    """Whether ``rule`` fires; without a port, a PORT rule fires only on its port of discharge."""
    hit = compile_rule(rule.expression)
    if port is None and rule.level == "PORT":
        hit = hit & (pl.col("port_of_discharge") == rule.port).fill_null(False)
    return hit


def _with_missing_optional_columns(manifests: pl.LazyFrame, needed: set[str]) -> pl.LazyFrame:
    """Add needed optional contract columns absent from ``manifests`` as typed nulls."""
    present = set(manifests.collect_schema().names())
    missing = sorted(needed - present)
    absent_required = [name for name in missing if MANIFESTS.column(name).required]
    if absent_required:
        raise ValueError(f"manifests lack columns needed by the active rules: {', '.join(absent_required)}")
    return manifests.with_columns(pl.lit(None, dtype=MANIFESTS.column(n).dtype).alias(n) for n in missing)


REASON_PLACEHOLDERS: Mapping[str, tuple[tuple[str, ...], Callable[[], pl.Expr]]] = MappingProxyType({
    "port_of_loading": (("port_of_loading",), lambda: _place(pl.col("port_of_loading"))),
    "place_of_receipt": (("place_of_receipt",), lambda: _place(pl.col("place_of_receipt"))),
    "transshipment_ports": (("transshipment_ports",), lambda: pl.col("transshipment_ports").list.eval(_place(pl.element())).list.join(", ")),
    "hs_code": (("hs_code",), lambda: pl.col("hs_code")),
})
"""``{name}`` placeholders a rule's reason may use, so the reason names the place or goods of each row:
the manifest columns each reads and its text (ports as "Callao, PE (PECLL)")."""


def _place(code: pl.Expr) -> pl.Expr:
    from features.data.reference import load_ports

    ports = load_ports()
    names = dict(zip(ports["locode"].to_list(), ports["name"].to_list(), strict=True))
    return pl.format("{}, {} ({})", code.replace_strict(names, default=code, return_dtype=pl.String()), code.str.slice(0, 2), code)


_PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")


def reason_columns(reason: str) -> frozenset[str]:
    """Manifest columns read by the ``{placeholders}`` of a reason (unknown names are left as text)."""
    return frozenset(c for name in _PLACEHOLDER_RE.findall(reason) if name in REASON_PLACEHOLDERS for c in REASON_PLACEHOLDERS[name][0])


def reason_expr(reason: str) -> pl.Expr:
    """The reason of a fired rule for each row: its ``{placeholders}`` filled from the row ("?" when null).

    >>> frame = pl.DataFrame({"port_of_loading": ["PECLL"]})
    >>> frame.select(r=reason_expr("Loaded at {port_of_loading}."))["r"].to_list()
    ['Loaded at Callao, PE (PECLL).']
    """
    parts = _PLACEHOLDER_RE.split(reason)
    if len(parts) == 1:
        return pl.lit(reason, dtype=pl.String())
    exprs, template = [], []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            template.append(part)
        elif part in REASON_PLACEHOLDERS:
            template.append("{}")
            exprs.append(REASON_PLACEHOLDERS[part][1]().fill_null("?"))
        else:
            template.append("{" + part + "}")
    if not exprs:
        return pl.lit(reason, dtype=pl.String())
    return pl.format("".join(template), *exprs)


def _fired(hit_columns: list[str], labels: list[str | pl.Expr]) -> pl.Expr:
    if not hit_columns:
        return pl.lit([], dtype=pl.List(pl.String()))
    items = [
        pl.when(pl.col(h)).then(label if isinstance(label, pl.Expr) else pl.lit(label, dtype=pl.String()))
        for h, label in zip(hit_columns, labels, strict=True)
    ]
    return pl.concat_list(items).list.drop_nulls()


def _score(hit_columns: list[str], weights: list[float]) -> pl.Expr:
    if not hit_columns:
        return pl.lit(0.0, dtype=pl.Float64())
    terms = [
        pl.when(pl.col(h)).then(pl.lit(w, dtype=pl.Float64())).otherwise(0.0)
        for h, w in zip(hit_columns, weights, strict=True)
    ]
    return pl.sum_horizontal(terms)


def evaluate_rules(
    rules: Sequence[RuleProfile],
    manifests: pl.LazyFrame,
    *,
    at: datetime,
    port: str | None,
) -> pl.LazyFrame:
    """Apply the rules active at ``at`` to every manifest row.

    Parameters
    ----------
    rules
        Candidate rule profiles; only those with ``valid_from <= at < valid_to``
        are applied. Two active rules may not share a code (``ValueError``).
    manifests
        Manifest rows with the contract's columns (optional contract columns
        that are missing are read as null). Row order is preserved.
    at
        Decision time, timezone-aware.
    port
        UN/LOCODE of the evaluating port: NATIONAL rules and that port's PORT
        rules apply. ``None``: NATIONAL rules apply to every row and each PORT
        rule only to rows whose ``port_of_discharge`` is its port.

    Returns
    -------
    pl.LazyFrame
        One row per input row: ``manifest_id``; ``rule_codes`` and
        ``rule_reasons`` (``List(String)``, the fired rules ordered by weight
        descending then code; empty when none fired); ``rule_score``
        (``Float64``, sum of the fired rules' weights, 0.0 when none). Null
        field values never make a rule fire (see the module docstring).
        Nothing is collected (only the input schema is resolved).

    Raises
    ------
    ValueError
        ``at`` is naive, two active rules share a code, or ``manifests`` lacks
        a required contract column that an active rule reads.
    """
    _require_aware(at, "at")
    active = _active_rules(rules, at, port)
    needed = {"manifest_id"} | {c for r in active for c in referenced_columns(r.expression)}
    if port is None and any(r.level == "PORT" for r in active):
        needed.add("port_of_discharge")
    needed |= {c for r in active for c in reason_columns(r.reason)}
    frame = _with_missing_optional_columns(manifests, needed)
    hit_columns = [f"__rule_hit_{i}" for i in range(len(active))]
    frame = frame.with_columns(_rule_hit(r, port).alias(h) for r, h in zip(active, hit_columns, strict=True))
    return frame.select(
        pl.col("manifest_id"),
        _fired(hit_columns, [r.code for r in active]).alias("rule_codes"),
        _fired(hit_columns, [reason_expr(r.reason) for r in active]).alias("rule_reasons"),
        _score(hit_columns, [r.weight for r in active]).alias("rule_score"),
    )


# --------------------------------------------------------------------------- default rule set

_COCAINE_ORIGINS = ("EC", "CO", "PE", "BR", "PA", "VE", "CR", "DO", "GY", "SR", "GT", "HN")
_CARIBBEAN_HUBS = (
    "PAMIT",  # Manzanillo International Terminal, Colon
    "PABLB",  # Balboa
    "PACTB",  # Cristobal
    "JMKIN",  # Kingston
    "DOCAU",  # Caucedo
    "BSFPO",  # Freeport
    "COCTG",  # Cartagena
    "TTPOS",  # Port of Spain
    "CWWIL",  # Willemstad
)
_WEST_AFRICA_HUBS = ("TGLFW", "GHTEM", "CIABJ", "SNDKR", "NGAPP", "NGTIN", "BJCOO", "GNCKY", "GWOXB")
_PRECURSOR_HEADINGS = ("2914", "2916", "2924", "2926", "2932", "2933", "2939")
_ESTABLISHED_CHEMICAL_EXPORTERS = ("DE", "NL", "BE", "FR", "GB", "CH", "IE", "IT", "ES", "US", "JP", "KR")
_GOLDEN_TRIANGLE_ORIGINS = ("MM", "TH", "LA", "KH", "VN", "MY")
_PERISHABLE_CHAPTERS = ("02", "03", "04", "05", "06", "07", "08", "12", "16", "20", "21", "22", "30", "35")
_AMENDED_SENSITIVE = (
    "consignee",
    "consignee_id",
    "consignee_name",
    "description",
    "goods_description",
    "destination",
    "place_of_delivery",
)


def _quoted(values: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def _national(code: str, reason: str, expression: str, weight: float) -> RuleProfile:
    return RuleProfile(
        code=code,
        reason=reason,
        expression=expression,
        valid_from=datetime(2000, 1, 1, tzinfo=timezone.utc),
        valid_to=None,
        level="NATIONAL",
        port=None,
        weight=weight,
    )


def default_rule_profiles() -> list[RuleProfile]:
    """Starter national rule set used by the historical (simulated) control unit.

    Thirteen NATIONAL profiles, valid from 2000-01-01 UTC, open-ended, each
    combining indicators from ``docs/DOMAIN.md`` (cover loads from cocaine
    source countries, Caribbean and West African transshipment, vague
    descriptions, precursor families, NVOCC house B/Ls, late filing and
    amendments, implausible values). As everywhere, missing values never make
    a rule fire.
    """
    coc = _quoted(_COCAINE_ORIGINS)
    return [
        _national(
            "COC-REEFER-FRUIT",
            "Reefer with fresh fruit (HS {hs_code}) loaded at {port_of_loading}, a high-risk cocaine source country.",
            f'reefer and hs_heading in ["0803", "0804"] and origin_country in {coc}',
            30.0,
        ),
        _national(
            "COC-COVER-LOAD",
            "Typical cover load (HS {hs_code}: cocoa, coffee, tea, cement or scrap) loaded at {port_of_loading}, a high-risk cocaine source country.",
            f'hs_heading in ["1801", "0901", "0902", "2523", "7204"] and origin_country in {coc}',
            20.0,
        ),
        _national(
            "COC-TS-CARIBBEAN",
            "Transshipped via {transshipment_ports}: a Caribbean or Central American hub used for cocaine trafficking.",
            f"any_in(transshipment_ports, {_quoted(_CARIBBEAN_HUBS)})",
            10.0,
        ),
        _national(
            "COC-TS-WEST-AFRICA",
            "Cargo from {port_of_loading} (South American source country) routed through West Africa: {transshipment_ports}.",
            f"origin_country in {coc} and any_in(transshipment_ports, {_quoted(_WEST_AFRICA_HUBS)})",
            12.0,
        ),
        _national(
            "VAGUE-DESCRIPTION",
            "Vague goods description (FAK, general cargo, said to contain): the real contents are not declared.",
            'lower(goods_description) in ["fak", "stc", "general cargo", "freight all kinds"]'
            ' or startswith(lower(goods_description), "fak ")'
            ' or startswith(lower(goods_description), "stc ")'
            ' or contains(goods_description, "said to contain")'
            ' or contains(goods_description, "general cargo")'
            ' or contains(goods_description, "freight all kind")',
            8.0,
        ),
        _national(
            "PRECURSOR-ORIGIN",
            "Chemical from a drug-precursor family shipped from outside the established exporters: "
            "check the pre-export notification and the end use.",
            f"hs_heading in {_quoted(_PRECURSOR_HEADINGS)}"
            f" and origin_country not in {_quoted(_ESTABLISHED_CHEMICAL_EXPORTERS)}",
            15.0,
        ),
        _national(
            "METH-TEA-SEA",
            "Tea loaded in South-East Asia: methamphetamine is known to travel in tea packaging.",
            f'hs_heading == "0902" and origin_country in {_quoted(_GOLDEN_TRIANGLE_ORIGINS)}',
            12.0,
        ),
        _national(
            "HBL-FREIGHT-COLLECT",
            "NVOCC house bill of lading (actual shipper unknown) with freight collect or paid by a third party.",
            'house_bl_only and freight_payment in ["CC", "TP"]',
            6.0,
        ),
        _national(
            "LATE-FILING",
            "Manifest filed less than 24 hours before arrival.",
            "filing_lead_hours < 24",
            8.0,
        ),
        _national(
            "LATE-AMENDMENT",
            "Consignee, description or destination amended less than 48 hours before arrival.",
            f"any_in(amended_fields, {_quoted(_AMENDED_SENSITIVE)}) and hours_between(amended_at, eta) < 48",
            12.0,
        ),
        _national(
            "LOW-VALUE-PER-KG",
            "Declared value per kg far below what the declared goods are worth.",
            'currency in ["USD", "EUR", "GBP"] and ('
            '(hs_heading in ["0901", "0902", "1801"] and value_per_kg < 1.0)'
            ' or (hs_heading in ["0803", "0804"] and value_per_kg < 0.15)'
            f" or (hs_heading in {_quoted(_PRECURSOR_HEADINGS)} and value_per_kg < 0.5))",
            8.0,
        ),
        _national(
            "CIRCUITOUS-ROUTE",
            "Three or more transshipments: circuitous routing exposes the container to rip-on/rip-off.",
            "transshipment_count >= 3",
            5.0,
        ),
        _national(
            "REEFER-NON-PERISHABLE",
            "Refrigerated container declared with goods that need no refrigeration.",
            f"reefer and hs_chapter not in {_quoted(_PERISHABLE_CHAPTERS)}",
            5.0,
        ),
    ]
