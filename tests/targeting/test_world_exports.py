"""Export control in the simulated world: source-port units, what they see before loading, and seizures that stop containers."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.candidates import Direction, candidates, candidates_for_days
from features.data.contracts import INSPECTION_OUTCOMES
from targeting.sim.export_control import EXPORT_PORTS, export_rule_profiles
from targeting.sim.world import ORACLE_COLUMNS, WorldConfig, simulate_world

CONFIG = WorldConfig(seed=11, start=date(2025, 1, 1), days=45, containers_per_day=300, illicit_rate=0.03)


@pytest.fixture(scope="module")
def world():
    return simulate_world(CONFIG)


def export_outcomes(world) -> pl.DataFrame:
    loaded = world.manifests.select("manifest_id", pl.col("port_of_loading").alias("port"), "etd", "booked_at")
    return world.outcomes.join(loaded, on=["manifest_id", "port"], how="inner")


def test_the_world_is_deterministic_per_seed_exports_included(world) -> None:
    again = simulate_world(CONFIG)
    for name in ("manifests", "events", "outcomes", "alerts", "oracle"):
        assert_frame_equal(getattr(world, name), getattr(again, name))
    assert world.summary == again.summary


def test_export_units_inspect_departures_at_their_own_ports_before_loading(world) -> None:
    exams = export_outcomes(world)
    assert set(exams["port"].unique()) <= set(EXPORT_PORTS)
    assert set(exams["port"].unique()) >= {"ECGYE", "BRSSZ", "PECLL"}
    assert exams.schema == {**INSPECTION_OUTCOMES.schema, "etd": exams.schema["etd"], "booked_at": exams.schema["booked_at"]}
    decision = exams["etd"].dt.truncate("1d")
    assert (exams["inspected_at"] >= decision).all() and (exams["inspected_at"] < exams["etd"]).all()
    assert set(exams["selection_source"].unique()) <= {"WATCHLIST", "RULE", "RANDOM"}
    rate = exams.height / world.manifests.filter(pl.col("port_of_loading").is_in(EXPORT_PORTS)).height
    assert 0.01 < rate < 0.06
    summary = {row["port"]: row for row in world.summary["exports"]}
    assert sum(r["inspected"] for r in summary.values()) == exams.height


def test_a_seizure_at_export_stops_the_container_it_never_sails_nor_is_an_import_candidate(world) -> None:
    stopped = world.oracle.filter(pl.col("seized_at_export"))
    assert stopped.height >= 1
    seizures = export_outcomes(world).filter(pl.col("result") == "SEIZURE")
    assert sorted(seizures["manifest_id"]) == sorted(stopped["manifest_id"])
    # an export exam finds only what was loaded at that port
    assert stopped.filter(pl.col("loaded_at") != pl.col("port_of_loading")).height == 0
    events = world.events.lazy()
    manifests = world.manifests.lazy()
    for row in stopped.iter_rows(named=True):
        trip = world.events.filter(
            (pl.col("container_number") == row["container_number"])
            & (pl.col("event_time") >= row["etd"] - timedelta(days=40))
            & (pl.col("event_time") <= row["eta"] + timedelta(days=20))
        ).sort("event_time")
        at_origin = trip.filter(pl.col("locode") == row["port_of_loading"])
        assert at_origin["event_type"].to_list()[-2:] == ["GATE_IN", "GATE_OUT"], row["manifest_id"]
        assert trip.filter(pl.col("event_type").is_in(["LOAD", "DISCHARGE"]) & (pl.col("event_time") > at_origin["event_time"][0])).height == 0
        arrival = candidates(manifests, events, port=row["port_of_discharge"], day=row["eta"].date(), direction=Direction.IMPORT).collect()
        assert row["manifest_id"] not in arrival["manifest_id"].to_list()
        export_day = candidates(manifests, events, port=row["port_of_loading"], day=row["etd"].date(), direction=Direction.EXPORT).collect()
        assert row["manifest_id"] in export_day["manifest_id"].to_list()
    import_exams = world.outcomes.join(world.manifests.select("manifest_id", pl.col("port_of_discharge").alias("port")), on=["manifest_id", "port"])
    assert import_exams.filter(pl.col("manifest_id").is_in(stopped["manifest_id"].implode())).height == 0


def test_sailed_containers_gate_in_before_loading_at_the_etd(world) -> None:
    origin = world.events.join(
        world.manifests.select("container_number", pl.col("port_of_loading").alias("locode"), "etd", "manifest_id"), on=["container_number", "locode"]
    ).filter((pl.col("event_time") <= pl.col("etd")) & (pl.col("event_time") > pl.col("etd") - timedelta(days=25)))
    loads = origin.filter(pl.col("event_type") == "LOAD")
    assert (loads["event_time"] == loads["etd"]).all()
    gate_ins = origin.filter(pl.col("event_type") == "GATE_IN").group_by("manifest_id").agg(pl.col("event_time").max())
    paired = loads.join(gate_ins, on="manifest_id", suffix="_gate_in")
    assert paired.height > 0.9 * loads.height
    assert (paired["event_time_gate_in"] < paired["event_time"]).all()


def test_booking_changes_are_after_the_booking_and_front_exporters_change_closer_to_loading(world) -> None:
    m = world.manifests
    changed = m.filter(pl.col("booking_amended_at").is_not_null())
    assert (changed["booking_amended_at"] >= changed["booked_at"]).all()
    assert (m["booking_amended_at"].is_null() == m["booking_amended_fields"].is_null()).all()
    fronts = world.oracle.filter(pl.col("method").str.contains("front")).select("manifest_id")
    hours = (pl.col("etd") - pl.col("booking_amended_at")).dt.total_hours()
    late = lambda frame: frame.select((hours.is_between(0, 48)).fill_null(False).mean()).item()  # noqa: E731
    front_rows = m.join(fronts, on="manifest_id")
    legit_rows = m.join(world.oracle.filter(~pl.col("illicit")).select("manifest_id"), on="manifest_id")
    assert late(front_rows) > 3 * late(legit_rows) > 0


def test_rip_on_at_the_origin_terminal_shows_late_gate_in_or_long_dwell(world) -> None:
    gate_in = world.events.filter(pl.col("event_type") == "GATE_IN").join(
        world.manifests.select("manifest_id", "container_number", pl.col("port_of_loading").alias("locode"), "etd"), on=["container_number", "locode"]
    ).filter(pl.col("event_time").is_between(pl.col("etd") - timedelta(days=30), pl.col("etd")))
    dwell = gate_in.select("manifest_id", ((pl.col("etd") - pl.col("event_time")).dt.total_minutes() / 60).alias("dwell_h"))
    ripon = world.oracle.filter((pl.col("method") == "cocaine-rip-on") & (pl.col("loaded_at") == pl.col("port_of_loading"))).select("manifest_id")
    odd = (pl.col("dwell_h") < 8) | (pl.col("dwell_h") > 200)
    ripon_odd = dwell.join(ripon, on="manifest_id").select(odd.mean()).item()
    legit_odd = dwell.join(world.oracle.filter(~pl.col("illicit")).select("manifest_id"), on="manifest_id").select(odd.mean()).item()
    assert ripon_odd > 0.4 and legit_odd < 0.1


def test_oracle_covers_exports_and_export_rules_are_the_national_ones_plus_export_profiles(world) -> None:
    assert world.oracle.columns == list(ORACLE_COLUMNS)
    illicit = world.oracle.filter(pl.col("illicit"))
    assert illicit["loaded_at"].null_count() == 0
    assert world.oracle.filter(~pl.col("illicit"))["loaded_at"].null_count() == world.oracle.filter(~pl.col("illicit")).height
    codes = [r.code for r in export_rule_profiles()]
    assert {"EXP-LATE-BOOKING-CHANGE", "COC-REEFER-FRUIT"} <= set(codes) and len(codes) == len(set(codes))
    assert [r.code for r in world.export_rules] == codes


def test_every_export_exam_names_an_export_candidate_of_its_port_day(world) -> None:
    exams = export_outcomes(world)
    due = candidates_for_days(world.manifests.lazy(), None, direction="EXPORT", ports=EXPORT_PORTS).collect()
    matched = exams.join(due.select("manifest_id", "port", "decision_at"), on=["manifest_id", "port"], how="inner")
    assert matched.height == exams.height
    assert (matched["decision_at"] == matched["etd"].dt.truncate("1d")).all()


def test_a_world_without_export_ports_has_no_export_control() -> None:
    quiet = simulate_world(WorldConfig(seed=2, days=10, containers_per_day=100, export_ports=()))
    assert quiet.summary["exports"] == []
    assert not quiet.oracle["seized_at_export"].any()
    with pytest.raises(ValueError, match="unknown port"):
        WorldConfig(export_ports=("ZZZZZ",))
