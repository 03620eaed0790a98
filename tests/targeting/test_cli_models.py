"""Specification of the model commands (targeting.cli.models): ``train``, ``promote``, ``models``, ``compare``, end to end.

Each runs in-process through typer's CliRunner against a real lake built from
a small simulated world and a real temporary MLflow store (``--tracking-uri``).
Refusals exit 1, usage and input errors exit 2 with one ``error:`` line.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from targeting.cli import _register, app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from small_lake import SmallWorld, build_small_world, fresh_store, store_template  # noqa: E402

_register()
PRIMARY = "labelled/model/pr_auc"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SmallWorld:  # noqa: ANN001
    return build_small_world(tmp_path_factory.mktemp("cli-world"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:  # noqa: ANN001
    return tmp_path_factory.mktemp("cli-work")


@pytest.fixture(scope="module")
def template(workdir: Path) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        return store_template(workdir / "template")


@pytest.fixture(scope="module")
def store(workdir: Path, template: Path) -> str:
    return fresh_store(template, workdir)


@pytest.fixture(autouse=True)
def isolated(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults point into the temporary work directory, never at the repository's lake, store or service database."""
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("CCP_DATABASE_URL", f"sqlite:///{workdir / 'var' / 'ccp.db'}")
    monkeypatch.setenv("CCP_LAKE_DIR", str(workdir / "no-lake"))
    monkeypatch.setenv("CCP_MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'no-store.db'}")
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    if not (workdir / "var" / "ccp.db").exists():  # promotions are audited there: create it as `targeting init` would
        from serve.app import open_store
        from serve.settings import Settings

        open_store(Settings()).dispose()


def invoke(*args: str):  # noqa: ANN201
    return CliRunner().invoke(app, [str(a) for a in args])


def errors(stderr: str) -> str:
    """``stderr`` without the header line naming the stores (``using lake ... [config ...]``)."""
    return "\n".join(line for line in stderr.strip().splitlines() if not line.startswith("using "))


