"""The national world of the scale benchmark: tiles of one simulated year keep ids unique and entities recurring as documented."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from stdnum import iso6346

from bench.national_world import Tile, build_national_world, history_of, scan_tiles, tile_order, tiles_for

YEARS, REPLICAS = 2, 3


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("national")
    described = build_national_world(root, years=YEARS, replicas=REPLICAS, containers_per_day=40, days=20, log=lambda _: None)
    return root, described


def _manifests(root, tile: Tile) -> pl.DataFrame:
    return scan_tiles(root, "manifests", [tile]).collect()


def test_every_manifest_id_and_bill_of_lading_is_unique_across_the_world(world):
    root, described = world
    manifests = history_of(root, tile_order(YEARS, REPLICAS)).manifests.collect()
    assert manifests.height == described["manifests"] == described["base_manifests"] * YEARS * REPLICAS
    assert manifests["manifest_id"].n_unique() == manifests.height
    assert manifests["master_bl"].n_unique() == manifests.select(pl.col("master_bl").cast(pl.String)).unique().height


def test_replicas_never_share_a_container_and_their_numbers_keep_valid_check_digits(world):
    root, _ = world
    sets = [set(_manifests(root, Tile(0, r))["container_number"]) for r in range(REPLICAS)]
    for i in range(REPLICAS):
        for j in range(i + 1, REPLICAS):
            assert sets[i].isdisjoint(sets[j])
    assert all(iso6346.is_valid(n) for n in sets[1] | sets[2])


def test_containers_recur_across_years_and_a_tile_is_its_base_shifted_by_whole_years(world):
    root, _ = world
    now, year_before = _manifests(root, Tile(0, 1)), _manifests(root, Tile(1, 1))
    assert set(now["container_number"]) == set(year_before["container_number"])
    assert (now["eta"] - year_before["eta"]).unique().to_list() == [timedelta(days=365)]
    events_now, events_before = (scan_tiles(root, "events", [t]).collect() for t in (Tile(0, 1), Tile(1, 1)))
    assert set(events_now["container_number"]) <= set(now["container_number"])
    assert events_now["event_time"].max() - events_before["event_time"].max() == timedelta(days=365)


def test_some_parties_trade_in_every_replica_and_year_others_are_other_traders(world):
    root, _ = world
    base = set(_manifests(root, Tile(0, 0))["consignee_id"].drop_nulls())
    for tile in (Tile(0, 1), Tile(1, 0), Tile(1, 2)):
        ids = set(_manifests(root, tile)["consignee_id"].drop_nulls())
        assert 0 < len(ids & base) < len(ids), tile
    renamed = _manifests(root, Tile(0, 1)).filter(pl.col("consignee_id").str.ends_with(".1"))
    assert renamed.height > 0 and renamed["consignee_name"].str.ends_with(" R1").all()


def _party_ids(manifests: pl.DataFrame) -> set[str]:
    return set(pl.concat([manifests[f"{r}_id"] for r in ("shipper", "consignee", "notify")]).drop_nulls())


def test_alerts_follow_their_container_and_party_into_the_replica(world):
    root, _ = world
    tile = Tile(0, 2)
    base_manifests, manifests = _manifests(root, Tile(0, 0)), _manifests(root, tile)
    base_alerts = scan_tiles(root, "alerts", [Tile(0, 0)]).collect()
    alerts = scan_tiles(root, "alerts", [tile]).collect()
    paired = base_alerts.join(alerts.with_columns(pl.col("alert_id").str.replace(tile.suffix, "", literal=True)), on="alert_id", suffix="_tile")
    trading = paired.filter((pl.col("kind") == "PARTY") & pl.col("value").is_in(list(_party_ids(base_manifests))))
    assert trading.height > 0 and trading["value_tile"].is_in(list(_party_ids(manifests))).all()
    containers = paired.filter((pl.col("kind") == "CONTAINER") & pl.col("value").is_in(base_manifests["container_number"].to_list()))
    assert containers["value_tile"].is_in(manifests["container_number"].to_list()).all()
    assert not alerts["kind"].is_in(["VESSEL", "HS_CODE", "ROUTE"]).any()
    assert alerts["alert_id"].n_unique() == alerts.height


def test_a_world_of_n_rows_is_the_most_recent_whole_tiles():
    assert tiles_for(1, 100, 4) == [Tile(0, 0)]
    assert tiles_for(500, 100, 4) == [Tile(0, 0), Tile(0, 1), Tile(0, 2), Tile(0, 3), Tile(1, 0)]
    assert len(tiles_for(2000, 100, 4)) == 20
