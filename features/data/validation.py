"""Row-level validation of raw input tables, with quarantine of bad rows.

:func:`validate` takes a table as read from a file, every column as a string,
and splits it into

* ``accepted``: rows that satisfy every rule, typed exactly as the contract
  schema (:mod:`features.data.contracts`) with canonical values, and
* ``rejected``: the raw rows unchanged plus a ``reasons`` list. Every reason
  reads ``"<field>: <rule>"``, e.g. ``"container_number: ISO 6346 check digit
  mismatch"``; a row lists all the rules it breaks.

All rules are vectorised Polars expressions (no Python loop over rows). The
rules of a table are data (:class:`Rule`), so the documentation
(``docs/data-contracts.md``) is generated from the same objects that run.

Canonical values
----------------
* Every value is stripped of surrounding whitespace (:data:`features.data.checks.WHITESPACE`);
  an empty value is missing (null).
* Codes and identifiers are upper-cased (container numbers, type codes, ports,
  country and currency codes, HS codes, enumerations, B/L, seal, voyage,
  carrier and party ids). ``manifest_id``, ``alert_id`` and ``examiner`` keep
  their case. Free text (names, descriptions, reasons) has internal runs of
  whitespace collapsed to one space.
* IMO numbers lose an optional ``IMO`` prefix (``"IMO 9074729"`` -> ``"9074729"``).
* Timestamps must be ISO 8601 with a UTC offset or ``Z`` (``T`` or a space
  between date and time, seconds and fractions optional) and are converted to
  UTC. A timestamp without an offset is rejected with ``"<field>: timezone missing"``.
* Booleans accept ``true/false/1/0/yes/no`` in any case.
* List fields are split on :data:`features.data.contracts.LIST_SEPARATOR`; each
  element is stripped (and upper-cased for ports). An empty or missing list
  field is the empty list (never null).

Decisions
---------
* ``reefer = true`` requires a reefer container type (type group ``R``, third
  character of the size-type code); a reefer type with ``reefer = false`` is
  accepted (a non-operating reefer carrying dry cargo).
* Timestamp orderings enforced on manifests: ``booked_at <= filed_at``,
  ``filed_at <= eta``, ``etd <= eta``, ``filed_at <= amended_at`` and
  ``booked_at <= booking_amended_at``. Filing
  after departure is allowed (late filing is a risk feature, not an error).
* The route checked for consecutive repeats is ``port_of_loading``,
  ``transshipment_ports...``, ``port_of_discharge`` (place of receipt and
  delivery may equal the ports).
* Duplicate detection only looks at rows that pass every other rule.
* ``valid_to`` of alerts has no future limit (an end of validity is in the
  future by nature).
"""

from __future__ import annotations

import functools

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import polars as pl

from features.data import checks
from features.data.handling import DIRECTIONS
from features.data.contracts import (
    ALERT_KINDS,
    EVENT_TYPES,
    EXAM_TYPES,
    FREIGHT_PAYMENT_METHODS,
    LIST_SEPARATOR,
    RESULTS,
    SEAL_STATUSES,
    SEIZURE_CATEGORIES,
    SELECTION_SOURCES,
    TableContract,
    contract,
)

__all__ = [
    "FUTURE_TOLERANCE",
    "SCHEDULE_FUTURE_TOLERANCE",
    "SCHEDULE_COLUMNS",
    "UNBOUNDED_FUTURE_COLUMNS",
    "MIN_TIMESTAMP",
    "BOOLEAN_VALUES",
    "CONTAINER_LENGTHS",
    "CONTAINER_TYPE_PATTERN",
    "REEFER_TYPE_GROUP",
    "ROW_COLUMN",
    "REASONS_COLUMN",
    "Rule",
    "ValidationResult",
    "validate",
    "table_rules",
    "rule_catalogue",
    "duplicate_reason",
    "conflict_reason",
    "key_label",
    "canonical_frame",
    "max_gross_kg_expr",
    "reason_counts",
]

# --------------------------------------------------------------------------- constants

FUTURE_TOLERANCE = timedelta(days=1)
"""How far after ``now`` a timestamp may lie (all timestamps except schedules and ``valid_to``)."""
SCHEDULE_FUTURE_TOLERANCE = timedelta(days=120)
"""How far after ``now`` an estimated departure or arrival may lie."""
SCHEDULE_COLUMNS = frozenset({"etd", "eta"})
"""Timestamps bounded by :data:`SCHEDULE_FUTURE_TOLERANCE` instead of :data:`FUTURE_TOLERANCE`."""
UNBOUNDED_FUTURE_COLUMNS = frozenset({"valid_to"})
"""Timestamps without a future limit."""
MIN_TIMESTAMP = datetime(1900, 1, 1, tzinfo=timezone.utc)
"""Earliest accepted timestamp (guards against typos such as year 0024)."""

