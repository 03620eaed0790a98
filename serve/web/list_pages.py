"""The list pages: generate the day's list, read it, its deferred candidates, amend it, record exam outcomes, print it.

Every page calls the API's own route functions (:mod:`serve.routes.lists`,
:mod:`serve.routes.outcomes`) with the signed-in user as the caller, so
authorization, verification, audit events and idempotency are exactly the
API's; the pages only add what finds the box (manifest details from the lake).
"""

from __future__ import annotations

import inspect
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from features import clock
from features.data.contracts import RESULTS, SEAL_STATUSES, SEIZURE_CATEGORIES
from serve.routes.lists import amend_inspection_list, create_list, get_amendments, get_inspection_list
from serve.routes.outcomes import create_outcome
from serve.schemas.lists import AmendmentCreate, ListCreate
from serve.schemas.outcomes import OutcomeCreate
from serve.security import Permission
from serve.store.rulesets import current_ruleset
from serve.store.watchlist import watchlist_frame_at
from serve.tables import OutcomeRow
from serve.web.auth import ListPage, ListWriterPage, OutcomePage, PageCaller, PageError, check_csrf, form_data
from serve.web.facts import manifest_details, route_of
from serve.web.i18n import N_
from serve.web.printing import list_pdf
from serve.web.render import page_context, redirect, render, risk_band, risk_chance

router = APIRouter(include_in_schema=False)
ListId = Annotated[uuid.UUID, Path()]
ManifestId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
LIST_DEFAULTS = {"capacity": 15, "nii_capacity": 10, "physical_capacity": 5, "exploration_share": 0.1, "integrity_share": 0.1}
DIRECTIONS = (("IMPORT", N_("Import (discharged here)")), ("EXPORT", N_("Export (loaded here)")), ("TRANSSHIPMENT", N_("Transshipment (via here)")))


def supported_directions() -> tuple[tuple[str, str], ...]:
    """The list directions the API accepts (import only until the API takes a ``direction``)."""
    return DIRECTIONS if "direction" in ListCreate.model_fields else DIRECTIONS[:1]
DEFERRED_PAGE = 10
PRINT_ITEMS_PER_PAGE = 25
CONCEALMENT_METHODS = (
    N_("Inside the declared goods (cover load)"),
    N_("Bag behind the doors (rip-on/rip-off)"),
    N_("Container structure (floor, walls, roof)"),
    N_("Refrigeration unit"),
    N_("Packaging of the goods"),
    N_("Other"),
)
NOT_FOUND = N_("This list does not exist or is not one of your port's lists.")


def _state(request: Request) -> Any:
    return request.app.state


