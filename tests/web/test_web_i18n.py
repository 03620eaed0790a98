"""The catalogues: every text of the pages is translated in ES, FR and PT, the shipped .mo files match the .po files, reasons are translated."""

from __future__ import annotations

from importlib import resources

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from features.rules.language import default_rule_profiles
from serve.web.i18n import REASON_PATTERNS, translate_reason, translations

LOCALE = resources.files("serve.web").joinpath("locale")


def _catalogue(language: str, kind: str):  # noqa: ANN202 - babel Catalog
    path = LOCALE.joinpath(language, "LC_MESSAGES", f"messages.{kind}")
    with path.open("rb") as handle:
        return read_po(handle) if kind == "po" else read_mo(handle)


@pytest.mark.parametrize("language", ["es", "fr", "pt"])
def test_every_message_of_the_template_is_translated_and_compiled(language: str) -> None:
    with LOCALE.joinpath("messages.pot").open("rb") as handle:
        template = {m.id for m in read_po(handle) if m.id}
    po, mo = _catalogue(language, "po"), _catalogue(language, "mo")
    translated = {m.id: m.string for m in po if m.id}
    assert template <= set(translated), sorted(template - set(translated))[:5]
    assert all(translated[i] for i in template), [i for i in template if not translated[i]][:5]
    assert {m.id: m.string for m in mo if m.id} == translated  # the shipped .mo is the compiled .po


@pytest.mark.parametrize("language", ["es", "fr", "pt"])
def test_placeholders_survive_translation(language: str) -> None:
    import re

    for message in _catalogue(language, "po"):
        if message.id:
            assert sorted(re.findall(r"%\(\w+\)s", message.id)) == sorted(re.findall(r"%\(\w+\)s", message.string)), message.id


def test_reasons_are_translated_with_their_values_kept() -> None:
    spanish = translations("es").gettext
    assert translate_reason("Consignee first seen 12 days ago", spanish) == "Consignatario visto por primera vez hace 12 días"
    assert translate_reason("Shipper: 13 manifests in the last 30 days", spanish) == "Expedidor: 13 manifiestos en los últimos 30 días"
    french = translations("fr").gettext
    alert = "Watchlist alert (severity 4/5): Linked to a seizure in Antwerp (issued by PCU GUAYAQUIL)"
    assert translate_reason(alert, french) == "Alerte (gravité 4/5) : Linked to a seizure in Antwerp (émise par PCU GUAYAQUIL)"
    assert translate_reason("A sentence nobody knows", french) == "A sentence nobody knows"
    assert translate_reason("Consignee first seen 12 days ago", translations("en").gettext) == "Consignee first seen 12 days ago"


def test_every_default_rule_reason_has_a_translation_pattern() -> None:
    import polars as pl

    from features.rules.language import reason_expr

    row = pl.DataFrame({"port_of_loading": ["ECGYE"], "place_of_receipt": ["ECGYE"], "transshipment_ports": [["PAMIT", "GHTEM"]],
                        "hs_code": ["080390"]})
    portuguese = translations("pt").gettext
    for rule in default_rule_profiles():
        text = row.select(reason_expr(rule.reason)).item()
        assert any(p.match(text) for p, _ in REASON_PATTERNS), text
        assert translate_reason(text, portuguese) != text, text


def test_precursor_control_reasons_are_translated_with_chemical_code_and_route_kept() -> None:
    spanish, french = translations("es").gettext, translations("fr").gettext
    missing = "Precursor Ephedrine (HS 293941, 1988 Convention Table I) with no matching pre-export notification from IN to MX"
    assert translate_reason(missing, spanish) == (
        "Precursor Ephedrine (SA 293941, Cuadro I de la Convención de 1988) sin notificación previa a la exportación correspondiente de IN a MX"
    )
    quantity = "Ephedrine: declared 500 kg gross, 5.0 times the quantity notified in PEN-IN-2025-0042"
    assert translate_reason(quantity, french) == "Ephedrine : 500 kg bruts déclarés, 5.0 fois la quantité notifiée dans PEN-IN-2025-0042"
    misdeclared = ("HS 293949 is where Ephedrine (HS 293941, 1988 Convention Table I) is misdeclared, "
                   "and no pre-export notification from IN to MX covers it")
    assert translate_reason(misdeclared, translations("pt").gettext).startswith("SH 293949 é onde Ephedrine (SH 293941, Quadro I da Convenção de 1988)")


@pytest.mark.parametrize(
    ("feature", "value"),
    [
        ("consignee_origin_n_prior", 0.0), ("consignee_origin_n_prior", 3.0), ("consignee_loading_port_n_prior", 0.0),
        ("consignee_loading_port_n_prior", 1.0), ("consignee_family_n_prior", 0.0), ("consignee_family_n_prior", 12.0),
        ("shipper_family_n_prior", 0.0), ("shipper_family_n_prior", 2.0), ("origin_prior_rate", 0.041),
        ("commodity_prior_rate", 0.2), ("flow_prior_rate", 0.013), ("anomaly_score", 0.4), ("anomaly_score", 6.3),
    ],
)
def test_reasons_of_the_transfer_features_are_translated_with_their_values_kept(feature: str, value: float) -> None:
    from targeting.explain import describe

    sentence = describe(feature, value)
    assert any(p.match(sentence) for p, _ in REASON_PATTERNS), sentence
    for language in ("es", "fr", "pt"):
        translated = translate_reason(sentence, translations(language).gettext)
        assert translated != sentence, (language, sentence)
        for number in __import__("re").findall(r"[\d.,]+%?", sentence):
            assert number in translated, (language, translated)


@pytest.mark.parametrize("language", ["es", "fr", "pt"])
def test_integrity_reasons_are_translated_with_their_hours_ports_and_hubs_kept(language: str) -> None:
    gettext = translations(language).gettext
    reasons = [
        "Seal replaced: 2 seal changes since loading (usual: none)",
        "Seal replaced: 1 seal change since loading (usual: up to 1)",
        "Stayed 310 h at the origin terminal CLSAI (usual 20–90 h)",
        "Stayed 1,310 h at the origin terminal CLSAI (usual 20–90 h at all ports of loading)",
        "Gate-in only 2 h before loading at ECGYE (usual 24–120 h)",
        "Gate-in only 2 h before loading at ECGYE (usual 24–120 h at all ports of loading)",
        "Stayed 300 h at a transshipment hub (usual up to 57 h via PAMIT)",
        "Stayed 300 h at a transshipment hub (usual up to 57 h at all hubs)",
    ]
    for reason in reasons:
        translated = translate_reason(reason, gettext)
        assert translated != reason, reason
        for value in ("310", "1,310", "CLSAI", "ECGYE", "PAMIT", "57", "20–90", "24–120"):
            if value in reason.replace("1,310", "") or (value == "1,310" and value in reason):
                assert value in translated, (reason, translated)
    assert gettext("INTEGRITY") != "INTEGRITY"
