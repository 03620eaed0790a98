"""Value types of an inspection list: the request, its selected and deferred items, and the record.

These types are shared by the selection policy (which builds lists), the service
(which stores and serves them) and the audit replay (which regenerates them).
They are plain frozen dataclasses so a list can be serialised to JSON
canonically (:func:`list_to_dict`) and hashed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from features.candidates import Direction

SOURCES = ("WATCHLIST", "RULE", "MODEL", "INTEGRITY", "RANDOM", "OFFICER")
EXAM_TYPES = ("NII", "PHYSICAL")


@dataclass(frozen=True)
class ListRequest:
    """What a port control unit asks for.

    ``capacity`` is the total number of exams. When ``nii_capacity`` and
    ``physical_capacity`` are given they must add up to ``capacity``; items are
    then assigned an exam type (physical exams go to the highest-risk items).
    ``exploration_share`` is the share of capacity drawn at random from the
    non-selected candidates; ``seed`` makes that draw reproducible (derived from
    port and date when ``None``). ``integrity_share`` is the share of capacity
    given to the most unusual seal/dwell traces the model did not take
    (INTEGRITY, :mod:`targeting.policy`; 0: none).
    """

    port: str
    list_date: date
    capacity: int
    exploration_share: float = 0.10
    nii_capacity: int | None = None
    physical_capacity: int | None = None
    seed: int | None = None
    direction: Direction = Direction.IMPORT
    """The population listed: ``IMPORT``, ``TRANSSHIPMENT`` or ``EXPORT`` (a name is accepted and parsed)."""
    integrity_share: float = 0.10
    """Share of the capacity for the INTEGRITY slice (0..1; the same default as the random slice, not a tuned value)."""

    def __post_init__(self) -> None:
        """The one validation of a request's capacity, split, exploration share, seed and direction.

        Raises ``ValueError`` naming the field and the rule it broke.
        """
        object.__setattr__(self, "direction", Direction.parse(self.direction))
        if isinstance(self.list_date, datetime) or not isinstance(self.list_date, date):
            raise ValueError(f"list_date must be a datetime.date, got {self.list_date!r}")
        _non_negative_int("capacity", self.capacity)
        nii, physical = self.nii_capacity, self.physical_capacity
        if (nii is None) != (physical is None):
            raise ValueError("give both nii_capacity and physical_capacity, or neither")
        if nii is not None:
            _non_negative_int("nii_capacity", nii)
            _non_negative_int("physical_capacity", physical)
            if nii + physical != self.capacity:
                raise ValueError(f"nii_capacity + physical_capacity must equal capacity ({nii} + {physical} != {self.capacity})")
        for name in ("exploration_share", "integrity_share"):
            share = getattr(self, name)
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not (0.0 <= share <= 1.0):
                raise ValueError(f"{name} must be a number in [0, 1], got {share!r}")
        seed = self.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
            raise ValueError(f"seed must be an integer in [0, 2**63 - 1], got {seed!r}")


MAX_SEED = 2**63 - 1
"""Seeds are non-negative 63-bit integers (what the service accepts and stores)."""


def _non_negative_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


@dataclass(frozen=True)
class ListItem:
    """A selected container. ``reasons`` holds at most five plain-language reasons."""

    rank: int
    container_number: str
    manifest_id: str
    score: float
    source: str
    selection_probability: float
    reasons: tuple[str, ...]
    exam_type: str | None = None
    risk_probability: float | None = None
    """Calibrated probability that an exam finds contraband (``None``: not rated, no calibrated model)."""
    risk_band: str | None = None
    """``LOW``, ``MEDIUM``, ``HIGH``, ``VERY_HIGH`` or ``NOT_RATED`` (:data:`models.calibration.RISK_BANDS`); ``None`` only in lists recorded before bands existed."""
    integrity: dict[str, Any] | None = None
    """Seal/dwell integrity of the container against the model's norms (:func:`features.integrity.integrity_record`:
    ``surprisal``, ``p_value``, ``components``); ``None`` when the model has no norms (or the list predates them)."""


@dataclass(frozen=True)
class DeferredItem:
    """A candidate cut by capacity, reported with its score (never silently dropped)."""

    container_number: str
    manifest_id: str
    score: float
    source_if_selected: str = "MODEL"
    risk_probability: float | None = None
    """Calibrated probability that an exam finds contraband (``None``: not rated)."""
    risk_band: str | None = None
    """The band of ``risk_probability`` (``NOT_RATED`` without one; ``None`` only in lists recorded before bands existed)."""


@dataclass(frozen=True)
class InspectionList:
    """A generated list and everything needed to regenerate it.

    ``decision_at`` is the moment the list is generated for (UTC); every input
    used is restricted to data available strictly before it.
    """

    port: str
    list_date: date
    decision_at: datetime
    capacity: int
    nii_capacity: int | None
    physical_capacity: int | None
    exploration_share: float
    seed: int
    model_name: str
    model_version: str
    model_artifact_sha256: str
    ruleset_version: int
    input_data_sha256: str
    candidate_count: int
    items: tuple[ListItem, ...]
    deferred: tuple[DeferredItem, ...]
    mandatory_exceeds_capacity: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)
    data_version: int | None = None
    """Lake commit-log sequence number the list was built from (replay reads the lake as of it)."""
    direction: str = Direction.IMPORT.value
    """The population listed (``IMPORT``, ``TRANSSHIPMENT`` or ``EXPORT``)."""
    calibrator_sha256: str | None = None
    """sha256 of the model version's calibrator that set the risk bands; ``""`` when not rated (no model, or a version without one); ``None`` in lists recorded before bands existed."""
    lake_versions: dict[str, int] | None = None
    """Delta version of each lake table the list read (those the lake log entry ``data_version`` names); a replay reads exactly these. ``None`` in lists recorded before the lake was on Delta tables."""
    integrity_share: float | None = None
    """The request's INTEGRITY share (a replay reuses it); ``None`` in lists recorded before the INTEGRITY slice (replayed with none)."""

    def content_sha256(self) -> str:
        """sha256 of the canonical JSON of the list (stable across processes)."""
        return hashlib.sha256(canonical_json(list_to_dict(self)).encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


OMITTED_WHEN_NONE = ("risk_probability", "risk_band", "calibrator_sha256", "lake_versions", "integrity_share", "integrity")
"""Fields left out of the canonical JSON when ``None``: a list recorded before calibrated risk (or before Delta lake versions) keeps its exact JSON and hash."""


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not (k in OMITTED_WHEN_NONE and v is None)}


