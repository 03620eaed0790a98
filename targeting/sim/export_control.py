"""Export control in the simulated world: port control units at source ports and what they see before loading.

Port control units at source ports (by default Guayaquil, Cartagena, Santos,
Callao and Manzanillo PA) inspect **departures**: the manifest lines whose port
of loading is their port and whose ETD falls on the list day, as known at
00:00 UTC of that day (:func:`features.candidates.candidates`, direction
``EXPORT``, is the one definition used here). Their historical policy is the
same as the import units' (watchlist hits first, rule profiles by weight, a
random slice), with the national rules plus a few export profiles
(:func:`export_rule_profiles`).

What the world makes visible before loading (all of it legitimate noise too):

- bookings and shipping instructions changed close to loading
  (``booking_amended_at``, ``booking_amended_fields``): front exporters
  often, legitimate exporters sometimes (rolled vessels, cargo changes);
- terminal timing: contaminated reefers of legitimate exporters are gated in
  shortly before loading or dwell unusually long at the terminal, and their
  seal often changes between gate-in and loading (a physical exam without
  finding also leaves a customs seal, so a seal change is not proof);
- front exporters and NVOCC consolidations (house B/Ls) from the trafficking
  methods.

An export exam can only find contraband that was already in the container at
its port of loading (the truth's ``loaded_at``): a container contaminated at a
transshipment hub is clean when it leaves. A seizure at export stops the
container: it is taken out of the terminal (a ``GATE_OUT`` at the port of
loading, no ``LOAD``) and never sails, so it is never an import or
transshipment candidate afterwards (the shut-out rule of
:mod:`features.candidates`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np
import polars as pl

from features.candidates import Direction, candidates_for_days
from features.data.contracts import INSPECTION_OUTCOMES
from features.rules.language import RuleProfile, default_rule_profiles

EXPORT_PORTS = ("ECGYE", "COCTG", "BRSSZ", "PECLL", "PAMIT")
"""Source ports with an export control unit in the default world."""

LEGIT_BOOKING_FIELDS = ("vessel", "cargo", "consignee", "destination", "container")
LEGIT_BOOKING_WEIGHTS = (0.5, 0.2, 0.1, 0.1, 0.1)
FRONT_BOOKING_FIELDS = ("consignee", "destination", "container", "seal", "cargo")
FRONT_BOOKING_WEIGHTS = (0.3, 0.25, 0.2, 0.15, 0.1)
DETECTION = {"PHYSICAL": 0.92, "NII": 0.75}
HOUR_US = 3_600_000_000


def export_rule_profiles() -> list[RuleProfile]:
    """The historical rule set of the simulated export units: the national profiles plus three export ones."""

    def export(code: str, reason: str, expression: str, weight: float) -> RuleProfile:
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

    return [
        *default_rule_profiles(),
        export(
            "EXP-LATE-BOOKING-CHANGE",
            "Booking or shipping instructions changed (consignee, destination, container or seal) less than 48 hours before departure.",
            'any_in(booking_amended_fields, ["consignee", "destination", "container", "seal"]) and hours_between(booking_amended_at, etd) < 48',
            15.0,
        ),
        export(
            "EXP-SHORT-NOTICE-BOOKING",
            "Booked less than 3 days before departure.",
            "hours_between(booked_at, etd) < 72",
            6.0,
        ),
        export(
            "EXP-HBL-REEFER",
            "Reefer consolidated under an NVOCC house bill of lading: the actual exporter is not on the master B/L.",
            "reefer and house_bl_only",
            6.0,
        ),
    ]


def booking_changes(
    rng: np.random.Generator, front: np.ndarray, booked_h: np.ndarray, etd_h: np.ndarray
) -> tuple[np.ndarray, list[list[str] | None]]:
    """Hours (NaN when none) and fields of the last booking/shipping-instruction change of each shipment.

    Front shipments change 45% of the time, 80% of those less than 48 hours
    before departure; legitimate ones 10% of the time, 30% of those close to
    departure (rolled vessels, cargo and consignee corrections). A change is
    never before the booking.
    """
    n = len(front)
    changed = rng.random(n) < np.where(front, 0.45, 0.10)
    close = rng.random(n) < np.where(front, 0.8, 0.3)
    hours = np.where(close, etd_h - rng.uniform(2, 48, n), booked_h + (etd_h - booked_h) * rng.uniform(0.05, 0.7, n))
    hours = np.where(changed, np.maximum(hours, booked_h + 0.25), np.nan)
    fields: list[list[str] | None] = []
    for is_changed, is_front in zip(changed, front):
        if not is_changed:
            fields.append(None)
            continue
        options, weights = (FRONT_BOOKING_FIELDS, FRONT_BOOKING_WEIGHTS) if is_front else (LEGIT_BOOKING_FIELDS, LEGIT_BOOKING_WEIGHTS)
        picked = rng.choice(len(options), size=int(rng.integers(1, 3)), p=weights)
        fields.append(sorted({options[int(i)] for i in picked}))
    return hours, fields


def export_candidates(manifests: pl.DataFrame, ports: Sequence[str]) -> pl.DataFrame:
    """The departures from ``ports`` among ``manifests``, each as known at 00:00 UTC of its departure day.

    The rows of :func:`features.candidates.candidates_for_days` (direction
    ``EXPORT``): every input column (hidden ones included) plus
    ``decision_at``, ``direction`` and ``port`` (the port of loading).
    """
    if not ports or manifests.height == 0:
        return manifests.clear().with_columns(
            pl.lit(None, pl.Datetime("us", "UTC")).alias("decision_at"), pl.lit(None, pl.String).alias("direction"), pl.lit(None, pl.String).alias("port")
        )
    return candidates_for_days(manifests.lazy(), None, direction=Direction.EXPORT, ports=ports).collect()


def examine_exports(candidates: pl.DataFrame, selection: pl.DataFrame, truth: pl.DataFrame, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Outcomes of the selected export exams, and what they change in the world.

    Parameters
    ----------
    candidates
        :func:`export_candidates` rows (with the hidden ``_origin_dwell_h`` and ``_event_seal``).
    selection
        ``manifest_id``, ``selection_source``, ``exam_type`` of the inspected rows.
    truth
        The day's truth (``manifest_id``, ``category``, ``quantity_kg``, ``concealment``, ``loaded_at``).

    Returns
    -------
    (outcomes, effects)
        ``outcomes``: INSPECTION_OUTCOMES rows (``port`` is the port of
        loading; ``inspected_at`` between the later of the decision time and
        the gate-in, and the ETD). ``effects``: ``manifest_id``,
        ``_export_stopped_at`` (set when seized: the container leaves the
        terminal a few hours after the exam) and ``_event_seal`` (a customs
        seal after a physical exam without seizure, else unchanged).
    """
    rows = selection.join(
        candidates.select("manifest_id", "container_number", "port", "decision_at", "etd", "seal_number", "_event_seal", "_origin_dwell_h"),
        on="manifest_id",
        how="left",
    ).join(truth.select("manifest_id", "category", "quantity_kg", "concealment", "loaded_at"), on="manifest_id", how="left")
    n = rows.height
    physical = (rows["exam_type"] == "PHYSICAL").to_numpy()
    illicit_here = (rows["category"].is_not_null() & (rows["loaded_at"] == rows["port"])).fill_null(False).to_numpy()
    found = illicit_here & (rng.random(n) < np.where(physical, DETECTION["PHYSICAL"], DETECTION["NII"]))
    discrepancy = ~illicit_here & (rng.random(n) < 0.04)
    swapped = (rows["seal_number"] != rows["_event_seal"]).fill_null(False).to_numpy()
    exam_frac = rng.uniform(0.2, 0.8, n)
    gate_out_h = rng.uniform(1, 6, n)
    customs_seal = [f"{p[:2]}CUS{int(rng.integers(10**6, 10**7))}" for p in rows["port"].to_list()]
    examiner = rng.integers(1, 40, n)
    gate_in = pl.col("etd") - pl.duration(microseconds=(pl.col("_origin_dwell_h") * HOUR_US).cast(pl.Int64))
    start = pl.max_horizontal(pl.col("decision_at"), gate_in)
    inspected_at = start + pl.duration(microseconds=((pl.col("etd") - start).dt.total_microseconds() * pl.Series(exam_frac)).cast(pl.Int64))
    rows = rows.with_columns(inspected_at.alias("inspected_at"), pl.Series("_found", found))
    outcomes = rows.select(
        "manifest_id",
        "container_number",
        "port",
        "inspected_at",
        "exam_type",
        pl.Series("result", np.where(found, "SEIZURE", np.where(discrepancy, "DISCREPANCY", "NO_FINDING"))),
        pl.when("_found").then(pl.col("category")).otherwise(None).alias("seizure_category"),
        pl.when("_found").then((pl.col("quantity_kg") * pl.Series(rng.uniform(0.9, 1.0, n))).round(1)).otherwise(None).alias("quantity_kg"),
        pl.when("_found").then(pl.col("concealment")).otherwise(None).alias("concealment_method"),
        pl.Series("seal_status", np.where(swapped & physical, "MISMATCH", np.where(physical, "INTACT", "NOT_CHECKED"))),
        (pl.lit("EX-") + pl.col("port") + pl.lit("-") + pl.Series(examiner).cast(pl.String).str.zfill(3)).alias("examiner"),
        "selection_source",
        pl.lit("EXPORT").alias("direction"),
    ).select(INSPECTION_OUTCOMES.column_names)
    effects = rows.select(
        "manifest_id",
        pl.when("_found")
        .then(pl.col("inspected_at") + pl.duration(microseconds=pl.Series(gate_out_h * HOUR_US).cast(pl.Int64)))
        .otherwise(None)
        .alias("_export_stopped_at"),
        pl.when(pl.Series(physical & ~found)).then(pl.Series(customs_seal)).otherwise(pl.col("_event_seal")).alias("_event_seal"),
    )
    return outcomes, effects


def apply_effects(manifests: pl.DataFrame, effects: pl.DataFrame) -> pl.DataFrame:
    """``manifests`` with the export exams' effects (stop time, customs seal) applied, row order kept."""
    if effects.height == 0:
        return manifests
    renamed = effects.rename({"_export_stopped_at": "__stopped", "_event_seal": "__seal"})
    return (
        manifests.join(renamed, on="manifest_id", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("__stopped", "_export_stopped_at").alias("_export_stopped_at"),
            pl.when(pl.col("__seal").is_not_null()).then(pl.col("__seal")).otherwise(pl.col("_event_seal")).alias("_event_seal"),
        )
        .drop("__stopped", "__seal")
    )
