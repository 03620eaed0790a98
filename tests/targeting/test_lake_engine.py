"""Specification of ``targeting.lake_engine.LakeEngine`` (no HTTP): lists over a real lake and a real MLflow registry.

One small simulated world (fixed dates) is ingested three ways: as is, with every table's rows
shuffled and split over several commits, and cut at a decision time (only what was known before
it). A champion is trained, registered and promoted once for the module.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from features.data.contracts import ALERTS
from features.data.ingest import ingest
from features.data.lake import Lake
from features.rules.language import RuleProfile, default_rule_profiles
from models.dataset import TimeSplit
from models.tracking import CHAMPION, MODEL_NAME, configure
from models.training import TrainConfig
from models.workflow import promote, train_and_register
from targeting.engine import ModelUnavailableError, UnknownPortError, ruleset_from
from features.candidates import Direction
from features.history import History
from models.dataset import served_rows
from targeting import kernel
from targeting.kernel import NO_MODEL_VERSION, NO_MODEL_WARNING
from targeting.lake_engine import LakeEngine, watchlist_sha256
from targeting.lists import InspectionList, ListRequest, list_to_dict
from targeting.record import without_risk
from targeting.sim.run import simulate_to_directory
from targeting.sim.world import WorldConfig

pytestmark = pytest.mark.slow

START = date(2025, 1, 1)
DAYS = 75
DAY = START + timedelta(days=70)
DECISION = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
PORT = "NLRTM"
TABLES = ("manifests", "events", "outcomes", "alerts")
RULES = ruleset_from(default_rule_profiles(), 1)
NO_WATCHLIST = pl.DataFrame(schema=ALERTS.schema)
PROVENANCE = ("input_data_sha256", "data_version", "lake_versions")
"""Fields that name the lake files, entry and table versions a list was read from (the rest is its content)."""
KNOWN_BEFORE = {"manifests": "filed_at", "events": "event_time", "outcomes": "inspected_at", "alerts": "valid_from"}


@dataclass(frozen=True)
class World:
    root: Path
    lake: Path
    shuffled_lake: Path
    cut_lake: Path
    tracking_uri: str
    version: str


def _ingest_frames(lake: Lake, table: str, frames: list[pl.DataFrame], folder: Path, now: datetime) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        path = folder / f"{table}-{i}.parquet"
        frame.write_parquet(path)
        summary = ingest(lake, table, [path], now=now)
        assert summary.quarantined == 0 and summary.accepted == frame.height


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("lake-engine")
    config = WorldConfig(seed=5, start=START, days=DAYS, containers_per_day=240, illicit_rate=0.01)
    simulate_to_directory(config, root / "world")
    now = datetime.combine(START + timedelta(days=DAYS + 30), datetime.min.time(), tzinfo=UTC)
    lake = Lake(root / "lake")
    for table in TABLES:
        ingest(lake, table, [root / "world" / f"{table}.parquet"], now=now)
    shuffled, cut = Lake(root / "shuffled"), Lake(root / "cut")
    for i, table in enumerate(TABLES):
        rows = lake.scan(table).collect()
        mixed = rows.sample(fraction=1.0, shuffle=True, seed=100 + i)
        half = mixed.height // 2
        _ingest_frames(shuffled, table, [mixed.slice(half), mixed.slice(0, half)] if half else [mixed], root / "shuffled-input", now)
        known = rows.filter(pl.col(KNOWN_BEFORE[table]) < DECISION)
        _ingest_frames(cut, table, [known], root / "cut-input", now)
    (root / "mlruns").mkdir()
    tracking_uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    client = configure(tracking_uri)
    split = TimeSplit(START + timedelta(days=30), START + timedelta(days=55), START + timedelta(days=65), START + timedelta(days=DAYS))
    config = TrainConfig(split=split, num_threads=1, model={"n_estimators": 40, "num_leaves": 15, "early_stopping_rounds": 15})
    _, logged = train_and_register(lake, client, config)
    assert promote(lake, client, logged.version).promoted
    return World(root, root / "lake", root / "shuffled", root / "cut", tracking_uri, logged.version)


def engine_over(world: World, lake: Path, cache: str) -> LakeEngine:
    return LakeEngine(lake_dir=lake, tracking_uri=world.tracking_uri, cache_dir=world.root / cache)


@pytest.fixture(scope="module")
def engine(world) -> LakeEngine:
    return engine_over(world, world.lake, "cache")


def request(**overrides) -> ListRequest:
    return ListRequest(**{"port": PORT, "list_date": DAY, "capacity": 12, "exploration_share": 0.25, "nii_capacity": 8, "physical_capacity": 4, **overrides})


def content(record: InspectionList) -> dict:
    """The list without the fields naming its input files."""
    return {k: v for k, v in dataclasses.asdict(record).items() if k not in PROVENANCE}


# --------------------------------------------------------------------------- lists and replay


def test_build_list_records_what_a_replay_needs(world, engine):
    built = engine.build_list(request(), ruleset=RULES, watchlist=NO_WATCHLIST)
    assert built.model_version == world.version and built.data_version == Lake(world.lake).last_seq()
    assert built.lake_versions == {t: Lake(world.lake).table_version(t) for t in TABLES}  # the Delta version of each table read
    assert built.decision_at == DECISION and built.ruleset_version == 1 and len(built.items) == 12
    assert built.candidate_count == len(built.items) + len(built.deferred) > 12
    assert engine.model_info().artifact_sha256 == built.model_artifact_sha256
    assert engine.ready() == {"model_loaded": True, "lake_readable": True}


def test_replay_is_identical_even_after_the_lake_and_watchlist_moved_on(world, tmp_path):
    shutil.copytree(world.lake, tmp_path / "lake")
    engine = engine_over(world, tmp_path / "lake", "cache-replay")
    served = engine.build_list(request(), ruleset=RULES, watchlist=NO_WATCHLIST)
    listed = served.items[-1]
    alert = {
        "alert_id": "LAKE-ALERT-1", "kind": "CONTAINER", "value": listed.container_number, "reason": "Tip-off from PCU Guayaquil",
        "issuing_unit": "PCU GUAYAQUIL", "severity": 4, "valid_from": DECISION - timedelta(days=3), "valid_to": None,
    }  # fmt: skip
    pl.DataFrame([alert], schema=ALERTS.schema).write_parquet(tmp_path / "alert.parquet")
    assert ingest(Lake(tmp_path / "lake"), "alerts", [tmp_path / "alert.parquet"], now=DECISION + timedelta(days=60)).accepted == 1

    replayed = engine.replay(served, ruleset=RULES, watchlist=NO_WATCHLIST)
    assert replayed == served and replayed.content_sha256() == served.content_sha256()
    rebuilt = engine.build_list(request(), ruleset=RULES, watchlist=NO_WATCHLIST)
    assert rebuilt.data_version == served.data_version + 1 and rebuilt.input_data_sha256 != served.input_data_sha256
    assert rebuilt.lake_versions == {**served.lake_versions, "alerts": served.lake_versions["alerts"] + 1}
    before = [i.manifest_id for i in served.items if i.source == "WATCHLIST"]  # hits of the world's own alerts
    assert listed.manifest_id not in before
    assert {i.manifest_id for i in rebuilt.items if i.source == "WATCHLIST"} == {*before, listed.manifest_id}
    assert engine.replay(rebuilt, ruleset=RULES, watchlist=NO_WATCHLIST) == rebuilt


def test_replay_refuses_a_record_without_data_version_or_with_another_model(engine):
    served = engine.build_list(request(), ruleset=RULES, watchlist=NO_WATCHLIST)
    with pytest.raises(ValueError, match="the stored list has no data version: it cannot be replayed"):
        engine.replay(dataclasses.replace(served, data_version=None), ruleset=RULES, watchlist=NO_WATCHLIST)
    with pytest.raises(ValueError, match=f"model version {served.model_version} no longer matches the recorded artifact hash"):
        engine.replay(dataclasses.replace(served, model_artifact_sha256="0" * 64), ruleset=RULES, watchlist=NO_WATCHLIST)
    other = {**served.lake_versions, "manifests": served.lake_versions["manifests"] + 5}
    with pytest.raises(ValueError, match=f"lake log entry {served.data_version} names table versions .* not the .* the list read"):
        engine.replay(dataclasses.replace(served, lake_versions=other), ruleset=RULES, watchlist=NO_WATCHLIST)


def test_a_list_recorded_before_lake_versions_replays_identically(engine):
    served = dataclasses.replace(engine.build_list(request(), ruleset=RULES, watchlist=NO_WATCHLIST), lake_versions=None)
    assert "lake_versions" not in list_to_dict(served)  # its canonical JSON and hash are those it was stored with
    assert engine.replay(served, ruleset=RULES, watchlist=NO_WATCHLIST) == served


def test_a_list_recorded_before_calibrated_risk_replays_identically(engine):
    built = engine.build_list(request(), ruleset=RULES, watchlist=NO_WATCHLIST)
    assert built.calibrator_sha256 is not None and all(i.risk_band is not None for i in built.items + built.deferred)
    served = without_risk(built)
    recorded = list_to_dict(served)
    assert "calibrator_sha256" not in recorded and not any({"risk_band", "risk_probability"} & set(i) for i in recorded["items"] + recorded["deferred"])
    assert engine.replay(served, ruleset=RULES, watchlist=NO_WATCHLIST) == served


def test_service_watchlist_hits_are_mandatory_and_row_order_free(engine):
    plain = engine.build_list(request(), ruleset=RULES, watchlist=NO_WATCHLIST)
    targets = [d for d in plain.deferred[-3:]]  # low scores: only the watchlist can put them on the list
    rows = [
        {"alert_id": f"WL-{i}", "kind": "CONTAINER", "value": d.container_number, "reason": f"Alert {i}", "issuing_unit": "MAOC-N",
         "severity": 2 + i, "valid_from": DECISION - timedelta(days=1), "valid_to": None}
        for i, d in enumerate(targets)
    ]  # fmt: skip
    watchlist = pl.DataFrame(rows, schema=ALERTS.schema)
    listed = engine.build_list(request(), ruleset=RULES, watchlist=watchlist)
    reversed_rows = engine.build_list(request(), ruleset=RULES, watchlist=watchlist.reverse())
    assert listed == reversed_rows and watchlist_sha256(watchlist) == watchlist_sha256(watchlist.reverse())
    watch = [i for i in listed.items if i.source == "WATCHLIST"]
    before = {i.manifest_id for i in plain.items if i.source == "WATCHLIST"}  # hits of the world's own alerts
    assert {i.manifest_id for i in watch} == before | {d.manifest_id for d in targets}
    assert listed.items[: len(watch)] == tuple(watch) and len(listed.items) == len(plain.items)
    assert all(i.reasons[0].startswith("Watchlist alert (severity") for i in watch)
    by_id = {i.manifest_id: i for i in watch}
    for n, d in enumerate(targets):
        assert by_id[d.manifest_id].reasons[0].startswith(f"Watchlist alert (severity {2 + n}/5): Alert {n}")
    assert listed.input_data_sha256 != plain.input_data_sha256
    expired = watchlist.with_columns(pl.lit(DECISION, dtype=ALERTS.schema["valid_to"]).alias("valid_to"))  # valid_to is exclusive
    assert content(engine.build_list(request(), ruleset=RULES, watchlist=expired)) | {"input_data_sha256": None} == content(plain) | {"input_data_sha256": None}


# --------------------------------------------------------------------------- invariance


def test_row_order_and_commit_layout_of_the_lake_do_not_change_a_list(world, engine):
    shuffled = engine_over(world, world.shuffled_lake, "cache-shuffled")
    for req in (request(), request(port="BEANR", capacity=7, nii_capacity=None, physical_capacity=None, seed=99)):
        a = engine.build_list(req, ruleset=RULES, watchlist=NO_WATCHLIST)
        b = shuffled.build_list(req, ruleset=RULES, watchlist=NO_WATCHLIST)
        assert content(a) == content(b)


def test_data_known_after_the_decision_time_does_not_change_a_list(world, engine):
    cut = engine_over(world, world.cut_lake, "cache-cut")
    full_list = engine.build_list(request(), ruleset=RULES, watchlist=NO_WATCHLIST)
    cut_list = cut.build_list(request(), ruleset=RULES, watchlist=NO_WATCHLIST)
    assert content(cut_list) == content(full_list)
    for table in ("events", "outcomes"):
        rows = [Lake(lake).scan(table).select(pl.len()).collect().item() for lake in (world.cut_lake, world.lake)]
        assert 0 < rows[0] < rows[1], table


def test_concurrent_lists_of_one_day_are_identical(world):
    engine = engine_over(world, world.lake, "cache-threads")  # cold day cache: the threads race to build it
    results: list[InspectionList] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(engine.build_list(request(), ruleset=RULES, watchlist=NO_WATCHLIST))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4 and all(r == results[0] for r in results)


def test_lists_from_the_port_day_cache_equal_lists_built_cold(world, engine):
    """The engine caches candidates, features, scores, hits and reasons per port-day: a warm engine must agree with a cold one."""
    tea = RuleProfile(code="TEA-SEA", reason="Tea from South-East Asia", expression='hs_heading == "0902"', valid_from=DECISION - timedelta(days=400), weight=40)
    variants = [
        (request(), RULES),
        (request(capacity=20, nii_capacity=14, physical_capacity=6, exploration_share=0.5, seed=1), RULES),
        (request(capacity=5, nii_capacity=None, physical_capacity=None), RULES),
        (request(), ruleset_from([*default_rule_profiles(), tea], 2)),
        (request(port="DEHAM", capacity=9, nii_capacity=None, physical_capacity=None), RULES),
    ]
    warm = [engine.build_list(req, ruleset=rules, watchlist=NO_WATCHLIST) for req, rules in variants]
    cold_engine = engine_over(world, world.lake, "cache-cold")
    cold = [cold_engine.build_list(req, ruleset=rules, watchlist=NO_WATCHLIST) for req, rules in reversed(variants)][::-1]
    assert warm == cold
    assert warm[3].ruleset_version == 2 and warm[3] != warm[0]


# --------------------------------------------------------------------------- ad-hoc risk


def test_container_risk_scores_the_manifest_due_as_the_days_list_does(engine):
    served = engine.build_list(request(), ruleset=RULES, watchlist=NO_WATCHLIST)
    for item in (served.items[0], served.items[-1]):
        risk = engine.container_risk(PORT, item.container_number, ruleset=RULES, watchlist=NO_WATCHLIST, at=DECISION + timedelta(hours=9))
        assert (risk.manifest_id, risk.score, risk.reasons, risk.model_version) == (item.manifest_id, item.score, item.reasons, served.model_version)
    assert engine.container_risk(PORT, "CSQU3054383", ruleset=RULES, watchlist=NO_WATCHLIST, at=DECISION) is None
    gone = engine.container_risk(PORT, served.items[0].container_number, ruleset=RULES, watchlist=NO_WATCHLIST, at=DECISION + timedelta(days=400))
    assert gone is None


# --------------------------------------------------------------------------- edges


def test_unknown_port_is_refused(engine):
    with pytest.raises(UnknownPortError, match="unknown port 'ZZZZZ': not in the port reference"):
        engine.build_list(request(port="ZZZZZ"), ruleset=RULES, watchlist=NO_WATCHLIST)
    with pytest.raises(UnknownPortError, match="unknown port 'ZZZZZ'"):
        engine.container_risk("ZZZZZ", "CSQU3054383", ruleset=RULES, watchlist=NO_WATCHLIST, at=DECISION)


@pytest.mark.parametrize("port, day", [("FRLEH", DAY), (PORT, START - timedelta(days=10))], ids=["port-without-traffic", "day-before-the-world"])
def test_a_day_without_candidates_gives_an_empty_list(engine, port, day):
    empty = engine.build_list(request(port=port, list_date=day), ruleset=RULES, watchlist=NO_WATCHLIST)
    assert (empty.candidate_count, empty.items, empty.deferred, empty.mandatory_exceeds_capacity) == (0, (), (), False)
    assert empty.warnings == ("only 0 candidates for a capacity of 12",)
    assert engine.replay(empty, ruleset=RULES, watchlist=NO_WATCHLIST) == empty


def test_an_engine_without_a_champion_lists_watchlist_rules_and_random_with_a_warning(world, tmp_path):
    shutil.copy2(world.root / "mlruns" / "mlflow.db", tmp_path / "mlflow.db")
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    configure(tracking_uri).delete_registered_model_alias(MODEL_NAME, CHAMPION)  # a registered version, but no champion
    engine = LakeEngine(lake_dir=world.lake, tracking_uri=tracking_uri, cache_dir=tmp_path / "cache")
    assert engine.ready() == {"model_loaded": False, "lake_readable": True}
    day_one = engine.build_list(request(), ruleset=RULES, watchlist=NO_WATCHLIST)
    assert day_one.model_version == NO_MODEL_VERSION and day_one.warnings[0] == NO_MODEL_WARNING
    assert len(day_one.items) == 12 and {i.source for i in day_one.items} <= {"WATCHLIST", "RULE", "RANDOM"}
    assert any(i.source == "RANDOM" for i in day_one.items) and all(i.score == 0.0 for i in day_one.items)
    assert engine.replay(day_one, ruleset=RULES, watchlist=NO_WATCHLIST) == day_one
    with pytest.raises(ModelUnavailableError):
        engine.model_info()
    with pytest.raises(ModelUnavailableError):
        engine.reload()
    configure(world.tracking_uri)


def test_engine_from_settings_keeps_the_champion_copy_where_configured(world, tmp_path, monkeypatch):
    from serve.settings import Settings
    from targeting.lake_engine import engine_from_settings

    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    chosen = engine_from_settings(Settings(lake_dir=world.lake, mlflow_tracking_uri=world.tracking_uri, model_cache_dir=tmp_path / "copies"))
    assert chosen.models.cache_dir == tmp_path / "copies"
    assert chosen.model_info().version == "1" and (tmp_path / "copies" / "champion.json").exists()
    default = engine_from_settings(Settings(lake_dir=world.lake, mlflow_tracking_uri=world.tracking_uri))
    assert default.models.cache_dir == world.lake.parent / "var" / "model-cache"


# --------------------------------------------------------------------------- one kernel, every direction


def _busiest_port(world: World, direction: Direction) -> str:
    """The port with the most ``direction`` candidates on DAY (every direction has some in this world)."""
    rows = served_rows(History.from_lake(Lake(world.lake)), start=DAY, end=DAY + timedelta(days=1), directions=(direction,)).collect()
    assert rows.height > 0, f"no {direction.value} candidates on {DAY}"
    return rows.group_by("port").len().sort(["len", "port"], descending=[True, False])["port"][0]


@pytest.mark.parametrize("direction", list(Direction))
def test_serving_the_kernel_and_replay_give_the_identical_list_in_every_direction(world, engine, direction):
    port = _busiest_port(world, direction)
    ask = request(port=port, direction=direction, capacity=6, nii_capacity=4, physical_capacity=2)
    served = engine.build_list(ask, ruleset=RULES, watchlist=NO_WATCHLIST)
    assert served.direction == direction.value and served.port == port and len(served.items) == min(6, served.candidate_count)
    champion = kernel.Scorer.of(engine.models.version(world.version))
    direct = kernel.decide(kernel.Snapshot(History.from_lake(Lake(world.lake))), champion, RULES.rules, NO_WATCHLIST, ask, ruleset_version=RULES.version)
    assert content(direct) == content(served)
    assert engine.replay(served, ruleset=RULES, watchlist=NO_WATCHLIST) == served


@pytest.mark.parametrize("direction", list(Direction))
def test_the_backtest_selects_what_the_kernel_selects_in_every_direction(world, engine, direction):
    from targeting.evaluation.backtest import BacktestConfig, Strategy, plan_port_selection

    port = _busiest_port(world, direction)
    ask = request(port=port, direction=direction, capacity=6, nii_capacity=4, physical_capacity=2, exploration_share=0.2, seed=11)
    snapshot = kernel.Snapshot(History.from_lake(Lake(world.lake)))
    champion = kernel.Scorer.of(engine.models.version(world.version))
    prepared = kernel.prepare(snapshot, champion, NO_WATCHLIST, ask)
    hits = kernel.rule_hits(RULES.rules, prepared, ask)
    decided = kernel.selection(prepared, hits, ask, engine.policy)
    config = BacktestConfig(rule_share=engine.policy.max_rule_share, physical_share=2 / 6)
    planned = plan_port_selection(
        Strategy("model+20", "model", 0.2), prepared.candidates, prepared.scores, alert_hits=prepared.alert_hits, rule_hits=hits,
        port=port, list_date=DAY, capacity=6, seed=11, config=config, direction=direction, integrity=prepared.integrity,
    )
    assert planned.select("manifest_id", "source", "exam_type").equals(decided.selected.select("manifest_id", "source", "exam_type"))


def test_unusual_traces_take_the_integrity_share_with_their_reasons_and_the_list_replays_identically(world, engine):
    ask = dict(capacity=60, nii_capacity=40, physical_capacity=20, exploration_share=0.05, integrity_share=0.5)
    lists = [engine.build_list(request(list_date=DAY - timedelta(days=d), **ask), ruleset=RULES, watchlist=NO_WATCHLIST) for d in range(8)]
    served = max(lists, key=lambda built: sum(i.source == "INTEGRITY" for i in built.items))  # ~100 candidates a day: few are unusual
    integrity = [i for i in served.items if i.source == "INTEGRITY"]
    assert integrity and served.integrity_share == 0.5
    for item in integrity:
        assert item.selection_probability == 1.0 and item.integrity["p_value"] < 0.01
        assert item.reasons[0].startswith(("Seal replaced: ", "Stayed ", "Gate-in only "))
    assert engine.replay(served, ruleset=RULES, watchlist=NO_WATCHLIST) == served
    without = engine.build_list(request(capacity=60, nii_capacity=40, physical_capacity=20, exploration_share=0.05, integrity_share=0.0),
                                ruleset=RULES, watchlist=NO_WATCHLIST)
    assert not [i for i in without.items if i.source == "INTEGRITY"] and len(without.items) == 60


def test_a_model_without_integrity_norms_lists_no_integrity_item_and_says_why(world, engine):
    bare = dataclasses.replace(kernel.Scorer.of(engine.models.version(world.version)), integrity_norms=None)
    listed = kernel.decide(kernel.Snapshot(History.from_lake(Lake(world.lake))), bare, RULES.rules, NO_WATCHLIST, request(), ruleset_version=RULES.version)
    assert not [i for i in listed.items if i.source == "INTEGRITY"] and all(i.integrity is None for i in listed.items)
    assert any(w.startswith(f"No INTEGRITY items: model version {world.version} has no integrity norms") for w in listed.warnings)


def test_a_list_recorded_before_the_integrity_slice_replays_identically(engine):
    built = engine.build_list(request(integrity_share=0.0), ruleset=RULES, watchlist=NO_WATCHLIST)
    old = dataclasses.replace(built, integrity_share=None, items=tuple(dataclasses.replace(i, integrity=None) for i in built.items))
    recorded = list_to_dict(old)
    assert "integrity_share" not in recorded and not any("integrity" in i for i in recorded["items"])
    assert engine.replay(old, ruleset=RULES, watchlist=NO_WATCHLIST) == old


def test_the_rows_trained_on_are_exactly_the_candidates_served(world):
    history = History.from_lake(Lake(world.lake))
    days = [DAY - timedelta(days=1), DAY]
    trained = served_rows(history, start=days[0], end=DAY + timedelta(days=1)).select("manifest_id", "port", "direction", "decision_at").collect()
    served = []
    for day in days:
        for direction in Direction:
            for port in trained.filter(pl.col("direction") == direction.value)["port"].unique().to_list():
                rows = kernel.candidate_rows(kernel.Snapshot(history), ListRequest(port=port, list_date=day, capacity=1, direction=direction))
                served.append(rows.select("manifest_id", pl.lit(port).alias("port"), pl.lit(direction.value).alias("direction"), "decision_at"))
    served_frame = pl.concat(served).unique()
    assert trained.height > 0 and set(trained["direction"].unique()) == {d.value for d in Direction}
    assert sorted(trained.iter_rows()) == sorted(served_frame.iter_rows())
