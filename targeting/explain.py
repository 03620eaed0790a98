"""Plain-language reasons for selected containers, from the model's feature contributions.

:func:`readable_reasons` computes LightGBM contributions (SHAP values on the
log-odds scale, :func:`models.risk_model.predict_contributions`) for the rows
it is given, keeps the features that pushed the score *up*, and turns each into
a short sentence an officer can check against the documents, with the actual
value where it means something ("Consignee first seen 12 days ago").

Contributions are expensive (ENGINEERING.md, trap 7): call it only with the
rows of the selected items (:func:`model_reasons_for` does the filtering),
never with every candidate.

Every feature of :func:`features.registry.feature_columns` has a template in
:data:`TEMPLATES` (tested); a feature without one (a new feature added
later) falls back to its registry description. Templates accept any float,
including sentinels (-1, 3650), zero, huge and non-finite values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import lightgbm as lgb
import numpy as np
import polars as pl

import features.pipeline  # noqa: F401  (registers every feature)
from features.data.contracts import ALERT_KINDS
from features.registry import REGISTRY, feature_columns
from features.stats import CATEGORICAL_SOURCES, UNKNOWN_CODE
from models import risk_model

__all__ = ["TEMPLATES", "describe", "model_reasons_for", "readable_reasons", "reason_topic"]

Template = Callable[[float, "str | None"], str]
"""A sentence builder: (feature value, decoded category label or None) -> sentence."""

_NO_FINDING_DAYS = 3650.0


# --------------------------------------------------------------------------- number formatting


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _count(x: float) -> str:
    """A count: '12', '1,250'; huge values in short scientific form; 'an unknown number of' when not finite."""
    if not _finite(x):
        return "an unknown number of"
    if abs(x) >= 1e9:
        return f"{x:.3g}"
    return f"{round(x):,}"


def _plural(x: float, one: str, many: str) -> str:
    return f"{_count(x)} {one if _finite(x) and round(x) == 1 else many}"


def _num(x: float, digits: int = 1) -> str:
    """A measurement with ``digits`` decimals ('9.5'); huge values in scientific form; 'unknown' when not finite."""
    if not _finite(x):
        return "unknown"
    if abs(x) >= 1e9:
        return f"{x:.3g}"
    return f"{x:,.{digits}f}"


def _pct(x: float) -> str:
    """A share 0..1 as a percentage ('4.1%')."""
    if not _finite(x):
        return "unknown"
    return f"{_num(100.0 * x, 1)}%"


def _duration_hours(hours: float) -> str:
    """'18 hours' below two days, else '9.5 days'."""
    if not _finite(hours):
        return "an unknown time"
    if abs(hours) < 48:
        return _plural(hours, "hour", "hours")
    return f"{_num(hours / 24.0, 1)} days"


def _days(days: float) -> str:
    return _plural(days, "day", "days")


def _relative(log_deviation: float) -> str:
    """``exp(d) - 1`` as '62% below' / '150% above' / '12 times' (safe for any float)."""
    if not _finite(log_deviation):
        return "far from"
    if log_deviation > 0:
        if log_deviation > math.log(1000.0):
            return "more than 1,000 times"
        if log_deviation > math.log(10.0):
            return f"{_num(math.exp(log_deviation), 0)} times"
        return f"{_num(100.0 * math.expm1(log_deviation), 0)}% above"
    return f"{_num(-100.0 * math.expm1(log_deviation), 0)}% below"


def _flag(x: float) -> bool:
    return _finite(x) and x >= 0.5


# --------------------------------------------------------------------------- templates

T: dict[str, Template] = {}


def _binary(name: str, yes: str, no: str) -> None:
    T[name] = lambda v, _l, yes=yes, no=no: yes if _flag(v) else no


# manifest ------------------------------------------------------------------
_binary("reefer", "Refrigerated (reefer) container", "Dry (non-refrigerated) container")
_binary(
    "house_bl_only",
    "House bill of lading: the actual shipper is hidden behind a forwarder (NVOCC)",
    "No house bill of lading",
)
_binary("seal_present", "Seal number declared on the manifest", "No seal number declared on the manifest")
_binary(
    "vague_description",
    "Vague goods description (FAK, general cargo, said to contain)",
    "Specific goods description",
)
T["description_length"] = lambda v, _l: f"Goods description only {_plural(v, 'character', 'characters')} long"
_binary("freight_not_prepaid", "Freight collect or paid by a third party", "Freight prepaid")
_binary("freight_third_party", "Freight paid by a third party", "Freight not paid by a third party")
T["filing_lead_hours"] = lambda v, _l: (
    f"Manifest filed {_duration_hours(v)} before arrival" if not _finite(v) or v >= 0 else f"Manifest filed {_duration_hours(-v)} after arrival"
)
_binary(
    "filed_after_departure",
    "Manifest filed after the vessel left the port of loading (24-hour rule breached)",
    "Manifest filed before departure",
)
T["booking_lead_hours"] = lambda v, _l: (
    f"Booked {_duration_hours(v)} before departure" if not _finite(v) or v >= 0 else f"Booked {_duration_hours(-v)} after departure"
)
T["transit_hours"] = lambda v, _l: f"Declared voyage of {_duration_hours(v)}"
_binary("amended_before_decision", "Manifest amended after filing", "Manifest not amended")
_binary(
    "late_sensitive_amendment",
    "Consignee, description, destination or notify party amended less than 72 hours before arrival",
    "No late amendment of consignee, description or destination",
)
_binary("notify_differs", "Notify party differs from the consignee", "Notify party is the consignee")
_binary(
    "consignee_foreign",
    "Consignee based outside the country of discharge",
    "Consignee based in the country of discharge",
)
T["value_per_kg_usd"] = lambda v, _l: (
    "Declared value per kg unusable (value or mass missing)" if _finite(v) and v < 0 else f"Declared value of {_num(v, 2)} USD per kg"
)
T["mass_capacity_ratio"] = lambda v, _l: f"Gross mass at {_pct(v)} of the container's maximum"
T["packages_per_tonne"] = lambda v, _l: f"{_num(v, 1)} packages per tonne declared"
T["value_per_kg_log_deviation"] = lambda v, _l: (
    "Declared value per kg in line with the norm for these goods"
    if _finite(v) and abs(v) < 1e-9
    else f"Declared value per kg {_relative(v)} the norm for these goods"
)
T["mass_log_deviation"] = lambda v, _l: (
    "Gross mass in line with the norm for these goods"
    if _finite(v) and abs(v) < 1e-9
    else f"Gross mass {_relative(v)} the norm for these goods"
)
T["vgm_excess_kg"] = lambda v, _l: (
    f"Verified gross mass exceeds the declared mass plus tare by {_num(v, 0)} kg"
    if not _finite(v) or v > 0
    else (
        f"Verified gross mass {_num(-v, 0)} kg below the declared mass plus tare"
        if v < 0
        else "Verified gross mass matches the declared mass (or none declared)"
    )
)

# routing -------------------------------------------------------------------
T["transshipment_count"] = lambda v, _l: (
    "Direct call, no transshipment" if _finite(v) and v <= 0 else f"{_plural(v, 'transshipment', 'transshipments')} on the declared route"
)
_binary(
    "receipt_differs_from_loading",
    "Container taken in charge away from the port of loading (pre-carriage)",
    "Container received at the port of loading",
)
T["route_km"] = lambda v, _l: "Route distance unknown" if _finite(v) and v < 0 else f"Declared route of {_num(v, 0)} km"
T["route_circuity"] = lambda v, _l: (
    "Route circuity unknown" if _finite(v) and v < 0 else f"Route {_num(v, 1)} times the direct distance"
)
T["origin_dwell_hours"] = lambda v, _l: (
    "No gate-in event seen at the port of loading"
    if _finite(v) and v < 0
    else f"Container stayed {_duration_hours(v)} at the port of loading before loading"
)
T["transshipment_dwell_max_hours"] = lambda v, _l: (
    "No stay at a transshipment hub recorded"
    if _finite(v) and v < 0
    else f"Container stayed {_duration_hours(v)} at a transshipment hub"
)
T["event_seal_mismatches"] = lambda v, _l: (
    "Seal numbers in terminal events match the documents"
    if _finite(v) and v <= 0
    else f"Seal number differs between documents and terminal events ({_plural(v, 'event', 'events')})"
)
T["voyage_event_count"] = lambda v, _l: f"{_plural(v, 'container event', 'container events')} seen on this voyage"
_binary(
    "load_event_missing",
    "No loading event seen although the vessel left more than 48 hours ago",
    "Loading event seen at the port of loading",
)

# loading (what is known before loading) ------------------------------------
_binary("booking_changed", "Booking or shipping instructions changed", "Booking and shipping instructions unchanged")
T["booking_change_hours_before_etd"] = lambda v, _l: (
    "No booking change known" if _finite(v) and v < 0 else f"Booking or shipping instructions changed {_duration_hours(v)} before departure"
)
_binary(
    "booking_change_sensitive",
    "Consignee, destination, container or seal changed in the booking",
    "No change of consignee, destination, container or seal in the booking",
)
T["gate_in_lead_hours"] = lambda v, _l: (
    "No gate-in seen at the port of loading" if _finite(v) and v < 0 else f"Gated in {_duration_hours(v)} before departure"
)
_binary("awaiting_gate_in", "Not yet gated in at the port of loading on its departure day", "Gated in at the port of loading (or already departed)")
T["seal_changes"] = lambda v, _l: (
    "Seal unchanged along the container's events"
    if _finite(v) and v <= 0
    else f"Seal number changed {_plural(v, 'time', 'times')} along the container's events"
)

# intelligence --------------------------------------------------------------
T["alert_count"] = lambda v, _l: f"{_plural(v, 'active watchlist alert matches', 'active watchlist alerts match')}"
T["alert_max_severity"] = lambda v, _l: (
    "No active watchlist alert" if _finite(v) and v <= 0 else f"Highest matching alert severity {_num(v, 0)}/5"
)
_KIND_WORDS = {
    "PARTY": "party",
    "CONTAINER": "container",
    "BL": "bill of lading",
    "VESSEL": "vessel",
    "HS_CODE": "commodity (HS code)",
    "ROUTE": "route",
}
for _kind in ALERT_KINDS:
    _word = _KIND_WORDS.get(_kind, _kind.lower())
    T[f"alert_count_{_kind.lower()}"] = lambda v, _l, w=_word: f"{_plural(v, f'{w} alert matches', f'{w} alerts match')}"

# entity histories ------------------------------------------------------------
# prefix -> (subject as a sentence start, subject inside a sentence)
_ENTITIES = {
    "consignee": ("Consignee", "the consignee"),
    "shipper": ("Shipper", "the shipper"),
    "pair": ("Shipper and consignee", "this shipper and consignee"),
    "lane": ("This lane (loading port to discharge port)", "this lane"),
    "hs_origin": ("These goods from this origin country", "these goods from this origin country"),
    "container": ("Container", "this container"),
    "loading_port": ("Port of loading", "the port of loading"),
    "origin_country": ("Origin country", "the origin country"),
    "hub": ("Transshipment hubs", "the transshipment hubs"),
    "destination": ("Containers bound for this port of discharge", "containers bound for this port of discharge"),
}
_RATE_SENTENCES = {
    "loading_port": "Loaded in a port with a high past seizure rate ({})",
    "origin_country": "Shipped from a country with a high past seizure rate ({})",
    "hub": "Transshipped via a hub with a high past seizure rate ({})",
    "container": "Container with a high past seizure rate ({})",
    "destination": "Bound for a port of discharge with a high past seizure rate ({})",
}
_WINDOWS = {"n_30d": "30", "n_90d": "90", "n_365d": "365"}


def _entity_templates(prefix: str, start: str, inner: str) -> dict[str, Template]:
    rate = _RATE_SENTENCES.get(prefix, start + " with a past seizure rate of {}")
    out: dict[str, Template] = {
        f"{prefix}_n_prior": lambda v, _l: (
            f"No earlier manifests for {inner}" if _finite(v) and v <= 0 else f"{start}: {_plural(v, 'earlier manifest', 'earlier manifests')}"
        ),
        f"{prefix}_days_since_first": lambda v, _l: f"{start} first seen {_days(v)} ago",
        f"{prefix}_n_inspections": lambda v, _l: (
            f"{start} never inspected before" if _finite(v) and v <= 0 else f"{start} inspected {_plural(v, 'time', 'times')} before"
        ),
        f"{prefix}_n_findings": lambda v, _l: (
            f"No earlier seizure involving {inner}"
            if _finite(v) and v <= 0
            else f"{start} involved in {_plural(v, 'earlier seizure', 'earlier seizures')}"
        ),
        f"{prefix}_finding_rate": lambda v, _l: rate.format(_pct(v)),
        f"{prefix}_days_since_last_finding": lambda v, _l: (
            f"No seizure recorded involving {inner}"
            if _finite(v) and v >= _NO_FINDING_DAYS
            else f"Last seizure involving {inner} {_days(v)} ago"
        ),
    }
    for suffix, window in _WINDOWS.items():
        out[f"{prefix}_{suffix}"] = lambda v, _l, w=window: (
            f"No manifests for {inner} in the last {w} days"
            if _finite(v) and v <= 0
            else f"{start}: {_plural(v, 'manifest', 'manifests')} in the last {w} days"
        )
    return out


for _prefix, (_start, _inner) in _ENTITIES.items():
    T.update(_entity_templates(_prefix, _start, _inner))

T["consignee_heading_n_prior"] = lambda v, _l: (
    "New commodity for this consignee (no earlier manifests with this HS heading)"
    if _finite(v) and v <= 0
    else f"Consignee shipped this HS heading {_plural(v, 'time', 'times')} before"
)
T["consignee_route_n_prior"] = lambda v, _l: (
    "New route for this consignee" if _finite(v) and v <= 0 else f"Consignee used this route {_plural(v, 'time', 'times')} before"
)
T["exporter_heading_n_prior"] = lambda v, _l: (
    "New product for this shipper (no earlier manifests with this HS heading)"
    if _finite(v) and v <= 0
    else f"Shipper exported this HS heading {_plural(v, 'time', 'times')} before"
)
T["exporter_destination_n_prior"] = lambda v, _l: (
    "New destination for this shipper (no earlier manifests to this port of discharge)"
    if _finite(v) and v <= 0
    else f"Shipper shipped to this port of discharge {_plural(v, 'time', 'times')} before"
)
# change in a known trader's behaviour (features.entity, behaviour families)
T["consignee_origin_n_prior"] = lambda v, _l: (
    "New origin country for this consignee" if _finite(v) and v <= 0 else f"Consignee received goods from this origin country {_plural(v, 'time', 'times')} before"
)
T["consignee_loading_port_n_prior"] = lambda v, _l: (
    "New port of loading for this consignee" if _finite(v) and v <= 0 else f"Consignee received goods from this port of loading {_plural(v, 'time', 'times')} before"
)
T["consignee_family_n_prior"] = lambda v, _l: (
    "New kind of goods for this consignee" if _finite(v) and v <= 0 else f"Consignee received this kind of goods {_plural(v, 'time', 'times')} before"
)
T["shipper_family_n_prior"] = lambda v, _l: (
    "New kind of goods for this shipper" if _finite(v) and v <= 0 else f"Shipper sent this kind of goods {_plural(v, 'time', 'times')} before"
)

# hierarchical priors and anomaly score (features.priors, features.anomaly)
T["origin_prior_rate"] = lambda v, _l: f"Origin with a high past seizure rate, learned from its port, country and region ({_pct(v)})"
T["commodity_prior_rate"] = lambda v, _l: f"Goods with a high past seizure rate, learned from this HS code and similar goods ({_pct(v)})"
T["flow_prior_rate"] = lambda v, _l: f"These goods from this origin or its region had a high past seizure rate ({_pct(v)})"
T["anomaly_score"] = lambda v, _l: (
    "Value, mass, packing and transit time usual for these goods and this lane"
    if _finite(v) and v < 1.0
    else f"Value, mass, packing or transit time unusual for these goods and this lane ({_num(v, 1)} times the usual spread)"
)

T["lane_route_n_prior"] = lambda v, _l: (
    "Routing never seen before on this lane" if _finite(v) and v <= 0 else f"Routing seen {_plural(v, 'time', 'times')} before on this lane"
)

# categoricals ----------------------------------------------------------------
_CATEGORY_WORDS = {
    "carrier_code": "Carrier",
    "port_of_loading_code": "Port of loading",
    "origin_country_code": "Origin country",
    "port_of_discharge_code": "Port of discharge",
    "last_hub_code": "Last transshipment hub",
    "container_type_code": "Container type",
    "freight_payment_code": "Freight payment",
    "hs_chapter_code": "HS chapter",
    "hs_heading_code": "HS heading",
    "currency_code": "Currency",
}


def _categorical(word: str) -> Template:
    def sentence(value: float, label: str | None) -> str:
        if label:
            return f"{word} {label} (risk pattern learned from past inspections)"
        if _finite(value) and round(value) == UNKNOWN_CODE:
            return f"{word} new or not declared (not seen in training)"
        return f"{word} (risk pattern learned from past inspections)"

    return sentence


for _column in CATEGORICAL_SOURCES:
    T[_column] = _categorical(_CATEGORY_WORDS.get(_column, _column.removesuffix("_code").replace("_", " ").capitalize()))

TEMPLATES: Mapping[str, Template] = T
"""Feature column -> sentence template (every registered feature has one; tested)."""


# --------------------------------------------------------------------------- topics and named places

_INTEL_PREFIX = "alert_"
_ENTITY_TOPICS = {
    **{s: "volume" for s in ("n_prior", "n_30d", "n_90d", "n_365d")},
    **{s: "findings" for s in ("n_findings", "finding_rate", "days_since_last_finding")},
}
_SHARED_TOPICS = {
    "freight_not_prepaid": "freight", "freight_third_party": "freight",
    "value_per_kg_usd": "value", "value_per_kg_log_deviation": "value",
    "mass_log_deviation": "mass", "mass_capacity_ratio": "mass",
    "filing_lead_hours": "filing", "filed_after_departure": "filing",
    "amended_before_decision": "amendment", "late_sensitive_amendment": "amendment",
}
_NAMED_RATES = {
    "loading_port": ("port_of_loading_code", "Loaded in {}, a port with a high past seizure rate ({})"),
    "origin_country": ("origin_country_code", "Shipped from {}, a country with a high past seizure rate ({})"),
    "hub": ("last_hub_code", "Transshipped via {}, a hub with a high past seizure rate ({})"),
}


def reason_topic(feature: str) -> str | None:
    """What a feature's sentence is about; ``None`` for watchlist features and features without a template (never a model reason).

    Features of one topic say the same thing in different words; a row gets at most one reason per topic.

    >>> reason_topic("consignee_n_prior") == reason_topic("consignee_n_365d")
    True
    >>> reason_topic("alert_max_severity") is None
    True
    """
    if feature.startswith(_INTEL_PREFIX) or feature not in TEMPLATES:
        return None  # watchlist features, and features without an officer's sentence yet (their registry text is for analysts)
    if feature in _SHARED_TOPICS:
        return _SHARED_TOPICS[feature]
    for prefix in sorted(_ENTITIES, key=len, reverse=True):
        if feature.startswith(prefix + "_"):
            suffix = feature[len(prefix) + 1 :]
            if suffix in _ENTITY_TOPICS:
                return f"{prefix}:{_ENTITY_TOPICS[suffix]}"
    return feature


def _named_sentence(
    feature: str, value: float, features: pl.DataFrame, row: int, vocabularies: Mapping[str, Sequence[str]] | None
) -> str | None:
    """The seizure-rate sentence naming the port, country or hub (``None`` when it cannot be named)."""
    for prefix, (code_column, sentence) in _NAMED_RATES.items():
        if feature == f"{prefix}_finding_rate" and code_column in features.columns:
            code = features[code_column][row]
            label = None if code is None else _label(code_column, float(code), vocabularies)
            return sentence.format(label, _pct(value)) if label else None
    return None


# --------------------------------------------------------------------------- public functions


def _label(feature: str, value: float, vocabularies: Mapping[str, Sequence[str]] | None) -> str | None:
    if vocabularies is None or feature not in CATEGORICAL_SOURCES or not _finite(value):
        return None
    vocab = vocabularies.get(feature)
    code = int(round(value))
    if not vocab or code == UNKNOWN_CODE or not 1 <= code <= len(vocab):
        return None
    return str(vocab[code - 1])


def describe(feature: str, value: float, *, vocabularies: Mapping[str, Sequence[str]] | None = None) -> str:
    """The officer-readable sentence for ``feature`` at ``value``.

    Categorical codes are decoded with ``vocabularies``
    (:attr:`features.stats.FeatureStats.vocabularies`) when given. A feature
    without a template falls back to its registry description, or to its name.

    >>> describe("consignee_days_since_first", 12.0)
    'Consignee first seen 12 days ago'
    >>> describe("transshipment_dwell_max_hours", 228.0)
    'Container stayed 9.5 days at a transshipment hub'
    """
    template = TEMPLATES.get(feature)
    if template is None:
        spec = REGISTRY.get(feature)
        return spec.description if spec is not None else feature
    return template(float(value), _label(feature, value, vocabularies))


def readable_reasons(
    booster: lgb.Booster,
    features: pl.DataFrame,
    *,
    top: int,
    vocabularies: Mapping[str, Sequence[str]] | None = None,
) -> list[list[str]]:
    """Up to ``top`` plain-language reasons per row: the features that raised its score most.

    Parameters
    ----------
    booster
        The native LightGBM booster that produced the scores.
    features
        The feature table (:func:`features.pipeline.build_features`) restricted
        to the rows to explain: the selected items only. Columns are aligned by
        name to ``booster.feature_name()``; extra columns are ignored.
    top
        Most reasons per row (>= 0).
    vocabularies
        Fitted categorical vocabularies, to name categories in the sentences.

    Returns
    -------
    list[list[str]]
        One list per input row, in row order: the sentences of the features
        with a strictly positive contribution, largest first (ties by feature
        name), one per topic (:func:`reason_topic`: "26 earlier manifests" and
        "26 manifests in the last 365 days" say the same thing), watchlist
        features left out (the list shows the matching alerts themselves, with
        their issuer and reason). Seizure-rate reasons of the port of loading,
        the origin country and the last hub name it when the row's code
        columns and ``vocabularies`` allow.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ValueError(f"top must be a non-negative integer, got {top!r}")
    if features.height == 0:
        return []
    contributions, _bias = risk_model.predict_contributions(booster, features)
    names = booster.feature_name()
    values = features.select(names).cast(pl.Float64).to_numpy()
    out: list[list[str]] = []
    for row in range(features.height):
        contrib = contributions[row]
        order = sorted(
            (i for i in range(len(names)) if np.isfinite(contrib[i]) and contrib[i] > 0 and reason_topic(names[i]) is not None),
            key=lambda i: (-contrib[i], names[i]),
        )
        sentences: list[str] = []
        topics: set[str] = set()
        for i in order:
            if len(sentences) >= top:
                break
            topic = reason_topic(names[i])
            text = _named_sentence(names[i], float(values[row, i]), features, row, vocabularies)
            text = text or describe(names[i], float(values[row, i]), vocabularies=vocabularies)
            if topic not in topics and text not in sentences:
                topics.add(topic)
                sentences.append(text)
        out.append(sentences)
    return out


