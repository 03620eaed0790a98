"""The officer's and the auditor's day, driven in the system's Chromium against a real uvicorn server.

Tests in this module share one server and one generated list (module scope);
each opens its own browser context (its own session). Screenshots of the main
pages are saved under ``docs/screenshots/``.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import create_engine, text

from web_helpers import PASSWORD, screenshot, sign_in
from serve_helpers import PORT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def todays_list(browser, web_server) -> str:
    """Today's list of the officer's port, generated from the home page's form; its id."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=web_server.url)
    page = context.new_page()
    page.set_default_timeout(60_000)
    sign_in(page, "lena")
    page.fill(f"#cap-{PORT}", "30")
    page.fill(f"#nii-{PORT}", "20")
    page.fill(f"#phys-{PORT}", "10")
    page.click(f"form[action='/ports/{PORT}/lists'] button[type=submit]")
    page.wait_for_url(re.compile(r"/lists/[0-9a-f-]{36}$"))
    list_id = page.url.rsplit("/", 1)[1]
    context.close()
    return list_id


def test_officer_signs_in_and_opens_todays_list_with_what_finds_the_box(new_page, todays_list) -> None:
    page = new_page()
    page.goto("/")
    assert "/login" in page.url  # not signed in: the sign-in form
    screenshot(page, "login")
    sign_in(page, "ana")
    assert page.url.endswith("/")
    assert page.locator("h2", has_text="Rotterdam (NLRTM)").is_visible()
    screenshot(page, "home")
    page.click(f"a[href='/lists/{todays_list}']")
    rows = page.locator("table.items tbody tr")
    assert rows.count() >= 25
    first = rows.first
    text = first.inner_text()
    assert re.search(r"[A-Z]{3}U\d{7}", text)  # container number
    assert "IMO" in text and "ETA" in text  # vessel, voyage, ETA
    assert "SHIPPER" in text.upper() and "CONSIGNEE" in text.upper() and "HS " in text
    assert first.locator(".band").inner_text() in {"Very high", "High", "Medium", "Low", "Not rated"}  # the calibrated risk band
    body = page.locator("table.items").inner_text()
    assert "score" not in body.lower() and "p(select)" not in body.lower()  # bands and reasons, no raw figures
    for row in range(rows.count()):
        reasons = rows.nth(row).locator("td.reasons li").all_inner_texts()
        assert len(reasons) == len(set(reasons)), reasons
    screenshot(page, "list", full_page=False)


def test_officer_opens_a_container_with_its_route_map_history_and_alerts(new_page, todays_list) -> None:
    page = new_page()
    sign_in(page, "ana")
    page.goto(f"/lists/{todays_list}")
    page.locator("table.items tbody tr td.box a").first.click()
    assert re.search(r"/containers/[^/]+$", page.url)
    assert page.locator("svg.map path").count() == 1  # the land outline, from the package
    assert page.locator("svg.map circle").count() >= 2  # origin and destination at least
    assert page.get_by_text("Past inspections of this container and its parties").is_visible()
    assert page.get_by_text("Alerts in force that match").is_visible()
    screenshot(page, "container")


def test_officer_records_an_outcome_once_even_when_the_form_is_submitted_twice(new_page, todays_list, web_server) -> None:
    page = new_page()
    sign_in(page, "ana")
    page.goto(f"/lists/{todays_list}")
    link = page.locator("a", has_text="Record outcome").first
    manifest_id = link.get_attribute("href").split("/items/")[1].split("/")[0]
    link.click()
    page.check("input[name=result][value=SEIZURE]")
    page.click("form.outcome button[type=submit]")  # no category: a field error, nothing recorded
    assert page.locator("#seizure_category-error").is_visible()
    screenshot(page, "outcome-errors")
    page.select_option("#seizure_category", "COCAINE")
    page.fill("#quantity_kg", "42.5")
    page.select_option("#concealment_method", index=2)
    page.fill("#concealment_details", "behind the reefer unit")
    page.select_option("#seal_status", "MISMATCH")
    form_url = page.url
    fields = {
        "csrf_token": page.locator("input[name=csrf_token]").first.input_value(),
        **{name: page.locator(f"[name={name}]").input_value() for name in (
            "idempotency_key", "exam_type", "inspected_at", "seizure_category", "quantity_kg", "concealment_method", "concealment_details", "seal_status")},
        "result": "SEIZURE",
    }
    page.click("form.outcome button[type=submit]")
    assert f"recorded={manifest_id}" in page.url
    row = page.locator(f"#m-{manifest_id}")
    assert "Recorded: Seizure · Cocaine" in row.inner_text()
    again = page.request.post(form_url, form=fields, max_redirects=0)  # the same form submitted a second time
    assert again.status == 303
    engine = create_engine(web_server.database_url)  # the store holds one outcome for the exam, under the signed-in user
    with engine.connect() as connection:
        rows = connection.execute(text("select examiner, api_key_id from outcomes where manifest_id = :m"), {"m": manifest_id}).all()
    engine.dispose()
    assert rows == [("ana", "u-ana")]


