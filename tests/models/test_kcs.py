"""Specification of the public customs benchmark (targeting.evaluation.kcs and ``targeting benchmark kcs``), end to end on slices of the real files.

The slices: the first 3,000 training rows (2020-01-01..21), the first 1,000
validation rows (early stopping) and the next 1,000 validation rows (test).
MLflow runs go to a temporary SQLite store.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import polars as pl
import pytest
from typer.testing import CliRunner

from targeting.evaluation.kcs_features import KcsInputError
from targeting.evaluation.kcs import EXPERIMENT, PAPER_REFERENCE, REQUIRED_METRICS, KcsBenchmarkConfig, benchmark_document, file_sha256, load_inputs, run_kcs_benchmark
from targeting.cli import _register, app

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "customs-declaration-datasets-kcs"
TRAIN, VALID = DATA / "df_syn_train_eng.csv", DATA / "df_syn_valid_eng.csv"

pytestmark = pytest.mark.skipif(not (TRAIN.is_file() and VALID.is_file()), reason="the public KCS files are not present")
_register()


@pytest.fixture(scope="module")
def slices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kcs-slices")
    valid = pl.read_csv(VALID, n_rows=2000, infer_schema=False)
    parts = {
        "train": pl.read_csv(TRAIN, n_rows=3000, infer_schema=False),
        "valid": valid.head(1000),
        "test": valid.slice(1000, 1000),
    }
    paths = {}
    for role, part in parts.items():
        paths[role] = root / f"{role}.csv"
        part.write_csv(paths[role])
    return paths


@pytest.fixture(scope="module")
def result(slices: dict[str, Path]):  # noqa: ANN201 - targeting.evaluation.kcs.KcsBenchmarkResult
    return run_kcs_benchmark(slices["train"], slices["valid"], slices["test"])


def test_metrics_document_has_every_required_key(result) -> None:  # noqa: ANN001
    doc = benchmark_document(result, run_id="r1")
    assert set(REQUIRED_METRICS) <= set(doc["test"])
    assert all(isinstance(doc["test"][k], float) for k in REQUIRED_METRICS)
    assert {"precision@1", "precision@2", "precision@5", "precision@10", "recall@10", "lift@5", "roc_auc", "pr_auc", "base_rate"} <= set(REQUIRED_METRICS)
    assert doc["test"]["n"] == 1000.0
    assert doc["test"]["lift@5"] == pytest.approx(doc["test"]["precision@5"] / doc["test"]["base_rate"])
    assert doc["paper"] == PAPER_REFERENCE and doc["paper"]["lightgbm"] == {"precision@5": 0.762, "precision@10": 0.641}
    assert set(doc["files"]) == {"train", "valid", "test"}
    assert doc["model"]["best_iteration"] == result.best_iteration > 0
    assert json.loads(json.dumps(doc)) == doc  # plain JSON


def test_files_are_identified_by_their_sha256(result, slices: dict[str, Path]) -> None:  # noqa: ANN001
    for role, path in slices.items():
        assert result.inputs[role].sha256 == file_sha256(path)
    assert result.inputs["train"].rows == 3000


def test_the_model_beats_the_base_rate_on_the_test_slice(result) -> None:  # noqa: ANN001
    assert result.test_metrics["roc_auc"] > 0.6  # three weeks of history only; the full files reach ~0.98
    assert result.test_metrics["precision@5"] > 2 * result.test_metrics["base_rate"]


def test_training_is_deterministic(result, slices: dict[str, Path]) -> None:  # noqa: ANN001
    again = run_kcs_benchmark(slices["train"], slices["valid"], slices["test"])
    assert again.model.model_sha256() == result.model.model_sha256()
    assert again.test_metrics == result.test_metrics


def test_test_labels_never_reach_the_scores(result, slices: dict[str, Path], tmp_path: Path) -> None:  # noqa: ANN001
    flipped = tmp_path / "test-flipped.csv"
    frame = pl.read_csv(slices["test"], infer_schema=False)
    frame.with_columns(pl.when(pl.col("Fraud") == "1").then(pl.lit("0")).otherwise(pl.lit("1")).alias("Fraud")).write_csv(flipped)
    again = run_kcs_benchmark(slices["train"], slices["valid"], flipped)
    assert (again.test_scores == result.test_scores).all()


def test_without_a_validation_file_the_training_tail_stops_early(slices: dict[str, Path]) -> None:
    tail = run_kcs_benchmark(slices["train"], None, slices["test"], config=KcsBenchmarkConfig(tail_days=5, refit=False))
    assert tail.early_stopping == "training tail from 2020-01-17 (5 days)"
    assert tail.counts["fit_rows"] + tail.counts["stopping_rows"] == 3000


def test_files_sharing_declarations_are_rejected(slices: dict[str, Path]) -> None:
    with pytest.raises(KcsInputError, match=r"the valid and test files share 1000 declaration ID\(s\)"):
        load_inputs(slices["train"], slices["valid"], slices["valid"])
    with pytest.raises(KcsInputError, match="give either a test file or a split date"):
        load_inputs(slices["train"], slices["valid"], None)


# ----------------------------------------------------------------------------- the command
def test_cli_writes_json_and_one_mlflow_run(slices: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow.lightgbm

    from models.tracking import configure

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    (tmp_path / "mlruns").mkdir()
    out = tmp_path / "out" / "kcs.json"
    args = ["benchmark", "kcs", "--train", str(slices["train"]), "--valid", str(slices["valid"]), "--test", str(slices["test"])]
    result = CliRunner().invoke(app, [*args, "--json", str(out), "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert set(REQUIRED_METRICS) <= set(doc["test"])
    assert "precision" in result.output and "0.762" in result.output  # paper figures printed beside ours

    client = configure(uri)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert [r.info.run_id for r in runs] == [doc["mlflow_run_id"]]
    run = runs[0]
    assert run.data.metrics["test/precision_at_5"] == pytest.approx(doc["test"]["precision@5"])
    assert {f"test/{k.replace('@', '_at_')}" for k in REQUIRED_METRICS} <= set(run.data.metrics)
    for role, path in slices.items():
        assert run.data.tags[f"data.{role}.sha256"] == file_sha256(path)
    assert {i.dataset.digest for i in run.inputs.dataset_inputs} == {file_sha256(p)[:32] for p in slices.values()}
    assert run.data.params["lgbm.deterministic"] == "True" and run.data.params["lgbm.best_iteration"] == str(doc["model"]["best_iteration"])
    booster = mlflow.lightgbm.load_model(f"runs:/{run.info.run_id}/model")
    assert isinstance(booster, lgb.Booster) and booster.num_trees() == doc["model"]["best_iteration"]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"benchmark.json", "kcs_stats.json", "booster.txt"}


def test_cli_rejects_a_file_missing_columns_with_one_error_line(slices: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    pl.read_csv(slices["test"], infer_schema=False).drop("Fraud").write_csv(broken)
    args = ["benchmark", "kcs", "--train", str(slices["train"]), "--valid", str(slices["valid"]), "--test", str(broken)]
    result = CliRunner().invoke(app, [*args, "--json", str(tmp_path / "x.json"), "--tracking-uri", f"sqlite:///{tmp_path / 'db.sqlite'}"])
    assert result.exit_code == 2
    assert f"error: {broken}: missing required KCS columns: ['Fraud']" in result.output.replace("\n", "")
    assert not (tmp_path / "x.json").exists()


def test_cli_needs_a_test_set(slices: dict[str, Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["benchmark", "kcs", "--train", str(slices["train"]), "--json", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    assert "error: give --test FILE, or --valid FILE with --split-date" in result.output
