"""DCSA Track & Trace (2.2) equipment events (JSON) -> ``events`` rows.

The file is a JSON array of events (as returned by ``GET /events``) or an
object with an ``events`` array. Only ``eventType: EQUIPMENT`` events are
container events: one row each; transport and shipment events are not rows
of this table and are counted as ignored. Mapping:

- ``equipmentEventTypeCode`` GTIN -> ``GATE_IN`` (``EMPTY_RETURN`` when
  ``emptyIndicatorCode`` is EMPTY), GTOT -> ``GATE_OUT``, LOAD -> ``LOAD``,
  DISC -> ``DISCHARGE``; other codes (STUF, STRP, PICK, DROP, INSP, RSEA,
  RMVD) are quarantined: the engine does not use them;
- ``eventClassifierCode`` must be ACT (actual): planned and estimated
  events are quarantined;
- ``equipmentReference`` -> ``container_number``; ``eventDateTime`` ->
  ``event_time``; ``eventLocation.UNLocationCode`` (else
  ``transportCall.UNLocationCode``) -> ``locode``; ``transportCall.vessel.
  vesselIMONumber`` -> ``vessel_imo``; ``transportCall.exportVoyageNumber``
  (LOAD, GATE_IN) or ``importVoyageNumber`` -> ``voyage``; the first
  ``seals[].sealNumber`` -> ``seal_number``.

Reasons name the event (``eventID``) and the field.
"""

from __future__ import annotations

_TYPES = {"GTIN": "GATE_IN", "GTOT": "GATE_OUT", "LOAD": "LOAD", "DISC": "DISCHARGE"}


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def dcsa_rows(document: object) -> tuple[list[dict[str, object]], int]:
    """``(rows, ignored)``: one ``events`` row per DCSA equipment event, and how many non-equipment events were skipped."""
    events = document.get("events") if isinstance(document, dict) else document
    if not isinstance(events, list):
        raise ValueError("a DCSA Track & Trace file is a JSON array of events (or an object with 'events')")
    rows, ignored = [], 0
    for index, event in enumerate(events):
        if not isinstance(event, dict) or event.get("eventType") != "EQUIPMENT":
            ignored += 1
            continue
        name = f"DCSA event {event.get('eventID') or f'#{index}'}"
        errors = []
        code = _text(event.get("equipmentEventTypeCode"))
        kind = _TYPES.get(code or "")
        if kind is None:
            errors.append(f"{name} equipmentEventTypeCode {code!r} is not a container movement the engine reads (GTIN, GTOT, LOAD, DISC)")
        if kind == "GATE_IN" and event.get("emptyIndicatorCode") == "EMPTY":
            kind = "EMPTY_RETURN"
        if event.get("eventClassifierCode") != "ACT":
            errors.append(f"{name} eventClassifierCode {event.get('eventClassifierCode')!r}: only actual (ACT) events happened")
        call = event.get("transportCall") if isinstance(event.get("transportCall"), dict) else {}
        location = event.get("eventLocation") if isinstance(event.get("eventLocation"), dict) else {}
        vessel = call.get("vessel") if isinstance(call.get("vessel"), dict) else {}
        voyage = call.get("exportVoyageNumber") if kind in ("LOAD", "GATE_IN") else call.get("importVoyageNumber")
        seals = event.get("seals") if isinstance(event.get("seals"), list) else []
        rows.append(
            {
                "container_number": _text(event.get("equipmentReference")),
                "event_time": _text(event.get("eventDateTime")),
                "locode": _text(location.get("UNLocationCode") or call.get("UNLocationCode")),
                "event_type": kind,
                "vessel_imo": _text(vessel.get("vesselIMONumber")),
                "voyage": _text(voyage or call.get("exportVoyageNumber") or call.get("importVoyageNumber")),
                "seal_number": _text(seals[0].get("sealNumber")) if seals and isinstance(seals[0], dict) else None,
                "__errors": "; ".join(errors) if errors else None,
            }
        )
    return rows, ignored