BOOLEAN_VALUES: dict[str, bool] = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
"""Accepted spellings of booleans (matched case-insensitively)."""

CONTAINER_LENGTHS: dict[str, tuple[str, int]] = {
    "1": ("10'", 10_160),
    "2": ("20'", 30_480),
    "3": ("30'", 30_480),
    "4": ("40'", 32_500),
    "B": ("24'", 30_480),
    "G": ("41'", 32_500),
    "H": ("43'", 32_500),
    "K": ("44'", 32_500),
    "L": ("45'", 32_500),
    "M": ("48'", 32_500),
    "N": ("49'", 32_500),
    "P": ("53'", 32_500),
}
"""ISO 6346 length code (first character of the size-type code) -> (length label, max gross kg)."""

CONTAINER_TYPE_PATTERN = (
    "^[" + "".join(CONTAINER_LENGTHS) + "][0245689CDEFLMNP][GVBSRHUPTA][0-9]$"
)
"""ISO 6346 size-type code: length code, height/width code, type group, type detail digit."""
REEFER_TYPE_GROUP = "R"
"""Type group (third character) of refrigerated containers."""

ROW_COLUMN = "__row"
"""Raw input column: 0-based row index in the source file (kept in rejected rows)."""
REASONS_COLUMN = "reasons"
"""Rejected-row column: list of ``"<field>: <rule>"`` strings."""

_P = "__ccp_"  # prefix of internal columns
_POS = f"{_P}pos"
_BAD = f"{_P}bad"

_INT_PATTERN = r"^[+-]?[0-9]+$"
_FLOAT_PATTERN = r"(?i)^[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?|nan|inf|infinity)$"
_TS_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)$"
_TS_NAIVE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?)?$"
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%z"
_COUNTRY_PATTERN = r"^[A-Z]{2}$"
_CURRENCY_PATTERN = r"^[A-Z]{3}$"
_HS_PREFIX_PATTERN = r"^[0-9]{2,10}$"
_ROUTE_SIDE = r"(?:[A-Z]{2}[A-Z2-9]{3}|[A-Z]{2}|\*)"
_ROUTE_PATTERN = f"^{_ROUTE_SIDE}>{_ROUTE_SIDE}$"

# Column semantics beyond the contract dtype (how to canonicalise, which rules apply).
_PORT_COLUMNS = frozenset({"place_of_receipt", "port_of_loading", "port_of_discharge", "place_of_delivery", "locode", "port"})
_COUNTRY_COLUMNS = frozenset({"shipper_country", "consignee_country", "notify_country", "country"})
_CASE_PRESERVING_IDS = frozenset({"manifest_id", "alert_id", "examiner"})
_TEXT_COLUMNS = frozenset(
    {
        "shipper_name",
        "consignee_name",
        "notify_name",
        "goods_description",
        "concealment_method",
        "reason",
        "issuing_unit",
        "name",
    }
)
_ENUMS: dict[str, tuple[str, ...]] = {
    "event_type": EVENT_TYPES,
    "exam_type": EXAM_TYPES,
    "result": RESULTS,
    "seizure_category": SEIZURE_CATEGORIES,
    "seal_status": SEAL_STATUSES,
    "selection_source": SELECTION_SOURCES,
    "kind": ALERT_KINDS,
    "freight_payment": FREIGHT_PAYMENT_METHODS,
    "direction": DIRECTIONS,
}


def _s(name: str) -> pl.Expr:
    """Canonical string of column ``name`` (stripped; null when empty)."""
    return pl.col(f"{_P}s.{name}")


def _v(name: str) -> pl.Expr:
    """Typed canonical value of column ``name`` (null when missing or unparseable)."""
    return pl.col(f"{_P}v.{name}")


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """One validation rule of a table.

    Parameters
    ----------
    field
        Column the reason names (or the pseudo-field ``route``).
    rule
        Rule text; the reason is ``f"{field}: {rule}"``. For rules with a
        per-row ``message`` it is the documented template.
    violated
        Boolean expression over the internal canonical/typed columns; ``True``
        when the row breaks the rule (null counts as not broken).
    message
        Optional String expression giving the exact reason per row (used when
        the text depends on the row, e.g. the max gross of its container type).
    """

    field: str
    rule: str
    violated: pl.Expr
    message: pl.Expr | None = None

    @property
    def reason(self) -> str:
        """The reason text ``"<field>: <rule>"`` (a template when ``message`` is set)."""
        return f"{self.field}: {self.rule}"

    def reason_expr(self) -> pl.Expr:
        """String expression with the reason of each row."""
        return self.message if self.message is not None else pl.lit(self.reason)


