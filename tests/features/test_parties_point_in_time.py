"""Party resolution is point in time: later manifests never change an earlier record's canonical party or features.

Real data throughout: a simulated world whose filers spell parties many ways
(targeting.sim.spelling), plus hand-built manifests that a later filing would
bridge, resolved by features.parties and featurised by features.pipeline.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.data.contracts import INSPECTION_OUTCOMES, MANIFESTS
from features.parties import apply_resolution, resolve_parties, resolve_parties_uncached

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feature_samples import DAY, HOUR, T, build_features, hand_stats, history, manifest, manifests  # noqa: E402

DECISION_COLUMNS = ["canonical_id", "method", "similarity", "matched_id", "matched_name", "first_filed_at", "first_manifest_id"]


@pytest.fixture(scope="module")
def world():  # noqa: ANN201
    from targeting.sim.world import WorldConfig, simulate_world

    return simulate_world(WorldConfig(days=8, containers_per_day=80, spelling_variant_rate=0.3))


def bridged_pair() -> tuple[list[dict], list[dict]]:
    """Two spellings of one consignee filed before :data:`T` that a manifest filed after ``T`` bridges.

    Before ``T``: ``Nordsee Frucht GmbH`` (id DE-0001) buys three times from Andes Fresh; another filer
    writes the trader ``NORDSEE FRUCHT G.M.B.H.`` under its own code FXK31, on a manifest from another
    shipper (no partner in common yet: two parties). After ``T``: FXK31 appears on a manifest from Andes
    Fresh, which a resolution over all manifests reads as proof that FXK31 and DE-0001 are one trader.
    """
    andes = {"shipper_id": "S-ANDES", "shipper_name": "Andes Fresh Produce S.A.", "shipper_country": "CO"}
    pacific = {"shipper_id": "S-PAC", "shipper_name": "Pacific Timber Ltd", "shipper_country": "EC"}
    first = {"consignee_id": "DE-0001", "consignee_name": "Nordsee Frucht GmbH", "consignee_country": "DE"}
    other = {"consignee_id": "FXK31", "consignee_name": "NORDSEE FRUCHT G.M.B.H.", "consignee_country": "DE"}
    before = [
        *(manifest(manifest_id=f"NF{i}", filed_at=T - (20 - i) * DAY, booked_at=T - 30 * DAY, etd=T - 5 * DAY, eta=T - 2 * DAY, **andes, **first) for i in range(3)),
        manifest(manifest_id="FX1", filed_at=T - 2 * DAY, booked_at=T - 3 * DAY, etd=T + DAY, eta=T + 6 * DAY, **pacific, **other),
    ]
    after = [manifest(manifest_id="FX2", filed_at=T + HOUR, booked_at=T, etd=T + 2 * DAY, eta=T + 9 * DAY, **andes, **other)]
    return before, after


def world_manifests(world, shift: timedelta) -> pl.DataFrame:  # noqa: ANN001
    """The world's manifests (contract columns), moved in time so that :data:`T` falls inside them."""
    frame = world.manifests.select(MANIFESTS.column_names)
    return frame.with_columns(pl.col(c) + shift for c in ("booked_at", "filed_at", "amended_at", "etd", "eta"))


