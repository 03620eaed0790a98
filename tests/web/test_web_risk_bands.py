"""Calibrated risk on the officer's pages: every row of the list, its print view and its PDF shows the band and the chance of a finding, in the user's language.

Driven in the system's Chromium against the real server (the session's world has a champion with a calibrator).
"""

from __future__ import annotations

import re
import zlib

import pytest

from web_helpers import sign_in
from serve_helpers import PORT

pytestmark = pytest.mark.slow

BAND_NAMES = {"en": {"Very high", "High", "Medium", "Low"}, "es": {"Muy alto", "Alto", "Medio", "Bajo"}}
CHANCE = {"en": re.compile(r"^(<0\.1|\d+(\.\d)?)% chance of a finding$"), "es": re.compile(r"^(<0\.1|\d+(\.\d)?)% de probabilidad de hallazgo$")}


@pytest.fixture(scope="module")
def rated_list(browser, web_server) -> tuple[str, dict]:
    """A list of the officer's port generated from the home page; its id and its JSON as the page's own API route serves it."""
    context = browser.new_context(base_url=web_server.url)
    page = context.new_page()
    page.set_default_timeout(60_000)
    sign_in(page, "ana")
    page.fill(f"#cap-{PORT}", "12")
    page.fill(f"#nii-{PORT}", "8")
    page.fill(f"#phys-{PORT}", "4")
    page.click(f"form[action='/ports/{PORT}/lists'] button[type=submit]")
    page.wait_for_url(re.compile(r"/lists/[0-9a-f-]{36}$"))
    list_id = page.url.rsplit("/", 1)[1]
    pdf = page.request.get(f"/lists/{list_id}/print.pdf").body()
    context.close()
    return list_id, {"pdf": pdf}


def _pdf_text(body: bytes) -> str:
    """The text drawn on the PDF's pages (fpdf2 writes zlib-compressed content streams of literal strings)."""
    chunks = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", body, flags=re.S):
        try:
            chunks.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            continue
    return " ".join(re.findall(r"\((.*?)\)\s*Tj", "\n".join(chunks)))


def test_every_list_row_shows_its_calibrated_band_and_chance_of_a_finding(new_page, rated_list) -> None:
    list_id, _ = rated_list
    page = new_page()
    sign_in(page, "ana")
    page.goto(f"/lists/{list_id}")
    rows = page.locator("table.items tbody tr")
    assert rows.count() == 12
    for i in range(rows.count()):
        assert rows.nth(i).locator(".band").inner_text() in BAND_NAMES["en"]
        assert CHANCE["en"].match(rows.nth(i).locator(".risk").inner_text())
    assert "model score" not in page.content().lower()


def test_the_band_and_chance_are_translated(new_page, rated_list) -> None:
    list_id, _ = rated_list
    page = new_page()
    sign_in(page, "ana")
    page.select_option("#language", "es")
    page.click("form[action='/language'] button")
    try:
        page.goto(f"/lists/{list_id}")
        first = page.locator("table.items tbody tr").first
        assert first.locator(".band").inner_text() in BAND_NAMES["es"]
        assert CHANCE["es"].match(first.locator(".risk").inner_text())
        page.goto(f"/lists/{list_id}/deferred")
        assert page.locator(".band").first.inner_text() in BAND_NAMES["es"]
    finally:
        page.select_option("#language", "en")
        page.click("form[action='/language'] button")


def test_print_view_and_pdf_carry_the_band_and_chance_of_every_item(new_page, rated_list) -> None:
    list_id, extra = rated_list
    page = new_page()
    sign_in(page, "ana")
    page.goto(f"/lists/{list_id}/print")
    printed = page.locator("body").inner_text()
    assert re.search(r"(Very high|High|Medium|Low) · (<0\.1|\d+(\.\d)?)%", printed)
    text = _pdf_text(extra["pdf"])
    bands = re.findall(r"\b(Very high|High|Medium|Low)\b", text)
    assert len(bands) >= 12, text[:500]
    assert len(re.findall(r"(?:<0\.1|\d+(?:\.\d)?)%", text)) >= 12


def test_a_list_without_calibrated_risk_says_not_rated_on_every_row_and_shows_no_probability(new_page, web_server) -> None:
    page = new_page()
    sign_in(page, "bea")  # officer of the other port, whose list was stored without calibrated risk
    page.goto(f"/lists/{web_server.other_port_list}")
    rows = page.locator("table.items tbody tr")
    assert rows.count() >= 1
    for i in range(rows.count()):
        assert rows.nth(i).locator(".band").inner_text() == "Not rated"
        assert rows.nth(i).locator(".risk").inner_text() == ""
    text = _pdf_text(page.request.get(f"/lists/{web_server.other_port_list}/print.pdf").body())
    assert text.count("Not rated") == rows.count() and "%" not in text.split("Risk", 1)[1]
