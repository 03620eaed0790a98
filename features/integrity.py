"""Container integrity surprisal: how unusual a container's seal and dwell trace is against its lane's norm.

Rip-on (drugs put into a legitimate trader's container at the origin terminal
or a hub) leaves no trace in the manifest; what it can leave is in the
container's events: a seal read at an event that is not the manifest's, an
abnormal stay at the origin terminal (very long, or a gate-in just before
loading: stuffed outside), an abnormal stay at a transshipment hub. These are
the documented rip-on indicators of port control units. A supervised model
learns them only from seizures of such containers, which a unit that never
selected on them rarely has; this score needs no outcome at all.

Components (each a tail probability ``p`` of the row's value against the
reference rows, the score is Fisher's ``sum(-log p)``):

- ``seal_changes``: upper tail, against every reference row;
- ``origin_dwell_hours``: two-sided, against the rows of the same port of
  loading (all rows when it has fewer than ``min_group``);
- ``transshipment_dwell_max_hours``: upper tail, against the rows through the
  same first hub (all rows through a hub when fewer).

A value ``-1`` (unknown: no event yet) has ``p = 1``. ``p`` is floored at
``1 / (n + 1)`` of its reference group. No constant is fitted to any outcome.

**Unusual** (:func:`integrity_details`, the floor of the policy's INTEGRITY
slice): at least one measured component is significant after correcting for
the ``k`` components measured on the row: Šidák's ``1 - (1 - min p)^k`` below
:data:`UNUSUAL_P_VALUE` (0.01, the conventional level, not a value tuned on
any data). Not Fisher's combined p of the score itself: the components are
discrete and most are at their mode (no seal change: ``p = 1``), so Fisher's
``chi2(2k)`` dilutes a single extreme trace (a rip-on usually leaves one: a
replaced seal or one abnormal stay) below significance. A row with nothing
measured has p 1. The score still ranks the unusual rows.

The norms travel with the model they were fitted for (:meth:`IntegrityNorms.to_json`,
versioned, deterministic: the same norms give the same text, so a sha256 of it
identifies them).

Time semantics: the score reads feature columns, which are point in time
(events strictly before ``decision_at``); the norms are fitted on a model's
training rows (their features), never on outcomes or on the rows scored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

__all__ = [
    "COMPONENT_COLUMNS",
    "INTEGRITY_COLUMNS",
    "UNUSUAL_P_VALUE",
    "IntegrityNorms",
    "fit_integrity_norms",
    "integrity_details",
    "integrity_inputs",
    "integrity_reasons",
    "integrity_record",
    "integrity_surprisal",
    "sidak_p_value",
]

GRID = 1001
"""Quantiles kept per reference group (tail probabilities resolved to 0.001 within a group)."""
COMPONENTS = (
    ("seal_changes", None, "upper"),
    ("origin_dwell_hours", "port_of_loading", "two-sided"),
    ("transshipment_dwell_max_hours", "first_hub", "upper"),
)
INTEGRITY_COLUMNS = ("seal_changes", "origin_dwell_hours", "transshipment_dwell_max_hours", "port_of_loading", "transshipment_ports")
"""Columns :func:`fit_integrity_norms` and :func:`integrity_surprisal` read (features and manifest columns)."""
COMPONENT_COLUMNS = tuple(column for column, _, _ in COMPONENTS)
"""The scored components, in order."""
UNUSUAL_P_VALUE = 0.01
"""A row is unusual when Šidák's family-wise p-value of its smallest measured component p-value is below this (conventional level)."""
NORMS_FORMAT = "ccp-integrity-norms"
NORMS_VERSION = 1
USUAL_RANGE = (0.05, 0.95)
"""Quantiles of a reference shown to an officer as its usual range."""


@dataclass(frozen=True)
class Reference:
    """The quantile grid of one reference group and its row count."""

    quantiles: np.ndarray
    rows: int

    def tail(self, values: np.ndarray, sided: str) -> np.ndarray:
        """Empirical tail probability of each value (upper, or two-sided: twice the smaller tail), floored at ``1 / (rows + 1)``."""
        q = self.quantiles
        below = np.searchsorted(q, values, side="right") / len(q)
        above = 1.0 - np.searchsorted(q, values, side="left") / len(q)
        p = above if sided == "upper" else 2.0 * np.minimum(below, above)
        return np.clip(p, 1.0 / (self.rows + 1), 1.0)


