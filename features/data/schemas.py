"""Pandera (Polars backend) schemas generated from the contracts: the gate before every lake write.

:func:`schema` builds one :class:`pandera.polars.DataFrameSchema` per
contract in :mod:`features.data.contracts`: exact dtypes, column order, no extra
columns, nullability, enumerations (``isin``), code shapes and value ranges.
:func:`validate_accepted` runs it on a frame about to be written and raises
:class:`ContractViolation` when the frame is off-contract. Row validation
(:mod:`features.data.validation`) already guarantees all of this, so a violation
is a bug in the parser, never bad input.
"""

from __future__ import annotations

import functools

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from features.data import checks
from features.data.contracts import (
    ALERT_KINDS,
    EVENT_TYPES,
    EXAM_TYPES,
    FREIGHT_PAYMENT_METHODS,
    RESULTS,
    SEAL_STATUSES,
    SEIZURE_CATEGORIES,
    SELECTION_SOURCES,
    TableContract,
    contract,
)
from features.data.validation import CONTAINER_TYPE_PATTERN

__all__ = ["ContractViolation", "schema", "validate_accepted"]


class ContractViolation(ValueError):
    """A frame about to enter the lake does not match its contract (a bug upstream)."""


_ENUMS: dict[str, tuple[str, ...]] = {
    "event_type": EVENT_TYPES,
    "exam_type": EXAM_TYPES,
    "result": RESULTS,
    "seizure_category": SEIZURE_CATEGORIES,
    "seal_status": SEAL_STATUSES,
    "selection_source": SELECTION_SOURCES,
    "kind": ALERT_KINDS,
    "freight_payment": FREIGHT_PAYMENT_METHODS,
}
_PATTERNS: dict[str, str] = {
    "container_type": CONTAINER_TYPE_PATTERN,
    "vessel_imo": checks.IMO_PATTERN,
    "hs_code": checks.HS_CODE_PATTERN,
    "currency": r"^[A-Z]{3}$",
    "place_of_receipt": checks.LOCODE_PATTERN,
    "port_of_loading": checks.LOCODE_PATTERN,
    "port_of_discharge": checks.LOCODE_PATTERN,
    "place_of_delivery": checks.LOCODE_PATTERN,
    "locode": checks.LOCODE_PATTERN,
    "port": checks.LOCODE_PATTERN,
    "shipper_country": r"^[A-Z]{2}$",
    "consignee_country": r"^[A-Z]{2}$",
    "notify_country": r"^[A-Z]{2}$",
    "country": r"^[A-Z]{2}$",
}
_RANGES: dict[str, dict[str, float]] = {
    "packages": {"ge": 1},
    "gross_mass_kg": {"gt": 0},
    "verified_gross_mass_kg": {"gt": 0},
    "declared_value": {"ge": 0},
    "quantity_kg": {"ge": 0},
    "severity": {"ge": 1, "le": 5},
    "latitude": {"ge": -90, "le": 90},
    "longitude": {"ge": -180, "le": 180},
}


def _expr_check(name: str, column: str, expr: pl.Expr) -> pa.Check:
    """A vectorised pandera check from a Boolean Polars expression (null values of ``column`` pass)."""

    def run(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.when(pl.col(column).is_null()).then(pl.lit(True)).otherwise(expr.fill_null(False)).alias(column)
        )

    return pa.Check(run, name=name)


def _checks(table: str, name: str, dtype: pl.DataType) -> list[pa.Check]:
    out: list[pa.Check] = []
    if name in _ENUMS:
        out.append(pa.Check.isin(list(_ENUMS[name])))
    if name in _PATTERNS:
        out.append(pa.Check.str_matches(_PATTERNS[name]))
    if name in _RANGES:
        bounds = _RANGES[name]
        for op, bound in bounds.items():
            out.append(getattr(pa.Check, {"ge": "ge", "gt": "gt", "le": "le"}[op])(bound))
        if dtype == pl.Float64:
            out.append(_expr_check("finite", name, pl.col(name).is_finite()))
    if name == "container_number":
        out.append(_expr_check("iso6346_valid", name, checks.iso6346_valid_expr(pl.col(name))))
    if name == "vessel_imo":
        out.append(_expr_check("imo_valid", name, checks.imo_valid_expr(pl.col(name))))
    if name == "transshipment_ports":
        shape = pl.element().str.contains(checks.LOCODE_PATTERN)
        out.append(_expr_check("locode_elements", name, pl.col(name).list.eval(shape).list.all()))
    if isinstance(dtype, pl.String):
        # Canonical strings are stripped and never empty (missing values are null).
        out.append(_expr_check("stripped_non_empty", name, (pl.col(name).str.strip_chars(checks.WHITESPACE) == pl.col(name)) & (pl.col(name) != "")))
    return out


def _build(c: TableContract) -> pa.DataFrameSchema:
    columns = {
        col.name: pa.Column(
            col.dtype,
            nullable=col.nullable,
            checks=_checks(c.name, col.name, col.dtype),
            description=col.description,
        )
        for col in c.columns
    }
    return pa.DataFrameSchema(
        columns,
        strict=True,
        ordered=True,
        unique=list(c.key),
        name=c.name,
        description=c.description,
    )


@functools.cache
def schema(table: str) -> pa.DataFrameSchema:
    """The pandera schema of ``table``, generated from its contract (cached).

    Raises
    ------
    ValueError
        If ``table`` is not a known contract.
    """
    return _build(contract(table))


def validate_accepted(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Check that ``df`` is exactly on the contract of ``table`` and return it.

    Parameters
    ----------
    table
        Contract name.
    df
        Frame about to be written to the lake.

    Returns
    -------
    polars.DataFrame
        ``df`` itself, unchanged.

    Raises
    ------
    ContractViolation
        Naming the table and the failed checks (dtype, column set/order,
        nullability, enumeration, shape, range or key uniqueness). This
        signals a bug in the code that produced ``df``.
    """
    try:
        schema(table).validate(df, lazy=True)
    except (SchemaError, SchemaErrors) as exc:
        raise ContractViolation(
            f"frame for table {table!r} is off-contract (a bug in the code that produced it): {exc}"
        ) from exc
    return df
