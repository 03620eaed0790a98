"""Specification of training from a unit's first weeks: ``targeting train`` on three weeks of arrivals chooses its
split from the data, and says plainly when there are too few seizures to train (exit 2) or to evaluate (warning).

Real simulated worlds ingested into real lakes, a real MLflow store made by ``targeting init``, the real CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from targeting.cli import _register, app

_register()
NOW = "2026-01-01T00:00:00Z"


def invoke(*args: object, env: dict[str, str | None]):  # noqa: ANN201
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def build_unit(home: Path, *, days: int, per_day: int) -> dict[str, str | None]:
    """A unit's CCP_HOME after ``days`` days at NLRTM: simulated feeds ingested, stores created by ``targeting init``."""
    env = {"CCP_HOME": str(home), "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    env |= {name: None for name in ("CCP_LAKE_DIR", "CCP_DATABASE_URL", "CCP_MLFLOW_TRACKING_URI")}  # None: unset
    world = home / "world"
    made = invoke("simulate", "--out", world, "--days", days, "--containers-per-day", per_day, "--ports", "NLRTM", "--seed", 7, env=env)
    assert made.exit_code == 0, made.output
    for table in ("manifests", "events", "outcomes", "alerts"):
        ingested = invoke("ingest", table, world / f"{table}.parquet", "--now", NOW, "--json", env=env)
        assert ingested.exit_code == 0, ingested.output
    assert invoke("init", env=env).exit_code == 0
    return env


@pytest.fixture(scope="module")
def three_weeks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_unit(tmp_path_factory.mktemp("three-weeks"), days=21, per_day=400)


def test_three_weeks_of_arrivals_train_with_a_split_chosen_from_the_seizures(three_weeks: dict[str, str]) -> None:
    result = invoke("train", "--threads", "1", "--json", env=three_weeks)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout[result.stdout.index("{"):])
    split = body["split"]
    assert body["version"] == "1"
    assert split["how"] == "3 warm-up day(s), validation and test starting at seizure quantiles"
    assert (split["train_start"], split["test_end"]) == ("2025-01-04", "2025-01-22")
    assert split["seizures"]["train"] >= 3 and split["seizures"]["test"] >= 1
    assert body["counts"]["train_seizures"] == split["seizures"]["train"]
    assert body["counts"]["test_seizures"] == split["seizures"]["test"]


def test_a_test_period_without_seizures_trains_with_a_plain_warning(three_weeks: dict[str, str]) -> None:
    # the seized training rows of this world fall on 2025-01-06, -15, -16 and -21 from 2025-01-02 on (import seizures on
    # their arrival day, export seizures on their departure day): three to train on, none in the test day 2025-01-20
    dates = ("--train-start", "2025-01-02", "--train-end", "2025-01-17", "--valid-end", "2025-01-20", "--test-end", "2025-01-21")
    result = invoke("train", *dates, "--threads", "1", "--no-register", "--json", env=three_weeks)
    assert result.exit_code == 0, result.output
    assert (
        "warning: too few seizures to evaluate: none in the test period 2025-01-20..2025-01-20; the model is trained and "
        "registered, but its test metrics are undefined and promotion will refuse it"
    ) in result.stderr
    body = json.loads(result.stdout[result.stdout.index("{"):])
    assert body["split"]["seizures"]["test"] == 0 and body["warnings"]
    assert body["split"]["seizures"]["train"] == body["counts"]["train_seizures"] == 3


def test_too_few_seizures_to_train_is_refused_plainly(tmp_path: Path) -> None:
    env = build_unit(tmp_path, days=9, per_day=150)
    result = invoke("train", "--threads", "1", env=env)
    assert result.exit_code == 2, result.output
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: too few seizures to train: ") and "(at least 3 needed;" in error
    assert error.endswith("until a model is trained, lists come from the watchlist, the rule profiles and the random slice")


def test_fewer_than_a_week_of_arrivals_is_refused_plainly(tmp_path: Path) -> None:
    env = build_unit(tmp_path, days=5, per_day=100)
    result = invoke("train", env=env)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: too few days to train: 5 day(s) of arrivals (2025-01-01..2025-01-05), at least 7 needed"
    )