def key_label(table_contract: TableContract) -> str:
    """The ``<field>`` part of key-level reasons: the key columns joined with ``+``."""
    return "+".join(table_contract.key)


def duplicate_reason(table_contract: TableContract) -> str:
    """Reason of a later copy of an identical row within one input."""
    return f"{key_label(table_contract)}: duplicate row"


def conflict_reason(table_contract: TableContract) -> str:
    """Reason of every row of a key that appears with different contents in one input."""
    return f"{key_label(table_contract)}: conflicting duplicate"


def _days(td: timedelta) -> str:
    days = td / timedelta(days=1)
    n = int(days) if days == int(days) else days
    return f"{n} day" if n == 1 else f"{n} days"


def _is_in(expr: pl.Expr, values: Iterable[str]) -> pl.Expr:
    return expr.is_in(_value_series(values if isinstance(values, frozenset) else frozenset(values)))


@functools.lru_cache(maxsize=16)
def _value_series(values: frozenset[str]) -> pl.Series:
    """Sorted one-element list Series of ``values`` (cached: the UN/LOCODE list has ~116,000 codes)."""
    return pl.Series(values=sorted(values), dtype=pl.String).implode()


def max_gross_kg_expr(container_type: pl.Expr) -> pl.Expr:
    """Max gross mass (Float64 kg) of a canonical ISO 6346 size-type code; null when unknown."""
    return container_type.str.slice(0, 1).replace_strict(
        {k: float(m) for k, (_, m) in CONTAINER_LENGTHS.items()}, default=None, return_dtype=pl.Float64
    )


def _length_label_expr(container_type: pl.Expr) -> pl.Expr:
    return container_type.str.slice(0, 1).replace_strict(
        {k: label for k, (label, _) in CONTAINER_LENGTHS.items()}, default=None, return_dtype=pl.String
    )


def _type_rules(c: TableContract, *, now: datetime) -> list[Rule]:
    """Required values, parse failures and timestamp bounds, from the contract dtypes."""
    rules: list[Rule] = []
    for col in c.columns:
        name = col.name
        if not col.nullable:
            rules.append(Rule(name, "required value missing", _s(name).is_null()))
        present_but_unparsed = _s(name).is_not_null() & _v(name).is_null()
        dtype = col.dtype
        if dtype == pl.Int64:
            rules.append(Rule(name, "not an integer", present_but_unparsed))
        elif dtype == pl.Float64:
            rules.append(Rule(name, "not a number", present_but_unparsed))
            rules.append(Rule(name, "not finite", _v(name).is_infinite() | _v(name).is_nan()))
        elif dtype == pl.Boolean:
            rules.append(Rule(name, "not a boolean (true/false/1/0/yes/no)", present_but_unparsed))
        elif isinstance(dtype, pl.Datetime):
            naive = _s(name).str.to_uppercase().str.contains(_TS_NAIVE_PATTERN)
            rules.append(Rule(name, "timezone missing", present_but_unparsed & naive))
            rules.append(Rule(name, "not an ISO 8601 timestamp", present_but_unparsed & ~naive))
            rules.append(Rule(name, "before 1900-01-01", _v(name) < pl.lit(MIN_TIMESTAMP).dt.cast_time_unit("us")))
            if name not in UNBOUNDED_FUTURE_COLUMNS:
                tol = SCHEDULE_FUTURE_TOLERANCE if name in SCHEDULE_COLUMNS else FUTURE_TOLERANCE
                limit = pl.lit(now + tol).dt.cast_time_unit("us").dt.convert_time_zone("UTC")
                rules.append(Rule(name, f"more than {_days(tol)} after now", _v(name) > limit))
        elif isinstance(dtype, pl.List):
            rules.append(Rule(name, "empty list element", _v(name).list.eval(pl.element() == "").list.any()))
    return rules


def _container_number_rules(name: str) -> list[Rule]:
    shape = checks.iso6346_shape_expr(_v(name))
    return [
        Rule(name, "not an ISO 6346 container number", _v(name).is_not_null() & ~shape),
        Rule(name, "ISO 6346 check digit mismatch", shape & ~checks.iso6346_valid_expr(_v(name))),
    ]


