"""Specification of party-name normalisation and similarity (features.names)."""

from __future__ import annotations

import pytest

from features.names import normalise_party_name, party_similarity, strip_legal_forms


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("Acme Trading Ltd.", "ACME TRADING LTD"),
        ("ACME TRADING LIMITED", "ACME TRADING LTD"),
        ("acme  trading   ltd", "ACME TRADING LTD"),
        ("Café Andino S.A.", "CAFE ANDINO SA"),
        ("CAFE ANDINO SOCIEDAD ANONIMA", "CAFE ANDINO SA"),
        ("Cafe Andino S. A.", "CAFE ANDINO SA"),
        ("Café Andino, SA", "CAFE ANDINO SA"),
        ("Transportes del Sur S.A.S.", "TRANSPORTES DEL SUR SAS"),
        ("Müller & Söhne G.m.b.H.", "MULLER AND SOHNE GMBH"),
        ("MUELLER UND SOEHNE GMBH", "MUELLER AND SOEHNE GMBH"),
        ("Rotterdam Freight B.V.", "ROTTERDAM FREIGHT BV"),
        ("Rotterdam Freight Besloten Vennootschap", "ROTTERDAM FREIGHT BV"),
        ("Ningbo Ocean Co., Ltd.", "NINGBO OCEAN CO LTD"),
        ("NINGBO OCEAN COMPANY LIMITED", "NINGBO OCEAN CO LTD"),
        ("Global Parts Inc.", "GLOBAL PARTS INC"),
        ("GLOBAL PARTS INCORPORATED", "GLOBAL PARTS INC"),
        ("Bay Logistics, L.L.C.", "BAY LOGISTICS LLC"),
        ("Bay Logistics Limited Liability Company", "BAY LOGISTICS LLC"),
        ("Le Comptoir S.A.R.L.", "LE COMPTOIR SARL"),
        ("Le Comptoir Société à responsabilité limitée", "LE COMPTOIR SARL"),
        ("Lopez Hermanos y Cía. Ltda.", "LOPEZ HERMANOS AND CIA LTDA"),
        ("LOPEZ HERMANOS Y COMPANIA LIMITADA", "LOPEZ HERMANOS AND CIA LTDA"),
        ("O'Neil Imports", "ONEIL IMPORTS"),
        ("Straße Handel", "STRASSE HANDEL"),
        ("", ""),
    ],
)
def test_normalise_party_name_maps_spelling_variants_to_one_form(variant: str, canonical: str) -> None:
    assert normalise_party_name(variant) == canonical


def test_normalisation_is_idempotent() -> None:
    for name in ("Café Andino S.A.", "Müller & Söhne G.m.b.H.", "Ningbo Ocean Co., Ltd."):
        once = normalise_party_name(name)
        assert normalise_party_name(once) == once


def test_strip_legal_forms_keeps_the_trading_name() -> None:
    assert strip_legal_forms("ACME TRADING LTD") == "ACME TRADING"
    assert strip_legal_forms("SA DE CV") == "SA DE CV"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ACME TRADING LTD", "Trading Acme Limited"),
        ("Café Andino S.A.", "CAFE ANDINO SOCIEDAD ANONIMA"),
        ("Shenzhen Hua-Xin Co., Ltd.", "SHENZHEN HUAXIN COMPANY LIMITED"),
        ("Global Parts, Inc.", "global parts incorporated"),
    ],
)
def test_party_similarity_is_100_for_variants_of_one_name(a: str, b: str) -> None:
    assert party_similarity(a, b) == 100.0
    assert party_similarity(b, a) == 100.0


def test_party_similarity_tolerates_a_typo_but_separates_different_traders() -> None:
    typo = party_similarity("Andean Coffee Exporters SA", "Andean Cofee Exporter S.A.")
    different = party_similarity("Andean Coffee Exporters SA", "Pacific Timber Holdings SA")
    assert 85.0 <= typo < 100.0
    assert different < 60.0


def test_party_similarity_of_an_empty_name_is_zero() -> None:
    assert party_similarity("", "ACME") == 0.0
    assert party_similarity("ACME", "") == 0.0
