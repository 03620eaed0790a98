"""The list record of a selection: reasons per item (watchlist, rules, model; deduplicated) and the :class:`~targeting.lists.InspectionList`.

Pure: no I/O, no clock. :func:`targeting.policy.select` decides; this module
writes down what was decided.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np

from features.integrity import integrity_reasons, integrity_record
from models.calibration import NOT_RATED, Calibrator, risk_band
from targeting.lists import DeferredItem, InspectionList, ListItem, ListRequest

if TYPE_CHECKING:
    from targeting.policy import PolicyConfig, Selection


# --------------------------------------------------------------------------- reasons and the record


def _normalised(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold().rstrip(".")


def compose_reasons(
    alert_reasons: Sequence[str],
    rule_reasons: Sequence[str],
    model_reasons: Sequence[str],
    limit: int = 5,
) -> tuple[str, ...]:
    """At most ``limit`` reasons: watchlist first, then rules, then the model; duplicates dropped.

    Two reasons are duplicates when they are equal after Unicode (NFKC)
    normalisation, whitespace collapsing, case folding and dropping a final
    period; the first occurrence is kept. Blank reasons are skipped.

    >>> compose_reasons(["Alert A"], ["Rule R", "alert a."], ["Model M"], limit=2)
    ('Alert A', 'Rule R')
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
    seen: set[str] = set()
    out: list[str] = []
    for text in (*alert_reasons, *rule_reasons, *model_reasons):
        if len(out) >= limit:
            break
        if text is None:
            continue
        key = _normalised(str(text))
        if not key or key in seen:
            continue
        seen.add(key)
        out.append(" ".join(str(text).split()))
    return tuple(out)


def watchlist_reasons(reasons: Sequence[str], severities: Sequence[int | None], max_severity: int) -> list[str]:
    """Officer-readable watchlist reasons with their severity.

    ``reasons`` come sorted by severity descending (as
    :func:`features.intel.match_alerts` returns them), so the first one has
    ``max_severity``; later ones carry their own severity only when
    ``severities`` gives it.
    """
    out = []
    for i, reason in enumerate(reasons):
        severity = severities[i] if i < len(severities) and severities[i] is not None else (max_severity if i == 0 else None)
        label = f"Watchlist alert (severity {severity}/5)" if severity else "Watchlist alert"
        out.append(f"{label}: {reason}")
    return out