def _imo_rules(name: str) -> list[Rule]:
    shape = checks.imo_shape_expr(_v(name))
    return [
        Rule(name, "not a 7-digit IMO number", _v(name).is_not_null() & ~shape),
        Rule(name, "IMO check digit mismatch", shape & ~checks.imo_valid_expr(_v(name))),
    ]


def _port_rules(name: str, known: frozenset[str] | None) -> list[Rule]:
    shape = checks.locode_shape_expr(_v(name))
    rules = [Rule(name, "not a UN/LOCODE", _v(name).is_not_null() & ~shape)]
    if known is not None:
        rules.append(Rule(name, "unknown UN/LOCODE (not in the port reference)", shape & ~_is_in(_v(name), known)))
    return rules


def _port_list_rules(name: str, known: frozenset[str]) -> list[Rule]:
    elem = pl.element()
    shape = elem.str.contains(checks.LOCODE_PATTERN)
    return [
        Rule(name, "not a UN/LOCODE", _v(name).list.eval((elem != "") & ~shape).list.any()),
        Rule(
            name,
            "unknown UN/LOCODE (not in the port reference)",
            _v(name).list.eval(shape & ~_is_in(elem, known)).list.any(),
        ),
    ]


def _mass_rules(name: str) -> list[Rule]:
    max_gross = max_gross_kg_expr(_v("container_type"))
    valid_type = _v("container_type").str.contains(CONTAINER_TYPE_PATTERN).fill_null(False)
    finite = _v(name).is_finite()
    message = pl.concat_str(
        [
            pl.lit(f"{name}: above max gross "),
            max_gross.cast(pl.Int64).cast(pl.String),
            pl.lit(" kg for "),
            _length_label_expr(_v("container_type")),
            pl.lit(" container"),
        ]
    )
    return [
        Rule(name, "not positive", finite & (_v(name) <= 0)),
        Rule(
            name,
            "above max gross {max_kg} kg for {length} container",
            valid_type & finite & (_v(name) > max_gross),
            message=message,
        ),
    ]


def _code_rule(name: str, pattern: str, rule: str) -> Rule:
    return Rule(name, rule, _v(name).is_not_null() & ~_v(name).str.contains(pattern))


_SEAPORT_COLUMNS = frozenset({"port_of_loading", "port_of_discharge"})
SEAPORT_RULE = "not a seaport (UN/LOCODE function 1) in the port reference"


def _seaport_rule(name: str, known: frozenset[str], seaports: frozenset[str]) -> Rule:
    """A port of loading/discharge (or a transshipment port) must be a seaport; a place of receipt or delivery may be inland."""
    if name == "transshipment_ports":
        elem = pl.element()
        shape = elem.str.contains(checks.LOCODE_PATTERN)
        bad = _v(name).list.eval(shape & _is_in(elem, known) & ~_is_in(elem, seaports)).list.any()
    else:
        bad = checks.locode_shape_expr(_v(name)) & _is_in(_v(name), known) & ~_is_in(_v(name), seaports)
    return Rule(name, SEAPORT_RULE, bad)


def _column_rules(c: TableContract, known: frozenset[str] | None, seaports: frozenset[str] | None = None) -> list[Rule]:
    """Rules that follow from a column's meaning, shared by all tables."""
    rules: list[Rule] = []
    for name in c.column_names:
        if seaports is not None and known and (name in _SEAPORT_COLUMNS or name == "transshipment_ports"):
            rules.append(_seaport_rule(name, known, seaports))
        if name == "container_number":
            rules += _container_number_rules(name)
        elif name == "vessel_imo":
            rules += _imo_rules(name)
        elif name in _PORT_COLUMNS:
            rules += _port_rules(name, None if c.name == "ports" else known)
        elif name == "transshipment_ports":
            rules += _port_list_rules(name, known or frozenset())
        elif name in _COUNTRY_COLUMNS:
            rules.append(_code_rule(name, _COUNTRY_PATTERN, "not a 2-letter country code"))
        elif name in _ENUMS:
            values = _ENUMS[name]
            rules.append(Rule(name, f"not one of {', '.join(values)}", _v(name).is_not_null() & ~_is_in(_v(name), values)))
    return rules


