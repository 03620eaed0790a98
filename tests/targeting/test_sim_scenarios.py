"""Drift scenarios of the simulated world: a known organisation really changes its modus operandi from the change day.

Each scenario world is small (55 days, 130 containers a day, a high illicit
rate so that the changed organisation ships often) and checked against the
organisation's own shipments: the new origin, hub, method, code or
concealment appears from the change day on and never before, and the truth's
``pattern`` column names exactly those shipments.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from targeting.cli import _register, app
from targeting.sim.scenarios import MOVED_ORIGIN_COVERS, NEW_CONCEALMENT, NEW_HUBS, NEW_PRECURSOR_CODES, SCENARIOS, DriftScenario
from targeting.sim.trafficking import METHODS
from targeting.sim.world import TARE_KG, World, WorldConfig, simulate_world

CHANGE_DAY = 40
BASE = dict(seed=5, start=date(2025, 1, 1), days=55, containers_per_day=130, illicit_rate=0.045, organisations=12)
_WORLDS: dict[str, tuple] = {}


def scenario_world(name: str, churn: str = "static"):
    """(config, tables, changed organisation id) of the scenario world ``name``, built once per test session."""
    if (name, churn) not in _WORLDS:
        config = WorldConfig(**BASE, scenario=name, change_day=CHANGE_DAY, legit_churn=churn)
        tables = simulate_world(config)
        _WORLDS[name, churn] = (config, tables, tables.summary["scenario"]["organisation"])
    return _WORLDS[name, churn]


def illicit_rows(config: WorldConfig, tables) -> pl.DataFrame:
    """Illicit oracle rows with their manifest columns and their 0-based arrival day."""
    manifests = tables.manifests.select(
        "manifest_id", "hs_code", "transshipment_ports", "consignee_id", "container_type", "gross_mass_kg", "verified_gross_mass_kg"
    )
    return (
        tables.oracle.filter(pl.col("illicit"))
        .join(manifests, on="manifest_id", how="left")
        .with_columns((pl.col("eta").dt.date() - pl.lit(config.start)).dt.total_days().alias("day"))
    )


def lineage(rows: pl.DataFrame, org_id: str) -> pl.DataFrame:
    """Rows of the organisation and of its successors (a dissolved organisation's successor is ``<id>-<day>``)."""
    return rows.filter((pl.col("org_id") == org_id) | pl.col("org_id").str.starts_with(f"{org_id}-"))


def _moved(rows: pl.DataFrame) -> pl.Series:
    pairs = [f"{c}|{h}" for c, h in MOVED_ORIGIN_COVERS]
    return (pl.col("port_of_loading").str.slice(0, 2) + "|" + pl.col("hs_code").str.slice(0, 6)).is_in(pairs)


# what is true of the changed organisation's shipments after the change, and of none of its shipments before it
CHANGED = {
    "moved-origin-cover": _moved,
    "new-hub": lambda rows: pl.col("transshipment_ports").list.len().eq(1) & pl.col("transshipment_ports").list.first().is_in(list(NEW_HUBS)),
    "fronts-to-rip-on": lambda rows: (pl.col("method") == "cocaine-rip-on") & pl.col("consignee_id").is_in(rows["clean_consignee"].implode()),
    "new-precursor-code": lambda rows: pl.col("hs_code").str.slice(0, 6).is_in(list(NEW_PRECURSOR_CODES)),
    "new-concealment": lambda rows: pl.col("concealment") == NEW_CONCEALMENT,
}


def test_the_changed_organisation_is_the_first_following_the_scenarios_method() -> None:
    for name in ("new-hub", "new-precursor-code"):
        world = World(WorldConfig(**{**BASE, "days": 3}, scenario=name, change_day=2))
        first = next(o for o in world.orgs if o.method.name == SCENARIOS[name].source_method)
        assert world.scenario_org_id == first.org_id


def test_five_named_scenarios_with_a_change_day_and_a_description() -> None:
    assert set(SCENARIOS) == {"moved-origin-cover", "new-hub", "fronts-to-rip-on", "new-precursor-code", "new-concealment"}
    for name, scenario in SCENARIOS.items():
        assert isinstance(scenario, DriftScenario) and scenario.name == name and scenario.description
        assert scenario.change_day >= 1 and scenario.new_pattern == f"{name}:new"
    assert set(CHANGED) == set(SCENARIOS)


def test_the_new_options_are_new_to_every_trafficking_method() -> None:
    hubs = {h for m in METHODS for route in m.routes for h in route}
    assert not hubs & set(NEW_HUBS)
    assert not {c for c, _ in MOVED_ORIGIN_COVERS} & {c for m in METHODS if m.category == "COCAINE" for c, _ in m.origins}
    assert not {h for _, h in MOVED_ORIGIN_COVERS} & {h for m in METHODS if m.category == "COCAINE" for h in m.cover_hs}
    codes = {h for m in METHODS for h in (*m.declared_hs, *m.cover_hs)}
    known = set(pl.read_csv(Path(__file__).resolve().parents[2] / "features/data/precursors.csv", schema_overrides={"hs_code": pl.String, "misdeclared_under": pl.String})
                .select(pl.concat_list("hs_code", pl.col("misdeclared_under").str.split(";")).explode()).to_series().drop_nulls())
    assert not (codes | known) & set(NEW_PRECURSOR_CODES)


SCENARIO_WORLDS = [(name, "static") for name in SCENARIOS] + [("fronts-to-rip-on", "realistic"), ("moved-origin-cover", "realistic")]


@pytest.mark.parametrize(("name", "churn"), SCENARIO_WORLDS)
def test_the_organisation_changes_from_the_change_day_and_not_before(name: str, churn: str) -> None:
    config, tables, org_id = scenario_world(name, churn)
    clean = tables.manifests.join(tables.oracle.filter(~pl.col("illicit")), on="manifest_id", how="semi")  # legitimate traders' shipments
    known = pl.DataFrame({"clean_consignee": clean["consignee_id"].unique()})
    rows = lineage(illicit_rows(config, tables), org_id).with_columns(CHANGED[name](known).alias("changed"))
    before, after = rows.filter(pl.col("day") < CHANGE_DAY), rows.filter(pl.col("day") >= CHANGE_DAY)
    assert before.height >= 2 and after.height >= 2, (before.height, after.height)
    assert not before["changed"].any(), before.filter(pl.col("changed"))
    assert after["changed"].all(), after.filter(~pl.col("changed"))


@pytest.mark.parametrize(("name", "churn"), SCENARIO_WORLDS)
def test_pattern_names_exactly_the_changed_organisations_shipments_after_the_change(name: str, churn: str) -> None:
    config, tables, org_id = scenario_world(name, churn)
    rows = illicit_rows(config, tables)
    changed_org = (pl.col("org_id") == org_id) | pl.col("org_id").str.starts_with(f"{org_id}-")
    expected = rows.filter(changed_org & (pl.col("day") >= CHANGE_DAY))["manifest_id"].sort()
    assert rows.filter(pl.col("pattern") == f"{name}:new")["manifest_id"].sort().to_list() == expected.to_list()
    others = rows.filter(pl.col("pattern") != f"{name}:new")
    assert (others["pattern"] == others["method"]).all()
    assert tables.oracle.filter(~pl.col("illicit"))["pattern"].null_count() == tables.oracle.filter(~pl.col("illicit")).height
    assert tables.summary["scenario"]["new_pattern_shipments"] == expected.len()
    assert tables.summary["scenario"]["change_day"] == CHANGE_DAY


def test_a_new_concealment_leaves_no_verified_gross_mass_excess() -> None:
    config, tables, org_id = scenario_world("new-concealment")
    rows = illicit_rows(config, tables).with_columns(
        (pl.col("verified_gross_mass_kg") - pl.col("gross_mass_kg") - pl.col("container_type").replace_strict(TARE_KG)).alias("excess")
    )
    new = rows.filter(pl.col("pattern") == "new-concealment:new")
    fronts = rows.filter(pl.col("method").str.ends_with("-front") & (pl.col("pattern") == pl.col("method")))
    tell = pl.col("excess") > 0.016 * pl.col("gross_mass_kg")  # 4 standard deviations of the weighing noise (0.4 % of the mass)
    assert fronts.filter(tell).height > 0  # the known flows' physical tell exists ...
    assert new.height > 0 and new.filter(tell).height == 0  # ... and the new concealment does not leave it


def test_a_world_without_a_scenario_labels_every_illicit_line_with_its_method() -> None:
    config = WorldConfig(**{**BASE, "days": 20})
    tables = simulate_world(config)
    illicit = tables.oracle.filter(pl.col("illicit"))
    assert illicit.height > 0 and (illicit["pattern"] == illicit["method"]).all()
    assert tables.summary["scenario"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenario": "moved-origin"}, "unknown scenario 'moved-origin': use one of moved-origin-cover, new-hub, fronts-to-rip-on, new-precursor-code, new-concealment"),
        ({"legit_churn": "messy"}, "unknown legit_churn 'messy': use one of static, realistic"),
        ({"scenario": "new-hub", "change_day": 55}, "change_day 55 of scenario 'new-hub' must be in [1, days=55)"),
        ({"scenario": "new-hub"}, "change_day 90 of scenario 'new-hub' must be in [1, days=55)"),
        ({"change_day": 10}, "change_day is set but no scenario is: name a scenario or leave change_day unset"),
    ],
)
def test_a_bad_scenario_configuration_is_refused_with_the_valid_choices(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as error:
        WorldConfig(**{**BASE, **kwargs})
    assert str(error.value) == message


def test_simulate_command_reports_the_scenario_its_change_day_and_new_pattern_count(tmp_path: Path) -> None:
    _register()
    args = ["simulate", "--out", str(tmp_path / "w"), "--days", "30", "--containers-per-day", "60", "--illicit-rate", "0.03",
            "--scenario", "new-hub", "--change-day", "12", "--legit-churn", "static", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    oracle = pl.read_parquet(tmp_path / "w" / "oracle.parquet")
    assert summary["scenario"]["name"] == "new-hub" and summary["scenario"]["change_day"] == 12
    assert summary["scenario"]["change_date"] == "2025-01-13"
    assert summary["scenario"]["new_pattern_shipments"] == oracle.filter(pl.col("pattern") == "new-hub:new").height
    refused = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--days", "5", "--scenario", "nope"])
    assert refused.exit_code == 2 and "unknown scenario 'nope': use one of moved-origin-cover" in refused.stderr
    assert not (tmp_path / "x").exists()
