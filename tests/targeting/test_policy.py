"""Specification of the selection policy (targeting.policy)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from features.data.contracts import MANIFESTS
from features.data.reference import haversine_km_np, load_ports
from models import risk_model
from models.risk_model import RiskModel, predict_proba
from targeting.explain import model_reasons_for
from targeting.lists import InspectionList, ListRequest, list_from_dict, list_to_dict
from targeting.policy import (
    PolicyConfig,
    Selection,
    build_inspection_list,
    candidates_for,
    compose_reasons,
    default_seed,
    exploration_slots,
    select,
)

UTC = timezone.utc
PORT = "NLRTM"
DAY = date(2024, 4, 10)
DECISION = datetime(2024, 4, 10, tzinfo=UTC)
CONFIG = PolicyConfig()


# --------------------------------------------------------------------------- helpers


def candidate_frame(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"manifest_id": [f"M{i:03d}" for i in range(n)], "container_number": [f"TSTU{(7 * i) % n:07d}" for i in range(n)]}
    )


def distinct_scores(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n).astype(float) / (n + 1) + 0.001


def alert_hits(hits: dict[str, tuple[int, list[str]]] | None = None) -> pl.DataFrame:
    hits = hits or {}
    return pl.DataFrame(
        {
            "manifest_id": list(hits),
            "alert_count": [len(r) for _, r in hits.values()],
            "alert_max_severity": [s for s, _ in hits.values()],
            "alert_ids": [[f"A{i}" for i in range(len(r))] for _, r in hits.values()],
            "alert_reasons": [r for _, r in hits.values()],
        },
        schema={
            "manifest_id": pl.String,
            "alert_count": pl.Int64,
            "alert_max_severity": pl.Int64,
            "alert_ids": pl.List(pl.String),
            "alert_reasons": pl.List(pl.String),
        },
    )


def rule_hits(scores: dict[str, float] | None = None) -> pl.DataFrame:
    scores = scores or {}
    return pl.DataFrame(
        {
            "manifest_id": list(scores),
            "rule_codes": [[f"R-{m}"] for m in scores],
            "rule_reasons": [[f"Rule reason for {m}."] for m in scores],
            "rule_score": list(scores.values()),
        },
        schema={"manifest_id": pl.String, "rule_codes": pl.List(pl.String), "rule_reasons": pl.List(pl.String), "rule_score": pl.Float64},
    )


def request(capacity: int = 10, **kwargs) -> ListRequest:
    return ListRequest(port=PORT, list_date=DAY, capacity=capacity, **kwargs)


def run(candidates, scores, *, alerts=None, rules=None, req=None, config=CONFIG) -> Selection:
    return select(
        candidates,
        scores,
        alert_hits=alert_hits() if alerts is None else alerts,
        rule_hits=rule_hits() if rules is None else rules,
        request=req or request(),
        config=config,
    )


def sources(selection: Selection) -> list[str]:
    return selection.selected.get_column("source").to_list()


def ids(frame: pl.DataFrame) -> list[str]:
    return frame.get_column("manifest_id").to_list()


# --------------------------------------------------------------------------- order of sources


def test_sources_come_in_order_watchlist_rules_model_random() -> None:
    cands, scores = candidate_frame(50), distinct_scores(50)
    alerts = alert_hits({"M001": (3, ["Party on watchlist"]), "M002": (5, ["Container reported by PCU Guayaquil"])})
    rules = rule_hits({"M010": 10.0, "M011": 30.0, "M012": 20.0, "M013": 5.0, "M014": 8.0, "M015": 12.0})
    selection = run(cands, scores, alerts=alerts, rules=rules)

    assert sources(selection) == ["WATCHLIST"] * 2 + ["RULE"] * 5 + ["MODEL"] * 2 + ["RANDOM"]
    assert selection.selected.get_column("rank").to_list() == list(range(1, 11))
    selected = selection.selected
    rule_rows = selected.filter(pl.col("source") == "RULE")
    assert rule_rows.get_column("rule_score").to_list() == [30.0, 20.0, 12.0, 10.0, 8.0]
    watch = selected.filter(pl.col("source") == "WATCHLIST").get_column("score").to_list()
    assert watch == sorted(watch, reverse=True)
    # the model took the best-scored of the rest: every deferred item scores lower
    model_min = selected.filter(pl.col("source") == "MODEL").get_column("score").min()
    assert selection.deferred.get_column("score").max() < model_min
    # every item carries the model's probability, whatever its source
    by_id = dict(zip(ids(cands), scores, strict=True))
    assert all(by_id[m] == s for m, s in selected.select("manifest_id", "score").iter_rows())


def test_rule_hit_beyond_the_rule_share_can_still_be_picked_by_the_model() -> None:
    cands = candidate_frame(20)
    scores = np.full(20, 0.1)
    scores[5] = 0.99  # M005 is the lowest-weighted rule hit but the model's favourite
    rules = rule_hits({f"M{i:03d}": 10.0 + i for i in range(6)} | {"M005": 1.0})
    selection = run(cands, scores, rules=rules, req=request(4, exploration_share=0.0))
    assert sources(selection) == ["RULE", "RULE", "MODEL", "MODEL"]
    assert ids(selection.selected)[:3] == ["M004", "M003", "M005"]


# --------------------------------------------------------------------------- capacity


@pytest.mark.parametrize(
    ("capacity", "watch", "rule_count", "expected"),
    [
        (10, 0, 20, {"WATCHLIST": 0, "RULE": 5, "MODEL": 4, "RANDOM": 1}),
        (10, 2, 20, {"WATCHLIST": 2, "RULE": 5, "MODEL": 2, "RANDOM": 1}),
        (10, 2, 1, {"WATCHLIST": 2, "RULE": 1, "MODEL": 6, "RANDOM": 1}),
        (10, 8, 20, {"WATCHLIST": 8, "RULE": 1, "MODEL": 0, "RANDOM": 1}),
        (10, 10, 20, {"WATCHLIST": 10, "RULE": 0, "MODEL": 0, "RANDOM": 0}),
        (20, 0, 20, {"WATCHLIST": 0, "RULE": 10, "MODEL": 8, "RANDOM": 2}),
        (25, 0, 30, {"WATCHLIST": 0, "RULE": 12, "MODEL": 10, "RANDOM": 3}),
        (5, 0, 5, {"WATCHLIST": 0, "RULE": 2, "MODEL": 2, "RANDOM": 1}),
        (1, 0, 5, {"WATCHLIST": 0, "RULE": 0, "MODEL": 1, "RANDOM": 0}),
        (0, 0, 5, {"WATCHLIST": 0, "RULE": 0, "MODEL": 0, "RANDOM": 0}),
    ],
)
def test_capacity_is_split_between_watchlist_exploration_rules_and_model(capacity, watch, rule_count, expected) -> None:
    cands, scores = candidate_frame(60), distinct_scores(60)
    alerts = alert_hits({f"M{i:03d}": (2, ["Alert"]) for i in range(watch)})
    rules = rule_hits({f"M{i:03d}": 1.0 + i for i in range(20, 20 + rule_count)})
    selection = run(cands, scores, alerts=alerts, rules=rules, req=request(capacity))
    counts = {s: sources(selection).count(s) for s in expected}
    assert counts == expected
    assert selection.selected.height == capacity
    assert not selection.mandatory_exceeds_capacity


def test_exploration_slots_round_half_up() -> None:
    assert [exploration_slots(c, 0.1) for c in (0, 1, 4, 5, 14, 15, 24, 25, 100)] == [0, 0, 0, 1, 1, 2, 2, 3, 10]
    assert exploration_slots(10, 0.0) == 0
    assert exploration_slots(10, 1.0) == 10


def test_max_rule_share_is_configurable() -> None:
    cands, scores = candidate_frame(40), distinct_scores(40)
    rules = rule_hits({f"M{i:03d}": 1.0 for i in range(30)})
    selection = run(cands, scores, rules=rules, req=request(10), config=PolicyConfig(max_rule_share=0.2))
    assert sources(selection).count("RULE") == 2
    assert sources(selection).count("MODEL") == 7


def test_watchlist_hits_beyond_capacity_are_all_listed_with_a_warning() -> None:
    cands, scores = candidate_frame(30), distinct_scores(30)
    alerts = alert_hits({f"M{i:03d}": (4, ["Alert"]) for i in range(5)})
    selection = run(cands, scores, alerts=alerts, rules=rule_hits({"M010": 50.0}), req=request(3))
    assert sources(selection) == ["WATCHLIST"] * 5
    assert selection.mandatory_exceeds_capacity
    assert any("5 watchlist/alert hits exceed the capacity of 3" in w for w in selection.warnings)
    assert selection.deferred.height == 25
    record = build_inspection_list(selection, request=request(3), model_reasons={m: [] for m in selection.manifest_ids}, **provenance())
    assert record.mandatory_exceeds_capacity and len(record.items) == 5
    assert record.warnings == selection.warnings


def test_fewer_candidates_than_capacity_selects_them_all_and_warns() -> None:
    cands, scores = candidate_frame(4), distinct_scores(4)
    selection = run(cands, scores, req=request(10))
    assert selection.selected.height == 4
    assert selection.deferred.height == 0
    assert any("only 4 candidates" in w for w in selection.warnings)


def test_no_candidates_gives_an_empty_list() -> None:
    selection = run(candidate_frame(0), np.empty(0))
    assert selection.selected.height == 0 and selection.deferred.height == 0


# --------------------------------------------------------------------------- exploration


def random_ids(selection: Selection) -> list[str]:
    return ids(selection.selected.filter(pl.col("source") == "RANDOM"))


def test_exploration_slice_size_follows_the_share() -> None:
    cands, scores = candidate_frame(100), distinct_scores(100)
    selection = run(cands, scores, req=request(20, exploration_share=0.25, seed=11))
    assert len(random_ids(selection)) == 5
    assert sources(selection).count("MODEL") == 15
    assert selection.exploration_share == 0.25


def test_exploration_draw_is_reproducible_from_its_seed() -> None:
    cands, scores = candidate_frame(100), distinct_scores(100)
    first = run(cands, scores, req=request(20, exploration_share=0.25, seed=11))
    again = run(cands, scores, req=request(20, exploration_share=0.25, seed=11))
    assert first.seed == 11
    assert random_ids(first) == random_ids(again)
    assert first.selected.equals(again.selected)


def test_different_seeds_give_different_draws() -> None:
    cands, scores = candidate_frame(100), distinct_scores(100)
    draws = {tuple(random_ids(run(cands, scores, req=request(20, exploration_share=0.25, seed=s)))) for s in range(5)}
    assert len(draws) == 5


def test_default_seed_is_derived_from_port_and_date() -> None:
    cands, scores = candidate_frame(100), distinct_scores(100)
    implicit = run(cands, scores, req=request(20, exploration_share=0.25))
    explicit = run(cands, scores, req=request(20, exploration_share=0.25, seed=default_seed(PORT, DAY)))
    assert implicit.seed == default_seed(PORT, DAY)
    assert implicit.selected.equals(explicit.selected)
    assert default_seed(PORT, DAY) != default_seed(PORT, DAY + timedelta(days=1))
    assert default_seed(PORT, DAY) != default_seed("BEANR", DAY)
    assert 0 <= default_seed(PORT, DAY) < 2**63


def test_selection_probabilities() -> None:
    cands, scores = candidate_frame(60), distinct_scores(60)
    alerts = alert_hits({"M001": (3, ["Alert"])})
    rules = rule_hits({"M002": 5.0, "M003": 6.0})
    selection = run(cands, scores, alerts=alerts, rules=rules, req=request(20, exploration_share=0.2, seed=3))
    probabilities = dict(selection.selected.select("source", "selection_probability").unique().iter_rows())
    # 1 watchlist + 4 random reserved + 2 rules + 13 model = 20; 60 - 16 = 44 eligible for 4 random slots
    assert probabilities == {"WATCHLIST": 1.0, "RULE": 1.0, "MODEL": 1.0, "RANDOM": 4 / 44}


# --------------------------------------------------------------------------- ties, validation


def test_ties_break_by_container_number() -> None:
    cands = candidate_frame(10).reverse()
    scores = np.full(10, 0.5)
    selection = run(cands, scores, req=request(4, exploration_share=0.0))
    containers = sorted(cands.get_column("container_number").to_list())
    assert selection.selected.get_column("container_number").to_list() == containers[:4]
    assert selection.deferred.get_column("container_number").to_list() == containers[4:]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_rejected_naming_the_manifests(bad: float) -> None:
    cands, scores = candidate_frame(10), distinct_scores(10)
    scores[7], scores[3] = bad, bad
    with pytest.raises(ValueError, match=r"^non-finite scores for manifest ids: M003, M007$"):
        run(cands, scores)


def test_scores_must_align_with_candidates() -> None:
    with pytest.raises(ValueError, match="one value per candidate"):
        run(candidate_frame(10), distinct_scores(9))


def test_repeated_manifest_ids_are_rejected() -> None:
    cands = pl.concat([candidate_frame(3), candidate_frame(3).head(1)])
    with pytest.raises(ValueError, match="candidates repeat manifest ids: M000"):
        run(cands, distinct_scores(4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nii_capacity": 5, "physical_capacity": 4}, r"must equal capacity \(5 \+ 4 != 10\)"),
        ({"nii_capacity": 5}, "give both nii_capacity and physical_capacity, or neither"),
        ({"exploration_share": 1.5}, r"exploration_share must be a number in \[0, 1\]"),
        ({"seed": -1}, "seed must be an integer"),
    ],
)
def test_bad_requests_are_rejected(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        run(candidate_frame(20), distinct_scores(20), req=request(10, **kwargs))


def test_policy_config_is_frozen_and_validated() -> None:
    assert CONFIG == PolicyConfig(exploration_share=0.10, max_rule_share=0.50, max_reasons=5, model_reasons=5)
    with pytest.raises(ValueError, match="max_rule_share"):
        PolicyConfig(max_rule_share=1.2)
    with pytest.raises(AttributeError):
        CONFIG.max_rule_share = 0.3  # type: ignore[misc]


# --------------------------------------------------------------------------- deferred, exams


def test_deferred_list_is_complete_and_sorted() -> None:
    cands, scores = candidate_frame(40), distinct_scores(40)
    rules = rule_hits({f"M{i:03d}": 1.0 + i for i in range(12)})
    selection = run(cands, scores, alerts=alert_hits({"M039": (1, ["A"])}), rules=rules, req=request(10))
    chosen, deferred = set(ids(selection.selected)), set(ids(selection.deferred))
    assert chosen.isdisjoint(deferred)
    assert chosen | deferred == set(ids(cands))
    assert selection.candidate_count == 40
    expected = selection.deferred.sort(["score", "container_number"], descending=[True, False])
    assert selection.deferred.equals(expected)
    marked = dict(selection.deferred.select("manifest_id", "source_if_selected").iter_rows())
    assert {m for m, s in marked.items() if s == "RULE"} == {f"M{i:03d}" for i in range(12)} & deferred
    assert set(marked.values()) <= {"RULE", "MODEL"}


def test_physical_exams_go_to_the_highest_risk_items() -> None:
    cands = candidate_frame(20)
    scores = np.linspace(0.01, 0.2, 20)
    scores[0], scores[1], scores[2] = 0.95, 0.02, 0.03
    alerts = alert_hits({"M000": (2, ["low"]), "M001": (5, ["critical"]), "M002": (5, ["critical too"])})
    selection = run(cands, scores, alerts=alerts, req=request(8, nii_capacity=4, physical_capacity=4, exploration_share=0.0))
    exams = dict(selection.selected.select("manifest_id", "exam_type").iter_rows())
    physical = {m for m, e in exams.items() if e == "PHYSICAL"}
    # severity 5 hits first (whatever their score), then the severity 2 hit, then the best model score
    assert physical == {"M001", "M002", "M000", "M019"}
    assert sorted(e for e in exams.values()) == ["NII"] * 4 + ["PHYSICAL"] * 4


def test_exam_type_is_none_without_a_split() -> None:
    selection = run(candidate_frame(20), distinct_scores(20))
    assert selection.selected.get_column("exam_type").null_count() == selection.selected.height


# --------------------------------------------------------------------------- reasons and the record


def provenance() -> dict:
    return {
        "decision_at": DECISION,
        "model_name": "ccp-risk",
        "model_version": "3",
        "model_artifact_sha256": "a" * 64,
        "ruleset_version": 7,
        "input_data_sha256": "b" * 64,
    }


def test_compose_reasons_orders_deduplicates_and_limits() -> None:
    assert compose_reasons(["W1", "W2"], ["R1", " w1. "], ["M1", "M2", "M3"]) == ("W1", "W2", "R1", "M1", "M2")
    assert compose_reasons([], [], ["M1", "m1", "", "M2"], limit=5) == ("M1", "M2")
    assert compose_reasons(["W"], ["R"], ["M"], limit=0) == ()


def test_item_reasons_put_watchlist_first_then_rules_then_model_at_most_five() -> None:
    cands, scores = candidate_frame(10), distinct_scores(10)
    alerts = alert_hits({"M004": (5, ["Consignee linked to a 2023 seizure in Antwerp", "Vessel of interest"])})
    rules = rule_hits({"M004": 30.0})
    selection = run(cands, scores, alerts=alerts, rules=rules, req=request(2, exploration_share=0.0))
    model = {m: [f"Model reason {i}" for i in range(5)] for m in selection.manifest_ids}
    record = build_inspection_list(selection, request=request(2, exploration_share=0.0), model_reasons=model, **provenance())
    item = record.items[0]
    assert item.manifest_id == "M004" and item.source == "WATCHLIST"
    assert item.reasons == (
        "Watchlist alert (severity 5/5): Consignee linked to a 2023 seizure in Antwerp",
        "Watchlist alert: Vessel of interest",
        "Rule reason for M004.",
        "Model reason 0",
        "Model reason 1",
    )
    assert all(len(i.reasons) <= 5 for i in record.items)


def test_alert_severities_are_shown_per_reason_when_given() -> None:
    cands, scores = candidate_frame(5), distinct_scores(5)
    alerts = alert_hits({"M001": (4, ["A", "B"])}).with_columns(pl.Series("alert_severities", [[4, 2]]))
    selection = run(cands, scores, alerts=alerts, req=request(1, exploration_share=0.0))
    record = build_inspection_list(selection, request=request(1), model_reasons={"M001": []}, **provenance())
    assert record.items[0].reasons == ("Watchlist alert (severity 4/5): A", "Watchlist alert (severity 2/5): B")


def test_record_refuses_explanations_of_unselected_candidates() -> None:
    cands, scores = candidate_frame(10), distinct_scores(10)
    selection = run(cands, scores, req=request(3))
    reasons = {m: [] for m in selection.manifest_ids}
    unselected = ids(selection.deferred)[0]
    with pytest.raises(ValueError, match=f"not selected: {unselected}"):
        build_inspection_list(selection, request=request(3), model_reasons={**reasons, unselected: []}, **provenance())
    with pytest.raises(ValueError, match="model reasons missing"):
        build_inspection_list(selection, request=request(3), model_reasons={}, **provenance())


# --------------------------------------------------------------------------- end to end with a real booster

FEATURES = ["event_seal_mismatches", "consignee_days_since_first", "loading_port_finding_rate", "transshipment_dwell_max_hours", "value_per_kg_log_deviation"]


def synthetic_features(n: int, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame(
        {
            "manifest_id": [f"M{i:03d}" for i in range(n)],
            "container_number": [f"TSTU{(7 * i) % n:07d}" for i in range(n)],
            "event_seal_mismatches": rng.poisson(0.3, n).astype(float),
            "consignee_days_since_first": rng.exponential(300.0, n).round(),
            "loading_port_finding_rate": rng.beta(1.0, 40.0, n),
            "transshipment_dwell_max_hours": np.where(rng.random(n) < 0.4, -1.0, rng.exponential(60.0, n)),
            "value_per_kg_log_deviation": rng.normal(0.0, 0.7, n),
        }
    )
    logit = (
        -3.0
        + 2.0 * (frame["event_seal_mismatches"].to_numpy() > 0)
        + 1.5 * (frame["consignee_days_since_first"].to_numpy() < 30)
        + 1.5 * (frame["value_per_kg_log_deviation"].to_numpy() < -0.7)
        + 20.0 * frame["loading_port_finding_rate"].to_numpy()
    )
    labels = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(float)
    return frame, labels


@pytest.fixture(scope="module")
def booster():
    train, labels = synthetic_features(800, seed=1)
    model = RiskModel(n_estimators=40, num_leaves=7, min_child_samples=10, num_threads=1, seed=5)
    return model.fit(train.select(FEATURES), labels).booster_


@pytest.fixture(scope="module")
def day_features() -> pl.DataFrame:
    return synthetic_features(80, seed=2)[0]


def make_list(booster, features: pl.DataFrame, req: ListRequest) -> InspectionList:
    """What the engine does for one list: score, select, explain the selected rows only, record."""
    scores = predict_proba(booster, features, num_threads=1)
    alerts = alert_hits({"M010": (4, ["Shipper named in a WCO CENcomm alert"])})
    rules = rule_hits({"M020": 12.0, "M021": 8.0, "M030": 8.0})
    selection = select(features.select("manifest_id", "container_number"), scores, alert_hits=alerts, rule_hits=rules, request=req, config=CONFIG)
    reasons = model_reasons_for(booster, features, selection.manifest_ids, top=CONFIG.model_reasons)
    return build_inspection_list(selection, request=req, model_reasons=reasons, config=CONFIG, **provenance())


def test_same_inputs_give_an_identical_list(booster, day_features) -> None:
    req = request(12, nii_capacity=8, physical_capacity=4)
    first, second = make_list(booster, day_features, req), make_list(booster, day_features, req)
    assert first == second
    assert first.content_sha256() == second.content_sha256()
    assert list_from_dict(list_to_dict(first)).content_sha256() == first.content_sha256()
    assert [i.rank for i in first.items] == list(range(1, 13))
    assert [i.source for i in first.items][:1] == ["WATCHLIST"]
    assert all(1 <= len(i.reasons) <= 5 for i in first.items)
    assert len(first.items) + len(first.deferred) == first.candidate_count == 80


def test_row_order_does_not_change_the_list(booster, day_features) -> None:
    req = request(12)
    shuffled = day_features.sample(fraction=1.0, shuffle=True, seed=99)
    assert ids(shuffled) != ids(day_features)
    assert make_list(booster, shuffled, req).content_sha256() == make_list(booster, day_features, req).content_sha256()


def test_contributions_are_computed_for_the_selected_rows_only(booster, day_features, monkeypatch) -> None:
    calls: list[list[str]] = []
    real = risk_model.predict_contributions

    def recording(booster_, X):
        calls.append(X.get_column("manifest_id").to_list())
        return real(booster_, X)

    monkeypatch.setattr(risk_model, "predict_contributions", recording)
    record = make_list(booster, day_features, request(12))
    assert calls == [[i.manifest_id for i in record.items]]


# --------------------------------------------------------------------------- candidates


def manifest(manifest_id: str, **overrides) -> dict:
    row = {c: None for c in MANIFESTS.column_names}
    row.update(
        manifest_id=manifest_id,
        container_number="CSQU3054383",
        port_of_loading="ECGYE",
        transshipment_ports=[],
        port_of_discharge=PORT,
        filed_at=datetime(2024, 3, 1, tzinfo=UTC),
        etd=datetime(2024, 3, 2, tzinfo=UTC),
        eta=datetime(2024, 4, 10, 6, tzinfo=UTC),
    )
    row.update(overrides)
    return row


def manifests(*rows: dict) -> pl.LazyFrame:
    return pl.DataFrame(list(rows), schema=MANIFESTS.schema).lazy()


def due(frame: pl.LazyFrame, port: str, day: date) -> dict[str, str]:
    out = candidates_for(frame, port, day).collect()
    assert out.get_column("decision_at").to_list() == [datetime(day.year, day.month, day.day, tzinfo=UTC)] * out.height
    return dict(out.select("manifest_id", "call_type").iter_rows())


def test_candidates_are_discharges_on_the_day_filed_strictly_before_the_decision_time() -> None:
    frame = manifests(
        manifest("A"),
        manifest("B", eta=datetime(2024, 4, 11, tzinfo=UTC)),
        manifest("C", eta=datetime(2024, 4, 10, 23, 59, tzinfo=UTC)),
        manifest("D", filed_at=DECISION),
        manifest("E", filed_at=DECISION + timedelta(hours=1)),
        manifest("F", port_of_discharge="BEANR"),
        manifest("G", eta=DECISION - timedelta(microseconds=1)),
        manifest("H", filed_at=DECISION - timedelta(microseconds=1)),
    )
    assert due(frame, PORT, DAY) == {"A": "DISCHARGE", "C": "DISCHARGE", "H": "DISCHARGE"}
    out = candidates_for(frame, PORT, DAY).collect()
    assert out.columns == [*MANIFESTS.column_names, "decision_at", "call_type"]
    assert out.get_column("manifest_id").to_list() == ["A", "C", "H"]


def estimated_call(row: dict, port: str) -> datetime:
    """The documented estimate, recomputed independently: ETD + transit x great-circle share up to ``port``."""
    coords = {r["locode"]: (r["latitude"], r["longitude"]) for r in load_ports().iter_rows(named=True)}
    route = [row["port_of_loading"], *row["transshipment_ports"], row["port_of_discharge"]]
    legs = [float(haversine_km_np(*coords[a], *coords[b])) for a, b in zip(route, route[1:])]
    share = sum(legs[: route.index(port)]) / sum(legs)
    return row["etd"] + (row["eta"] - row["etd"]) * share


def test_transshipment_call_is_estimated_from_the_route_share() -> None:
    row = manifest(
        "T",
        port_of_loading="ECGYE",
        transshipment_ports=["PAMIT", "ESALG"],
        port_of_discharge="BEANR",
        etd=datetime(2024, 3, 2, 12, tzinfo=UTC),
        eta=datetime(2024, 4, 2, tzinfo=UTC),
    )
    # the same voyage filed after both calls is never a candidate
    frame = manifests(row, {**row, "manifest_id": "LATE", "filed_at": datetime(2024, 4, 1, tzinfo=UTC)})
    for port in ("PAMIT", "ESALG"):
        call = estimated_call(row, port)
        day = call.date()
        assert due(frame, port, day) == {"T": "TRANSSHIPMENT"}, port
        assert due(frame, port, day - timedelta(days=1)) == {}
        assert due(frame, port, day + timedelta(days=1)) == {}
    # Guayaquil -> Manzanillo (PA) is ~1,290 km of a ~10,000 km route: the call is a few days after ETD
    assert estimated_call(row, "PAMIT").date() == date(2024, 3, 6)


def test_transshipment_candidates_filed_at_or_after_the_decision_time_are_excluded() -> None:
    row = manifest("T", transshipment_ports=["PAMIT"], port_of_discharge="ESALG", eta=datetime(2024, 4, 1, tzinfo=UTC))
    call_day = estimated_call(row, "PAMIT").date()
    decision = datetime(call_day.year, call_day.month, call_day.day, tzinfo=UTC)
    assert due(manifests({**row, "filed_at": decision}), "PAMIT", call_day) == {}
    assert due(manifests({**row, "filed_at": decision - timedelta(seconds=1)}), "PAMIT", call_day) == {"T": "TRANSSHIPMENT"}


def test_transshipment_estimate_falls_back_to_legs_when_a_port_is_unknown() -> None:
    # ZZZZZ has no coordinates: the call at PAMIT (2 of 3 legs) is estimated at 2/3 of the transit
    row = manifest(
        "U",
        transshipment_ports=["ZZZZZ", "PAMIT"],
        port_of_discharge="ESALG",
        etd=datetime(2024, 3, 1, tzinfo=UTC),
        eta=datetime(2024, 3, 31, tzinfo=UTC),
        filed_at=datetime(2024, 2, 20, tzinfo=UTC),
    )
    assert due(manifests(row), "PAMIT", date(2024, 3, 21)) == {"U": "TRANSSHIPMENT"}
    assert due(manifests(row), "PAMIT", date(2024, 3, 20)) == {}


def test_a_discharge_port_listed_as_transshipment_is_a_discharge_only() -> None:
    row = manifest("V", transshipment_ports=[PORT])
    assert due(manifests(row), PORT, DAY) == {"V": "DISCHARGE"}


def test_candidates_do_not_depend_on_row_order() -> None:
    rows = [manifest(f"A{i}", eta=datetime(2024, 4, 10, i, tzinfo=UTC)) for i in range(6)]
    forward = candidates_for(manifests(*rows), PORT, DAY).collect()
    backward = candidates_for(manifests(*reversed(rows)), PORT, DAY).collect()
    assert forward.equals(backward)
