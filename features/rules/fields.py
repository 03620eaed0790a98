"""Rule language: limits, the syntax error, and the manifest fields (contract and derived) rules may read, with their types."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import polars as pl

from features.data.contracts import MANIFESTS



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
