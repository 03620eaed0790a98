"""One candidate definition per direction: who is due at a port on a day, as known at 00:00 UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from features.candidates import Direction, candidates, candidates_for_days, decision_time
from features.data.contracts import CONTAINER_EVENTS, MANIFESTS
from features.data.reference import haversine_km_np, load_ports

DAY = date(2024, 4, 10)
DECISION = datetime(2024, 4, 10, tzinfo=UTC)
H = timedelta(hours=1)


def manifest(manifest_id: str, **overrides) -> dict:
    row = {c: None for c in MANIFESTS.column_names}
    row.update(
        manifest_id=manifest_id,
        container_number="CSQU3054383",
        port_of_loading="ECGYE",
        transshipment_ports=[],
        port_of_discharge="NLRTM",
        booked_at=datetime(2024, 2, 20, tzinfo=UTC),
        filed_at=datetime(2024, 3, 1, tzinfo=UTC),
        etd=datetime(2024, 3, 2, tzinfo=UTC),
        eta=datetime(2024, 4, 10, 6, tzinfo=UTC),
    )
    row.update(overrides)
    return row


def manifests(*rows: dict) -> pl.LazyFrame:
    return pl.DataFrame(list(rows), schema=MANIFESTS.schema).lazy()


def events(*rows: tuple) -> pl.LazyFrame:
    """Rows of (container, time, locode, type)."""
    data = [{"container_number": c, "event_time": t, "locode": p, "event_type": k} for c, t, p, k in rows]
    return pl.DataFrame(data, schema=CONTAINER_EVENTS.schema).lazy()


def due(frame: pl.LazyFrame, port: str, day: date, direction: Direction, ev: pl.LazyFrame | None = None) -> list[str]:
    out = candidates(frame, ev, port=port, day=day, direction=direction).collect()
    assert out.get_column("decision_at").to_list() == [decision_time(day)] * out.height
    assert out.get_column("direction").to_list() == [direction.value] * out.height
    assert out.get_column("port").to_list() == [port] * out.height
    return out.get_column("manifest_id").to_list()


def test_decision_time_is_midnight_utc_of_the_day_and_refuses_instants() -> None:
    assert decision_time(DAY) == DECISION
    with pytest.raises(ValueError, match="datetime.date"):
        decision_time(DECISION)


def test_direction_parses_names_and_names_the_allowed_values() -> None:
    assert Direction.parse("EXPORT") is Direction.EXPORT
    assert Direction.EXPORT == "EXPORT"
    with pytest.raises(ValueError, match="IMPORT, TRANSSHIPMENT, EXPORT"):
        Direction.parse("OUTBOUND")


def test_import_candidates_arrive_on_the_day_and_were_filed_strictly_before_midnight() -> None:
    frame = manifests(
        manifest("A"),
        manifest("B", eta=datetime(2024, 4, 11, tzinfo=UTC)),
        manifest("C", eta=datetime(2024, 4, 10, 23, 59, tzinfo=UTC)),
        manifest("D", filed_at=DECISION),
        manifest("E", port_of_discharge="BEANR"),
        manifest("F", eta=DECISION - timedelta(microseconds=1)),
        manifest("G", filed_at=DECISION - timedelta(microseconds=1)),
    )
    assert due(frame, "NLRTM", DAY, Direction.IMPORT) == ["A", "C", "G"]
    out = candidates(frame, None, port="NLRTM", day=DAY, direction="IMPORT").collect()
    assert out.columns == [*MANIFESTS.column_names, "decision_at", "direction", "port"]


def test_export_candidates_depart_from_the_port_of_loading_on_the_day() -> None:
    etd = datetime(2024, 4, 10, 18, tzinfo=UTC)
    frame = manifests(
        manifest("A", etd=etd, eta=etd + 20 * 24 * H),
        manifest("B", etd=etd + 24 * H, eta=etd + 20 * 24 * H),
        manifest("C", etd=etd, eta=etd + 20 * 24 * H, port_of_loading="COCTG"),
        manifest("D", etd=etd, eta=etd + 20 * 24 * H, filed_at=DECISION + H),
    )
    assert due(frame, "ECGYE", DAY, Direction.EXPORT) == ["A"]
    # the same line is an import candidate at its destination on its arrival day
    assert due(frame, "NLRTM", (etd + 20 * 24 * H).date(), Direction.IMPORT) == ["A", "B", "C", "D"]
    assert due(frame, "ECGYE", DAY, Direction.IMPORT) == []


def estimated_call(row: dict, port: str) -> datetime:
    """The documented estimate, recomputed independently: ETD + transit x great-circle share up to ``port``."""
    coords = {r["locode"]: (r["latitude"], r["longitude"]) for r in load_ports().iter_rows(named=True)}
    route = [row["port_of_loading"], *row["transshipment_ports"], row["port_of_discharge"]]
    legs = [float(haversine_km_np(*coords[a], *coords[b])) for a, b in zip(route, route[1:])]
    share = sum(legs[: route.index(port)]) / sum(legs)
    return row["etd"] + (row["eta"] - row["etd"]) * share


def test_transshipment_call_is_estimated_from_the_route_share_and_a_discharge_port_is_not_a_call() -> None:
    row = manifest(
        "T",
        transshipment_ports=["PAMIT", "ESALG"],
        port_of_discharge="BEANR",
        etd=datetime(2024, 3, 2, 12, tzinfo=UTC),
        eta=datetime(2024, 4, 2, tzinfo=UTC),
    )
    frame = manifests(row, {**row, "manifest_id": "LATE", "filed_at": datetime(2024, 4, 1, tzinfo=UTC)})
    for port in ("PAMIT", "ESALG"):
        day = estimated_call(row, port).date()
        assert due(frame, port, day, Direction.TRANSSHIPMENT) == ["T"], port
        assert due(frame, port, day - timedelta(days=1), Direction.TRANSSHIPMENT) == []
        assert due(frame, port, day + timedelta(days=1), Direction.TRANSSHIPMENT) == []
    assert estimated_call(row, "PAMIT").date() == date(2024, 3, 6)
    listed_as_hub = manifest("V", transshipment_ports=["NLRTM"])
    assert due(manifests(listed_as_hub), "NLRTM", DAY, Direction.TRANSSHIPMENT) == []
    assert due(manifests(listed_as_hub), "NLRTM", DAY, Direction.IMPORT) == ["V"]


def test_transshipment_estimate_falls_back_to_legs_when_a_port_is_unknown() -> None:
    row = manifest(
        "U",
        transshipment_ports=["ZZZZZ", "PAMIT"],
        port_of_discharge="ESALG",
        etd=datetime(2024, 3, 1, tzinfo=UTC),
        eta=datetime(2024, 3, 31, tzinfo=UTC),
        filed_at=datetime(2024, 2, 20, tzinfo=UTC),
    )
    assert due(manifests(row), "PAMIT", date(2024, 3, 21), Direction.TRANSSHIPMENT) == ["U"]
    assert due(manifests(row), "PAMIT", date(2024, 3, 20), Direction.TRANSSHIPMENT) == []


def test_a_container_shut_out_at_loading_is_no_candidate_once_the_gate_out_is_known() -> None:
    etd = datetime(2024, 3, 2, 18, tzinfo=UTC)
    row = manifest("S", etd=etd)
    gate_in = ("CSQU3054383", etd - 30 * H, "ECGYE", "GATE_IN")
    gate_out = ("CSQU3054383", etd - 6 * H, "ECGYE", "GATE_OUT")
    loaded = ("CSQU3054383", etd - 4 * H, "ECGYE", "LOAD")
    arrival_day = row["eta"].date()
    # seized at loading (gate-out, no load): never arrives
    assert due(manifests(row), "NLRTM", arrival_day, Direction.IMPORT, events(gate_in, gate_out)) == []
    # loaded after all: arrives
    assert due(manifests(row), "NLRTM", arrival_day, Direction.IMPORT, events(gate_in, gate_out, loaded)) == ["S"]
    # an earlier voyage (more than 45 days before the ETD) says nothing about this one
    old = [("CSQU3054383", etd - 50 * 24 * H, "ECGYE", "GATE_IN"), ("CSQU3054383", etd - 46 * 24 * H, "ECGYE", "GATE_OUT")]
    assert due(manifests(row), "NLRTM", arrival_day, Direction.IMPORT, events(*old)) == ["S"]
    # a long terminal dwell (gated in before the booking) then a gate-out is a shut-out
    long_dwell = [("CSQU3054383", etd - 30 * 24 * H, "ECGYE", "GATE_IN"), gate_out]
    assert due(manifests(row), "NLRTM", arrival_day, Direction.IMPORT, events(*long_dwell)) == []
    # discharged there and taken out (an import into the port of loading) is not a shut-out export
    imported = [("CSQU3054383", etd - 40 * H, "ECGYE", "DISCHARGE"), ("CSQU3054383", etd - 30 * H, "ECGYE", "GATE_OUT")]
    assert due(manifests(row), "NLRTM", arrival_day, Direction.IMPORT, events(*imported)) == ["S"]
    # on the export day the gate-out is not known yet at 00:00 UTC (it happens at 12:00): still a candidate
    assert due(manifests(row), "ECGYE", etd.date(), Direction.EXPORT, events(gate_in, gate_out)) == ["S"]


def test_batch_form_is_the_union_of_every_port_day() -> None:
    rows = [
        manifest("A"),
        manifest("B", eta=datetime(2024, 4, 11, 3, tzinfo=UTC), port_of_discharge="BEANR"),
        manifest("C", etd=datetime(2024, 3, 3, 5, tzinfo=UTC), transshipment_ports=["PAMIT", "ESALG"]),
        manifest("D", filed_at=datetime(2024, 3, 30, tzinfo=UTC), transshipment_ports=["PAMIT"]),
        manifest("E", port_of_loading="COCTG", etd=datetime(2024, 3, 2, 23, tzinfo=UTC)),
    ]
    frame = manifests(*rows)
    for direction in Direction:
        batch = candidates_for_days(frame, None, direction=direction).collect()
        singles = [
            candidates(frame, None, port=port, day=at.date(), direction=direction).collect()
            for port, at in sorted(set(batch.select("port", "decision_at").iter_rows()))
        ]
        union = pl.concat(singles).sort("manifest_id", "port")
        assert batch.equals(union), direction
        assert batch.height > 0, direction
    exports = candidates_for_days(frame, None, direction="EXPORT", ports=["COCTG"]).collect()
    assert exports.select("manifest_id", "decision_at").rows() == [("E", datetime(2024, 3, 2, tzinfo=UTC))]
    window = candidates_for_days(frame, None, direction="IMPORT", start=DAY, end=DAY + timedelta(days=1)).collect()
    assert window.get_column("manifest_id").to_list() == ["A", "C", "D", "E"]


def test_candidates_do_not_depend_on_row_order() -> None:
    rows = [manifest(f"A{i}", etd=datetime(2024, 4, 10, i, tzinfo=UTC), eta=datetime(2024, 4, 30, tzinfo=UTC)) for i in range(6)]
    forward = candidates(manifests(*rows), None, port="ECGYE", day=DAY, direction=Direction.EXPORT).collect()
    backward = candidates(manifests(*reversed(rows)), None, port="ECGYE", day=DAY, direction=Direction.EXPORT).collect()
    assert forward.height == 6 and forward.equals(backward)