@dataclass(frozen=True)
class IntegrityNorms:
    """Per component: the reference of all rows (``None`` key) and of each group with at least ``min_group`` rows."""

    references: dict[str, dict[str | None, Reference]] = field(default_factory=dict)
    min_group: int = 50

    def to_json(self) -> str:
        """Canonical versioned JSON (sorted keys, groups by name with all rows first, floats exact): equal norms, equal text."""
        components = {
            column: [
                {"group": name, "rows": ref.rows, "quantiles": [float(v) for v in ref.quantiles]}
                for name, ref in sorted(groups.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))
            ]
            for column, groups in sorted(self.references.items())
        }
        data = {"format": NORMS_FORMAT, "version": NORMS_VERSION, "grid": GRID, "min_group": self.min_group, "components": components}
        return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "IntegrityNorms":
        """Inverse of :meth:`to_json`; ``ValueError`` naming what is wrong (format, version, a component, a group)."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != NORMS_FORMAT:
            raise ValueError(f"not integrity norms: format must be {NORMS_FORMAT!r}")
        if data.get("version") != NORMS_VERSION:
            raise ValueError(f"integrity norms version {data.get('version')!r} is not supported (expected {NORMS_VERSION})")
        references: dict[str, dict[str | None, Reference]] = {}
        for column, groups in data["components"].items():
            if column not in COMPONENT_COLUMNS:
                raise ValueError(f"integrity norms: unknown component {column!r}")
            parsed: dict[str | None, Reference] = {}
            for group in groups:
                quantiles = np.asarray(group["quantiles"], dtype=float)
                if quantiles.ndim != 1 or len(quantiles) == 0 or np.any(np.diff(quantiles) < 0) or int(group["rows"]) < 1:
                    raise ValueError(f"integrity norms: component {column!r}, group {group['group']!r} is not a sorted quantile grid of at least one row")
                parsed[group["group"]] = Reference(quantiles, int(group["rows"]))
            references[column] = parsed
        return cls(references, int(data["min_group"]))


ROW_COLUMNS = ("port_of_loading", "transshipment_ports")
"""The manifest columns of :data:`INTEGRITY_COLUMNS`; the others are feature columns."""


def integrity_inputs(rows: pl.DataFrame, features: pl.DataFrame) -> pl.DataFrame:
    """The columns this module reads, row for row, from manifest rows and their feature rows (aligned)."""
    return pl.concat([rows.select(ROW_COLUMNS), features.select(c for c in INTEGRITY_COLUMNS if c not in ROW_COLUMNS)], how="horizontal")


def _with_keys(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("transshipment_ports").list.first().alias("first_hub"))


def _reference(values: np.ndarray) -> Reference:
    return Reference(np.quantile(values, np.linspace(0.0, 1.0, GRID)), int(len(values)))


def grid_ranks(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``n`` sorted values: the 0-based ranks below and above each of the :data:`GRID` quantiles, and its weight.

    NumPy's default (``linear``) method: virtual index ``(n - 1) q``, its floor and the next rank
    (both the last rank at the top), weight the fractional part.
    """
    virtual = (n - 1) * np.linspace(0.0, 1.0, GRID)
    below = np.floor(virtual)
    weight = virtual - below
    below = below.astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    below = np.minimum(below, n - 1)
    return below, above, weight


def reference_from_ranks(n: int, value_at: Callable[[np.ndarray], np.ndarray]) -> Reference:
    """The :class:`Reference` of ``n`` values known only by ``value_at(ranks)`` (sorted values at 0-based ranks).

    Equal, bit for bit, to the reference of the values themselves: the interpolation is NumPy's (``_lerp``:
    from the lower value below half the way, from the upper one from half the way on).
    """
    below, above, weight = grid_ranks(n)
    low, high = value_at(below).astype(float), value_at(above).astype(float)
    step = high - low
    quantiles = np.where(weight >= 0.5, high - step * (1 - weight), low + step * weight)
    return Reference(quantiles, int(n))


