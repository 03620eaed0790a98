"""Canonical input tables of the engine: columns, types, keys and enumerations.

This module is the single source of truth for the shape of every table that
enters the lake. Validation rules (check digits, code lists, bounds) live in
:mod:`features.data.validation`; the typed frame schema that guards every lake
write lives in :mod:`features.data.schemas`. ``docs/data-contracts.md`` is written
from these definitions.

Time semantics: every timestamp is timezone-aware and stored as UTC
(``Datetime("us", "UTC")``). Raw feeds may carry any UTC offset; naive
timestamps are rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from features.data.handling import DIRECTIONS

UTC_DATETIME = pl.Datetime("us", "UTC")
LIST_SEPARATOR = ";"
"""Separator of list-valued fields (e.g. transshipment ports) in CSV feeds."""

EVENT_TYPES = (
    "GATE_IN",
    "LOAD",
    "TS_DISCHARGE",
    "TS_LOAD",
    "DISCHARGE",
    "GATE_OUT",
    "EMPTY_RETURN",
)
EXAM_TYPES = ("NII", "PHYSICAL")
RESULTS = ("NO_FINDING", "DISCREPANCY", "SEIZURE")
SEIZURE_CATEGORIES = (
    "COCAINE",
    "HEROIN",
    "METHAMPHETAMINE",
    "PRECURSOR",
    "NPS",
    "CANNABIS",
    "COUNTERFEIT",
    "WILDLIFE",
    "OTHER",
)
SEAL_STATUSES = ("INTACT", "BROKEN", "MISMATCH", "MISSING", "NOT_CHECKED")
SELECTION_SOURCES = ("WATCHLIST", "RULE", "MODEL", "INTEGRITY", "RANDOM", "OFFICER")
ALERT_KINDS = ("PARTY", "CONTAINER", "BL", "VESSEL", "HS_CODE", "ROUTE")
FREIGHT_PAYMENT_METHODS = ("PP", "CC", "TP")
"""UN/EDIFACT 4215: prepaid, collect, payable by a third party."""


@dataclass(frozen=True)
class Column:
    """One column of a contract.

    ``required`` columns must be present in every input file (a missing one is
    a file-level fault); ``nullable`` columns may hold empty values.
    """

    name: str
    dtype: pl.DataType
    description: str
    nullable: bool = False
    required: bool = True


@dataclass(frozen=True)
class TableContract:
    """A canonical table: its columns, natural key and lake partitioning.

    ``key`` identifies a row: two rows with the same key and the same content
    are duplicates; with different content they conflict. ``partition_by`` is
    the timestamp column whose UTC date names the lake partition (``None``
    for unpartitioned reference tables).
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    partition_by: str | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.dtype for c in self.columns})

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _party(role: str, *, nullable: bool = False) -> tuple[Column, ...]:
    return (
        Column(f"{role}_id", pl.String(), f"{role.capitalize()} identifier (e.g. EORI or trader id)", nullable, not nullable),
        Column(f"{role}_name", pl.String(), f"{role.capitalize()} name as declared", nullable, not nullable),
        Column(f"{role}_country", pl.String(), f"{role.capitalize()} country, ISO 3166-1 alpha-2", nullable, not nullable),
    )


