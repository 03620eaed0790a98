"""Specification of the feature pipeline (features.pipeline) on a small simulated world.

- leakage canary: a perfectly predictive manifest, seizure, container event or
  alert added at or after a row's decision time changes none of its features;
  the same addition strictly before it does change them (so the canary can fail);
- training/serving equality: the batch path and the ``EntityState`` path give
  identical frames;
- invariance to the row order of candidates and of every history table, and to
  unsorted history;
- defined, finite values with documented sentinels for unseen entities, an
  empty history and nulls in every nullable column.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.data.contracts import ALERTS, CONTAINER_EVENTS, INSPECTION_OUTCOMES, MANIFESTS
from features.entity import NEVER_DAYS
from features.history import History, with_derived_columns
from features.manifest import MISSING
from features.pipeline import KEY_COLUMNS, assert_registry_complete, build_features, entity_state
from features.registry import categorical_columns, computed_columns, feature_columns
from features.stats import fit_stats
from targeting.sim.world import WorldConfig, simulate_world

US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
UTC_US = pl.Datetime("us", "UTC")
CONFIG = WorldConfig(days=40, containers_per_day=200)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def world():
    return simulate_world(CONFIG)


@pytest.fixture(scope="module")
def hist(world) -> History:  # noqa: ANN001
    return History.from_frames(world.manifests, world.events, world.outcomes, world.alerts)


@pytest.fixture(scope="module")
def stats(world):  # noqa: ANN001, ANN201
    return fit_stats(with_derived_columns(world.manifests.lazy()).collect(), world.outcomes)


@pytest.fixture(scope="module")
def boundary_times(world) -> list[datetime]:  # noqa: ANN001
    """Times at which something happens in the world (filings, events, inspections): the sharpest decision times."""
    times = pl.concat(
        [
            world.manifests["filed_at"].sample(200, seed=1),
            world.events["event_time"].sample(200, seed=2),
            world.outcomes["inspected_at"],
            world.alerts["valid_from"],
        ]
    )
    return times.unique().sort().to_list()


def at_time(frame: pl.DataFrame, at: datetime) -> pl.DataFrame:
    return frame.with_columns(pl.lit(at, dtype=UTC_US).alias("decision_at"))


def day_candidates(world, day: datetime) -> pl.DataFrame:  # noqa: ANN001
    """The arrivals of ``day`` filed before it, scored at its 00:00 UTC (as the daily list does)."""
    arrivals = world.manifests.filter((pl.col("eta").dt.truncate("1d") == day) & (pl.col("filed_at") < day))
    return at_time(arrivals, day)


def assert_defined_and_finite(feats: pl.DataFrame) -> None:
    assert feats.columns == [*KEY_COLUMNS, *computed_columns()]
    nulls = {c: n for c, n in zip(feats.columns, feats.null_count().row(0)) if n}
    assert not nulls, f"null features: {nulls}"
    floats = [c for c in computed_columns() if c not in categorical_columns()]
    bad = [c for c in floats if not feats[c].is_finite().all()]
    assert not bad, f"non-finite features: {bad}"
    for c in categorical_columns():
        assert feats.schema[c] == pl.Int32 and feats[c].min() >= 0


def canonical(feats: pl.DataFrame) -> pl.DataFrame:
    return feats.sort("manifest_id", "decision_at")


# ----------------------------------------------------------------------------- the leak: perfectly predictive additions
def leak(hist: History, rows: pl.DataFrame, when: datetime, *, alert_from: datetime, trip_end: bool = True) -> History:
    """``hist`` plus, for every row: a copy of its manifest filed at ``when``, seizures of the row and of the copy
    at ``when``, events of its container at ``when`` reading another seal, and alerts on every field valid from ``alert_from``.
    """
    n = rows.height
    tag = pl.int_range(n, dtype=pl.Int64).cast(pl.String)
    stamp = pl.lit(when, dtype=UTC_US)
    copies = rows.select(MANIFESTS.column_names).with_columns(
        ("LEAK-" + tag).alias("manifest_id"),
        (stamp - DAY).alias("booked_at"),
        stamp.alias("filed_at"),
        (stamp + DAY).alias("etd"),
        (stamp + 10 * DAY).alias("eta"),
        pl.lit(None, dtype=UTC_US).alias("amended_at"),
        pl.lit(None, dtype=pl.List(pl.String)).alias("amended_fields"),
    )
    seized = pl.concat([rows.select("manifest_id", "container_number", "port_of_discharge"), copies.select("manifest_id", "container_number", "port_of_discharge")])
    outcomes = seized.select(
        "manifest_id",
        "container_number",
        pl.col("port_of_discharge").alias("port"),
        stamp.alias("inspected_at"),
        pl.lit("PHYSICAL").alias("exam_type"),
        pl.lit("SEIZURE").alias("result"),
        pl.lit("COCAINE").alias("seizure_category"),
        pl.lit(500.0).alias("quantity_kg"),
        pl.lit("bags behind the doors").alias("concealment_method"),
        pl.lit("MISMATCH").alias("seal_status"),
        pl.lit("EX-LEAK").alias("examiner"),
        pl.lit("RANDOM").alias("selection_source"),
        pl.lit("IMPORT").alias("direction"),
    )
    hub = pl.col("transshipment_ports").list.first().fill_null(pl.lit("SGSIN"))
    kinds = [("GATE_IN", pl.col("port_of_loading")), ("LOAD", pl.col("port_of_loading")), ("TS_DISCHARGE", hub)]
    if trip_end:
        kinds.append(("DISCHARGE", pl.col("port_of_discharge")))
    evs = pl.concat(
        [
            rows.select(
                "container_number",
                stamp.alias("event_time"),
                locode.alias("locode"),
                pl.lit(kind).alias("event_type"),
                pl.lit(None, pl.String).alias("vessel_imo"),
                pl.lit(None, pl.String).alias("voyage"),
                pl.lit("LEAKSEAL").alias("seal_number"),
            )
            for kind, locode in kinds
        ]
    )
    fields = [
        ("PARTY", pl.col("consignee_id")),
        ("PARTY", pl.col("shipper_id")),
        ("CONTAINER", pl.col("container_number")),
        ("BL", pl.col("master_bl")),
        ("VESSEL", pl.col("vessel_imo")),
        ("HS_CODE", pl.col("hs_code").str.slice(0, 4)),
        ("ROUTE", pl.col("port_of_loading").str.slice(0, 2) + ">" + pl.col("port_of_discharge").str.slice(0, 2)),
    ]
    alerts = pl.concat(
        [
            rows.select(
                (f"LEAK-{i}-" + tag).alias("alert_id"),
                pl.lit(kind).alias("kind"),
                value.alias("value"),
                pl.lit("leaked").alias("reason"),
                pl.lit("CANARY").alias("issuing_unit"),
                pl.lit(5, pl.Int64).alias("severity"),
                pl.lit(alert_from, dtype=UTC_US).alias("valid_from"),
                pl.lit(None, dtype=UTC_US).alias("valid_to"),
            )
            for i, (kind, value) in enumerate(fields)
        ]
    )
    return History(
        manifests=pl.concat([hist.manifests, copies.lazy().cast(MANIFESTS.schema)]),
        events=pl.concat([hist.events, evs.lazy().cast(CONTAINER_EVENTS.schema)]),
        outcomes=pl.concat([hist.outcomes, outcomes.lazy().cast(INSPECTION_OUTCOMES.schema)]),
        alerts=pl.concat([hist.alerts, alerts.lazy().cast(ALERTS.schema)]),
    )


WORLD_START = CONFIG.start_at
WORLD_END = CONFIG.start_at + CONFIG.days * DAY


def decision_times(boundary: list[datetime]) -> st.SearchStrategy[datetime]:
    """Any microsecond from 10 days before the world to 5 days after it, or exactly when something happened."""
    span = int((WORLD_END - WORLD_START + 15 * DAY) / US)
    uniform = st.integers(0, span).map(lambda us: WORLD_START - 10 * DAY + us * US)
    return st.one_of(uniform, st.sampled_from(boundary), st.sampled_from(boundary).map(lambda t: t + US))


def delays() -> st.SearchStrategy[timedelta]:
    """How long after the decision time the leak happens: exactly at it, a microsecond later, or up to 60 days later."""
    return st.one_of(st.just(timedelta(0)), st.just(US), st.integers(1, 60 * 86_400_000_000).map(lambda us: us * US))


CANARY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@CANARY
@given(data=st.data())
def test_leak_at_or_after_the_decision_time_changes_no_feature(world, hist: History, stats, boundary_times, data) -> None:  # noqa: ANN001
    at = data.draw(decision_times(boundary_times), label="decision_at")
    index = data.draw(st.lists(st.integers(0, world.manifests.height - 1), min_size=1, max_size=4, unique=True), label="rows")
    when = at + data.draw(delays(), label="delay")
    rows = world.manifests[index]
    cands = at_time(rows, at)
    base = build_features(cands, hist, stats)
    leaky = leak(hist, rows, when, alert_from=max(when, at + US))  # alerts are active from valid_from inclusive
    assert_frame_equal(build_features(cands, leaky, stats), base)
    assert_frame_equal(build_features(cands, leaky, stats, state=entity_state(leaky, at)), base)


@CANARY
@given(data=st.data())
def test_leak_after_every_rows_decision_time_changes_no_feature_of_a_mixed_batch(world, hist: History, stats, boundary_times, data) -> None:  # noqa: ANN001
    index = data.draw(st.lists(st.integers(0, world.manifests.height - 1), min_size=2, max_size=6, unique=True), label="rows")
    times = data.draw(st.lists(decision_times(boundary_times), min_size=len(index), max_size=len(index)), label="decision_at")
    when = max(times) + data.draw(delays(), label="delay")
    rows = world.manifests[index]
    cands = rows.with_columns(pl.Series("decision_at", times, dtype=UTC_US))
    base = build_features(cands, hist, stats)
    leaky = leak(hist, rows, when, alert_from=max(when, max(times) + US))
    assert_frame_equal(build_features(cands, leaky, stats), base)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_the_same_leak_strictly_before_the_decision_time_does_change_features(world, hist: History, stats, data) -> None:  # noqa: ANN001
    at = data.draw(st.integers(0, int((WORLD_END - WORLD_START) / US)).map(lambda us: WORLD_START + us * US), label="decision_at")
    when = at - data.draw(st.integers(1, 3_600_000_000).map(lambda us: us * US), label="lead")
    # rows that departed by ``when``: their voyage window (after the previous trip, which ended before ETD) contains it
    eligible = world.manifests.with_row_index("_i").filter(pl.col("etd") <= when)["_i"]
    index = data.draw(st.lists(st.sampled_from(eligible.to_list()), min_size=1, max_size=3, unique=True), label="rows")
    rows = world.manifests[index]
    cands = at_time(rows, at)
    base = build_features(cands, hist, stats)
    leaky_history = leak(hist, rows, when, alert_from=when, trip_end=False)
    leaky = build_features(cands, leaky_history, stats)
    assert_frame_equal(build_features(cands, leaky_history, stats, state=entity_state(leaky_history, at)), leaky)
    grew = ["consignee_n_prior", "consignee_n_30d", "shipper_n_prior", "pair_n_prior", "lane_n_prior", "lane_route_n_prior",
            "consignee_n_findings", "container_n_findings", "loading_port_n_findings", "origin_country_n_findings",
            "voyage_event_count", "alert_count", "alert_count_party", "alert_count_route", "alert_count_hs_code"]  # fmt: skip
    for column in grew:
        assert (leaky[column] > base[column]).all(), column
    assert (leaky["consignee_days_since_last_finding"] < 1 / 24 + 1e-9).all()
    assert (leaky["alert_max_severity"] == 5).all()
    sealed = rows["seal_number"].is_not_null()
    assert (leaky["event_seal_mismatches"].filter(sealed) >= base["event_seal_mismatches"].filter(sealed) + 2).all()


# ----------------------------------------------------------------------------- training / serving equality
@pytest.mark.parametrize("day", [3, 12, 25, 39])
def test_batch_and_serving_paths_give_identical_frames(world, hist: History, stats, day: int) -> None:  # noqa: ANN001
    at = WORLD_START + day * DAY
    cands = day_candidates(world, at)
    assert cands.height > 50
    batch = build_features(cands, hist, stats)
    served = build_features(cands, hist, stats, state=entity_state(hist, at))
    assert_frame_equal(batch, served)
    assert_defined_and_finite(batch)


def test_batch_and_serving_paths_agree_at_an_arbitrary_microsecond(world, hist: History, stats) -> None:  # noqa: ANN001
    at = WORLD_START + 20 * DAY + timedelta(hours=13, minutes=7, microseconds=123_457)
    cands = at_time(world.manifests.filter((pl.col("eta") - at).abs() < 2 * DAY), at)
    assert_frame_equal(build_features(cands, hist, stats), build_features(cands, hist, stats, state=entity_state(hist, at)))


def test_batch_with_mixed_decision_times_equals_the_serving_path_per_time(world, hist: History, stats) -> None:  # noqa: ANN001
    # decision times on and just after history instants (a filing, an inspection): the sharpest boundaries
    filing = world.manifests["filed_at"][3000]
    inspection = world.outcomes["inspected_at"][len(world.outcomes) // 2]
    times = [WORLD_START + 17 * DAY, filing, filing + US, inspection, inspection + US, WORLD_END + 3 * DAY]
    rows = world.manifests.sample(600, seed=9)
    cands = rows.with_columns(pl.Series("decision_at", [times[i % len(times)] for i in range(rows.height)], dtype=UTC_US))
    batch = build_features(cands, hist, stats)
    for at in times:
        mine = cands["decision_at"] == at
        served = build_features(cands.filter(mine), hist, stats, state=entity_state(hist, at))
        assert_frame_equal(batch.filter(mine), served)


# ----------------------------------------------------------------------------- order and sortedness
@pytest.fixture(scope="module")
def mixed(world) -> pl.DataFrame:  # noqa: ANN001
    """Arrivals of ten days scored at their arrival day, plus some rows scored again at other times."""
    rows = world.manifests.filter(pl.col("eta").is_between(WORLD_START + 20 * DAY, WORLD_START + 30 * DAY))
    arrival = rows.with_columns(pl.col("eta").dt.truncate("1d").alias("decision_at"))
    again = rows.sample(200, seed=3).with_columns((pl.col("eta") - timedelta(days=9, hours=5)).alias("decision_at"))
    return pl.concat([arrival, again])


@pytest.fixture(scope="module")
def mixed_features(mixed: pl.DataFrame, hist: History, stats) -> pl.DataFrame:  # noqa: ANN001
    return build_features(mixed, hist, stats)


def test_candidate_row_order_does_not_change_features(mixed: pl.DataFrame, mixed_features: pl.DataFrame, hist: History, stats) -> None:  # noqa: ANN001
    shuffled = build_features(mixed.sample(fraction=1.0, shuffle=True, seed=11), hist, stats)
    assert_frame_equal(canonical(shuffled), canonical(mixed_features))


def test_output_rows_follow_input_order(mixed: pl.DataFrame, mixed_features: pl.DataFrame) -> None:
    assert mixed_features["manifest_id"].to_list() == mixed["manifest_id"].to_list()
    assert mixed_features["decision_at"].to_list() == mixed["decision_at"].to_list()
    assert_defined_and_finite(mixed_features)


@pytest.mark.parametrize("table", ["manifests", "events", "outcomes", "alerts"])
def test_history_row_order_does_not_change_features(world, mixed: pl.DataFrame, mixed_features: pl.DataFrame, stats, table: str) -> None:  # noqa: ANN001
    frames = {t: getattr(world, t) for t in ("manifests", "events", "outcomes", "alerts")}
    frames[table] = frames[table].sample(fraction=1.0, shuffle=True, seed=5)
    shuffled = History.from_frames(**frames)
    assert_frame_equal(build_features(mixed, shuffled, stats), mixed_features)


def test_history_in_reverse_time_order_gives_the_same_features(world, mixed: pl.DataFrame, mixed_features: pl.DataFrame, stats) -> None:  # noqa: ANN001
    reverse = History.from_frames(
        world.manifests.sort("filed_at", descending=True),
        world.events.sort("event_time", descending=True),
        world.outcomes.sort("inspected_at", descending=True),
        world.alerts.sort("valid_from", descending=True),
    )
    assert_frame_equal(build_features(mixed, reverse, stats), mixed_features)
    at = WORLD_START + 25 * DAY
    cands = day_candidates(world, at)
    assert_frame_equal(build_features(cands, reverse, stats, state=entity_state(reverse, at)), build_features(cands, reverse, stats))


# ----------------------------------------------------------------------------- unseen entities, empty history, nulls
def test_unseen_entities_get_the_documented_sentinels(world, hist: History, stats) -> None:  # noqa: ANN001
    at = WORLD_START + 30 * DAY
    fresh = day_candidates(world, at).head(20).with_columns(
        ("NEWC-" + pl.col("manifest_id")).alias("consignee_id"),
        ("NEWS-" + pl.col("manifest_id")).alias("shipper_id"),
        # new names too: a known trader under another identifier is the same party (features.parties)
        ("Newco Consignee " + pl.col("manifest_id")).alias("consignee_name"),
        ("Newco Shipper " + pl.col("manifest_id")).alias("shipper_name"),
        ("NEW-" + pl.col("manifest_id")).alias("manifest_id"),
        pl.col("container_number").str.replace(r"^....", "ZZZU"),
    )
    feats = build_features(fresh, hist, stats)
    assert_defined_and_finite(feats)
    for column in ("consignee_n_prior", "consignee_n_30d", "shipper_n_365d", "pair_n_prior", "consignee_n_inspections", "container_n_inspections"):
        assert (feats[column] == 0.0).all(), column
    for column in ("consignee_finding_rate", "shipper_finding_rate", "pair_finding_rate", "container_finding_rate"):
        assert feats[column].to_list() == pytest.approx([stats.prior_finding_rate] * fresh.height), column
    assert (feats["consignee_days_since_last_finding"] == NEVER_DAYS).all()
    assert (feats["container_days_since_last_finding"] == NEVER_DAYS).all()
    own_age = ((at - fresh["filed_at"]).dt.total_microseconds() / 86_400_000_000).to_list()
    assert feats["consignee_days_since_first"].to_list() == pytest.approx(own_age)
    assert (feats["voyage_event_count"] == 0.0).all() and (feats["origin_dwell_hours"] == MISSING).all()


def test_empty_history_gives_defined_values(world, stats) -> None:  # noqa: ANN001
    at = WORLD_START + 30 * DAY
    cands = day_candidates(world, at)
    alone = History.from_frames(cands.drop("decision_at"))
    feats = build_features(cands, alone, stats)
    assert_defined_and_finite(feats)
    assert_frame_equal(feats, build_features(cands, alone, stats, state=entity_state(alone, at)))
    assert (feats["alert_count"] == 0).all() and (feats["alert_max_severity"] == 0).all()
    assert (feats["transshipment_dwell_max_hours"] == MISSING).all()
    assert (feats["event_seal_mismatches"] == 0).all()
    assert (feats["consignee_n_inspections"] == 0).all()
    assert feats["hub_finding_rate"].to_list() == pytest.approx([stats.prior_finding_rate] * cands.height)


def test_nulls_in_nullable_columns_give_sentinels(world, hist: History, stats) -> None:  # noqa: ANN001
    at = WORLD_START + 30 * DAY
    cands = day_candidates(world, at).head(40)
    blank = cands.with_columns(
        pl.lit(None, pl.String).alias("seal_number"),
        pl.lit(None, pl.String).alias("house_bl"),
        pl.lit(None, pl.String).alias("notify_id"),
        pl.lit(None, pl.String).alias("notify_name"),
        pl.lit(None, pl.String).alias("notify_country"),
        pl.lit(None, UTC_US).alias("amended_at"),
        pl.lit(None, pl.List(pl.String)).alias("amended_fields"),
        pl.lit(None, pl.Float64).alias("verified_gross_mass_kg"),
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit([], pl.List(pl.String))).otherwise(None).alias("transshipment_ports"),
    )
    frames = {"manifests": pl.concat([world.manifests.filter(~pl.col("manifest_id").is_in(blank["manifest_id"].implode())), blank.drop("decision_at")])}
    nulled = History.from_frames(**frames, events=world.events, outcomes=world.outcomes, alerts=world.alerts)
    feats = build_features(blank, nulled, stats)
    assert_defined_and_finite(feats)
    assert_frame_equal(feats, build_features(blank, nulled, stats, state=entity_state(nulled, at)))
    expected = {
        "seal_present": 0.0, "house_bl_only": 0.0, "notify_differs": 0.0, "amended_before_decision": 0.0,
        "late_sensitive_amendment": 0.0, "vgm_excess_kg": 0.0, "transshipment_count": 0.0, "event_seal_mismatches": 0.0,
        "route_circuity": 1.0, "hub_n_inspections": 0.0,
    }  # fmt: skip
    for column, value in expected.items():
        assert (feats[column] == value).all(), column
    direct = stats.vocabularies["last_hub_code"].index("DIRECT") + 1 if "DIRECT" in stats.vocabularies["last_hub_code"] else 0
    assert (feats["last_hub_code"] == direct).all()
    assert feats["hub_finding_rate"].to_list() == pytest.approx([stats.prior_finding_rate] * blank.height)


def test_world_features_are_finite_for_every_arrival(world, hist: History, stats) -> None:  # noqa: ANN001
    rows = world.manifests.with_columns(pl.col("eta").dt.truncate("1d").alias("decision_at"))
    assert_defined_and_finite(build_features(rows, hist, stats))


def test_every_registered_feature_is_produced() -> None:
    assert_registry_complete()
    assert len(feature_columns()) == len(set(feature_columns()))
    assert not math.isnan(NEVER_DAYS)
