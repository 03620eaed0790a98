"""Precursor controls (PICS / PEN Online style): precursor HS codes without a matching pre-export notification.

The controlled substances and their HS codes are data: ``features/data/precursors.csv`` (1988 Convention
Tables I and II, INCB Red List, selected non-scheduled substitutes; sources and date in
``features/data/precursors.md``). Each substance has its own six-digit HS code and the residual codes it is
misdeclared under (``misdeclared_under``).

A shipment (manifest line) is **flagged** when its six-digit HS code is a precursor's code or one of its
misdeclaration codes and

- no pre-export notification known strictly before the decision time covers it (same substance family,
  exporting country = country of the port of loading, importing country = country of the port of discharge,
  ETD in ``[shipment_from, shipment_to)``, importer name similar to the consignee's: similarity >= 80), or
- the best covering notification's quantity is far below the declared gross mass (more than
  :data:`QUANTITY_TOLERANCE` times: gross mass includes packaging, notified quantities are net).

Point-in-time: only notifications with ``notified_at < decision_at`` count.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import polars as pl

from features.names import party_similarity

PRECURSORS_CSV = Path(__file__).parent / "data" / "precursors.csv"
QUANTITY_TOLERANCE = 1.5
IMPORTER_SIMILARITY = 80.0
FLAG_COLUMNS = ("precursor_code", "precursor_misdeclaration_code", "precursor_notified", "precursor_quantity_ratio", "precursor_reason")
_CONTROL_LABEL = {"TABLE_I": "1988 Convention Table I", "TABLE_II": "1988 Convention Table II", "NON_SCHEDULED": "non-scheduled, under special surveillance"}


@lru_cache(maxsize=1)
def precursor_codes() -> pl.DataFrame:
    """``hs6``, ``family`` (the substance's own code), ``substance``, ``control`` and ``own`` (False: a misdeclaration code).

    A misdeclaration code shared by several substances keeps the first substance listed.
    """
    table = pl.read_csv(PRECURSORS_CSV, schema_overrides={"hs_code": pl.String, "misdeclared_under": pl.String})
    own = table.select(pl.col("hs_code").alias("hs6"), pl.col("hs_code").alias("family"), "substance", "control", pl.lit(True).alias("own"))
    neighbours = (
        table.filter(pl.col("misdeclared_under").is_not_null())
        .with_columns(pl.col("misdeclared_under").str.split(";"))
        .explode("misdeclared_under")
        .select(pl.col("misdeclared_under").alias("hs6"), pl.col("hs_code").alias("family"), "substance", "control", pl.lit(False).alias("own"))
    )
    return pl.concat([own, neighbours.filter(~pl.col("hs6").is_in(own["hs6"].implode()))]).unique("hs6", keep="first", maintain_order=True)


def _covering(shipment: dict, notices: list[dict]) -> tuple[bool, float | None, str | None]:
    """Whether a notice covers the shipment, and the gross/notified ratio and id of the best one."""
    best = None
    for notice in notices:
        window = notice["shipment_from"] <= shipment["etd"] < notice["shipment_to"]
        similar = party_similarity(shipment["consignee_name"] or "", notice["importer_name"]) >= IMPORTER_SIMILARITY
        if window and similar and (best is None or notice["quantity_kg"] > best["quantity_kg"]):
            best = notice
    if best is None:
        return False, None, None
    return True, float(shipment["gross_mass_kg"]) / float(best["quantity_kg"]), best["notification_id"]


def _reason(row: dict, covered: bool, ratio: float | None, notice_id: str | None) -> str | None:
    label = _CONTROL_LABEL.get(row["control"], row["control"])
    route = f"{row['port_of_loading'][:2]} to {row['port_of_discharge'][:2]}"
    if not covered and row["own"]:
        return f"Precursor {row['substance']} (HS {row['hs6']}, {label}) with no matching pre-export notification from {route}"
    if not covered:
        return (f"HS {row['hs6']} is where {row['substance']} (HS {row['family']}, {label}) is misdeclared, "
                f"and no pre-export notification from {route} covers it")
    if ratio is not None and ratio > QUANTITY_TOLERANCE:
        return f"{row['substance']}: declared {row['gross_mass_kg']:.0f} kg gross, {ratio:.1f} times the quantity notified in {notice_id}"
    return None


def precursor_flags(candidates: pl.DataFrame, notifications: pl.DataFrame | None) -> pl.DataFrame:
    """Per candidate row (input order kept): the precursor code flags and the reason (null when not flagged).

    Parameters
    ----------
    candidates
        Manifest rows with ``manifest_id``, ``hs_code``, ``port_of_loading``, ``port_of_discharge``,
        ``consignee_name``, ``gross_mass_kg``, ``etd`` and ``decision_at`` (UTC).
    notifications
        PRE_EXPORT_NOTIFICATIONS rows (``None``: none known).

    Returns
    -------
    ``manifest_id`` plus :data:`FLAG_COLUMNS`: ``precursor_code`` (the HS code is a precursor's own),
    ``precursor_misdeclaration_code``, ``precursor_notified`` (a notification covers it),
    ``precursor_quantity_ratio`` (gross mass / notified quantity, null when not notified) and
    ``precursor_reason``.
    """
    codes = precursor_codes()
    rows = candidates.with_columns(pl.col("hs_code").str.slice(0, 6).alias("hs6")).join(codes, on="hs6", how="left").to_dicts()
    by_family: dict[tuple[str, str, str], list[dict]] = {}
    if notifications is not None and notifications.height:
        known = notifications.with_columns(pl.col("hs_code").str.slice(0, 6).alias("hs6")).join(codes.select("hs6", "family"), on="hs6", how="inner")
        for notice in known.to_dicts():
            by_family.setdefault((notice["family"], notice["exporting_country"], notice["importing_country"]), []).append(notice)
    out = []
    for row in rows:
        flags = {"manifest_id": row["manifest_id"], "precursor_code": bool(row["own"]), "precursor_misdeclaration_code": row["own"] is False,
                 "precursor_notified": False, "precursor_quantity_ratio": None, "precursor_reason": None}
        if row["family"] is not None:
            notices = [n for n in by_family.get((row["family"], row["port_of_loading"][:2], row["port_of_discharge"][:2]), [])
                       if n["notified_at"] < row["decision_at"]]
            covered, ratio, notice_id = _covering(row, notices)
            flags |= {"precursor_notified": covered, "precursor_quantity_ratio": ratio, "precursor_reason": _reason(row, covered, ratio, notice_id)}
        out.append(flags)
    schema = {"manifest_id": pl.String, "precursor_code": pl.Boolean, "precursor_misdeclaration_code": pl.Boolean, "precursor_notified": pl.Boolean,
              "precursor_quantity_ratio": pl.Float64, "precursor_reason": pl.String}
    return pl.DataFrame(out, schema=schema)