def _manifest_rules() -> list[Rule]:
    reefer_type = _v("container_type").str.slice(2, 1) == REEFER_TYPE_GROUP
    valid_type = _v("container_type").str.contains(CONTAINER_TYPE_PATTERN)
    pol, ts, pod = _v("port_of_loading"), _v("transshipment_ports"), _v("port_of_discharge")
    repeated = (
        (ts.list.first() == pol)
        | (ts.list.last() == pod)
        | ((ts.list.len() == 0) & (pol == pod))
        | ((ts.list.len() > 1) & ts.list.eval(pl.element() == pl.element().shift(1)).list.any())
    )
    return [
        _code_rule("container_type", CONTAINER_TYPE_PATTERN, "not an ISO 6346 size-type code"),
        Rule("reefer", "set but container type is not a reefer (R) type", _v("reefer") & valid_type & ~reefer_type),
        Rule("route", "port repeated consecutively", repeated),
        Rule("hs_code", "not 6, 8 or 10 digits", _v("hs_code").is_not_null() & ~checks.hs_code_digits_expr(_v("hs_code"))),
        Rule(
            "hs_code",
            "invalid HS chapter (01-97, not 77)",
            checks.hs_code_digits_expr(_v("hs_code")) & ~checks.hs_chapter_expr(_v("hs_code")),
        ),
        Rule("packages", "less than 1", _v("packages") < 1),
        *_mass_rules("gross_mass_kg"),
        *_mass_rules("verified_gross_mass_kg"),
        Rule("declared_value", "negative", _v("declared_value").is_finite() & (_v("declared_value") < 0)),
        _code_rule("currency", _CURRENCY_PATTERN, "not a 3-letter currency code"),
        Rule("filed_at", "earlier than booked_at", _v("filed_at") < _v("booked_at")),
        Rule("eta", "earlier than filed_at", _v("eta") < _v("filed_at")),
        Rule("eta", "earlier than etd", _v("eta") < _v("etd")),
        Rule("amended_at", "earlier than filed_at", _v("amended_at") < _v("filed_at")),
        Rule(
            "amended_fields",
            "set but amended_at missing",
            (_v("amended_fields").list.len() > 0) & _v("amended_at").is_null(),
        ),
        Rule("booking_amended_at", "earlier than booked_at", _v("booking_amended_at") < _v("booked_at")),
        Rule(
            "booking_amended_fields",
            "set but booking_amended_at missing",
            (_v("booking_amended_fields").list.len() > 0) & _v("booking_amended_at").is_null(),
        ),
    ]


def _outcome_rules() -> list[Rule]:
    seizure = _v("result") == "SEIZURE"
    return [
        Rule("seizure_category", "required when result is SEIZURE", seizure & _v("seizure_category").is_null()),
        Rule(
            "seizure_category",
            "set but result is not SEIZURE",
            _is_in(_v("result"), RESULTS) & ~seizure & _v("seizure_category").is_not_null(),
        ),
        Rule("quantity_kg", "negative", _v("quantity_kg").is_finite() & (_v("quantity_kg") < 0)),
    ]


def _alert_rules(known: frozenset[str]) -> list[Rule]:
    kind, value = _v("kind"), _v("value")
    sides = value.str.split(">")
    unknown_side = sides.list.eval(
        (pl.element().str.len_chars() == 5) & ~_is_in(pl.element(), known)
    ).list.any()
    route_ok = value.str.contains(_ROUTE_PATTERN)
    return [
        Rule("severity", "not between 1 and 5", ~_v("severity").is_between(1, 5)),
        Rule("valid_to", "not after valid_from", _v("valid_to") <= _v("valid_from")),
        Rule(
            "value",
            "not a valid ISO 6346 container number",
            (kind == "CONTAINER") & value.is_not_null() & ~checks.iso6346_valid_expr(value),
        ),
        Rule(
            "value",
            "not a valid IMO number",
            (kind == "VESSEL") & value.is_not_null() & ~checks.imo_valid_expr(value),
        ),
        Rule(
            "value",
            "not an HS prefix (2-10 digits)",
            (kind == "HS_CODE") & value.is_not_null() & ~value.str.contains(_HS_PREFIX_PATTERN),
        ),
        Rule(
            "value",
            "not a route FROM>TO (each side a UN/LOCODE, a 2-letter country code or *)",
            (kind == "ROUTE") & value.is_not_null() & ~route_ok,
        ),
        Rule("value", "unknown UN/LOCODE in route", (kind == "ROUTE") & route_ok & unknown_side),
    ]


def _port_table_rules() -> list[Rule]:
    return [
        Rule(
            "locode",
            "country prefix differs from country",
            checks.locode_shape_expr(_v("locode"))
            & _v("country").str.contains(_COUNTRY_PATTERN)
            & (_v("locode").str.slice(0, 2) != _v("country")),
        ),
        Rule("latitude", "outside -90..90", _v("latitude").is_finite() & ~_v("latitude").is_between(-90, 90)),
        Rule("longitude", "outside -180..180", _v("longitude").is_finite() & ~_v("longitude").is_between(-180, 180)),
    ]


