"""Specification of the backtest's EXPORT and TRANSSHIPMENT replay (targeting.evaluation.backtest.prearrival, run)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from features.candidates import Direction
from targeting import kernel
from targeting.evaluation.backtest import BacktestConfig, direction_table, parse_strategy, run_backtest, training_frame
from targeting.evaluation.backtest.prearrival import PopulationInspector, hub_candidates
from targeting.evaluation.backtest.sampling import capacity_for
from targeting.lists import ListRequest
from targeting.policy import PolicyConfig, derive_seed
from targeting.sim.export_control import export_candidates, export_rule_profiles
from targeting.sim.world import World

UTC = timezone.utc
SMALL = BacktestConfig(
    days=21,
    containers_per_day=150,
    warmup_days=10,
    capacity_share=0.05,
    illicit_rate=0.02,
    unlabelled_sample=1.0,
    n_estimators=15,
    num_leaves=7,
)


@pytest.fixture(scope="module")
def small():
    """One seed, rules and model+20, 21 days of ~150 containers: IMPORT, TRANSSHIPMENT and EXPORT lists."""
    return run_backtest(SMALL, "rules,model+20", seeds=(7,))


def _kernel_selection(rows: pl.DataFrame, direction: Direction, rules, alerts: pl.DataFrame, day: int) -> dict[str, set[str]]:
    """What the kernel selects per port for these candidates (rules strategy, no model: every slot the rules leave drawn at random)."""
    from features.intel import match_alerts

    out = {}
    list_date = SMALL.start + timedelta(days=day)
    for port in sorted(set(rows.get_column("port").to_list())):
        mine = rows.filter(pl.col("port") == port).select(*[c for c in rows.columns if c not in ("port", "direction")]).sort("manifest_id")
        capacity = capacity_for(mine.height, SMALL.capacity_share)
        request = ListRequest(
            port=port, list_date=list_date, capacity=capacity, exploration_share=0.0, nii_capacity=0, physical_capacity=capacity,
            seed=derive_seed(7, "rules", f"{direction.value}:{port}", day), direction=direction,
        )  # fmt: skip
        hits = match_alerts(mine.lazy(), alerts.lazy()).collect()
        prepared = kernel.Prepared(mine, None, None, hits)
        chosen = kernel.selection(prepared, kernel.rule_hits(rules, prepared, request), request, PolicyConfig(exploration_share=0.0, max_rule_share=1.0))
        out[port] = set(chosen.manifest_ids)
    return out


@pytest.mark.parametrize("direction", [Direction.EXPORT, Direction.TRANSSHIPMENT])
def test_export_and_transshipment_selections_are_the_kernels_for_the_same_inputs(direction: Direction) -> None:
    world = World(SMALL.world_config(7))
    batch = world.day(3)
    if direction is Direction.EXPORT:
        cands, rules = export_candidates(batch.manifests, world.config.export_ports), export_rule_profiles()
    else:
        cands, rules = hub_candidates(batch.manifests, SMALL.hub_ports), None
    unit = PopulationInspector(direction, parse_strategy("rules"), SMALL, 7, **({"rules": rules} if rules else {}))
    alerts = world.alerts_frame()
    decision = unit.decide(3, cands, alerts)
    assert cands.height > 0 and decision.height > 0
    assert set(decision.get_column("direction").to_list()) == {direction.value}
    expected = _kernel_selection(cands, direction, unit.rules, alerts, 3)
    got = {p: set(g.get_column("manifest_id").to_list()) for (p,), g in decision.partition_by("port", as_dict=True).items()}
    assert got == expected


def test_every_direction_is_replayed_and_reported(small) -> None:
    for run in small.runs:
        assert set(run.evaluation.get_column("direction").unique().to_list()) == {"IMPORT", "TRANSSHIPMENT", "EXPORT"}
        assert set(run.decisions.get_column("direction").unique().to_list()) == {"IMPORT", "TRANSSHIPMENT", "EXPORT"}
    table = direction_table(small.runs, SMALL)
    assert table.select("direction", "strategy").rows() == [(d, s) for d in ("IMPORT", "TRANSSHIPMENT", "EXPORT") for s in ("rules", "model+20")]
    assert table.filter(pl.col("inspections") > 0).height == 6


def test_outcomes_are_revealed_for_exactly_the_selected_containers_in_every_direction(small) -> None:
    for run in small.runs:
        listed = set(run.decisions.select("manifest_id", "port").rows())
        assert set(run.outcomes.select("manifest_id", "port").rows()) == listed
        assert set(run.evaluation.filter(pl.col("selected")).select("manifest_id", "port").rows()) == listed


def test_a_container_seized_at_export_or_at_a_hub_is_never_an_import_candidate_afterwards(small) -> None:
    stopped_somewhere = 0
    for run in small.runs:
        early = run.outcomes.filter((pl.col("result") == "SEIZURE") & pl.col("direction").is_in(["EXPORT", "TRANSSHIPMENT"]))
        stopped = set(early.get_column("manifest_id").to_list())
        stopped_somewhere += len(stopped)
        later = run.evaluation.filter(pl.col("direction") == "IMPORT").get_column("manifest_id").to_list()
        assert stopped.isdisjoint(later)
        hubs = run.evaluation.filter(pl.col("direction") == "TRANSSHIPMENT").get_column("manifest_id").to_list()
        assert set(early.filter(pl.col("direction") == "EXPORT").get_column("manifest_id").to_list()).isdisjoint(hubs)
    assert stopped_somewhere > 0, "the small world should see seizures before arrival"


def test_training_labels_in_every_direction_come_only_from_the_units_own_exams_at_that_port(small) -> None:
    run = small.run("model+20", 7)
    end = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=SMALL.days + 5)
    rows = run.cached_rows
    assert "port" in rows.columns
    directions = rows.join(run.evaluation.select("manifest_id", "port", "direction"), on=["manifest_id", "port"], how="left")
    assert set(directions.get_column("direction").to_list()) == {"IMPORT", "TRANSSHIPMENT", "EXPORT"}  # trained on every served population
    frame = training_frame(rows, run.outcomes, as_of=end, unlabelled_share=SMALL.unlabelled_sample)
    assert frame.height == rows.height  # every outcome is recorded before `end`: nothing pending, nothing dropped
    keyed = frame.with_columns(rows.get_column("port"))
    inspected = set(run.outcomes.select("manifest_id", "port").rows())
    assert set(keyed.filter(pl.col("inspected")).select("manifest_id", "port").rows()) == inspected & set(rows.select("manifest_id", "port").rows())
    truth = run.evaluation.select("manifest_id", "port", "illicit")
    hidden = keyed.join(truth, on=["manifest_id", "port"]).filter(pl.col("illicit") & ~pl.col("inspected"))
    assert hidden.height > 0, "illicit containers stay uninspected in the small world"
    assert hidden.get_column("label").to_list() == [0] * hidden.height
    seized = set(run.outcomes.filter(pl.col("result") == "SEIZURE").select("manifest_id", "port").rows())
    assert set(keyed.filter(pl.col("label") == 1).select("manifest_id", "port").rows()) == seized & set(rows.select("manifest_id", "port").rows())


def test_outputs_and_mlflow_carry_the_figures_of_every_direction(small, tmp_path) -> None:
    from models.tracking import configure
    from targeting.evaluation.backtest import log_to_mlflow, write_outputs

    paths = write_outputs(small, tmp_path / "out")
    table = pl.read_csv(paths["directions_csv"])
    assert table.select("direction", "strategy").rows() == direction_table(small.runs, SMALL).select("direction", "strategy").rows()
    assert "| EXPORT | model+20 |" in paths["summary_md"].read_text()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = configure(uri).get_run(log_to_mlflow(small, uri, paths))
    expected = table.filter((pl.col("direction") == "EXPORT") & (pl.col("strategy") == "model+20")).get_column("norm_precision")[0]
    assert parent.data.metrics["model-20/export/norm_precision"] == pytest.approx(expected)
    assert {"model-20/transshipment/recall", "rules/import/precision"} <= set(parent.data.metrics)
