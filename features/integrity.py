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

Time semantics: the score reads feature columns, which are point in time
(events strictly before ``decision_at``); the norms are fitted on a model's
training rows (their features), never on outcomes or on the rows scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

__all__ = ["INTEGRITY_COLUMNS", "IntegrityNorms", "fit_integrity_norms", "integrity_surprisal"]

GRID = 1001
"""Quantiles kept per reference group (tail probabilities resolved to 0.001 within a group)."""
COMPONENTS = (
    ("seal_changes", None, "upper"),
    ("origin_dwell_hours", "port_of_loading", "two-sided"),
    ("transshipment_dwell_max_hours", "first_hub", "upper"),
)
INTEGRITY_COLUMNS = ("seal_changes", "origin_dwell_hours", "transshipment_dwell_max_hours", "port_of_loading", "transshipment_ports")
"""Columns :func:`fit_integrity_norms` and :func:`integrity_surprisal` read (features and manifest columns)."""


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


def _with_keys(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("transshipment_ports").list.first().alias("first_hub"))


def _reference(values: np.ndarray) -> Reference:
    return Reference(np.quantile(values, np.linspace(0.0, 1.0, GRID)), int(len(values)))


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


def integrity_surprisal(norms: IntegrityNorms, frame: pl.DataFrame) -> np.ndarray:
    """Fisher's ``sum(-log p)`` over the components for every row of ``frame`` (0: nothing unusual; higher: rarer), row for row."""
    keyed = _with_keys(frame)
    total = np.zeros(frame.height)
    for column, key, sided in COMPONENTS:
        groups = norms.references.get(column) or {}
        if None not in groups:
            continue
        values = keyed.get_column(column).fill_null(-1).to_numpy().astype(float)
        known = values >= 0
        if key == "first_hub":
            known &= keyed.get_column(key).is_not_null().to_numpy()
        p = np.ones(frame.height)
        names = keyed.get_column(key).cast(pl.String).fill_null("").to_numpy() if key is not None else np.full(frame.height, "")
        for name in np.unique(names[known]):
            rows = known & (names == name)
            reference = groups.get(str(name), groups[None]) if key is not None else groups[None]
            p[rows] = reference.tail(values[rows], sided)
        total += -np.log(p)
    return total