def _pre_export_notification_rules() -> list[Rule]:
    return [
        *(_code_rule(name, _COUNTRY_PATTERN, "not a 2-letter country code") for name in ("exporting_country", "importing_country")),
        Rule("hs_code", "not 6, 8 or 10 digits", _v("hs_code").is_not_null() & ~checks.hs_code_digits_expr(_v("hs_code"))),
        Rule("quantity_kg", "not above 0", _v("quantity_kg").is_finite() & (_v("quantity_kg") <= 0)),
        Rule("shipment_to", "not after shipment_from", _v("shipment_to") <= _v("shipment_from")),
    ]


_TABLE_RULES: dict[str, Callable[[frozenset[str]], list[Rule]]] = {
    "manifests": lambda known: _manifest_rules(),
    "events": lambda known: [],
    "outcomes": lambda known: _outcome_rules(),
    "alerts": _alert_rules,
    "ports": lambda known: _port_table_rules(),
    "pre_export_notifications": lambda known: _pre_export_notification_rules(),
}


def table_rules(
    table: str, *, now: datetime, known_locodes: Iterable[str] = (), seaports: Iterable[str] | None = None
) -> list[Rule]:
    """All row rules of ``table``, in the order their reasons are listed.

    Parameters
    ----------
    table
        Contract name (see :data:`features.data.contracts.CONTRACTS`).
    now
        Timezone-aware reference time for the future-timestamp bounds.
    known_locodes
        UN/LOCODEs of the port reference (membership rules).
    seaports
        UN/LOCODEs that may be a port of loading, discharge or transshipment;
        ``None``: no seaport rule.
    """
    c = contract(table)
    known = frozenset(known_locodes)
    sea = None if seaports is None else frozenset(seaports)
    rules = [*_type_rules(c, now=now), *_column_rules(c, known, sea), *_TABLE_RULES[table](known)]
    order = {name: i for i, name in enumerate(c.column_names)}
    order["route"] = order.get("port_of_discharge", len(order))
    return sorted(rules, key=lambda r: order.get(r.field, len(order)))


def rule_catalogue(table: str) -> list[str]:
    """The reason texts ``table`` can produce (templates contain ``{placeholders}``).

    Includes the key-level reasons of :func:`validate` (duplicates). Used to
    generate ``docs/data-contracts.md``.
    """
    c = contract(table)
    now = datetime(2000, 1, 1, tzinfo=timezone.utc)
    seen: dict[str, None] = {}
    for rule in table_rules(table, now=now, known_locodes=("XXXXX",), seaports=()):
        seen.setdefault(rule.reason)
    seen.setdefault(duplicate_reason(c))
    seen.setdefault(conflict_reason(c))
    return list(seen)


# --------------------------------------------------------------------------- canonicalisation


def _strip_to_null(expr: pl.Expr) -> pl.Expr:
    stripped = expr.str.strip_chars(checks.WHITESPACE)
    return pl.when(stripped.str.len_bytes() > 0).then(stripped)


def _canonical_string(c: TableContract, name: str, raw: pl.Expr) -> pl.Expr:
    """Canonical string of a raw value (see the module docstring)."""
    base = _strip_to_null(raw)
    dtype = c.column(name).dtype
    if dtype != pl.String:
        return base
    if name == "vessel_imo":
        return _strip_to_null(checks.imo_normalize_expr(raw))
    if name in _CASE_PRESERVING_IDS:
        return base
    if name in _TEXT_COLUMNS:
        return base.str.replace_all(r"\s+", " ")
    return base.str.to_uppercase()


def _parse_timestamp(expr: pl.Expr) -> pl.Expr:
    """Parse an ISO 8601 string with an offset into ``Datetime("us", "UTC")``; null otherwise."""
    up = expr.str.to_uppercase()
    normalised = (
        up.str.replace(r"^([0-9]{4}-[0-9]{2}-[0-9]{2}) ", "${1}T")
        .str.replace(r"T([0-9]{2}:[0-9]{2})(Z|[+-])", "T${1}:00${2}")
        .str.replace(r"Z$", "+00:00")
        .str.replace(r"([+-][0-9]{2})$", "${1}:00")
    )
    parsed = normalised.str.to_datetime(_TS_FORMAT, time_unit="us", time_zone="UTC", strict=False)
    return pl.when(up.str.contains(_TS_PATTERN)).then(parsed)


