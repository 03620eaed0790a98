"""Specification of party resolution (features.parties): one canonical party per real trader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from features.parties import apply_resolution, normalise_party_id, resolve_parties


FILED = datetime(2025, 3, 1, tzinfo=UTC)


def filed(n: int) -> list[datetime]:
    """Filing times of ``n`` manifests, one hour apart (the rows' order is their filing order)."""
    return [FILED + timedelta(hours=i) for i in range(n)]


def manifests(*consignees: tuple[str | None, str, str]) -> pl.DataFrame:
    """One manifest row per ``(consignee_id, consignee_name, country)``, filed in that order; one fixed shipper."""
    return pl.DataFrame(
        {
            "manifest_id": [f"M{i}" for i in range(len(consignees))],
            "filed_at": filed(len(consignees)),
            "shipper_id": ["CO900123456"] * len(consignees),
            "shipper_name": ["Café Andino S.A."] * len(consignees),
            "shipper_country": ["CO"] * len(consignees),
            "consignee_id": [c[0] for c in consignees],
            "consignee_name": [c[1] for c in consignees],
            "consignee_country": [c[2] for c in consignees],
        }
    )


@pytest.mark.parametrize(("raw", "expected"), [(" de-1234 5678 ", "DE12345678"), ("UNKNOWN", None), ("n/a", None), ("0000000", None), ("", None), (None, None)])
def test_identifiers_are_normalised_and_placeholders_are_no_identifier(raw: str | None, expected: str | None) -> None:
    assert normalise_party_id(raw) == expected


def test_spelling_variants_and_inconsistent_identifiers_resolve_to_one_party() -> None:
    frame = manifests(
        ("DE123456789012345", "Rheinkaffee Handels GmbH", "DE"),
        ("DE 1234 5678 9012 345", "RHEINKAFFEE HANDELS G.M.B.H.", "DE"),  # same EORI, other spacing and spelling
        ("47119-HRB-5521", "Rheinkaffee Handels Gesellschaft mit beschränkter Haftung", "DE"),  # another filer's id
        ("UNKNOWN", "Rheinkafee Handels GmbH", "DE"),  # placeholder id and a typo
        (None, "Handels Rheinkaffee GmbH", "DE"),  # no id, words transposed
        ("DE999999999999999", "Elbe Maschinenbau AG", "DE"),  # another trader
    )
    resolution = resolve_parties(frame)
    resolved = apply_resolution(frame.lazy(), resolution).collect()
    assert resolved["consignee_id"].to_list() == ["DE123456789012345"] * 5 + ["DE999999999999999"]
    assert resolved["shipper_id"].unique().to_list() == ["CO900123456"]
    assert resolved.drop("consignee_id").equals(frame.drop("consignee_id"))


def test_every_linkage_decision_is_kept_and_explainable() -> None:
    frame = manifests(
        ("DE123456789012345", "Rheinkaffee Handels GmbH", "DE"),
        ("DE123456789012345", "Rheinkaffee Handels GmbH", "DE"),
        ("47119-HRB-5521", "RHEINKAFFEE HANDELS GMBH", "DE"),
        ("UNKNOWN", "Rheinkafee Handels GmbH", "DE"),
    )
    resolution = resolve_parties(frame)
    first = resolution.explain("DE123456789012345", "Rheinkaffee Handels GmbH", "DE")
    other = resolution.explain("47119-HRB-5521", "RHEINKAFFEE HANDELS GMBH", "DE")
    assert (first["method"], other["method"]) == ("new", "name")  # the first filed founded the party, the other joined it by name
    assert first["canonical_id"] == other["canonical_id"] == "DE123456789012345"  # the founder's identifier
    assert (other["matched_id"], other["matched_name"]) == ("DE123456789012345", "Rheinkaffee Handels GmbH")
    assert (first["rows"], other["rows"]) == (2, 1)
    assert (other["first_manifest_id"], other["first_filed_at"]) == ("M2", FILED + timedelta(hours=2))
    fuzzy = resolution.explain("UNKNOWN", "Rheinkafee Handels GmbH", "DE")
    assert fuzzy["method"] == "fuzzy-name" and 90.0 <= fuzzy["similarity"] < 100.0
    assert fuzzy["matched_name"] in ("Rheinkaffee Handels GmbH", "RHEINKAFFEE HANDELS GMBH")
    assert set(resolution.links.columns) == {
        "raw_id", "raw_name", "country", "canonical_id", "method", "similarity", "matched_id", "matched_name", "first_filed_at", "first_manifest_id", "rows",
    }


def test_different_identifiers_with_merely_similar_names_stay_apart() -> None:
    frame = manifests(("ID-1", "Andean Coffee Exporters SA", "CO"), ("ID-2", "Andean Cofee Exporter SA", "CO"))
    resolved = apply_resolution(frame.lazy(), resolve_parties(frame)).collect()
    assert resolved["consignee_id"].to_list() == ["ID1", "ID2"]


def test_same_name_in_another_country_is_another_party() -> None:
    frame = manifests((None, "Global Parts Ltd", "GB"), (None, "Global Parts Limited", "GB"), (None, "Global Parts Ltd", "IE"))
    resolved = apply_resolution(frame.lazy(), resolve_parties(frame)).collect()
    assert resolved["consignee_id"].to_list() == ["NAME:GB:GLOBAL PARTS LTD", "NAME:GB:GLOBAL PARTS LTD", "NAME:IE:GLOBAL PARTS LTD"]
    assert resolve_parties(frame).parties == 3  # the shipper, and Global Parts in GB and in IE


def test_resolution_does_not_depend_on_row_order() -> None:
    frame = manifests(
        ("DE123456789012345", "Rheinkaffee Handels GmbH", "DE"),
        ("UNKNOWN", "Rheinkafee Handels GmbH", "DE"),
        ("47119-HRB-5521", "RHEINKAFFEE HANDELS GMBH", "DE"),
    )
    forward = resolve_parties(frame).links
    backward = resolve_parties(frame.reverse()).links
    assert forward.equals(backward)


def test_same_name_under_different_identifiers_merges_only_with_a_shared_counterparty() -> None:
    frame = pl.DataFrame(
        {
            "manifest_id": ["M0", "M1", "M2"],
            "filed_at": filed(3),
            "shipper_id": ["S1", "S2", "S1"],
            "shipper_name": ["Andes Fresh Produce S.A.", "Pacific Timber Ltd", "ANDES FRESH PRODUCE SA"],
            "shipper_country": ["CO", "NZ", "CO"],
            "consignee_id": ["DE-0001", "DE-0002", "FXK31"],
            "consignee_name": ["Nordsee Frucht GmbH", "Nordsee Frucht GmbH", "NORDSEE FRUCHT G.M.B.H."],
            "consignee_country": ["DE", "DE", "DE"],
        }
    )
    resolved = apply_resolution(frame.lazy(), resolve_parties(frame)).collect()
    # two real traders share the name; the third record (another filer's code) buys from the first one's supplier
    assert resolved["consignee_id"].to_list() == ["DE0001", "DE0002", "DE0001"]


def test_entity_history_reads_canonical_parties_on_both_scoring_paths() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from feature_samples import DAY, T, candidates, features, history, manifest  # both the batch and the state path

    earlier = [
        manifest(manifest_id=f"H{i}", container_number="TEXU3070079", filed_at=T - (10 + i) * DAY, booked_at=T - (11 + i) * DAY, etd=T - (9 + i) * DAY, eta=T - i * DAY)
        for i in range(3)
    ]
    # the candidate's filer wrote the consignee with a placeholder identifier and its own spelling
    own = manifest(consignee_id="UNKNOWN", consignee_name="FRESH IMPORT B.V.")
    feats = features(candidates(own), history([own, *earlier]))
    assert feats["consignee_n_prior"].to_list() == [3.0]


def test_simulated_filer_variants_fragment_history_and_resolution_repairs_most_of_it() -> None:
    from targeting.sim.world import WorldConfig, simulate_world

    truth = simulate_world(WorldConfig(days=5, containers_per_day=100)).manifests
    declared = simulate_world(WorldConfig(days=5, containers_per_day=100, spelling_variant_rate=0.3)).manifests
    party_columns = [f"{r}_{c}" for r in ("shipper", "consignee", "notify") for c in ("id", "name")]
    assert declared.drop(party_columns).equals(truth.drop(party_columns))  # the variants touch the party columns only
    resolved = apply_resolution(declared.lazy(), resolve_parties(declared)).collect()
    true_n, declared_n, resolved_n = (f["consignee_id"].n_unique() for f in (truth, declared, resolved))
    assert declared_n > 1.3 * true_n
    assert abs(resolved_n - true_n) < 0.25 * (declared_n - true_n)


def test_reference_parties_command_writes_the_links_table_of_a_lake(tmp_path) -> None:  # noqa: ANN001
    from datetime import datetime, timezone
    from pathlib import Path

    from typer.testing import CliRunner

    from features.data.ingest import ingest
    from features.data.lake import Lake
    from targeting.cli import _register, app

    cuscar = Path(__file__).resolve().parent / "data" / "cuscar-bogota-duisburg.edi"
    ingest(Lake(tmp_path / "lake"), "manifests", [cuscar], now=datetime(2025, 8, 26, tzinfo=timezone.utc))
    _register()
    out = tmp_path / "links.csv"
    result = CliRunner().invoke(app, ["reference", "parties", "--lake", str(tmp_path / "lake"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    links = pl.read_csv(out)
    assert sorted(links["canonical_id"].to_list()) == ["CO900123456", "DE123456789012345"]
    assert set(links.columns) >= {"raw_id", "raw_name", "canonical_id", "method", "similarity"}
    missing = CliRunner().invoke(app, ["reference", "parties", "--lake", str(tmp_path / "nope"), "--out", str(out)])
    assert missing.exit_code == 2