MANIFESTS = TableContract(
    name="manifests",
    description="Advance cargo manifest: one row per container per voyage and bill of lading.",
    columns=(
        Column("manifest_id", pl.String(), "Unique manifest line id (container x voyage x B/L)"),
        Column("container_number", pl.String(), "ISO 6346 container number with valid check digit"),
        Column("container_type", pl.String(), "ISO 6346 size/type code, e.g. 22G1, 45R1"),
        Column("reefer", pl.Boolean(), "Refrigerated container"),
        Column("seal_number", pl.String(), "Seal number on the documents", nullable=True),
        Column("master_bl", pl.String(), "Master bill of lading number"),
        Column("house_bl", pl.String(), "House bill of lading (NVOCC) number", nullable=True),
        Column("vessel_imo", pl.String(), "Vessel IMO number (7 digits, valid check digit)"),
        Column("voyage", pl.String(), "Carrier voyage number"),
        Column("carrier", pl.String(), "Carrier SCAC code"),
        Column("place_of_receipt", pl.String(), "UN/LOCODE where the carrier took the container"),
        Column("port_of_loading", pl.String(), "UN/LOCODE of the port of loading"),
        Column(
            "transshipment_ports",
            pl.List(pl.String()),
            "Ordered UN/LOCODEs of transshipment ports (';'-separated in CSV; empty for direct)",
            nullable=True,
        ),
        Column("port_of_discharge", pl.String(), "UN/LOCODE of the port of discharge"),
        Column("place_of_delivery", pl.String(), "UN/LOCODE of the final place of delivery"),
        *_party("shipper"),
        *_party("consignee"),
        *_party("notify", nullable=True),
        Column("hs_code", pl.String(), "Harmonized System code, 6, 8 or 10 digits"),
        Column("goods_description", pl.String(), "Goods description as declared"),
        Column("packages", pl.Int64(), "Number of packages (>= 1)"),
        Column("gross_mass_kg", pl.Float64(), "Declared gross mass in kg"),
        Column("verified_gross_mass_kg", pl.Float64(), "SOLAS verified gross mass in kg", nullable=True, required=False),
        Column("declared_value", pl.Float64(), "Declared goods value (>= 0)"),
        Column("currency", pl.String(), "ISO 4217 currency of the declared value"),
        Column("freight_payment", pl.String(), "UN/EDIFACT 4215 freight payment method: PP, CC or TP"),
        Column("booked_at", UTC_DATETIME, "Booking time"),
        Column("filed_at", UTC_DATETIME, "Time the manifest was filed with customs"),
        Column("amended_at", UTC_DATETIME, "Time of the last amendment", nullable=True),
        Column(
            "amended_fields",
            pl.List(pl.String()),
            "Fields changed by the last amendment (consignee, description, destination, ...)",
            nullable=True,
            required=False,
        ),
        Column(
            "booking_amended_at",
            UTC_DATETIME,
            "Time of the last change to the booking or shipping instructions (carrier's booking system) before loading",
            nullable=True,
            required=False,
        ),
        Column(
            "booking_amended_fields",
            pl.List(pl.String()),
            "What that last booking or shipping-instruction change touched (vessel, consignee, destination, cargo, container, seal)",
            nullable=True,
            required=False,
        ),
        Column("etd", UTC_DATETIME, "Estimated time of departure from the port of loading"),
        Column("eta", UTC_DATETIME, "Estimated time of arrival at the port of discharge"),
    ),
    key=("manifest_id",),
    partition_by="eta",
    notes=(
        "A manifest is known to the engine from `filed_at`; an amendment from `amended_at`; "
        "a booking or shipping-instruction change from `booking_amended_at`.",
        "Enforced orderings: booked_at <= filed_at, filed_at <= eta, etd <= eta, filed_at <= amended_at, "
        "booked_at <= booking_amended_at. "
        "Filing after departure (filed_at > etd) is accepted: it is a risk indicator, not an error.",
    ),
)

CONTAINER_EVENTS = TableContract(
    name="events",
    description="Container status events (CODECO/COARRI style).",
    columns=(
        Column("container_number", pl.String(), "ISO 6346 container number"),
        Column("event_time", UTC_DATETIME, "When the event happened"),
        Column("locode", pl.String(), "UN/LOCODE where it happened"),
        Column("event_type", pl.String(), "One of " + ", ".join(EVENT_TYPES)),
        Column("vessel_imo", pl.String(), "Vessel IMO number for load/discharge events", nullable=True),
        Column("voyage", pl.String(), "Voyage for load/discharge events", nullable=True),
        Column("seal_number", pl.String(), "Seal number read at the event", nullable=True, required=False),
    ),
    key=("container_number", "event_time", "locode", "event_type"),
    partition_by="event_time",
    notes=("An event is known to the engine from its `event_time`.",),
)

INSPECTION_OUTCOMES = TableContract(
    name="outcomes",
    description="Result of an inspection (NII scan or physical examination).",
    columns=(
        Column("manifest_id", pl.String(), "Manifest line inspected"),
        Column("container_number", pl.String(), "ISO 6346 container number"),
        Column("port", pl.String(), "UN/LOCODE of the inspecting port", nullable=True, required=False),
        Column("inspected_at", UTC_DATETIME, "When the exam finished (outcome known from then)"),
        Column("exam_type", pl.String(), "NII or PHYSICAL"),
        Column("result", pl.String(), "NO_FINDING, DISCREPANCY or SEIZURE"),
        Column("seizure_category", pl.String(), "Required for SEIZURE: " + ", ".join(SEIZURE_CATEGORIES), nullable=True),
        Column("quantity_kg", pl.Float64(), "Seized quantity in kg (>= 0)", nullable=True),
        Column("concealment_method", pl.String(), "How the goods were hidden", nullable=True),
        Column("seal_status", pl.String(), "One of " + ", ".join(SEAL_STATUSES)),
        Column("examiner", pl.String(), "Examiner id"),
        Column("selection_source", pl.String(), "Why it was inspected: " + ", ".join(SELECTION_SOURCES)),
        Column(
            "direction",
            pl.String(),
            "List direction of the exam: " + ", ".join(DIRECTIONS) + "; empty: the direction in which `port` handles the manifest",
            nullable=True,
            required=False,
        ),
    ),
    key=("manifest_id", "exam_type", "inspected_at"),
    partition_by="inspected_at",
    notes=("An outcome is known to the engine from `inspected_at`.",),
)