def _typed_value(c: TableContract, name: str) -> pl.Expr:
    """Typed canonical value of column ``name`` from its canonical string."""
    dtype = c.column(name).dtype
    text = _s(name)
    if dtype == pl.Int64:
        return pl.when(text.str.contains(_INT_PATTERN)).then(text.str.to_integer(strict=False))
    if dtype == pl.Float64:
        return pl.when(text.str.contains(_FLOAT_PATTERN)).then(text.cast(pl.Float64, strict=False))
    if dtype == pl.Boolean:
        return text.str.to_lowercase().replace_strict(BOOLEAN_VALUES, default=None, return_dtype=pl.Boolean)
    if isinstance(dtype, pl.Datetime):
        return _parse_timestamp(text)
    if isinstance(dtype, pl.List):
        elem = pl.element().str.strip_chars(checks.WHITESPACE)
        if name == "transshipment_ports":
            elem = elem.str.to_uppercase()
        return (
            pl.when(text.is_null())
            .then(pl.lit([], dtype=pl.List(pl.String)))
            .otherwise(text.str.split(LIST_SEPARATOR).list.eval(elem))
        )
    if name == "value" and c.name == "alerts":
        kind = _s("kind").str.to_uppercase()
        return (
            pl.when(kind == "VESSEL")
            .then(checks.imo_normalize_expr(text))
            .when(kind == "ROUTE")
            .then(text.str.replace_all(r"\s", ""))
            .otherwise(text)
        )
    return text


def canonical_frame(lf: pl.LazyFrame, table: str) -> pl.LazyFrame:
    """Add the internal canonical-string and typed columns of ``table`` to raw ``lf``.

    Contract columns absent from ``lf`` are treated as entirely missing.
    """
    c = contract(table)
    present = set(lf.collect_schema().names())
    strings = [
        _canonical_string(c, name, pl.col(name) if name in present else pl.lit(None, dtype=pl.String)).alias(
            f"{_P}s.{name}"
        )
        for name in c.column_names
    ]
    typed = [_typed_value(c, name).alias(f"{_P}v.{name}") for name in c.column_names]
    return lf.with_columns(strings).with_columns(typed)


# --------------------------------------------------------------------------- validate


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of :func:`validate`.

    Attributes
    ----------
    accepted
        Valid rows, typed exactly as the contract schema, in input order.
    rejected
        Invalid rows: every raw column unchanged (strings, plus ``__row``) and
        ``reasons`` (``List(String)``), in input order.
    accepted_index
        0-based positions in the raw input of the accepted rows (aligned with
        ``accepted``); lets callers recover the raw row of an accepted one.
    """

    accepted: pl.DataFrame
    rejected: pl.DataFrame
    accepted_index: pl.Series

    @property
    def reason_counts(self) -> dict[str, int]:
        """Number of rejected rows per reason text, most frequent first."""
        return reason_counts(self.rejected)


def reason_counts(rejected: pl.DataFrame) -> dict[str, int]:
    """Count rows per reason in a rejected frame (a row counts once per reason it lists)."""
    if rejected.height == 0:
        return {}
    counts = (
        rejected.select(pl.col(REASONS_COLUMN).explode().alias("reason"))
        .group_by("reason")
        .len()
        .sort(["len", "reason"], descending=[True, False])
    )
    return dict(zip(counts["reason"].to_list(), counts["len"].to_list()))


def _check_raw(raw: pl.DataFrame, c: TableContract) -> pl.DataFrame:
    internal = [n for n in raw.columns if n.startswith(_P)]
    if internal:
        raise ValueError(f"column names starting with {_P!r} are reserved: {internal}")
    if REASONS_COLUMN in raw.columns:
        raise ValueError(f"column name {REASONS_COLUMN!r} is reserved for rejected rows")
    not_string = [n for n, t in raw.schema.items() if n != ROW_COLUMN and t != pl.String]
    if not_string:
        raise ValueError(f"validate expects every column as String; not String: {not_string}")
    missing = [n for n in c.required_columns if n not in raw.columns]
    if missing:
        raise ValueError(f"missing required column(s) for table {c.name!r}: {', '.join(missing)}")
    if ROW_COLUMN not in raw.columns:
        raw = raw.with_row_index(ROW_COLUMN).with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))
    return raw


def _default_known_locodes() -> frozenset[str]:
    from features.data.reference import location_locodes

    return location_locodes()


def _default_seaports() -> frozenset[str]:
    from features.data.reference import seaport_locodes

    return seaport_locodes()


SOURCE_ERROR_COLUMN = "__source_error"
"""Raw column set by a message adapter (features.data.adapters) when a segment of the row's message is bad."""