def list_to_dict(inspection_list: InspectionList) -> dict[str, Any]:
    """JSON-ready dict of a list (dates as ISO 8601 strings, tuples as lists; :data:`OMITTED_WHEN_NONE` fields only when set)."""
    data = _without_none(_jsonable(dataclasses.asdict(inspection_list)))
    data["items"] = [_without_none(item) for item in data["items"]]
    data["deferred"] = [_without_none(item) for item in data["deferred"]]
    return data


def list_from_dict(data: dict[str, Any]) -> InspectionList:
    """Inverse of :func:`list_to_dict`."""
    d = dict(data)
    d["list_date"] = date.fromisoformat(d["list_date"])
    d["decision_at"] = datetime.fromisoformat(d["decision_at"])
    d["items"] = tuple(ListItem(**{**i, "reasons": tuple(i["reasons"])}) for i in d["items"])
    d["deferred"] = tuple(DeferredItem(**i) for i in d["deferred"])
    d["warnings"] = tuple(d.get("warnings", ()))
    d["direction"] = Direction.parse(d.get("direction", Direction.IMPORT.value)).value
    return InspectionList(**d)


_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)


def canonical_json(data: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, floats as repr.

    Exactly ``json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)``, with one encoder
    built once (the service hashes several of these per request).
    """
    return _CANONICAL_ENCODER.encode(data)
