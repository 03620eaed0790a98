"""Legitimate-trade churn of the simulated world: ``static`` is the historical world, ``realistic`` has the stated rates.

The static digests below were computed from the simulator before the churn
levels and drift scenarios existed (commit 75a57fc): a static world must stay
bit-identical so that existing tests and figures hold.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import polars as pl
import pytest

from features.data.ingest import to_string_frame
from features.data.validation import validate
from features.stats import usd_value
from targeting.sim.catalogue import COMMODITY_BY_HS
from targeting.sim.churn import CHURN_RATES, NO_END_DAY
from targeting.sim.world import World, WorldConfig, simulate_world

REALISTIC = CHURN_RATES["realistic"]
PRE_CHURN_DIGESTS = {
    "manifests": "2f8dd7a1ddf4caa3",
    "events": "de077da82debf46a",
    "outcomes": "eb00cd06f8efe57d",
    "alerts": "fcea615d4c9d5399",
    "oracle": "a17f24b013ef97e4",
}
PRE_CHURN_ORACLE = ("manifest_id", "container_number", "port_of_discharge", "eta", "illicit", "category", "quantity_kg", "org_id", "method",
                    "concealment", "port_of_loading", "etd", "loaded_at", "seized_at_export")
CANONICAL_ID = r"^[SC][A-Z]{2}[0-9]{6}$"
CONFIG = WorldConfig(seed=9, start=date(2025, 2, 1), days=60, containers_per_day=300, legit_churn="realistic")


def digests(tables) -> dict[str, str]:
    out = {}
    for name in PRE_CHURN_DIGESTS:
        frame = getattr(tables, name)
        frame = frame.select(PRE_CHURN_ORACLE) if name == "oracle" else frame
        out[name] = hashlib.sha256(frame.write_ndjson().encode()).hexdigest()[:16]
    return out


@pytest.fixture(scope="module")
def realistic():
    """(world after its run, legitimate manifests with hidden columns, public tables) of a 60-day realistic world."""
    world = World(CONFIG)
    batches = [world.day(day).manifests for day in range(CONFIG.days)]
    manifests = pl.concat(batches).filter(pl.col("org_id").is_null())
    return world, manifests, simulate_world(CONFIG)


def test_a_static_world_is_bit_identical_to_the_world_before_churn_levels_existed() -> None:
    tables = simulate_world(WorldConfig(seed=4, start=date(2025, 1, 1), days=6, containers_per_day=80))
    assert digests(tables) == PRE_CHURN_DIGESTS
    assert WorldConfig().legit_churn == "static"


def test_realistic_churn_happens_at_the_stated_shipment_rates(realistic) -> None:
    _, legit, _ = realistic
    share = legit["_churn"].value_counts(normalize=True).filter(pl.col("_churn").is_not_null())
    rates = dict(zip(share["_churn"].to_list(), share["proportion"].to_list()))
    assert rates["spot"] == pytest.approx(REALISTIC.spot_supplier_share, abs=0.008)
    assert rates["sporadic"] == pytest.approx(REALISTIC.sporadic_importer_share * (1 - REALISTIC.spot_supplier_share), abs=0.006)
    assert {"seasonal", "reroute", "service"} <= set(rates)


def test_seasonal_importers_are_the_stated_share_of_consignees_and_trade_only_in_their_window(realistic) -> None:
    world, legit, _ = realistic
    rel = world.relationships
    seasonal = rel.filter(pl.col("end_day") < NO_END_DAY)
    base_consignees = rel.filter(pl.col("end_day") == NO_END_DAY)["consignee_id"].n_unique()
    assert seasonal.height == round(REALISTIC.seasonal_importer_share * base_consignees)
    assert ((seasonal["end_day"] - seasonal["start_day"]).is_between(60, 120)).all()
    rows = legit.filter(pl.col("_churn") == "seasonal").join(seasonal.select("consignee_id", "start_day", "end_day"), on="consignee_id")
    assert rows.height > 0 and rows.filter((pl.col("_day") < pl.col("start_day")) | (pl.col("_day") >= pl.col("end_day"))).height == 0


def test_one_off_shippers_and_first_time_importers_make_novelty_common_in_legitimate_trade(realistic) -> None:
    _, legit, tables = realistic
    seen = tables.manifests.join(tables.oracle.select("manifest_id", "illicit"), on="manifest_id").sort("eta", "manifest_id").with_columns(
        (pl.int_range(pl.len()).over("shipper_id") == 0).alias("first_shipper"),
        (pl.int_range(pl.len()).over("consignee_id") == 0).alias("first_consignee"),
    )
    late_legit = seen.filter(~pl.col("illicit") & (pl.col("eta") >= pl.lit(CONFIG.start_at) + pl.duration(days=20)))
    # spot suppliers (4 %) plus seasonal importers' shippers plus spelling variants of identifiers
    assert 0.04 <= late_legit["first_shipper"].mean() <= 0.10
    assert 0.01 <= late_legit["first_consignee"].mean() <= 0.05
    static = simulate_world(WorldConfig(seed=9, start=date(2025, 2, 1), days=60, containers_per_day=300))
    old = static.manifests.sort("eta", "manifest_id").with_columns((pl.int_range(pl.len()).over("shipper_id") == 0).alias("first_shipper"))
    assert old.filter(pl.col("eta") >= pl.lit(CONFIG.start_at) + pl.duration(days=20))["first_shipper"].mean() < 0.01


def test_hs_codes_are_filed_at_6_8_or_10_digits_per_trading_pair_at_the_stated_shares(realistic) -> None:
    _, legit, _ = realistic
    as_filed = legit.filter(pl.col("shipper_id").str.contains(CANONICAL_ID) & pl.col("consignee_id").str.contains(CANONICAL_ID))  # not respelt
    pairs = as_filed.select("shipper_id", "consignee_id", pl.col("hs_code").str.slice(0, 6).alias("hs6"), pl.col("hs_code").str.len_chars().alias("digits")).unique()
    assert pairs.select(pl.len().over("shipper_id", "consignee_id", "hs6").max()).item() == 1  # one length per pair and code
    share = dict(pairs["digits"].value_counts(normalize=True).iter_rows())
    for digits, expected in REALISTIC.hs_digits:
        assert share[digits] == pytest.approx(expected, abs=0.04)
    assert set(legit["hs_code"].str.slice(0, 6).unique()) <= set(COMMODITY_BY_HS)


def test_invoice_currencies_follow_the_stated_mix_and_keep_the_value_in_usd(realistic) -> None:
    _, legit, tables = realistic
    as_filed = legit.filter(pl.col("shipper_id").str.contains(CANONICAL_ID) & pl.col("consignee_id").str.contains(CANONICAL_ID))  # not respelt
    pairs = as_filed.unique(["shipper_id", "consignee_id"]).select("currency")
    share = dict(pairs["currency"].value_counts(normalize=True).iter_rows())
    assert share["EUR"] == pytest.approx(0.38, abs=0.04)
    assert 0.50 <= share["USD"] <= 0.62  # USD itself plus the exporters whose own currency is the dollar
    assert len(share) >= 8
    clean = tables.manifests.join(tables.oracle.filter(~pl.col("illicit")).select("manifest_id"), on="manifest_id")
    ratio = clean.with_columns(
        (usd_value() / pl.col("gross_mass_kg") / pl.col("hs_code").str.slice(0, 6).replace_strict({h: c.value_per_kg for h, c in COMMODITY_BY_HS.items()})).alias("r")
    ).group_by("currency").agg(pl.col("r").median(), pl.len()).filter(pl.col("len") >= 30)
    assert ratio["r"].is_between(0.85, 1.2).all(), ratio


def test_a_realistic_world_passes_the_manifest_contract(realistic) -> None:
    _, _, tables = realistic
    result = validate("manifests", to_string_frame(tables.manifests), now=datetime(2026, 1, 1, tzinfo=UTC))
    assert result.rejected.height == 0, result.rejected.head(3)


def test_a_realistic_world_is_deterministic_per_seed() -> None:
    config = WorldConfig(seed=2, days=8, containers_per_day=60, legit_churn="realistic")
    first, second = simulate_world(config), simulate_world(config)
    assert digests(first) == digests(second)
    assert digests(first) != digests(simulate_world(WorldConfig(seed=2, days=8, containers_per_day=60)))


def test_carrier_service_changes_move_a_lane_to_other_vessels_from_a_day_on(realistic) -> None:
    _, legit, _ = realistic
    lane = ["carrier", "country", "port_of_discharge"]
    rows = legit.with_columns(pl.col("port_of_loading").str.slice(0, 2).alias("country"))
    changed_lanes = rows.filter(pl.col("_churn") == "service").select(lane).unique()
    assert changed_lanes.height > 0
    per_lane = rows.join(changed_lanes, on=lane).group_by(lane).agg(
        pl.col("_day").filter(pl.col("_service_shift") == 0).max().alias("last_old"),
        pl.col("_day").filter(pl.col("_service_shift") > 0).min().alias("first_new"),
        pl.col("_service_shift").filter(pl.col("_service_shift") > 0).n_unique().alias("services"),
        pl.col("vessel_imo").filter(pl.col("_service_shift") > 0).n_unique().alias("new_vessels"),
    )
    assert (per_lane["services"] == 1).all()  # one new service per lane, kept from its first day on
    assert per_lane.filter(pl.col("last_old").is_not_null() & (pl.col("last_old") >= pl.col("first_new"))).height == 0
    assert (per_lane["new_vessels"] >= 1).all()


REALISTIC_DIGEST = """
import hashlib
from targeting.sim.world import WorldConfig, simulate_world
w = simulate_world(WorldConfig(seed=4, days=14, containers_per_day=60, legit_churn="realistic", scenario="new-hub", change_day=7))
print(hashlib.sha256("".join(getattr(w, n).write_ndjson() for n in ("manifests", "events", "outcomes", "alerts", "oracle")).encode()).hexdigest())
"""


def test_a_realistic_scenario_world_is_the_same_in_processes_with_different_string_hashing() -> None:
    import os
    import subprocess
    import sys

    def digest(hash_seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        return subprocess.run([sys.executable, "-c", REALISTIC_DIGEST], env=env, capture_output=True, text=True, timeout=300, check=True).stdout.strip()

    first, second = digest("1"), digest("2")
    assert len(first) == 64 and first == second


def test_front_companies_are_numbered_like_any_new_trader_in_a_realistic_world(realistic) -> None:
    _, _, tables = realistic
    illicit = tables.manifests.join(tables.oracle.filter(pl.col("illicit") & pl.col("method").str.ends_with("-front")), on="manifest_id", how="semi")
    assert illicit.height > 0
    for column in ("shipper_id", "consignee_id"):
        assert not tables.manifests[column].str.contains(r"^[SC][A-Z]{2}F[CS][0-9]").any()
    assert illicit["consignee_id"].str.contains(CANONICAL_ID).mean() > 0.8  # the rest respelt by another filer
