"""Specification of the data scientist's workflow (models.workflow): train and register, compare, promote.

Promotion re-evaluates the champion and the challenger on the challenger's
held-out period, refuses a worse challenger with the numbers, needs a reason
to force, records why, and moves the ``champion`` alias last.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from features.data.lake import Lake
from models.dataset import TimeSplit
from models.tracking import CHAMPION, MODEL_NAME, PRIMARY_METRIC, STATS_ARTIFACT, champion_version, configure, load_version
from models.training import TrainConfig
from models.workflow import arrival_range, compare_versions, default_split, lake_digest, promote, split_from_params, train_and_register

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_lake import fresh_store, ingest_world  # noqa: E402


@pytest.fixture(scope="module")
def store(tmp_path_factory, mlflow_template) -> str:  # noqa: ANN001
    return fresh_store(mlflow_template, tmp_path_factory.mktemp("workflow"))


@pytest.fixture(scope="module")
def registry(store: str, small_world, split, trained):  # noqa: ANN001, ANN201
    """Version 1: the production configuration; version 2: a deliberately worse model (no split can reach 10^6 rows per leaf)."""
    client = configure(store)
    good, v1 = train_and_register(small_world.lake, client, TrainConfig(split=split, num_threads=1), oracle=small_world.oracle)
    worse, v2 = train_and_register(
        small_world.lake, client, TrainConfig(split=split, num_threads=1, model={"min_child_samples": 1_000_000}), oracle=small_world.oracle
    )
    assert (v1.version, v2.version) == ("1", "2")
    return {"1": (good, v1), "2": (worse, v2)}


@pytest.fixture
def client(store: str, registry, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    return configure(store)


def champion_is(client, version: str | None) -> None:  # noqa: ANN001
    """Put the registry in a known state: ``champion`` on ``version`` (or no champion)."""
    if version is None:
        if champion_version(client) is not None:
            client.delete_registered_model_alias(MODEL_NAME, CHAMPION)
    else:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)


def version_tags(client, version: str) -> dict[str, str]:  # noqa: ANN001
    return dict(client.get_model_version(MODEL_NAME, version).tags)


def logged_metric(client, version: str) -> float:  # noqa: ANN001
    return client.get_run(client.get_model_version(MODEL_NAME, version).run_id).data.metrics[PRIMARY_METRIC]


def test_train_and_register_reproduces_the_training_run_exactly(registry, trained) -> None:  # noqa: ANN001
    good, v1 = registry["1"]
    assert v1.model_sha256 == trained.model.model_sha256() == good.model.model_sha256()
    assert good.counts == trained.counts


def test_the_deliberately_worse_model_is_worse_on_the_labelled_test_stream(registry) -> None:  # noqa: ANN001
    good, worse = registry["1"][0], registry["2"][0]
    assert worse.model.booster_.num_trees() == 1
    assert worse.evaluation.headline()[PRIMARY_METRIC] < good.evaluation.headline()[PRIMARY_METRIC]


def test_first_version_becomes_champion(client, small_world) -> None:  # noqa: ANN001
    champion_is(client, None)
    decision = promote(small_world.lake, client, "1")
    assert decision.promoted and decision.previous is None
    assert decision.message == "version 1 is the first champion"
    assert champion_version(client) == "1"
    assert version_tags(client, "1")["promotion_reason"] == "first champion"
    assert load_version(client).aliases == (CHAMPION,)


def test_promoting_the_champion_again_changes_nothing(client, small_world) -> None:  # noqa: ANN001
    champion_is(client, "1")
    decision = promote(small_world.lake, client, "1")
    assert not decision.promoted and decision.message == "version 1 is already the champion"
    assert champion_version(client) == "1"


def test_a_worse_challenger_is_refused_with_the_numbers(client, small_world, split) -> None:  # noqa: ANN001
    champion_is(client, "1")
    before = version_tags(client, "2")
    decision = promote(small_world.lake, client, "2")
    assert not decision.promoted
    assert champion_version(client) == "1"
    ours, theirs = decision.challenger_metric, decision.champion_metric
    assert ours < theirs
    assert decision.message == (
        f"refused: challenger is worse; {PRIMARY_METRIC} on {split.valid_end}..{split.test_end}: "
        f"challenger v2 {ours:.4f} vs champion v1 {theirs:.4f}"
    )
    assert version_tags(client, "2") == before


def test_promotion_and_comparison_reproduce_the_metrics_of_the_training_runs(client, small_world, registry) -> None:  # noqa: ANN001
    # both versions re-evaluated on the same period, each with its own statistics: the numbers are those of their training runs
    champion_is(client, "1")
    decision = promote(small_world.lake, client, "2")
    assert decision.challenger_metric == pytest.approx(logged_metric(client, "2"))
    assert decision.champion_metric == pytest.approx(logged_metric(client, "1"))
    table = compare_versions(small_world.lake, client, "2", "1", oracle=small_world.oracle)
    get = {(r["version"], r["stream"]): r for r in table.iter_rows(named=True)}
    for version, (result, _) in registry.items():
        for stream in ("labelled", "oracle"):
            expected = result.evaluation.reports[stream]["model"].metrics
            for name in ("pr_auc", "precision@1", "recall@5"):
                assert get[(version, stream)][name] == pytest.approx(expected[name], nan_ok=True), (version, stream, name)


def test_force_without_a_reason_is_an_error(client, small_world) -> None:  # noqa: ANN001
    champion_is(client, "1")
    for reason in (None, ""):
        with pytest.raises(ValueError, match="^--force needs --reason$"):
            promote(small_world.lake, client, "2", force=True, reason=reason)
    assert champion_version(client) == "1"


def test_force_with_a_reason_promotes_a_worse_challenger_and_records_the_reason(client, small_world) -> None:  # noqa: ANN001
    champion_is(client, "1")
    decision = promote(small_world.lake, client, "2", force=True, reason="roll-back drill INC-4711")
    assert decision.promoted and decision.previous == "1"
    assert decision.message.startswith(f"forced: {PRIMARY_METRIC} on ")
    assert champion_version(client) == "2"
    tags = version_tags(client, "2")
    assert tags["promotion_reason"] == "roll-back drill INC-4711" and tags["promotion_forced"] == "true"


def test_a_better_challenger_is_promoted_with_the_numbers_as_reason(client, small_world) -> None:  # noqa: ANN001
    champion_is(client, "2")
    decision = promote(small_world.lake, client, "1")
    assert decision.promoted and decision.previous == "2"
    assert re.fullmatch(rf"promoted: {PRIMARY_METRIC} on \S+: challenger v1 [0-9.]+ vs champion v2 [0-9.]+", decision.message)
    assert champion_version(client) == "1"
    tags = version_tags(client, "1")
    assert tags["promotion_reason"] == decision.message.removeprefix("promoted: ") and tags["promotion_forced"] == "false"


def test_the_alias_moves_last_so_a_failed_evaluation_leaves_the_old_champion_serving(client, small_world) -> None:  # noqa: ANN001
    champion_is(client, "2")
    serving = load_version(client).model_sha256
    before = version_tags(client, "1")
    version = client.get_model_version(MODEL_NAME, "1")
    run_artifacts = Path(urlparse(client.get_run(version.run_id).info.artifact_uri).path)  # <experiment>/<run>/artifacts
    model_id = version.source.removeprefix("models:/")
    stats = run_artifacts.parents[1] / "models" / model_id / "artifacts" / "extra_files" / STATS_ARTIFACT  # inside the model artefact
    original = stats.read_text()
    stats.write_text('{"format": "ccp-feature-stats/0"}')  # a damaged artifact: the challenger cannot be evaluated
    try:
        with pytest.raises(ValueError, match=r"^model version 1: its feature statistics do not match the sha256 recorded at registration$"):
            promote(small_world.lake, client, "1")
    finally:
        stats.write_text(original)
    assert champion_version(client) == "2"
    assert load_version(client).model_sha256 == serving
    assert version_tags(client, "1") == before


def test_compare_versions_gives_one_table_for_both_on_the_same_test_period(client, small_world, registry) -> None:  # noqa: ANN001
    table = compare_versions(small_world.lake, client, "2", "1", oracle=small_world.oracle)
    assert table.columns[:4] == ["version", "stream", "n", "positives"]
    for column in ("precision@0.5", "precision@10", "recall@1", "recall@5", "pr_auc", "roc_auc", "brier"):
        assert column in table.columns
    assert sorted(zip(table["version"], table["stream"])) == [
        (v, s) for v in ("1", "2") for s in ("labelled", "oracle", "random_slice")
    ]
    for stream in ("labelled", "random_slice", "oracle"):
        rows = table.filter(table["stream"] == stream)
        assert rows["n"].n_unique() == 1 and rows["positives"].n_unique() == 1, stream
    get = {(r["version"], r["stream"]): r for r in table.iter_rows(named=True)}
    for stream in ("labelled", "oracle"):
        assert get[("1", stream)]["n"] == registry["1"][0].evaluation.reports[stream]["model"].n
    assert get[("1", "oracle")]["pr_auc"] > get[("2", "oracle")]["pr_auc"]


def test_promotion_on_a_period_without_labels_is_refused_as_undefined(client, small_world, split, tmp_path: Path) -> None:  # noqa: ANN001
    # a lake holding the manifests and events but no inspection outcomes yet
    unlabelled = ingest_world(small_world.world_dir, tmp_path / "lake", small_world.config, tables=("manifests", "events"))
    assert lake_digest(unlabelled) != lake_digest(small_world.lake)
    champion_is(client, "1")
    decision = promote(unlabelled, client, "2")
    assert not decision.promoted and champion_version(client) == "1"
    assert decision.message == (
        "refused: the metric is undefined on this period (no labelled test rows, or no seizures among them); "
        f"{PRIMARY_METRIC} on {split.valid_end}..{split.test_end}: challenger v2 n/a vs champion v1 n/a"
    )


def test_the_split_of_a_version_is_read_back_from_its_run(client, split) -> None:  # noqa: ANN001
    assert split_from_params(load_version(client, "2").params) == split


def test_an_empty_lake_cannot_be_split(tmp_path: Path) -> None:
    empty = Lake(tmp_path / "lake")
    with pytest.raises(ValueError, match="^the lake holds no manifests: ingest data first$"):
        arrival_range_of(empty)
    with pytest.raises(ValueError, match="^the lake holds no manifests: ingest data first$"):
        default_split(empty)


def arrival_range_of(lake: Lake):  # noqa: ANN201
    from features.history import History

    return arrival_range(History.from_lake(lake))


def test_default_split_of_the_small_lake_warms_up_30_days(small_world) -> None:  # noqa: ANN001
    first, last = arrival_range_of(small_world.lake)
    split = default_split(small_world.lake)
    assert split == TimeSplit.default_for(first, last)
    assert (split.train_start - first).days == 30 and (split.test_end - last).days == 1