def model_reasons_for(
    booster: lgb.Booster,
    features: pl.DataFrame,
    manifest_ids: Sequence[str],
    *,
    top: int,
    vocabularies: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[str]]:
    """Model reasons for the given (selected) manifest ids only.

    Picks exactly the rows of ``features`` whose ``manifest_id`` is in
    ``manifest_ids`` (in that order) and calls :func:`readable_reasons` on them,
    so contributions are never computed for the other candidates.

    Raises
    ------
    ValueError
        A manifest id has no row, or several rows, in ``features``.
    """
    wanted = list(manifest_ids)
    if len(set(wanted)) != len(wanted):
        raise ValueError("manifest ids repeat")
    index = pl.DataFrame({"manifest_id": wanted}, schema={"manifest_id": pl.String()}).with_row_index("__order")
    rows = features.join(index, on="manifest_id", how="inner").sort("__order")
    if rows.height != len(wanted):
        found = rows.get_column("manifest_id").to_list()
        missing = sorted(set(wanted) - set(found))
        repeated = sorted({m for m in found if found.count(m) > 1})
        raise ValueError(f"feature rows missing for {missing[:20]} or repeated for {repeated[:20]}")
    reasons = readable_reasons(booster, rows.drop("__order"), top=top, vocabularies=vocabularies)
    return dict(zip(wanted, reasons, strict=True))


def registered_without_template() -> list[str]:
    """Registered features that fall back to their description (should be empty; tested)."""
    return [name for name in feature_columns() if name not in TEMPLATES]