@pytest.fixture(scope="module")
def trained(world: SmallWorld, store: str, workdir: Path) -> dict:
    """``targeting train --json`` on the lake (version 1), then a deliberately worse version 2 registered through the API."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        mp.setenv("CCP_DATABASE_URL", f"sqlite:///{workdir / 'var' / 'ccp.db'}")
        result = invoke("train", "--lake", world.lake.root, "--tracking-uri", store, "--oracle", world.oracle_path, "--threads", "1", "--no-sync", "--json")
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)

        from models.tracking import configure
        from models.training import TrainConfig
        from models.workflow import default_split, train_and_register

        config = TrainConfig(split=default_split(world.lake), num_threads=1, model={"min_child_samples": 1_000_000})
        _, worse = train_and_register(world.lake, configure(store), config)
        assert worse.version == "2"
    return body


def champion_is(store: str, version: str | None) -> None:
    from models.tracking import CHAMPION, MODEL_NAME, champion_version, configure

    client = configure(store)
    if version is None:
        if champion_version(client) is not None:
            client.delete_registered_model_alias(MODEL_NAME, CHAMPION)
    else:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)


def champion(store: str) -> str | None:
    from models.tracking import champion_version, configure

    return champion_version(configure(store))


def audit_events(workdir: Path, action: str) -> list[tuple]:
    with sqlite3.connect(workdir / "var" / "ccp.db") as db:
        return db.execute("select model_version, result, detail from audit_events where action = ? order by seq", (action,)).fetchall()


def test_train_logs_registers_and_reports_json(trained: dict) -> None:
    assert trained["version"] == "1"
    assert re.fullmatch(r"[0-9a-f]{32}", trained["run_id"]) and re.fullmatch(r"[0-9a-f]{64}", trained["model_sha256"])
    assert trained["counts"]["train_rows"] > 0 and trained["counts"]["test_seizures"] >= 0
    metrics = trained["metrics"]
    for name in (PRIMARY, "oracle/model/precision_at_1", "oracle/rules/precision_at_1", "oracle/model/recall_at_5", "labelled/random/pr_auc"):
        assert name in metrics, name
    assert trained["promotion"] is None


def test_models_lists_versions_with_their_aliases(trained: dict, store: str) -> None:
    champion_is(store, "1")
    result = invoke("models", "--tracking-uri", store, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["version"], r["aliases"]) for r in rows] == [("1", "champion"), ("2", "")]
    assert rows[0]["run_id"] == trained["run_id"] and rows[0]["pr_auc"] == pytest.approx(trained["metrics"][PRIMARY])
    table = invoke("models", "--tracking-uri", store)
    assert table.exit_code == 0 and "container-risk" in table.stdout
    assert re.search(r"│ 1\s+│ champion\s+│", table.stdout) and re.search(r"│ 2\s+│\s+│", table.stdout)


def test_models_on_an_empty_store_says_so(template: Path, tmp_path: Path) -> None:
    result = invoke("models", "--tracking-uri", fresh_store(template, tmp_path))
    assert result.exit_code == 0
    assert "no registered versions of container-risk yet: run `targeting train`" in result.stdout


def test_promote_makes_the_first_version_champion_and_audits_it(trained: dict, world: SmallWorld, store: str, workdir: Path) -> None:
    champion_is(store, None)
    result = invoke("promote", "--version", "1", "--lake", world.lake.root, "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    assert "version 1 is the first champion" in result.stdout
    assert champion(store) == "1"
    version, outcome, detail = audit_events(workdir, "model.promote")[-1]
    assert (version, outcome) == ("1", "promoted") and json.loads(detail)["message"] == "version 1 is the first champion"


def test_promote_refuses_a_worse_challenger_with_exit_1_and_the_numbers(trained: dict, world: SmallWorld, store: str, workdir: Path) -> None:
    champion_is(store, "1")
    result = invoke("promote", "--version", "2", "--lake", world.lake.root, "--tracking-uri", store)
    assert result.exit_code == 1, result.output
    message = " ".join(result.stdout.split())
    assert re.fullmatch(rf"refused: challenger is worse; {PRIMARY} on \S+: challenger v2 0\.\d{{4}} vs champion v1 [01]\.\d{{4}}", message), message
    assert champion(store) == "1"
    assert audit_events(workdir, "model.promote")[-1][:2] == ("2", "refused")


def test_promoting_the_champion_again_is_a_no_op_not_a_refusal(trained: dict, world: SmallWorld, store: str) -> None:
    champion_is(store, "1")
    result = invoke("promote", "--version", "1", "--force", "--reason", "drill", "--lake", world.lake.root, "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "version 1 is already the champion"
    assert champion(store) == "1"


def test_promote_force_needs_a_reason(trained: dict, world: SmallWorld, store: str) -> None:
    champion_is(store, "1")
    result = invoke("promote", "--version", "2", "--force", "--lake", world.lake.root, "--tracking-uri", store)
    assert result.exit_code == 2
    assert errors(result.stderr) == "error: --force needs --reason"
    assert champion(store) == "1"


def test_promote_force_with_a_reason_moves_the_champion(trained: dict, world: SmallWorld, store: str) -> None:
    champion_is(store, "1")
    result = invoke("promote", "--version", "2", "--force", "--reason", "roll-back drill", "--lake", world.lake.root, "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"forced: {PRIMARY} on ")
    assert champion(store) == "2"
    from models.tracking import MODEL_NAME, configure

    tags = configure(store).get_model_version(MODEL_NAME, "2").tags
    assert tags["promotion_reason"] == "roll-back drill" and tags["promotion_forced"] == "true"


def test_promote_an_unknown_version_fails_with_one_line_naming_the_registered_ones(trained: dict, world: SmallWorld, store: str) -> None:
    champion_is(store, "1")
    result = invoke("promote", "--version", "9", "--lake", world.lake.root, "--tracking-uri", store)
    assert result.exit_code == 2
    assert errors(result.stderr) == "error: unknown version 9 of container-risk; registered versions: 1, 2"
    assert "Traceback" not in result.output
    assert champion(store) == "1"


def test_compare_an_unknown_version_says_which_one(trained: dict, world: SmallWorld, store: str) -> None:
    result = invoke("compare", "1", "7", "--lake", world.lake.root, "--tracking-uri", store)
    assert result.exit_code == 2
    assert errors(result.stderr) == "error: unknown version 7 of container-risk; registered versions: 1, 2"


def test_compare_on_a_missing_lake_names_the_lake_not_a_version(trained: dict, tmp_path: Path, store: str) -> None:
    result = invoke("compare", "1", "2", "--lake", tmp_path / "no-lake", "--tracking-uri", store)
    assert result.exit_code == 2
    assert errors(result.stderr) == f"error: lake {tmp_path / 'no-lake'} does not exist: run `targeting ingest --lake {tmp_path / 'no-lake'} ...` first"


def test_model_commands_refuse_a_missing_mlflow_store_and_create_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "mlruns" / "mlflow.db"
    for args in (("models",), ("compare", "1", "2", "--lake", tmp_path), ("promote", "--version", "1", "--lake", tmp_path)):
        result = invoke(*args, "--tracking-uri", f"sqlite:///{missing}")
        assert result.exit_code == 2, args
        assert errors(result.stderr).startswith(f"error: MLflow store {missing} does not exist"), result.stderr
    assert not missing.parent.exists()


def test_every_model_command_names_the_stores_it_uses(trained: dict, world: SmallWorld, store: str) -> None:
    result = invoke("models", "--tracking-uri", store)
    assert result.exit_code == 0
    assert result.stderr.splitlines()[0].startswith(f"using MLflow {store}  [config ")
    compared = invoke("compare", "1", "2", "--lake", world.lake.root, "--tracking-uri", store)
    assert compared.stderr.splitlines()[0].startswith(f"using lake {world.lake.root} · MLflow {store}")


def test_compare_prints_both_versions_on_the_same_test_period(trained: dict, world: SmallWorld, store: str) -> None:
    result = invoke("compare", "1", "2", "--lake", world.lake.root, "--tracking-uri", store, "--oracle", world.oracle_path)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "versions 1 and 2 on version 2's test period" in out
    for version in ("1", "2"):
        for stream in ("labelled", "random_slice", "oracle"):
            assert re.search(rf"│ {stream}\s+│ {version}\s+│", out), (stream, version)
    assert "PR-AUC" in out and "p@1%" in out


def test_train_with_a_partial_split_is_a_usage_error(world: SmallWorld, store: str) -> None:
    result = invoke("train", "--lake", world.lake.root, "--tracking-uri", store, "--train-start", "2025-02-01", "--no-sync")
    assert result.exit_code == 2
    assert errors(result.stderr) == "error: give all of --train-start, --train-end, --valid-end, --test-end, or none"


def test_train_with_decreasing_split_dates_is_a_usage_error(world: SmallWorld, store: str) -> None:
    dates = ("--train-start", "2025-03-01", "--train-end", "2025-02-01", "--valid-end", "2025-03-10", "--test-end", "2025-03-20")
    result = invoke("train", "--lake", world.lake.root, "--tracking-uri", store, *dates, "--no-sync")
    assert result.exit_code == 2
    assert errors(result.stderr) == (
        "error: split dates must increase: train_start 2025-03-01 < train_end 2025-02-01 < valid_end 2025-03-10 < test_end 2025-03-20"
    )


def test_train_on_a_missing_lake_is_an_error_printed_verbatim_on_one_line(tmp_path: Path, store: str) -> None:
    missing = tmp_path / "[/archive]" / "[bold]lake-of-a-port-control-unit-with-a-long-name"
    result = invoke("train", "--lake", missing, "--tracking-uri", store, "--no-sync")
    assert result.exit_code == 2
    assert errors(result.stderr) == f"error: lake {missing} does not exist: run `targeting ingest --lake {missing} ...` first"
