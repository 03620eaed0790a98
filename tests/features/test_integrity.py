"""Specification of the container integrity surprisal (features.integrity)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from features.integrity import _reference, fit_integrity_norms, integrity_surprisal, reference_from_ranks


def _rows(n: int, port: str, dwell: float, *, hub: str | None = None, hub_dwell: float = -1.0, seals: int = 0, jitter: float = 10.0, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "seal_changes": [seals] * n,
            "origin_dwell_hours": (dwell + rng.uniform(-jitter, jitter, n)).tolist(),
            "transshipment_dwell_max_hours": ((hub_dwell + rng.uniform(0, jitter, n)) if hub else np.full(n, -1.0)).tolist(),
            "port_of_loading": [port] * n,
            "transshipment_ports": [[hub] if hub else [] for _ in range(n)],
        },
        schema_overrides={"transshipment_ports": pl.List(pl.String), "seal_changes": pl.Int64},
    )


@pytest.fixture(scope="module")
def reference() -> pl.DataFrame:
    # port A keeps containers ~3 days, port B ~10 days; half of A's traffic goes through hub H (~2 days there)
    return pl.concat([_rows(400, "AAAAA", 72, seed=1), _rows(400, "AAAAA", 72, hub="HHHHH", hub_dwell=48, seed=2), _rows(400, "BBBBB", 240, seed=3)])


def test_ordinary_rows_score_low_and_a_seal_change_or_an_abnormal_dwell_scores_high(reference):
    norms = fit_integrity_norms(reference)
    ordinary = _rows(5, "AAAAA", 72, seed=9)
    resealed = _rows(1, "AAAAA", 72, seals=1, jitter=0.1)
    long_stay = _rows(1, "AAAAA", 400, jitter=0.1)
    stuffed_outside = _rows(1, "AAAAA", 2, jitter=0.1)  # gate-in just before loading
    long_at_hub = _rows(1, "AAAAA", 72, hub="HHHHH", hub_dwell=300, jitter=0.1)
    scores = {name: integrity_surprisal(norms, frame) for name, frame in [("ordinary", ordinary), ("resealed", resealed), ("long", long_stay), ("outside", stuffed_outside), ("hub", long_at_hub)]}
    assert scores["ordinary"].max() < 3.0
    for name in ("resealed", "long", "outside", "hub"):
        assert scores[name][0] > 5.0, name  # rarer than 1 in ~150 of its reference


def test_dwell_is_judged_against_the_norm_of_its_own_port_of_loading(reference):
    norms = fit_integrity_norms(reference)
    ten_days = _rows(1, "BBBBB", 240, jitter=0.1)
    same_at_a = _rows(1, "AAAAA", 240, jitter=0.1)
    assert integrity_surprisal(norms, ten_days)[0] < 2.0  # ordinary at B
    assert integrity_surprisal(norms, same_at_a)[0] > 5.0  # very long at A
    unknown_port = _rows(1, "ZZZZZ", 240, jitter=0.1)  # no norm of its own: judged against all ports
    assert 0 < integrity_surprisal(norms, unknown_port)[0] < integrity_surprisal(norms, same_at_a)[0]


def test_unknown_values_add_nothing_and_the_score_is_row_for_row(reference):
    norms = fit_integrity_norms(reference)
    unknown = _rows(3, "AAAAA", -1, jitter=0.0)  # no event yet: dwell -1, no hub
    assert integrity_surprisal(norms, unknown).tolist() == [0.0, 0.0, 0.0]
    mixed = pl.concat([_rows(1, "AAAAA", 400, jitter=0.1), unknown.head(1)])
    assert integrity_surprisal(norms, mixed)[1] == 0.0 and integrity_surprisal(norms, mixed)[0] == integrity_surprisal(norms, mixed.head(1))[0]


def test_norms_name_a_missing_column():
    with pytest.raises(ValueError, match="port_of_loading"):
        fit_integrity_norms(pl.DataFrame({"seal_changes": [0], "origin_dwell_hours": [1.0], "transshipment_dwell_max_hours": [-1.0], "transshipment_ports": [[]]}))


def test_norms_round_trip_through_their_json_exactly_and_the_text_is_deterministic(reference):
    from features.integrity import IntegrityNorms

    norms = fit_integrity_norms(reference)
    text = norms.to_json()
    again = IntegrityNorms.from_json(text)
    assert again.to_json() == text == fit_integrity_norms(reference.reverse()).to_json()  # row order does not matter
    probe = pl.concat([_rows(3, "AAAAA", 72, seed=5), _rows(1, "AAAAA", 400, jitter=0.1), _rows(1, "BBBBB", 240, hub="HHHHH", hub_dwell=300, jitter=0.1)])
    assert integrity_surprisal(again, probe).tolist() == integrity_surprisal(norms, probe).tolist()


def test_norms_json_of_another_format_or_version_is_refused_with_what_is_wrong(reference):
    import json

    from features.integrity import IntegrityNorms

    data = json.loads(fit_integrity_norms(reference).to_json())
    with pytest.raises(ValueError, match="version 99 is not supported"):
        IntegrityNorms.from_json(json.dumps({**data, "version": 99}))
    with pytest.raises(ValueError, match="not integrity norms"):
        IntegrityNorms.from_json(json.dumps({**data, "format": "calibrator"}))
    data["components"]["seal_changes"][0]["quantiles"] = [3.0, 1.0]
    with pytest.raises(ValueError, match="'seal_changes', group None is not a sorted quantile grid"):
        IntegrityNorms.from_json(json.dumps(data))


def test_one_significant_trace_makes_a_row_unusual_after_correcting_for_the_components_measured(reference):
    from features.integrity import integrity_details, integrity_reasons

    norms = fit_integrity_norms(reference)
    frame = pl.concat([_rows(20, "AAAAA", 72, seed=9), _rows(1, "AAAAA", 72, seals=1, jitter=0.1), _rows(1, "AAAAA", 72, hub="HHHHH", hub_dwell=300, jitter=0.1),
                       _rows(1, "AAAAA", 2, jitter=0.1), _rows(1, "AAAAA", -1, jitter=0.0)])
    details = integrity_details(norms, frame)
    assert details.get_column("integrity_unusual").to_list() == [False] * 20 + [True, True, True, False]
    assert details.get_column("integrity_surprisal").to_list() == integrity_surprisal(norms, frame).tolist()
    p = details.get_column("integrity_p_value").to_numpy()
    assert (p[:20] >= 0.01).all() and (p[20:23] < 0.01).all() and p[23] == 1.0  # nothing measured on the last: p 1
    reasons = [integrity_reasons(row) for row in details.iter_rows(named=True)]
    assert reasons[20] == ["Seal replaced: 1 seal change since loading (usual: none)"]
    assert reasons[21][0].startswith("Stayed 300 h at a transshipment hub (usual up to ") and reasons[21][0].endswith(" h via HHHHH)")
    assert reasons[22][0].startswith("Gate-in only 2 h before loading at AAAAA (usual ")
    assert reasons[23] == []


@pytest.mark.parametrize("seed", range(6))
def test_a_reference_built_from_the_sorted_values_at_its_grid_ranks_equals_numpys_quantiles_bit_for_bit(seed: int) -> None:
    """What the cluster path builds from selected order statistics (no array of all values) is NumPy's quantile grid."""
    rng = np.random.default_rng(seed)
    for n in (1, 2, 3, 999, 1000, 1001, 1002, int(rng.integers(5, 20_000))):
        values = rng.choice([rng.normal(50.0, 30.0, n), rng.integers(0, 4, n).astype(float), rng.lognormal(3.0, 2.0, n)])
        ordered = np.sort(values)
        rebuilt = reference_from_ranks(n, lambda ranks: ordered[ranks])  # noqa: B023 - called at once
        expected = _reference(values)
        assert rebuilt.rows == expected.rows and np.array_equal(rebuilt.quantiles, expected.quantiles)