def validate(
    table: str,
    raw: pl.DataFrame,
    *,
    now: datetime,
    known_locodes: Iterable[str] | None = None,
    seaports: Iterable[str] | None = None,
) -> ValidationResult:
    """Validate raw rows of ``table``: accepted typed rows and rejected raw rows with reasons.

    Parameters
    ----------
    table
        Contract name: ``manifests``, ``events``, ``outcomes``, ``alerts`` or ``ports``.
    raw
        The input as read: every column ``String`` plus ``__row`` (integer row
        index in the file; added when absent). Columns outside the contract
        are carried into rejected rows and ignored otherwise. Every required
        contract column must be present.
    now
        Timezone-aware reference time for the "not in the future" rules.
    known_locodes
        UN/LOCODEs a place or port must belong to; default
        :func:`features.data.reference.location_locodes` (the UN/LOCODE list
        plus the port reference). Not used for ``ports``.
    seaports
        UN/LOCODEs a port of loading, discharge or transshipment must belong
        to; default :func:`features.data.reference.seaport_locodes` when
        ``known_locodes`` is defaulted too, else no seaport rule.

    Returns
    -------
    ValidationResult
        ``accepted`` (contract schema, canonical values) and ``rejected``
        (raw rows + ``reasons``); every input row is in exactly one of them.

    Raises
    ------
    ValueError
        Unknown table, naive ``now``, a non-String column, a reserved column
        name or a missing required column.
    """
    c = contract(table)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    raw = _check_raw(raw, c)
    if table == "ports":
        known: frozenset[str] = frozenset()
    else:
        if known_locodes is None and seaports is None:
            seaports = _default_seaports()
        known = frozenset(_default_known_locodes() if known_locodes is None else known_locodes)
    rules = table_rules(table, now=now.astimezone(timezone.utc), known_locodes=known, seaports=seaports if table != "ports" else None)
    if SOURCE_ERROR_COLUMN in raw.columns:
        source_error = pl.col(SOURCE_ERROR_COLUMN)
        rules.insert(0, Rule("message", "<segment> <element>: <what is wrong>", source_error.is_not_null(), source_error))
    raw_columns = raw.columns
    flags = [r.violated.fill_null(False).alias(f"{_P}r{i}") for i, r in enumerate(rules)]
    frame = (
        canonical_frame(raw.lazy().with_row_index(_POS), table)
        .with_columns(flags)
        .with_columns(pl.any_horizontal([f"{_P}r{i}" for i in range(len(rules))]).alias(_BAD))
        .collect()
    )
    bad = frame.filter(pl.col(_BAD))
    rejected_rules = bad.select(
        _POS,
        *raw_columns,
        pl.concat_str(
            [pl.when(pl.col(f"{_P}r{i}")).then(r.reason_expr()) for i, r in enumerate(rules)],
            separator="\x1f",
            ignore_nulls=True,
        )
        .str.split("\x1f")
        .alias(REASONS_COLUMN),
    )
    good = frame.filter(~pl.col(_BAD))
    good, dup_rejected = _split_duplicates(good, c, raw_columns)
    rejected = (
        pl.concat([rejected_rules, dup_rejected], how="vertical")
        .sort(_POS)
        .drop(_POS)
    )
    accepted = good.select([_v(n).alias(n) for n in c.column_names]).cast(dict(c.schema))
    return ValidationResult(accepted=accepted, rejected=rejected, accepted_index=good[_POS].alias("index"))


def _split_duplicates(
    good: pl.DataFrame, c: TableContract, raw_columns: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split valid rows into kept rows and rejected duplicates (first copy of identical rows kept)."""
    key = [f"{_P}v.{k}" for k in c.key]
    shared = good.select(pl.len().over(key) > 1).to_series()
    if not shared.any():
        return good, good.clear().select(_POS, *raw_columns, pl.lit([], dtype=pl.List(pl.String)).alias(REASONS_COLUMN))
    content = pl.struct([_v(n) for n in c.column_names])
    marked = good.filter(shared).with_columns(
        (content.n_unique().over(key) > 1).alias(f"{_P}conflict"),
        (pl.col(_POS) != pl.col(_POS).min().over(key)).alias(f"{_P}later"),
    )
    conflict, later = pl.col(f"{_P}conflict"), pl.col(f"{_P}later")
    drop = marked.filter(conflict | later)
    kept = good.filter(~pl.col(_POS).is_in(drop[_POS].implode()))
    rejected = drop.select(
        _POS,
        *raw_columns,
        pl.when(conflict)
        .then(pl.lit([conflict_reason(c)]))
        .otherwise(pl.lit([duplicate_reason(c)]))
        .cast(pl.List(pl.String))
        .alias(REASONS_COLUMN),
    )
    return kept, rejected
