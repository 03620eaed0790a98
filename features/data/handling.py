"""Which port handles a manifest, and which recorded outcomes match the manifest they name.

A port *handles* a manifest in a list direction when the container passes
through it that way: the port of discharge for ``IMPORT`` lists, the port of
loading for ``EXPORT`` lists, one of the transshipment ports for
``TRANSSHIPMENT`` lists. :func:`handles` is the one definition; the service
uses it to scope outcome writes, training and hit rates use
:func:`matching_outcomes` to ignore outcomes that do not match their manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

DIRECTIONS = ("IMPORT", "EXPORT", "TRANSSHIPMENT")
"""List directions; ``IMPORT`` is the default."""
DEFAULT_DIRECTION = "IMPORT"


def handled_directions(manifest: Mapping[str, Any], port: str) -> tuple[str, ...]:
    """The directions in which ``port`` handles ``manifest`` (empty when it does not handle it).

    ``manifest`` has the MANIFESTS contract's ``port_of_discharge``,
    ``port_of_loading`` and ``transshipment_ports`` (a sequence, possibly
    ``None``). UN/LOCODEs compare exactly (upper case).

    Examples
    --------
    >>> m = {"port_of_loading": "CNSHA", "port_of_discharge": "NLRTM", "transshipment_ports": ["SGSIN"]}
    >>> handled_directions(m, "NLRTM"), handled_directions(m, "SGSIN"), handled_directions(m, "BEANR")
    (('IMPORT',), ('TRANSSHIPMENT',), ())
    """
    found = []
    if manifest.get("port_of_discharge") == port:
        found.append("IMPORT")
    if manifest.get("port_of_loading") == port:
        found.append("EXPORT")
    if port in (manifest.get("transshipment_ports") or ()):
        found.append("TRANSSHIPMENT")
    return tuple(found)


def handles(manifest: Mapping[str, Any], port: str, direction: str | None = None) -> bool:
    """Whether ``port`` handles ``manifest`` in ``direction`` (any direction when ``None``)."""
    directions = handled_directions(manifest, port)
    return bool(directions) if direction is None else direction in directions


def handled_expr(port: pl.Expr, directions: Sequence[str] = DIRECTIONS) -> pl.Expr:
    """Polars form of :func:`handles` over manifest columns, for the port in expression ``port``."""
    checks = {
        "IMPORT": pl.col("port_of_discharge") == port,
        "EXPORT": pl.col("port_of_loading") == port,
        "TRANSSHIPMENT": pl.col("transshipment_ports").fill_null([]).list.contains(port),
    }
    return pl.any_horizontal([checks[d] for d in directions]).fill_null(False)


def outcome_direction_expr(port: pl.Expr = pl.col("port")) -> pl.Expr:
    """The direction of each outcome row: its ``direction``, or when empty the first direction in which ``port`` handles its manifest.

    An empty direction is an outcome written before outcomes carried one (any
    direction was accepted then); it is read as the direction in which its
    port handles the manifest, in the order of :data:`DIRECTIONS` (``IMPORT``
    first), ``IMPORT`` when the port does not handle it. Needs the outcome's
    ``direction`` and the manifest's port columns.
    """
    handled = pl.when(handled_expr(port, ("IMPORT",))).then(pl.lit("IMPORT"))
    for direction in DIRECTIONS[1:]:
        handled = handled.when(handled_expr(port, (direction,))).then(pl.lit(direction))
    return pl.coalesce(pl.col("direction"), handled.otherwise(pl.lit(DEFAULT_DIRECTION)))


def matching_outcomes(outcomes: pl.LazyFrame, manifests: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Split outcomes into those that match their manifest and those that do not.

    An outcome matches when its ``manifest_id`` exists in ``manifests``, its
    ``container_number`` is that manifest's, and its ``port`` handles the
    manifest in the outcome's ``direction`` (:func:`handles`; an empty or
    absent direction: :func:`outcome_direction_expr`). Returns ``(matching,
    ignored)`` with the outcome columns, ``direction`` filled in (added when
    ``outcomes`` has none); row order is kept.
    """
    if "direction" not in outcomes.collect_schema().names():
        outcomes = outcomes.with_columns(pl.lit(None, dtype=pl.String).alias("direction"))
    # only the manifests some outcome names are read (a semi join keeps their order): memory of the outcomes, not of the lake
    named = manifests.join(outcomes.select("manifest_id").unique(), on="manifest_id", how="semi", maintain_order="left")
    keys = named.select(
        "manifest_id",
        pl.col("container_number").alias("_manifest_container"),
        "port_of_loading",
        "port_of_discharge",
        "transshipment_ports",
    ).unique(subset="manifest_id", keep="last", maintain_order=True)
    columns = outcomes.collect_schema().names()
    direction = outcome_direction_expr()
    handled_in_direction = pl.any_horizontal(
        [(direction == d) & handled_expr(pl.col("port"), (d,)) for d in DIRECTIONS]
    )
    joined = outcomes.join(keys, on="manifest_id", how="left", maintain_order="left").with_columns(
        ((pl.col("_manifest_container") == pl.col("container_number")) & handled_in_direction).fill_null(False).alias("_matches"),
        direction.alias("direction"),
    )
    return joined.filter(pl.col("_matches")).select(columns), joined.filter(~pl.col("_matches")).select(columns)
