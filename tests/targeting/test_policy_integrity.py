"""Specification of the policy's INTEGRITY slice (targeting.policy): the most unusual seal/dwell traces the model left."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import polars as pl
import pytest

from features.integrity import fit_integrity_norms, integrity_details
from targeting.lists import ListRequest, list_from_dict, list_to_dict
from targeting.policy import PolicyConfig, build_inspection_list, select

DAY = date(2024, 4, 10)
DECISION = datetime(2024, 4, 10, tzinfo=timezone.utc)
CONFIG = PolicyConfig()
N = 100


def _candidates(n: int = N) -> pl.DataFrame:
    return pl.DataFrame({"manifest_id": [f"M{i:03d}" for i in range(n)], "container_number": [f"TSTU{i:07d}" for i in range(n)]})


def _scores(n: int = N) -> np.ndarray:
    return np.linspace(0.9, 0.01, n)  # M000 best, M099 worst


def _integrity(surprisal: dict[int, float], unusual: set[int], n: int = N) -> pl.DataFrame:
    values = np.zeros(n)
    for i, s in surprisal.items():
        values[i] = s
    return pl.DataFrame({"integrity_surprisal": values, "integrity_unusual": [i in unusual for i in range(n)]})


def _no_hits() -> tuple[pl.DataFrame, pl.DataFrame]:
    alerts = pl.DataFrame(schema={"manifest_id": pl.String, "alert_count": pl.Int64, "alert_max_severity": pl.Int64, "alert_reasons": pl.List(pl.String)})
    rules = pl.DataFrame(schema={"manifest_id": pl.String, "rule_codes": pl.List(pl.String), "rule_reasons": pl.List(pl.String), "rule_score": pl.Float64})
    return alerts, rules


def _select(candidates, scores, integrity, *, capacity=20, integrity_share=0.10, exploration_share=0.10, seed=11, version="7"):  # noqa: ANN001, ANN202
    alerts, rules = _no_hits()
    request = ListRequest(port="NLRTM", list_date=DAY, capacity=capacity, exploration_share=exploration_share, integrity_share=integrity_share, seed=seed)
    return select(candidates, scores, alert_hits=alerts, rule_hits=rules, request=request, config=CONFIG, integrity=integrity, model_version=version)


def _by_source(selection, source: str) -> list[str]:  # noqa: ANN001
    return selection.selected.filter(pl.col("source") == source).get_column("manifest_id").to_list()


def test_integrity_slots_go_to_the_most_unusual_candidates_the_model_did_not_take() -> None:
    # M001 is unusual but the model takes it anyway; M050, M070 and M090 are unusual and low-scored; M080 is rare but not unusual
    integrity = _integrity({1: 30.0, 50: 9.0, 70: 12.0, 80: 40.0, 90: 7.0}, unusual={1, 50, 70, 90})
    chosen = _select(_candidates(), _scores(), integrity)
    assert _by_source(chosen, "MODEL") == [f"M{i:03d}" for i in range(16)]  # 20 - 2 random - 2 integrity
    assert _by_source(chosen, "INTEGRITY") == ["M070", "M050"]  # by surprisal, after the model
    assert chosen.selected.get_column("source").to_list() == ["MODEL"] * 16 + ["INTEGRITY"] * 2 + ["RANDOM"] * 2
    integrity_rows = chosen.selected.filter(pl.col("source") == "INTEGRITY")
    assert integrity_rows.get_column("selection_probability").to_list() == [1.0, 1.0]  # chosen, never part of the random sample
    assert integrity_rows.get_column("integrity_surprisal").to_list() == [12.0, 9.0]
    assert chosen.integrity_share == 0.10


def test_the_random_slice_is_drawn_from_what_the_model_and_the_integrity_slice_left() -> None:
    integrity = _integrity({50: 9.0, 70: 12.0}, unusual={50, 70})
    chosen = _select(_candidates(), _scores(), integrity)
    randoms = chosen.selected.filter(pl.col("source") == "RANDOM")
    assert not set(randoms.get_column("manifest_id").to_list()) & {"M050", "M070"}
    assert randoms.get_column("selection_probability").to_list() == [pytest.approx(2 / (N - 18))] * 2


def test_only_unusual_candidates_get_an_integrity_slot_and_the_unused_slots_go_back_to_the_model() -> None:
    integrity = _integrity({60: 9.0, 80: 40.0}, unusual={60})  # M080 is the rarest but below the significance floor
    chosen = _select(_candidates(), _scores(), integrity)
    assert _by_source(chosen, "INTEGRITY") == ["M060"]
    assert _by_source(chosen, "MODEL") == [f"M{i:03d}" for i in range(17)]  # the 17th slot is the unused integrity slot
    assert "M080" not in chosen.manifest_ids or "M080" in _by_source(chosen, "RANDOM")
    none_unusual = _select(_candidates(), _scores(), _integrity({80: 40.0}, unusual=set()))
    assert _by_source(none_unusual, "INTEGRITY") == [] and len(_by_source(none_unusual, "MODEL")) == 18


def test_the_integrity_slice_does_not_depend_on_the_row_order() -> None:
    integrity = _integrity({30: 5.0, 50: 9.0, 70: 9.0, 90: 7.0}, unusual={30, 50, 70, 90})  # a tie at 9.0: container number decides
    frame = pl.concat([_candidates(), integrity, pl.DataFrame({"score": _scores()})], how="horizontal")
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    first = _select(frame.select("manifest_id", "container_number"), frame.get_column("score").to_numpy(), frame.select("integrity_surprisal", "integrity_unusual"))
    second = _select(shuffled.select("manifest_id", "container_number"), shuffled.get_column("score").to_numpy(), shuffled.select("integrity_surprisal", "integrity_unusual"))
    assert first.selected.equals(second.selected) and first.deferred.equals(second.deferred)
    assert _by_source(first, "INTEGRITY") == ["M050", "M070"]


def test_a_model_without_integrity_norms_gives_no_integrity_item_and_the_list_says_why() -> None:
    chosen = _select(_candidates(), _scores(), None, version="3")
    assert _by_source(chosen, "INTEGRITY") == [] and len(_by_source(chosen, "MODEL")) == 18
    assert any("No INTEGRITY items: model version 3 has no integrity norms" in w for w in chosen.warnings)
    assert chosen.selected.get_column("integrity_surprisal").null_count() == chosen.selected.height


def test_without_a_model_there_are_no_integrity_slots_and_the_free_slots_are_drawn_at_random() -> None:
    chosen = _select(_candidates(), None, _integrity({50: 9.0}, unusual={50}))
    assert set(chosen.selected.get_column("source").to_list()) == {"RANDOM"} and chosen.selected.height == 20
    assert not any("INTEGRITY" in w for w in chosen.warnings)


def test_an_integrity_share_of_zero_gives_the_list_without_the_slice() -> None:
    with_norms = _select(_candidates(), _scores(), _integrity({50: 9.0, 70: 12.0}, unusual={50, 70}), integrity_share=0.0)
    without = _select(_candidates(), _scores(), None, integrity_share=0.0)
    assert with_norms.manifest_ids == without.manifest_ids
    assert with_norms.selected.get_column("source").to_list() == without.selected.get_column("source").to_list()
    assert without.warnings == ()


def test_the_integrity_slots_count_is_rounded_half_up_and_capped_by_what_the_random_slice_left() -> None:
    integrity = _integrity({i: 10.0 + i for i in range(50, 100)}, unusual=set(range(50, 100)))
    assert len(_by_source(_select(_candidates(), _scores(), integrity, capacity=25), "INTEGRITY")) == 3  # 25 x 0.1 = 2.5 -> 3
    crowded = _select(_candidates(), _scores(), integrity, capacity=10, exploration_share=0.8, integrity_share=0.5)
    assert len(_by_source(crowded, "RANDOM")) == 8 and len(_by_source(crowded, "INTEGRITY")) == 2


def test_the_integrity_share_is_validated_like_the_exploration_share() -> None:
    for bad in (-0.1, 1.5, True, "0.1"):
        with pytest.raises(ValueError, match="integrity_share must be a number in"):
            ListRequest(port="NLRTM", list_date=DAY, capacity=5, integrity_share=bad)


def _reference(n: int, port: str, dwell: float, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {"seal_changes": [0] * n, "origin_dwell_hours": (dwell + rng.uniform(-10, 10, n)).tolist(), "transshipment_dwell_max_hours": [-1.0] * n,
         "port_of_loading": [port] * n, "transshipment_ports": [[] for _ in range(n)]},
        schema_overrides={"transshipment_ports": pl.List(pl.String), "seal_changes": pl.Int64},
    )


def test_an_integrity_item_is_recorded_with_its_components_and_an_officer_reason() -> None:
    norms = fit_integrity_norms(_reference(600, "CLSAI", 60.0, seed=1))
    rows = _reference(N, "CLSAI", 60.0, seed=2).with_columns(
        pl.when(pl.int_range(N) == 95).then(310.0).otherwise(pl.col("origin_dwell_hours")).alias("origin_dwell_hours"),
        pl.when(pl.int_range(N) == 97).then(2).otherwise(pl.col("seal_changes")).alias("seal_changes"),
    )
    details = integrity_details(norms, rows)
    chosen = _select(_candidates(), _scores(), details)
    assert _by_source(chosen, "INTEGRITY") == ["M097", "M095"] or _by_source(chosen, "INTEGRITY") == ["M095", "M097"]
    ids = _candidates().get_column("manifest_id").to_list()
    by_id = {m: row for m, row in zip(ids, details.iter_rows(named=True)) if m in set(chosen.manifest_ids)}
    record = build_inspection_list(
        chosen, request=ListRequest(port="NLRTM", list_date=DAY, capacity=20, seed=11), model_reasons={m: ["Model reason"] for m in chosen.manifest_ids},
        decision_at=DECISION, model_name="container-risk", model_version="7", model_artifact_sha256="a" * 64, ruleset_version=1,
        input_data_sha256="b" * 64, config=CONFIG, integrity=by_id,
    )
    items = {item.manifest_id: item for item in record.items}
    assert items["M097"].reasons[0] == "Seal replaced: 2 seal changes since loading (usual: none)"
    assert items["M095"].reasons[0].startswith("Stayed 310 h at the origin terminal CLSAI (usual ")
    assert items["M095"].reasons[-1] == "Model reason"
    assert items["M095"].integrity["components"]["origin_dwell_hours"]["value"] == 310.0
    assert items["M095"].integrity["components"]["origin_dwell_hours"]["reference"] == "CLSAI"
    assert items["M095"].integrity["p_value"] < 0.01
    assert items["M000"].source == "MODEL" and items["M000"].integrity is not None  # every item carries its integrity for audit
    assert not any(r.startswith("Seal replaced") or r.startswith("Stayed") for r in items["M000"].reasons)
    assert record.integrity_share == 0.10
    assert list_from_dict(list_to_dict(record)) == record


def test_a_list_recorded_before_the_integrity_slice_keeps_its_exact_json() -> None:
    chosen = _select(_candidates(), _scores(), None, integrity_share=0.0)
    record = build_inspection_list(
        chosen, request=ListRequest(port="NLRTM", list_date=DAY, capacity=20, seed=11), model_reasons={m: [] for m in chosen.manifest_ids},
        decision_at=DECISION, model_name="container-risk", model_version="7", model_artifact_sha256="a" * 64, ruleset_version=1,
        input_data_sha256="b" * 64, config=CONFIG,
    )
    old = {k: v for k, v in list_to_dict(record).items() if k != "integrity_share"}  # what a list stored before looks like
    assert "integrity" not in old["items"][0]
    assert list_to_dict(list_from_dict(old)) == old and list_from_dict(old).integrity_share is None