def _api(call, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN001 - a route function of serve.routes
    """Call an API route function; its 404 becomes the pages' 404 (same words for missing and forbidden)."""
    try:
        return call(*args, **kwargs)
    except HTTPException as exc:
        if exc.status_code == 404:
            raise PageError(404, NOT_FOUND) from None
        raise


def load_list(request: Request, page: PageCaller, list_id: uuid.UUID) -> dict[str, Any]:
    """The stored list with its deferred candidates, as the API serves it (fetch audited, 404 for another port)."""
    state = _state(request)
    response = _api(get_inspection_list, list_id, page.caller, state.database, state.audit_writer, state.list_bodies, include="deferred")
    return json.loads(response.body)


def _amendments(request: Request, page: PageCaller, list_id: uuid.UUID) -> list[Any]:
    state = _state(request)
    return _api(get_amendments, list_id, page.caller, state.database, state.audit_writer).items


def _recorded(request: Request, port: str, manifest_ids: list[str]) -> dict[str, OutcomeRow]:
    with _state(request).database.read() as session:
        rows = session.scalars(select(OutcomeRow).where(OutcomeRow.port == port, OutcomeRow.manifest_id.in_(manifest_ids)))
        return {r.manifest_id: r for r in rows}


def _with_details(rows: list[dict[str, Any]], details: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        manifest = details.get(row["manifest_id"], {})
        out.append({**row, "m": manifest, "route": route_of(manifest) if manifest else [],
                    "band": risk_band(row)})
    return out


def list_view(request: Request, page: PageCaller, list_id: uuid.UUID) -> dict[str, Any]:
    """Everything the list page and its print view show: items (with details, amendments, recorded outcomes)."""
    record = load_list(request, page, list_id)
    amendments = _amendments(request, page, list_id)
    removed = {a.manifest_id: a for a in amendments if a.action == "REMOVE"}
    deferred_by_id = {d["manifest_id"]: d for d in record["deferred"]}
    added = []
    for a in amendments:
        if a.action == "ADD" and a.manifest_id in deferred_by_id:
            d = deferred_by_id[a.manifest_id]
            added.append({"rank": None, "container_number": d["container_number"], "manifest_id": d["manifest_id"], "score": d["score"],
                          "risk_band": d.get("risk_band"), "risk_probability": d.get("risk_probability"),
                          "source": "OFFICER", "exam_type": a.exam_type, "reasons": [a.reason], "added_by": a.created_by})
    rows = list(record["items"]) + added
    details = manifest_details(_state(request).settings.lake_dir, [r["manifest_id"] for r in rows])
    items = _with_details(rows, details)
    outcomes = _recorded(request, record["port"], [r["manifest_id"] for r in rows])
    for item in items:
        item["removed"] = removed.get(item["manifest_id"])
        item["outcome"] = outcomes.get(item["manifest_id"])
    added_ids = {a.manifest_id for a in amendments if a.action == "ADD"}
    return {"list": record, "items": items, "amendments": amendments, "deferred_count": len(record["deferred"]),
            "deferred_open": [d for d in record["deferred"] if d["manifest_id"] not in added_ids]}


@router.get("/lists/{list_id}")
def list_page(request: Request, list_id: ListId, page: ListPage) -> HTMLResponse:
    """A served list: ranked items with what finds the box, risk band, reasons, amendments and recorded outcomes."""
    view = list_view(request, page, list_id)
    can_amend = page.caller.principal.has(Permission.LISTS_CREATE)
    can_record = page.caller.principal.has(Permission.OUTCOMES_CREATE)
    return render(request, page, "list.html", **view, can_amend=can_amend, can_record=can_record)


def _deferred_reasons(request: Request, port: str, rows: list[dict[str, Any]]) -> dict[str, tuple[str, ...]]:
    """Reasons of the shown deferred candidates, from the engine's risk check of each (a few rows per page only)."""
    holder = _state(request).engine_holder
    engine = holder.engine if hasattr(holder, "engine") else None
    if engine is None:
        try:
            engine = holder.require()
        except Exception:  # noqa: BLE001 - no model: the page still lists the candidates
            return {}
    with _state(request).database.read() as session:
        ruleset = current_ruleset(session)
        at = clock.now()
        watchlist = watchlist_frame_at(session, at)
    reasons = {}
    for row in rows:
        try:
            risk = engine.container_risk(port, row["container_number"], ruleset=ruleset, watchlist=watchlist, at=at)
        except ValueError:
            risk = None
        if risk is not None and risk.manifest_id == row["manifest_id"]:
            reasons[row["manifest_id"]] = risk.reasons
    return reasons


@router.get("/lists/{list_id}/deferred")
def deferred_page(request: Request, list_id: ListId, page: ListPage, offset: int = 0) -> HTMLResponse:
    """The list's deferred candidates (cut by capacity), best first, ten a page, each with its reasons and an add form."""
    view = list_view(request, page, list_id)
    offset = max(0, min(offset, max(len(view["deferred_open"]) - 1, 0)))
    shown = view["deferred_open"][offset : offset + DEFERRED_PAGE]
    details = manifest_details(_state(request).settings.lake_dir, [d["manifest_id"] for d in shown])
    rows = _with_details(shown, details)
    reasons = _deferred_reasons(request, view["list"]["port"], shown)
    for row in rows:
        row["reasons"] = list(reasons.get(row["manifest_id"], ()))
    return render(request, page, "deferred.html", list=view["list"], rows=rows, offset=offset, page_size=DEFERRED_PAGE,
                  total=len(view["deferred_open"]), can_amend=page.caller.principal.has(Permission.LISTS_CREATE))


def _int_field(form: dict[str, str], name: str, errors: dict[str, str]) -> int | None:
    text = (form.get(name) or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        errors[name] = N_("Enter a whole number.")
        return None


@router.post("/ports/{port}/lists")
async def generate_list(request: Request, port: Annotated[str, Path(min_length=5, max_length=5)], page: ListWriterPage) -> Response:
    """Generate a list for the port, date and capacity of the form (the API's ``POST .../inspection-lists``)."""
    form = await form_data(request)
    check_csrf(page, form)
    return await run_in_threadpool(_generate, request, port.upper(), page, form)


def _generate(request: Request, port: str, page: PageCaller, form: dict[str, str]) -> Response:
    errors: dict[str, str] = {}
    values = {name: _int_field(form, name, errors) for name in ("capacity", "nii_capacity", "physical_capacity")}
    shares = {}
    for name in ("exploration_share", "integrity_share"):
        try:
            shares[name] = float(form.get(name) or LIST_DEFAULTS[name])
        except ValueError:
            errors[name] = N_("Enter a number between 0 and 0.5.")
    if not errors:
        try:
            direction = {"direction": form.get("direction") or "IMPORT"} if "direction" in ListCreate.model_fields else {}
            body = ListCreate(date=form.get("date") or clock.now().date().isoformat(), capacity=values["capacity"] or 0,
                              nii_capacity=values["nii_capacity"], physical_capacity=values["physical_capacity"], **shares,
                              **direction)
        except ValidationError as exc:
            errors["capacity"] = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
    if errors:
        raise PageError(422, " ".join(f"{k}: {v}" for k, v in errors.items()))
    state = _state(request)
    try:
        response = _api(create_list, port, body, page.caller, state.database, state.engine_holder, state.list_bodies)
    except HTTPException as exc:
        raise PageError(exc.status_code, str(exc.detail)) from None
    return redirect(f"/lists/{json.loads(response.body)['id']}")


@router.post("/lists/{list_id}/amendments")
async def amend(request: Request, list_id: ListId, page: ListWriterPage) -> Response:
    """Add a deferred candidate (``ADD``) or remove an item (``REMOVE``) with a reason (the API's amendment)."""
    form = await form_data(request)
    check_csrf(page, form)
    state = _state(request)
    reason = (form.get("reason") or "").strip()
    if len(reason) < 3:
        raise PageError(422, N_("Give a reason (at least 3 characters)."))
    try:
        body = AmendmentCreate(action=form.get("action", ""), manifest_id=form.get("manifest_id", ""), reason=reason,
                               exam_type=form.get("exam_type") or None)
    except ValidationError as exc:
        raise PageError(422, "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    try:
        await run_in_threadpool(_api, amend_inspection_list, list_id, body, page.caller, state.database)
    except HTTPException as exc:
        raise PageError(exc.status_code, str(exc.detail)) from None
    return redirect(f"/lists/{list_id}#m-{body.manifest_id}")


def _item_of(view: dict[str, Any], manifest_id: str) -> dict[str, Any]:
    for item in view["items"]:
        if item["manifest_id"] == manifest_id and item.get("removed") is None:
            return item
    raise PageError(404, N_("This container is not on the list."))


def _outcome_form(request: Request, page: PageCaller, view: dict[str, Any], item: dict[str, Any], *, values: dict[str, str],
                  errors: dict[str, str], status: int = 200) -> HTMLResponse:
    return render(request, page, "outcome.html", status=status, list=view["list"], item=item, values=values, errors=errors,
                  results=RESULTS, categories=SEIZURE_CATEGORIES, seals=SEAL_STATUSES, methods=CONCEALMENT_METHODS)


@router.get("/lists/{list_id}/items/{manifest_id}/outcome")
def outcome_form(request: Request, list_id: ListId, manifest_id: ManifestId, page: OutcomePage) -> HTMLResponse:
    """The exam outcome form of one item (a fresh idempotency key: submitting twice records one outcome)."""
    view = list_view(request, page, list_id)
    item = _item_of(view, manifest_id)
    values = {"idempotency_key": f"web-{uuid.uuid4()}", "exam_type": item.get("exam_type") or "NII",
              "inspected_at": clock.now().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M"), "seal_status": "INTACT"}
    return _outcome_form(request, page, view, item, values=values, errors={})


def validate_outcome_form(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The outcome's fields from the form and the errors per field (messages to translate)."""
    errors: dict[str, str] = {}
    fields: dict[str, Any] = {}
    for name, choices in (("result", RESULTS), ("seal_status", SEAL_STATUSES), ("exam_type", ("NII", "PHYSICAL"))):
        if form.get(name) not in choices:
            errors[name] = N_("Choose one.")
        fields[name] = form.get(name)
    try:
        at = datetime.strptime(form.get("inspected_at", ""), "%Y-%m-%dT%H:%M").replace(tzinfo=timezone.utc)
        fields["inspected_at"] = at
        if at > clock.now() + timedelta(minutes=5):
            errors["inspected_at"] = N_("The exam cannot end in the future.")
    except ValueError:
        errors["inspected_at"] = N_("Enter the date and time the exam ended (UTC).")
    seizure = fields.get("result") == "SEIZURE"
    category = form.get("seizure_category") or None
    if seizure and category not in SEIZURE_CATEGORIES:
        errors["seizure_category"] = N_("A seizure needs its category.")
    fields["seizure_category"] = category if seizure else None
    quantity = (form.get("quantity_kg") or "").strip()
    fields["quantity_kg"] = None
    if quantity:
        try:
            fields["quantity_kg"] = float(quantity)
            if not 0 <= fields["quantity_kg"] <= 100_000:
                raise ValueError
        except ValueError:
            errors["quantity_kg"] = N_("Enter the quantity in kg (0 to 100,000).")
        if not seizure:
            errors["quantity_kg"] = N_("A quantity is only recorded with a seizure.")
    method, details = (form.get("concealment_method") or "").strip(), (form.get("concealment_details") or "").strip()
    if method and method not in CONCEALMENT_METHODS:
        errors["concealment_method"] = N_("Choose one.")
    text = ": ".join(p for p in (method, details) if p)
    if len(text) > 200:
        errors["concealment_details"] = N_("At most 200 characters.")
    fields["concealment_method"] = text or None
    return fields, errors


async def call_route(function, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN001 - a route function of serve.routes
    """Call an API route function whether it is ``async`` or plain (plain ones run in the thread pool)."""
    if inspect.iscoroutinefunction(function):
        return await function(*args, **kwargs)
    return await run_in_threadpool(function, *args, **kwargs)


@router.post("/lists/{list_id}/items/{manifest_id}/outcome")
async def record_outcome(request: Request, list_id: ListId, manifest_id: ManifestId, page: OutcomePage) -> Response:
    """Record the exam's outcome through the API's idempotent write; the examiner is the signed-in user.

    The form carries an idempotency key made when it was shown: submitting it
    twice (double click, retry after a lost answer) records one outcome.
    """
    form = await form_data(request)
    check_csrf(page, form)
    view, item, body, errors = await run_in_threadpool(_checked_outcome, request, list_id, manifest_id, page, form)
    if errors:
        return _outcome_form(request, page, view, item, values=form, errors=errors, status=422)
    state = _state(request)
    try:
        await call_route(create_outcome, body, page.caller, state.writer, state.settings, idempotency_key=form.get("idempotency_key") or "")
    except HTTPException as exc:
        errors = {"inspected_at": N_("This exam is already recorded (same container, exam type and time).")} if exc.status_code == 409 \
            else {"result": str(exc.detail)}
        return _outcome_form(request, page, view, item, values=form, errors=errors, status=exc.status_code)
    return redirect(f"/lists/{list_id}?recorded={manifest_id}#m-{manifest_id}")


def _checked_outcome(request: Request, list_id: uuid.UUID, manifest_id: str, page: PageCaller, form: dict[str, str]) -> tuple[Any, ...]:
    """``(list view, item, OutcomeCreate or None, errors)`` of a posted outcome form."""
    view = list_view(request, page, list_id)
    item = _item_of(view, manifest_id)
    fields, errors = validate_outcome_form(form)
    body = None
    if not errors:
        try:
            body = OutcomeCreate(manifest_id=manifest_id, container_number=item["container_number"], port=view["list"]["port"],
                                 examiner=page.username, selection_source=item["source"],
                                 direction=view["list"].get("direction") or "IMPORT", **fields)
        except ValidationError as exc:
            errors["result"] = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
    return view, item, body, errors


@router.get("/lists/{list_id}/print")
def print_page(request: Request, list_id: ListId, page: ListPage) -> HTMLResponse:
    """The list for printing on A4: 25 items a page, with a signature block."""
    view = list_view(request, page, list_id)
    items = [i for i in view["items"] if i.get("removed") is None]
    pages = [items[i : i + PRINT_ITEMS_PER_PAGE] for i in range(0, len(items), PRINT_ITEMS_PER_PAGE)] or [[]]
    return render(request, page, "print.html", list=view["list"], pages=pages, printed_at=clock.now(), printed_by=page.username)


@router.get("/lists/{list_id}/print.pdf")
def print_pdf(request: Request, list_id: ListId, page: ListPage) -> Response:
    """The print view as a PDF (fpdf2, drawn in this process)."""
    view = list_view(request, page, list_id)
    items = [i for i in view["items"] if i.get("removed") is None]
    context = page_context(request, page)
    pdf = list_pdf(view["list"], items, gettext=context["_"], reason_text=context["reason_text"], band_name=context["band_name"],
                   printed_by=page.username, printed_at=clock.now(), per_page=PRINT_ITEMS_PER_PAGE, risk_chance=risk_chance)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="inspection-list-{list_id}.pdf"', "Cache-Control": "no-store"})