def test_officer_adds_a_deferred_candidate_and_removes_an_item_with_reasons(new_page, todays_list) -> None:
    page = new_page()
    sign_in(page, "ana")
    page.goto(f"/lists/{todays_list}")
    page.locator("a", has_text="Deferred candidates").click()
    assert page.url.endswith(f"/lists/{todays_list}/deferred")
    rows = page.locator("table.items tbody tr")
    assert rows.count() >= 1
    screenshot(page, "deferred", full_page=False)
    first = rows.first
    manifest_id = first.get_attribute("id").removeprefix("m-")
    first.locator("select[name=exam_type]").select_option("PHYSICAL")
    first.locator("input[name=reason]").fill("Seal number at the gate differs from the manifest")
    first.locator("button[type=submit]").click()
    added = page.locator(f"#m-{manifest_id}")
    assert "OFFICER" in added.inner_text() and "Seal number at the gate" in added.inner_text()
    last_ranked = page.locator("table.items tbody tr:not(.removed)", has=page.locator("summary")).last
    removed_id = last_ranked.get_attribute("id").removeprefix("m-")
    last_ranked.locator("summary").click()
    last_ranked.locator("input[name=reason]").fill("Examined yesterday at the terminal")
    last_ranked.locator("button", has_text="Remove from the list").click()
    assert "removed" in page.locator(f"#m-{removed_id}").get_attribute("class")
    assert "Examined yesterday at the terminal" in page.locator(f"#m-{removed_id}").inner_text()


def _pdf_pages(body: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", body))


def test_print_view_puts_25_items_on_each_a4_sheet_with_a_signature_block_and_a_pdf(new_page, todays_list) -> None:
    page = new_page()
    sign_in(page, "ana")
    page.goto(f"/lists/{todays_list}/print")
    sheets = page.locator("section.sheet")
    items = sum(sheets.nth(i).locator("tbody tr").count() for i in range(sheets.count()))
    assert sheets.count() == -(-items // 25) >= 2
    assert sheets.first.locator("tbody tr").count() == 25
    assert sheets.first.get_by_text("Team leader (name, signature)").is_visible()
    screenshot(page, "print", full_page=False)
    page.emulate_media(media="print")
    printed = page.pdf(prefer_css_page_size=True, print_background=True)  # what the browser's Print gives on A4
    assert _pdf_pages(printed) == sheets.count()  # each sheet of 25 fits one A4 page
    response = page.request.get(f"/lists/{todays_list}/print.pdf")
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    assert response.body().startswith(b"%PDF") and _pdf_pages(response.body()) == sheets.count()


def test_another_ports_list_answers_404_like_a_missing_one(new_page, web_server) -> None:
    page = new_page()
    sign_in(page, "ana")
    other = page.goto(f"/lists/{web_server.other_port_list}")
    missing = page.goto("/lists/00000000-0000-4000-8000-000000000000")
    assert other.status == missing.status == 404
    page.goto(f"/lists/{web_server.other_port_list}")
    assert page.locator("h1").inner_text() == "Not found"


def test_a_post_without_the_csrf_token_is_refused(new_page, todays_list) -> None:
    page = new_page()
    sign_in(page, "ana")
    response = page.request.post(f"/lists/{todays_list}/amendments", form={"action": "REMOVE", "manifest_id": "x", "reason": "no token"}, max_redirects=0)
    assert response.status == 403
    wrong = page.request.post("/language", form={"language": "es", "csrf_token": "forged"}, max_redirects=0)
    assert wrong.status == 403


def test_language_switch_translates_the_pages_and_the_reasons_and_is_remembered(new_page, todays_list) -> None:
    page = new_page()
    sign_in(page, "ana")
    page.goto(f"/lists/{todays_list}")
    english = page.locator("table.items tbody").inner_text()
    page.select_option("#language", "es")
    page.click("form[action='/language'] button")
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.get_by_role("link", name="Vista de impresión").is_visible()
    spanish = page.locator("table.items tbody").inner_text()
    assert spanish != english
    screenshot(page, "list-es", full_page=False)
    page.select_option("#language", "en")
    page.click("form[action='/language'] button")
    assert page.locator("html").get_attribute("lang") == "en"


def test_sign_out_ends_the_session(new_page) -> None:
    page = new_page()
    sign_in(page, "ana")
    cookie = next(c for c in page.context.cookies() if c["name"] == "ccp_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.click("form[action='/logout'] button")
    assert "/login" in page.url
    page.context.add_cookies([cookie])  # the old cookie no longer opens anything
    page.goto("/")
    assert "/login" in page.url


def test_wrong_passwords_lock_the_account_and_are_audited(new_page) -> None:
    page = new_page()
    for _ in range(5):
        sign_in(page, "bruno", "not the password")
        assert page.locator(".error").is_visible()
    sign_in(page, "bruno", PASSWORD)  # the right password is refused while locked
    assert "locked" in page.locator(".error").inner_text()


def test_auditor_sees_who_fetched_each_list_and_replays_one_identical(new_page, todays_list) -> None:
    page = new_page()
    sign_in(page, "carla")
    page.goto("/audit")
    assert "Audit chain intact" in page.locator("p.ok").first.inner_text()
    row = page.locator("tr", has=page.locator(f"a[href='/lists/{todays_list}']"))
    assert "u-ana" in row.inner_text()
    screenshot(page, "audit", full_page=False)
    row.locator("button", has_text="Replay").click()
    assert page.get_by_text("Identical").is_visible()
    page.goto("/models")
    assert page.locator("td .band", has_text="champion").count() == 1
    assert page.locator("form").count() == 2  # language and sign-out only: the registry page changes nothing


def test_dashboard_draws_hit_rates_seizures_and_capacity_share(new_page) -> None:
    page = new_page()
    sign_in(page, "ana")
    page.goto("/dashboard")
    assert page.locator("svg.chart").count() >= 3
    screenshot(page, "dashboard")