ALERTS = TableContract(
    name="alerts",
    description="Watchlist entry or intelligence alert shared by a unit or agency.",
    columns=(
        Column("alert_id", pl.String(), "Unique alert id"),
        Column("kind", pl.String(), "One of " + ", ".join(ALERT_KINDS)),
        Column(
            "value",
            pl.String(),
            "What to match: party id, container number, B/L, IMO, HS prefix (2-10 digits) "
            "or route 'FROM>TO' (each a UN/LOCODE, a country code or '*')",
        ),
        Column("reason", pl.String(), "Plain-language reason shown to officers"),
        Column("issuing_unit", pl.String(), "Unit or agency that issued the alert"),
        Column("severity", pl.Int64(), "1 (low) to 5 (critical)"),
        Column("valid_from", UTC_DATETIME, "Start of validity (inclusive)"),
        Column("valid_to", UTC_DATETIME, "End of validity (exclusive); empty for open-ended", nullable=True),
    ),
    key=("alert_id",),
    partition_by="valid_from",
    notes=("An alert is active at time t when valid_from <= t < valid_to.",),
)

PORTS = TableContract(
    name="ports",
    description="Port reference: container ports with UN/LOCODE and coordinates.",
    columns=(
        Column("locode", pl.String(), "UN/LOCODE"),
        Column("name", pl.String(), "Port name"),
        Column("country", pl.String(), "ISO 3166-1 alpha-2 country code"),
        Column("latitude", pl.Float64(), "Latitude in degrees (-90..90)"),
        Column("longitude", pl.Float64(), "Longitude in degrees (-180..180)"),
        Column("is_transshipment_hub", pl.Boolean(), "Major transshipment hub"),
    ),
    key=("locode",),
    partition_by=None,
)

PRE_EXPORT_NOTIFICATIONS = TableContract(
    name="pre_export_notifications",
    description="Pre-export notification of a precursor chemical shipment (INCB PEN Online style): the exporting "
    "country tells the importing country before the shipment leaves.",
    columns=(
        Column("notification_id", pl.String(), "Unique notification id (PEN Online reference)"),
        Column("exporting_country", pl.String(), "Exporting country, ISO 3166-1 alpha-2"),
        Column("importing_country", pl.String(), "Importing country, ISO 3166-1 alpha-2"),
        Column("exporter_name", pl.String(), "Exporter as notified"),
        Column("importer_name", pl.String(), "Importer as notified"),
        Column("chemical", pl.String(), "Substance notified (INCB Red List name)"),
        Column("hs_code", pl.String(), "HS code of the substance, 6, 8 or 10 digits"),
        Column("quantity_kg", pl.Float64(), "Notified net quantity in kg (> 0)"),
        Column("shipment_from", UTC_DATETIME, "Start of the planned shipment window (inclusive)"),
        Column("shipment_to", UTC_DATETIME, "End of the planned shipment window (exclusive)"),
        Column("notified_at", UTC_DATETIME, "When the notification was issued"),
    ),
    key=("notification_id",),
    partition_by="notified_at",
    notes=(
        "A notification is known to the engine from `notified_at`; it covers a shipment of its HS code from its "
        "exporting to its importing country whose ETD falls in [shipment_from, shipment_to) (features/precursors.py).",
    ),
)

CONTRACTS: dict[str, TableContract] = {
    c.name: c for c in (MANIFESTS, CONTAINER_EVENTS, INSPECTION_OUTCOMES, ALERTS, PORTS, PRE_EXPORT_NOTIFICATIONS)
}


def contract(table: str) -> TableContract:
    """Return the contract of ``table``; raise ``ValueError`` naming the known tables."""
    try:
        return CONTRACTS[table]
    except KeyError:
        raise ValueError(f"unknown table {table!r}; known tables: {', '.join(CONTRACTS)}") from None