def split_world(world) -> tuple[pl.DataFrame, pl.DataFrame]:  # noqa: ANN001
    """The world's manifests filed by :data:`T` (its middle filing time) and those filed after it."""
    frame = world_manifests(world, timedelta(0))
    middle = frame["filed_at"].sort()[frame.height // 2]
    frame = world_manifests(world, T - middle)
    return frame.filter(pl.col("filed_at") <= T), frame.filter(pl.col("filed_at") > T)


def world_outcomes(world) -> pl.DataFrame:  # noqa: ANN001
    """The world's inspection outcomes, moved in time like :func:`split_world` moves its manifests."""
    frame = world_manifests(world, timedelta(0))
    shift = T - frame["filed_at"].sort()[frame.height // 2]
    return world.outcomes.select(INSPECTION_OUTCOMES.column_names).with_columns(pl.col("inspected_at") + shift)


def test_records_filed_later_never_change_the_canonical_party_of_earlier_records(world) -> None:  # noqa: ANN001
    early, late = split_world(world)
    before, after = bridged_pair()
    known = pl.concat([early, manifests(*before)])
    everything = pl.concat([known, late, manifests(*after)])
    then = resolve_parties_uncached(known).links
    now = resolve_parties_uncached(everything).links
    assert now.height > then.height and late.height > 0
    assert_frame_equal(now.join(then.select(["raw_id", "raw_name", "country"]), on=["raw_id", "raw_name", "country"], how="semi", nulls_equal=True).select(DECISION_COLUMNS), then.select(DECISION_COLUMNS))
    bridge = resolve_parties_uncached(everything)
    assert bridge.explain("FXK31", "NORDSEE FRUCHT G.M.B.H.", "DE")["canonical_id"] == "FXK31"  # still its own party
    assert bridge.explain("DE-0001", "Nordsee Frucht GmbH", "DE")["canonical_id"] == "DE0001"


def test_features_of_rows_decided_by_t_do_not_change_when_later_manifests_arrive(world) -> None:  # noqa: ANN001
    early, late = split_world(world)
    before, after = bridged_pair()
    known = pl.concat([early, manifests(*before)])
    everything = pl.concat([known, late, manifests(*after)])
    # every row filed by T is scored at T (batch path), and each at one hour after its filing (batch path again)
    at_t = known.with_columns(pl.lit(T, dtype=pl.Datetime("us", "UTC")).alias("decision_at"))
    at_filing = known.with_columns((pl.col("filed_at") + HOUR).clip(upper_bound=T).alias("decision_at"))
    stats, seen = hand_stats(), world_outcomes(world)
    assert seen.height > 0
    for cands in (at_t, at_filing):
        then = build_features(cands, history(known, outcome_rows=seen), stats)
        now = build_features(cands, history(everything, outcome_rows=seen), stats)
        assert_frame_equal(now, then)
    fx1 = build_features(at_t.filter(pl.col("manifest_id") == "FX1"), history(everything, outcome_rows=seen), stats)
    assert fx1["consignee_n_prior"].to_list() == [0.0]  # the later bridge does not lend FX1 Nordsee Frucht's history


def test_entity_state_at_t_gives_the_same_features_whatever_was_filed_after_t(world) -> None:  # noqa: ANN001
    from features.pipeline import entity_state

    early, late = split_world(world)
    before, after = bridged_pair()
    known = pl.concat([early, manifests(*before)])
    everything = pl.concat([known, late, manifests(*after)])
    cands = known.filter(pl.col("eta") > T).with_columns(pl.lit(T, dtype=pl.Datetime("us", "UTC")).alias("decision_at"))
    assert cands.height > 10
    stats, seen = hand_stats(), world_outcomes(world)
    then = build_features(cands, history(known, outcome_rows=seen), stats, state=entity_state(history(known, outcome_rows=seen), T))
    now = build_features(cands, history(everything, outcome_rows=seen), stats, state=entity_state(history(everything, outcome_rows=seen), T))
    assert_frame_equal(now, then)
    assert_frame_equal(now, build_features(cands, history(everything, outcome_rows=seen), stats))  # serving equals training


def test_resolution_does_not_depend_on_the_order_of_manifest_rows(world) -> None:  # noqa: ANN001
    frame = world_manifests(world, timedelta(0))
    forward = resolve_parties_uncached(frame)
    shuffled = resolve_parties_uncached(frame.sample(fraction=1.0, shuffle=True, seed=7))
    assert_frame_equal(forward.links, shuffled.links)
    resolved = apply_resolution(frame.lazy(), forward).collect()
    reshuffled = apply_resolution(frame.reverse().lazy(), shuffled).collect().reverse()
    assert_frame_equal(resolved, reshuffled)


def test_resolution_is_deterministic_and_the_memoised_result_equals_a_fresh_one(world) -> None:  # noqa: ANN001
    frame = world_manifests(world, timedelta(0))
    first, second = resolve_parties_uncached(frame).links, resolve_parties_uncached(frame).links
    assert_frame_equal(first, second)
    assert_frame_equal(resolve_parties(frame).links, first)
    assert set(first["method"].unique().to_list()) == {"new", "id", "name", "fuzzy-name"}  # every rule is exercised
    assert first["first_filed_at"].is_sorted()  # records are listed in the order they were placed


def test_same_filing_time_is_ordered_by_manifest_id() -> None:
    shipper = {"shipper_id": "S1", "shipper_name": "Andes Fresh Produce S.A.", "shipper_country": "CO"}
    rows = [
        manifest(manifest_id="B", consignee_id="X-2", consignee_name="NORDSEE FRUCHT GMBH", consignee_country="DE", **shipper),
        manifest(manifest_id="A", consignee_id="X-1", consignee_name="Nordsee Frucht GmbH", consignee_country="DE", **shipper),
    ]
    links = resolve_parties_uncached(manifests(*rows))
    joined = links.explain("X-2", "NORDSEE FRUCHT GMBH", "DE")
    assert (joined["canonical_id"], joined["method"], joined["matched_id"]) == ("X1", "name", "X-1")


def test_resolution_without_filing_times_is_refused_naming_the_column() -> None:
    frame = manifests(manifest()).drop("filed_at")
    with pytest.raises(ValueError, match="filed_at"):
        resolve_parties_uncached(frame)
