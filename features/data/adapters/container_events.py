"""UN/EDIFACT CODECO (gate in/out) and COARRI (loading/discharge) reports -> ``events`` rows.

One row per EQD+CN equipment group. Mapping (SMDG user manuals, D.95B):

- CODECO ``BGM`` 34 gate-in report -> ``GATE_IN`` (``EMPTY_RETURN`` when the
  EQD full/empty indicator 8169 is 4, empty); 36 gate-out report -> ``GATE_OUT``.
- COARRI ``BGM`` 44 discharge report -> ``DISCHARGE``, 46 loading report ->
  ``LOAD``; ``TS_DISCHARGE`` / ``TS_LOAD`` when the EQD equipment status 8249
  is 6 (transshipment).
- ``event_time``: ``DTM+7`` (CODECO, effective) or ``DTM+203`` (COARRI,
  execution) of the equipment group; ``locode``: ``LOC+165`` of the group or
  of the header, else ``LOC+11`` (discharge) / ``LOC+9`` (loading);
  ``vessel_imo`` and ``voyage`` from ``TDT+20`` (IMO only when 8213 has 7
  digits); ``seal_number`` from the first ``SEL``.

A bad segment quarantines its equipment group's row (or, in the header, every
row of the message), naming the segment and element.
"""

from __future__ import annotations

from features.data.adapters.edifact import Located, RowErrors, component, dtm_value

_REPORTS = {("CODECO", "34"): "GATE_IN", ("CODECO", "36"): "GATE_OUT", ("COARRI", "44"): "DISCHARGE", ("COARRI", "46"): "LOAD"}


def _locode(values: dict, header: dict, event: str | None) -> str | None:
    own = values.get("165") or header.get("165")
    if own:
        return own
    first = ("11", "9") if event in ("DISCHARGE", "GATE_OUT") else ("9", "11")
    for q in first:
        if values.get(q) or header.get(q):
            return values.get(q) or header.get(q)
    return None


def _event_type(report: str | None, values: dict) -> str | None:
    if report == "GATE_IN" and values.get("full_empty") == "4":
        return "EMPTY_RETURN"
    if report in ("LOAD", "DISCHARGE") and values.get("status") == "6":
        return "TS_" + report
    return report


def container_event_rows(messages: list[tuple[str, list[Located]]]) -> list[dict[str, object]]:
    """Rows of the ``events`` table from the CODECO/COARRI messages of an interchange."""
    rows: list[dict[str, object]] = []
    for mt, segments in messages:
        header: dict[str, object] = {}
        header_errors = RowErrors()
        groups: list[tuple[dict, RowErrors]] = []
        report: str | None = None
        for seg in segments:
            q = component(seg, 1)
            values, errors = groups[-1] if groups else (header, header_errors)
            if seg.tag == "BGM":
                report = _REPORTS.get((mt, q or ""))
                if report is None:
                    header_errors.add(f"{seg.where(mt, 1, 'C002 document name')}: {q!r} is not a {mt} report the engine reads (CODECO 34/36, COARRI 44/46)")
            elif seg.tag == "TDT" and q == "20":
                header["voyage"] = component(seg, 2)
                vessel = component(seg, 8, 0)
                header["vessel_imo"] = vessel if vessel and vessel.isdigit() and len(vessel) == 7 else None
            elif seg.tag == "EQD" and q == "CN":
                number = component(seg, 2, 0)
                group_errors = RowErrors()
                if number is None:
                    group_errors.add(f"{seg.where(mt, 2, '8260 container number')}: missing")
                groups.append(({"container_number": number, "status": component(seg, 5), "full_empty": component(seg, 6)}, group_errors))
            elif seg.tag == "DTM":
                qualifier, when = dtm_value(seg, mt, errors)
                if qualifier in ("7", "203") and groups:
                    values["event_time"] = when
            elif seg.tag == "LOC" and q in ("165", "9", "11"):
                values[q] = component(seg, 2, 0)
            elif seg.tag == "SEL" and groups:
                values.setdefault("seal_number", component(seg, 1))
        for values, errors in groups:
            reasons = [*header_errors.items, *errors.items]
            rows.append(
                {
                    "container_number": values.get("container_number"),
                    "event_time": values.get("event_time"),
                    "locode": _locode(values, header, report),
                    "event_type": _event_type(report, values),
                    "vessel_imo": header.get("vessel_imo"),
                    "voyage": header.get("voyage"),
                    "seal_number": values.get("seal_number"),
                    "__errors": "; ".join(reasons) if reasons else None,
                }
            )
    return rows
