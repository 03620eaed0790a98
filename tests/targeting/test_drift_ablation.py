"""Specification of the drift feature ablation (targeting.evaluation.drift.ablation, bench/bench_drift_ablation.py)."""

from __future__ import annotations

import polars as pl
import pytest

from targeting.evaluation.drift import DriftConfig, DriftError, resolve_features, run_drift
from targeting.evaluation.drift.ablation import ablation_markdown, run_ablation, write_ablation

TINY = DriftConfig(containers_per_day=300, change_day=45, window_days=8, warmup_days=10, train_days=25, legit_churn="static", replay=False, n_estimators=20, integrity_share=0.0)


def test_trader_change_names_the_four_trader_change_counts():
    assert set(resolve_features("trader-change")) == {"consignee_origin_n_prior", "consignee_loading_port_n_prior", "consignee_family_n_prior", "shipper_family_n_prior"}
    assert set(resolve_features("baseline,trader-change")) - set(resolve_features("baseline")) == set(resolve_features("trader-change"))


def test_ablation_scores_each_spec_as_the_frozen_benchmark_would_on_the_same_world(tmp_path):
    specs = ["default", "manifest,routing"]
    records, timings = run_ablation(TINY, specs, ["moved-origin-cover"], [5], dump=tmp_path / "dump")
    alone = run_drift(TINY, ["moved-origin-cover"], [5]).records
    keys = ["scenario", "seed", "mode", "phase", "pattern", "metric"]
    shared = records.filter(pl.col("features") == "default").drop("features").sort(keys)
    assert shared.height > 0
    assert shared.select(keys).equals(alone.select(keys).sort(keys).filter(pl.col("metric") != "days_to_first"))
    merged = shared.join(alone, on=keys, suffix="_alone")
    assert (merged.get_column("value") - merged.get_column("value_alone")).abs().max() < 1e-9  # features built once give the same figures
    subset = records.filter(pl.col("features") == "manifest,routing")
    assert subset.height == shared.height and not subset.get_column("value").equals(shared.get_column("value"))
    assert list(timings) == ["moved-origin-cover seed 5"]
    window = pl.read_parquet(tmp_path / "dump" / "moved-origin-cover_5_after_window.parquet")
    assert {"score_0", "score_1", "port_of_loading", "seal_changes", "illicit", "pattern"} <= set(window.columns)
    paths = write_ablation(records, specs, ["moved-origin-cover"], tmp_path / "out")
    table = paths["table"].read_text()
    assert "| moved-origin-cover | `default` | 1 |" in table and "| moved-origin-cover | `manifest,routing` | 1 |" in table
    assert table == ablation_markdown(pl.read_csv(paths["records"]), specs, ["moved-origin-cover"])


def test_ablation_refuses_an_unknown_spec_before_simulating():
    with pytest.raises(DriftError, match="unknown feature"):
        run_ablation(TINY, ["baseline", "nope"], ["ordinary"], [5])


def test_sliced_lists_give_the_exploration_share_to_the_most_unusual_rows_the_score_left():
    from targeting.evaluation.drift.metrics import daily_top, sliced_top

    n = 400  # two days of 200: a 5 % list is 10 rows a day, a 20 % slice 2 of them
    frame = pl.DataFrame(
        {
            "day": [0] * 200 + [1] * 200,
            "port": ["NLRTM"] * n,
            "direction": ["IMPORT"] * n,
            "manifest_id": [f"M{i:03d}" for i in range(n)],
            "score": [float(i % 200) for i in range(n)],  # the day's last rows score highest
            "unusual": [1.0 if i % 200 in (0, 1, 2, 199) else 0.0 for i in range(n)],
        }
    )
    lists = sliced_top(frame, 5.0, explore="unusual", share=0.2)
    for day in (0, 1):
        chosen = lists.filter((pl.col("day") == day) & pl.col("selected")).get_column("manifest_id").to_list()
        base = 200 * day
        by_score = [f"M{base + i:03d}" for i in range(192, 200)]
        assert len(chosen) == 10 and set(by_score) <= set(chosen)
        assert set(chosen) - set(by_score) == {f"M{base:03d}", f"M{base + 1:03d}"}  # unusual and not taken, ties by manifest id
    assert lists.get_column("selected").equals(sliced_top(frame, 5.0, explore="unusual", share=0.2, per_day=True).get_column("selected"))
    assert sliced_top(frame, 5.0, explore="unusual", share=0.0).get_column("selected").equals(daily_top(frame, 5.0).get_column("selected"))
    pooled = sliced_top(frame, 5.0, explore="unusual", share=0.2, per_day=False)
    assert pooled.get_column("selected").sum() == 20  # one list of 400 rows: 16 by score, 4 unusual


def test_slice_slots_that_no_eligible_row_fills_go_back_to_the_score():
    from targeting.evaluation.drift.metrics import daily_top, sliced_top

    frame = pl.DataFrame(
        {
            "day": [0] * 200,
            "port": ["NLRTM"] * 200,
            "direction": ["IMPORT"] * 200,
            "manifest_id": [f"M{i:03d}" for i in range(200)],
            "score": [float(i) for i in range(200)],
            "unusual": [5.0 if i == 3 else None for i in range(200)],  # one eligible row; null: not unusual
        }
    )
    chosen = set(sliced_top(frame, 5.0, explore="unusual", share=0.3).filter("selected").get_column("manifest_id"))
    assert chosen == {"M003", *(f"M{i:03d}" for i in range(191, 200))}  # 3 slice slots: 1 filled, 2 back to the score
    nobody = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("unusual"))
    assert sliced_top(nobody, 5.0, explore="unusual", share=0.3).get_column("selected").equals(daily_top(frame, 5.0).get_column("selected"))


def test_frozen_lists_with_an_integrity_slice_match_the_slice_computed_on_the_dumped_windows(tmp_path):
    import dataclasses

    from bench.bench_drift_integrity import slice_as_frozen, targets_text, window_records

    sliced = run_drift(dataclasses.replace(TINY, integrity_share=0.2), ["moved-origin-cover"], [5]).records
    run_ablation(TINY, ["default"], ["moved-origin-cover"], [5], dump=tmp_path)
    dumped = window_records([tmp_path], 0, [0.2], rates=(1.0,))
    for phase in ("before", "after"):
        def value(frame, metric, pattern="all"):
            return frame.filter((pl.col("phase") == phase) & (pl.col("pattern") == pattern) & (pl.col("metric") == metric)).get_column("value").to_list()

        assert value(sliced, "norm_precision@1") == value(dumped, "pooled_norm_precision@1")
        assert value(sliced, "list_norm_precision") == value(dumped, "list_norm_precision@1")
        assert value(sliced, "list_recall") == value(dumped, "list_recall@1")
        assert value(slice_as_frozen(dumped, 0.2), "norm_precision@1") == value(sliced, "norm_precision@1")
    text = targets_text(dumped, 0.2, None)
    assert "Frozen model with a 20% integrity slice" in text and "| moved-origin-cover: new pattern R@1 after |" in text
    assert "| **moved-origin-cover:new** |" in text  # the per-pattern table
    with pytest.raises(DriftError, match="integrity_share"):
        dataclasses.replace(TINY, integrity_share=1.0)