def _utc(value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError("decision_at must be a timezone-aware datetime")
    return value.astimezone(timezone.utc)


def build_inspection_list(
    selection: Selection,
    *,
    request: ListRequest,
    model_reasons: Mapping[str, Sequence[str]],
    decision_at: datetime,
    model_name: str,
    model_version: str,
    model_artifact_sha256: str,
    ruleset_version: int,
    input_data_sha256: str,
    config: PolicyConfig | None = None,
    integrity: Mapping[str, Mapping] | None = None,
) -> InspectionList:
    """Assemble the :class:`~targeting.lists.InspectionList` record of a selection.

    Parameters
    ----------
    selection
        The output of :func:`select` for ``request``.
    request
        The request the selection was made for.
    model_reasons
        Model reasons per selected manifest id (e.g. from
        :func:`targeting.explain.model_reasons_for`); keys must be exactly the
        selected manifest ids (a value may be empty). Explanations of
        non-selected rows are refused: they are never computed.
    decision_at
        Timezone-aware decision time (stored in UTC).
    model_name, model_version, model_artifact_sha256, ruleset_version, input_data_sha256
        Provenance recorded with the list.
    config
        ``max_reasons`` caps each item's reasons (watchlist, then rules, then
        integrity for an INTEGRITY item, then model, deduplicated by
        :func:`compose_reasons`).
    integrity
        Per selected manifest id, its row of
        :func:`features.integrity.integrity_details` (``None``: the model has
        no norms); recorded on every item (:func:`features.integrity.integrity_record`),
        and an INTEGRITY item's reasons start with what is unusual
        (:func:`features.integrity.integrity_reasons`).

    Returns
    -------
    InspectionList
        Items in rank order; deferred items in score order.
    """
    max_reasons = 5 if config is None else config.max_reasons
    ids = selection.manifest_ids
    extra = sorted(set(model_reasons) - set(ids))
    missing = sorted(set(ids) - set(model_reasons))
    if extra:
        raise ValueError(f"model reasons given for manifests that are not selected: {', '.join(extra[:20])}")
    if missing:
        raise ValueError(f"model reasons missing for selected manifests: {', '.join(missing[:20])}")
    items = []
    for row in selection.selected.iter_rows(named=True):
        alert_texts = watchlist_reasons(row["alert_reasons"], row["alert_severities"], row["alert_max_severity"])
        details = None if integrity is None else integrity.get(row["manifest_id"])
        unusual = integrity_reasons(dict(details)) if details is not None and row["source"] == "INTEGRITY" else []
        reasons = compose_reasons(alert_texts, row["rule_reasons"], [*unusual, *model_reasons[row["manifest_id"]]], limit=max_reasons)
        items.append(
            ListItem(
                rank=int(row["rank"]),
                container_number=row["container_number"],
                manifest_id=row["manifest_id"],
                score=float(row["score"]),
                source=row["source"],
                selection_probability=float(row["selection_probability"]),
                reasons=reasons,
                exam_type=row["exam_type"],
                integrity=None if details is None else integrity_record(dict(details)),
            )
        )
    deferred = tuple(
        DeferredItem(
            container_number=row["container_number"],
            manifest_id=row["manifest_id"],
            score=float(row["score"]),
            source_if_selected=row["source_if_selected"],
        )
        for row in selection.deferred.iter_rows(named=True)
    )
    return InspectionList(
        port=request.port,
        list_date=request.list_date,
        decision_at=_utc(decision_at),
        capacity=request.capacity,
        nii_capacity=request.nii_capacity,
        physical_capacity=request.physical_capacity,
        exploration_share=selection.exploration_share,
        seed=selection.seed,
        model_name=model_name,
        model_version=model_version,
        model_artifact_sha256=model_artifact_sha256,
        ruleset_version=int(ruleset_version),
        input_data_sha256=input_data_sha256,
        candidate_count=selection.candidate_count,
        items=tuple(items),
        deferred=deferred,
        mandatory_exceeds_capacity=selection.mandatory_exceeds_capacity,
        warnings=selection.warnings,
        integrity_share=selection.integrity_share,
    )


# --------------------------------------------------------------------------- calibrated risk


def with_risk(inspection_list: InspectionList, calibrator: Calibrator | None) -> InspectionList:
    """``inspection_list`` with each item's and deferred candidate's calibrated probability and risk band.

    The probability is ``calibrator.predict(score)`` (the model score every
    candidate has when a model scored the list, whatever the item's source);
    without a calibrator (day one, or a model version registered before
    calibration) every row is :data:`models.calibration.NOT_RATED` with no
    probability, and the record's ``calibrator_sha256`` is ``""``.
    """
    if calibrator is None:
        return replace(
            inspection_list,
            items=tuple(replace(i, risk_probability=None, risk_band=NOT_RATED) for i in inspection_list.items),
            deferred=tuple(replace(d, risk_probability=None, risk_band=NOT_RATED) for d in inspection_list.deferred),
            calibrator_sha256="",
        )
    probabilities = calibrator.predict(np.array([i.score for i in inspection_list.items] + [d.score for d in inspection_list.deferred], dtype=float))
    rated = [(float(p), risk_band(float(p))) for p in probabilities]
    n = len(inspection_list.items)
    return replace(
        inspection_list,
        items=tuple(replace(i, risk_probability=p, risk_band=b) for i, (p, b) in zip(inspection_list.items, rated[:n], strict=True)),
        deferred=tuple(replace(d, risk_probability=p, risk_band=b) for d, (p, b) in zip(inspection_list.deferred, rated[n:], strict=True)),
        calibrator_sha256=hashlib.sha256(calibrator.to_json().encode()).hexdigest(),
    )


def without_risk(inspection_list: InspectionList) -> InspectionList:
    """``inspection_list`` as recorded before calibrated risk existed (no probability, band or calibrator hash): how such a list replays."""
    return replace(
        inspection_list,
        items=tuple(replace(i, risk_probability=None, risk_band=None) for i in inspection_list.items),
        deferred=tuple(replace(d, risk_probability=None, risk_band=None) for d in inspection_list.deferred),
        calibrator_sha256=None,
    )