def fit_integrity_norms(frame: pl.DataFrame, *, min_group: int = 50) -> IntegrityNorms:
    """The norms of :data:`INTEGRITY_COLUMNS` on reference rows (a model's training rows; known values only, ``>= 0``).

    Raises ``ValueError`` naming a missing column.
    """
    missing = [c for c in INTEGRITY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"integrity norms need the columns {', '.join(missing)}")
    keyed = _with_keys(frame)
    references: dict[str, dict[str | None, Reference]] = {}
    for column, key, _ in COMPONENTS:
        known = keyed.filter(pl.col(column).is_not_null() & (pl.col(column) >= 0))
        if key == "first_hub":
            known = known.filter(pl.col(key).is_not_null())
        if known.height == 0:
            references[column] = {}
            continue
        groups: dict[str | None, Reference] = {None: _reference(known.get_column(column).to_numpy().astype(float))}
        if key is not None:
            for (name,), part in known.group_by(key, maintain_order=True):
                if name is not None and part.height >= min_group:
                    groups[str(name)] = _reference(part.get_column(column).to_numpy().astype(float))
        references[column] = groups
    return IntegrityNorms(references, min_group)


@dataclass(frozen=True)
class _Tail:
    """One component of every row: its value, whether it was measured, its tail probability and the reference it was judged against."""

    values: np.ndarray
    measured: np.ndarray
    p: np.ndarray
    group: np.ndarray
    """Reference group of each row (``""``: all rows)."""
    low: np.ndarray
    high: np.ndarray
    """The reference's usual range (:data:`USUAL_RANGE` quantiles) per row (NaN when not measured)."""


def _usual(reference: Reference) -> tuple[float, float]:
    grid = len(reference.quantiles) - 1
    return tuple(float(reference.quantiles[int(round(q * grid))]) for q in USUAL_RANGE)  # type: ignore[return-value]


def _tails(norms: IntegrityNorms, frame: pl.DataFrame) -> dict[str, _Tail]:
    """Per component with norms, the tail of every row of ``frame`` against its reference group."""
    keyed = _with_keys(frame)
    out: dict[str, _Tail] = {}
    for column, key, sided in COMPONENTS:
        groups = norms.references.get(column) or {}
        if None not in groups:
            continue
        values = keyed.get_column(column).fill_null(-1).to_numpy().astype(float)
        known = values >= 0
        if key == "first_hub":
            known &= keyed.get_column(key).is_not_null().to_numpy()
        p, low, high = np.ones(frame.height), np.full(frame.height, np.nan), np.full(frame.height, np.nan)
        used = np.full(frame.height, "", dtype=object)
        names = keyed.get_column(key).cast(pl.String).fill_null("").to_numpy() if key is not None else np.full(frame.height, "")
        for name in np.unique(names[known]):
            rows = known & (names == name)
            own = key is not None and str(name) in groups
            reference = groups[str(name)] if own else groups[None]
            p[rows] = reference.tail(values[rows], sided)
            low[rows], high[rows] = _usual(reference)
            used[rows] = str(name) if own else ""
        out[column] = _Tail(values, known, p, used, low, high)
    return out


def integrity_surprisal(norms: IntegrityNorms, frame: pl.DataFrame) -> np.ndarray:
    """Fisher's ``sum(-log p)`` over the components for every row of ``frame`` (0: nothing unusual; higher: rarer), row for row."""
    total = np.zeros(frame.height)
    for tail in _tails(norms, frame).values():
        total += -np.log(tail.p)
    return total


def sidak_p_value(min_p: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Šidák's family-wise p-value of the smallest of ``k`` component p-values: ``1 - (1 - min p)^k`` (1 when ``k = 0``)."""
    p, k = np.clip(np.asarray(min_p, dtype=float), 0.0, 1.0), np.asarray(measured, dtype=int)
    with np.errstate(divide="ignore"):  # p = 1: log1p(-1) = -inf, and the family-wise p-value is 1
        return np.where(k > 0, -np.expm1(k * np.log1p(-p)), 1.0)


def integrity_details(norms: IntegrityNorms, frame: pl.DataFrame) -> pl.DataFrame:
    """Row for row: ``integrity_surprisal``, ``integrity_p_value`` (Šidák, see the module docstring), ``integrity_unusual`` and, per component
    ``C`` of :data:`COMPONENT_COLUMNS`, ``C`` (value, null when not measured), ``C_p``, ``C_reference`` (its group, ``""``
    for all rows), ``C_usual_low``/``C_usual_high``.
    """
    tails = _tails(norms, frame)
    surprisal, min_p = np.zeros(frame.height), np.ones(frame.height)
    measured = np.zeros(frame.height, dtype=int)
    columns: dict[str, pl.Series] = {}
    for column in COMPONENT_COLUMNS:
        tail = tails.get(column)
        if tail is None:
            nulls = [None] * frame.height
            columns.update({column: pl.Series(column, nulls, pl.Float64), f"{column}_p": pl.Series(f"{column}_p", np.ones(frame.height)),
                            f"{column}_reference": pl.Series(f"{column}_reference", nulls, pl.String),
                            f"{column}_usual_low": pl.Series(f"{column}_usual_low", nulls, pl.Float64), f"{column}_usual_high": pl.Series(f"{column}_usual_high", nulls, pl.Float64)})
            continue
        surprisal += -np.log(tail.p)
        measured += tail.measured.astype(int)
        min_p = np.where(tail.measured, np.minimum(min_p, tail.p), min_p)
        columns[column] = pl.Series(column, np.where(tail.measured, tail.values, np.nan)).fill_nan(None)
        columns[f"{column}_p"] = pl.Series(f"{column}_p", tail.p)
        columns[f"{column}_reference"] = pl.Series(f"{column}_reference", [g if m else None for g, m in zip(tail.group, tail.measured)], pl.String)
        columns[f"{column}_usual_low"] = pl.Series(f"{column}_usual_low", tail.low).fill_nan(None)
        columns[f"{column}_usual_high"] = pl.Series(f"{column}_usual_high", tail.high).fill_nan(None)
    p_value = sidak_p_value(min_p, measured)
    head = [pl.Series("integrity_surprisal", surprisal), pl.Series("integrity_p_value", p_value), pl.Series("integrity_unusual", p_value < UNUSUAL_P_VALUE)]
    keyed = _with_keys(frame).select(pl.col("port_of_loading").cast(pl.String), pl.col("first_hub").cast(pl.String))
    return pl.DataFrame([*head, *columns.values(), *keyed.get_columns()])


def integrity_record(row: dict) -> dict:
    """The audit record of one row of :func:`integrity_details`: score, combined p-value and each measured component."""
    components = {
        column: {
            "value": row[column], "p": row[f"{column}_p"], "reference": row[f"{column}_reference"] or "all",
            "usual_low": row[f"{column}_usual_low"], "usual_high": row[f"{column}_usual_high"],
        }
        for column in COMPONENT_COLUMNS
        if row.get(column) is not None
    }
    return {"surprisal": float(row["integrity_surprisal"]), "p_value": float(row["integrity_p_value"]), "components": components}


def _hours(value: float) -> str:
    return f"{value:,.0f}"


def _component_reason(column: str, row: dict) -> str:
    value, low, high, own = row[column], row[f"{column}_usual_low"], row[f"{column}_usual_high"], bool(row[f"{column}_reference"])
    if column == "seal_changes":
        n = int(value)
        usual = "none" if high < 1 else f"up to {int(high)}"
        return f"Seal replaced: {n} seal change{'s' if n != 1 else ''} since loading (usual: {usual})"
    if column == "origin_dwell_hours":
        port = row.get("port_of_loading") or "?"
        where = "" if own else " at all ports of loading"
        if value < low:
            return f"Gate-in only {_hours(value)} h before loading at {port} (usual {_hours(low)}–{_hours(high)} h{where})"
        return f"Stayed {_hours(value)} h at the origin terminal {port} (usual {_hours(low)}–{_hours(high)} h{where})"
    hub = row.get("first_hub") or "?"
    if own:
        return f"Stayed {_hours(value)} h at a transshipment hub (usual up to {_hours(high)} h via {hub})"
    return f"Stayed {_hours(value)} h at a transshipment hub (usual up to {_hours(high)} h at all hubs)"


def integrity_reasons(row: dict) -> list[str]:
    """Officer reasons of one row of :func:`integrity_details`: each measured component outside its usual range, rarest first.

    An unusual row (``integrity_unusual``) always has one: a component with ``p < 0.01 / k`` lies beyond its 5-95 % range.
    """
    measured = [c for c in COMPONENT_COLUMNS if row.get(c) is not None]
    two_sided = {c for c, _, sided in COMPONENTS if sided == "two-sided"}
    outside = [c for c in measured if row[c] > row[f"{c}_usual_high"] or (c in two_sided and row[c] < row[f"{c}_usual_low"])]
    return [_component_reason(c, row) for c in sorted(outside, key=lambda c: (row[f"{c}_p"], COMPONENT_COLUMNS.index(c)))]
