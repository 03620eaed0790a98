"""The container page, the dashboard, the auditors' page (served lists, chain status, replay) and the read-only model page."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from features import clock
from features.data.lake import Lake
from features.rules.language import evaluate_rules
from serve.audit import record_event, verify_chain
from serve.store.lists import get_list, load_record
from serve.store.rulesets import current_ruleset, ruleset_snapshot
from serve.store.watchlist import watchlist_frame_at
from serve.tables import AuditEvent, OutcomeRow, StoredList
from serve.web.auth import AuditPage, ListPage, ModelPage, PageCaller, PageError, RiskPage, check_csrf, form_data
from serve.web.facts import manifest_for_ports, matched_alerts, past_inspections, port_table, route_of
from serve.web.graphics import SOURCE_COLOURS, MapStop, Series, bar_chart_svg, line_chart_svg, route_map_svg
from serve.web.i18n import N_
from serve.web.render import redirect, render

router = APIRouter(include_in_schema=False)
ManifestId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
DASHBOARD_WEEKS = 16
AUDIT_LISTS = 40


def _scope(page: PageCaller) -> tuple[str, ...] | None:
    """The ports whose data the user sees (``None``: every port)."""
    principal = page.caller.principal
    return principal.ports if principal.port_scoped else None


def _stops(manifest: dict[str, Any]) -> list[MapStop]:
    ports = port_table()
    route = route_of(manifest)
    stops = []
    for i, code in enumerate(route):
        port = ports.get(code)
        if port is None:
            continue
        role = "origin" if i == 0 else "destination" if i == len(route) - 1 else "hub" if code in (manifest.get("transshipment_ports") or ()) else "port"
        stops.append(MapStop(code, f"{port['name']} ({code})", port["latitude"], port["longitude"], role))
    return stops


@router.get("/containers/{manifest_id}")
def container_page(request: Request, manifest_id: ManifestId, page: RiskPage) -> HTMLResponse:
    """A manifest handled by one of the user's ports: declared facts, route map, past inspections of the container and parties, matched alerts."""
    state = request.app.state
    manifest = manifest_for_ports(state.settings.lake_dir, manifest_id, _scope(page))
    visible = manifest is not None
    page.caller.audit_read(state.audit_writer, action="container.view", object_type="manifest", object_id=manifest_id,
                           result="ok" if visible else "not_found", status_code=200 if visible else 404)
    if not visible:
        raise PageError(404, N_("No manifest with this id is handled by your ports."))
    at = clock.now()
    history = past_inspections(state.settings.lake_dir, state.database, manifest, at=at)
    alerts = matched_alerts(state.settings.lake_dir, state.database, manifest, at=at)
    stops = _stops(manifest)
    title = " → ".join(s.label for s in stops)
    return render(request, page, "container.html", m=manifest, route=route_of(manifest), history=history, alerts=alerts,
                  map_svg=route_map_svg(stops, title=title), at=at)


def _outcomes_frame(request: Request, ports: tuple[str, ...] | None, since: datetime, until: datetime) -> pl.DataFrame:
    """Exams at the ports from ``since`` (inclusive) to ``until`` (exclusive): the lake's and those recorded through the service (each once)."""
    frames = []
    lake = Lake(request.app.state.settings.lake_dir)
    columns = ["manifest_id", "port", "inspected_at", "exam_type", "result", "seizure_category", "quantity_kg", "selection_source"]
    if lake.root.is_dir():
        scan = lake.scan("outcomes").filter((pl.col("inspected_at") >= since) & (pl.col("inspected_at") < until))
        if ports is not None:
            scan = scan.filter(pl.col("port").is_in(list(ports)))
        frames.append(scan.select(columns).collect())
    with request.app.state.database.read() as session:
        query = select(*(getattr(OutcomeRow, c) for c in columns)).where(OutcomeRow.inspected_at >= since, OutcomeRow.inspected_at < until)
        if ports is not None:
            query = query.where(OutcomeRow.port.in_(ports))
        rows = [dict(zip(columns, r, strict=True)) for r in session.execute(query)]
    if rows:
        frames.append(pl.DataFrame(rows, schema=frames[0].schema if frames else None, orient="row"))
    if not frames:
        return pl.DataFrame(schema={c: pl.String for c in columns})
    return pl.concat(frames, how="vertical_relaxed").unique(["port", "manifest_id", "exam_type", "inspected_at"])


def _rule_codes(request: Request, manifest_ids: list[str], at: datetime) -> pl.DataFrame:
    """``manifest_id``, ``rule`` for every profile of the current rule set that flags each examined manifest."""
    lake = Lake(request.app.state.settings.lake_dir)
    if not lake.root.is_dir() or not manifest_ids:
        return pl.DataFrame(schema={"manifest_id": pl.String, "rule": pl.String})
    with request.app.state.database.read() as session:
        rules = current_ruleset(session).rules
    manifests = lake.scan("manifests").filter(pl.col("manifest_id").is_in(manifest_ids)).unique("manifest_id", keep="last")
    hits = evaluate_rules(rules, manifests, at=at, port=None).collect()
    return hits.select("manifest_id", pl.col("rule_codes").alias("rule")).explode("rule").drop_nulls("rule")


def dashboard_charts(request: Request, ports: tuple[str, ...] | None, gettext) -> dict[str, str]:  # noqa: ANN001
    """The dashboard's four SVG charts over the last :data:`DASHBOARD_WEEKS` weeks."""
    now = clock.now()
    since = now - timedelta(weeks=DASHBOARD_WEEKS)
    outcomes = _outcomes_frame(request, ports, since, now)
    if outcomes.height == 0:
        return {}
    exams = outcomes.with_columns(
        pl.col("inspected_at").dt.truncate("1w").dt.strftime("%m-%d").alias("week"), (pl.col("result") == "SEIZURE").alias("hit")
    )
    by_source = exams.group_by("selection_source", "week").agg(pl.len().alias("n"), pl.col("hit").mean().alias("rate")).sort("week")
    series = [Series(gettext(s), tuple((r["week"], r["rate"]) for r in by_source.filter(pl.col("selection_source") == s).iter_rows(named=True)),
                     SOURCE_COLOURS.get(s)) for s in sorted(by_source["selection_source"].unique().to_list())]
    charts = {"source": line_chart_svg(series, title=gettext("Hit rate per selection source, by week"), y_label=gettext("hit rate"))}
    ruled = exams.join(_rule_codes(request, exams["manifest_id"].unique().to_list(), now), on="manifest_id", how="inner")
    if ruled.height:
        by_rule = ruled.group_by("rule", "week").agg(pl.col("hit").mean().alias("rate")).sort("week")
        busiest = ruled.group_by("rule").len().sort(["len", "rule"], descending=[True, False])["rule"].head(6).to_list()
        charts["rule"] = line_chart_svg([Series(r, tuple((x["week"], x["rate"]) for x in by_rule.filter(pl.col("rule") == r).iter_rows(named=True)))
                                         for r in busiest], title=gettext("Hit rate per rule profile, by week"), y_label=gettext("hit rate"))
    seizures = exams.filter(pl.col("hit")).group_by("seizure_category").agg(pl.len().alias("n")).sort("n", descending=True)
    charts["seizures"] = bar_chart_svg([(gettext(r["seizure_category"] or "OTHER"), float(r["n"])) for r in seizures.iter_rows(named=True)],
                                       title=gettext("Seizures by category"))
    share = exams.group_by("selection_source").agg(pl.len().alias("n")).sort("n", descending=True)
    total = max(int(share["n"].sum()), 1)
    charts["capacity"] = bar_chart_svg([(gettext(r["selection_source"]), 100.0 * r["n"] / total) for r in share.iter_rows(named=True)],
                                       title=gettext("Share of exams taken by each source"), unit="%",
                                       colours={gettext(k): v for k, v in SOURCE_COLOURS.items()})
    charts["totals"] = f"{exams.height}|{int(exams['hit'].sum())}"
    return charts


@router.get("/dashboard")
def dashboard(request: Request, page: ListPage) -> HTMLResponse:
    """Hit rate per selection source and per rule profile over time, seizures by category, capacity share per source."""
    from serve.web.render import page_context

    gettext = page_context(request, page)["_"]
    ports = _scope(page)
    charts = dashboard_charts(request, ports, gettext)
    exams, seizures = (charts.pop("totals", "0|0")).split("|")
    return render(request, page, "dashboard.html", charts=charts, ports=ports, exams=int(exams), seizures=int(seizures), weeks=DASHBOARD_WEEKS)


def _fetchers(session, list_ids: list[str]) -> dict[str, list[tuple[str, int]]]:  # noqa: ANN001 - Session
    rows = session.execute(
        select(AuditEvent.object_id, AuditEvent.actor, func.count()).where(
            AuditEvent.object_id.in_(list_ids), AuditEvent.action.in_(("list.fetch", "list.export_csv", "list.create")), AuditEvent.result == "ok"
        ).group_by(AuditEvent.object_id, AuditEvent.actor)
    )
    out: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for list_id, actor, n in rows:
        out[list_id].append((actor or "?", n))
    return out


@router.get("/audit")
def audit_page(request: Request, page: AuditPage) -> HTMLResponse:
    """Served lists with who fetched them and the model and rule versions behind each; the audit chain's status."""
    state = request.app.state
    with state.database.read() as session:
        chain = verify_chain(session)
        rows = session.scalars(select(StoredList).order_by(StoredList.created_at.desc()).limit(AUDIT_LISTS)).all()
        fetchers = _fetchers(session, [r.id for r in rows])
        replays = {e.object_id: e for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "list.replay", AuditEvent.object_id.in_([r.id for r in rows])).order_by(AuditEvent.seq))}
    page.caller.audit_read(state.audit_writer, action="audit.page", object_type="audit_events", status_code=200,
                           detail={"chain_ok": chain.ok, "lists": len(rows)})
    return render(request, page, "audit.html", chain=chain, lists=rows, fetchers=fetchers, replays=replays)


def replay_list(request: Request, page: PageCaller, list_id: str) -> dict[str, Any]:
    """Regenerate a stored list from its record, rule set and watchlist; audited as ``list.replay``."""
    state = request.app.state
    with state.database.read() as session:
        row = get_list(session, list_id)
        if row is None:
            raise PageError(404, N_("This list does not exist."))
        record = load_record(row)
        ruleset = ruleset_snapshot(session, row.ruleset_version)
        watchlist = watchlist_frame_at(session, row.watchlist_as_of)
    engine = state.engine_holder.require()
    replayed = engine.replay(record, ruleset=ruleset, watchlist=watchlist).content_sha256()
    identical = replayed == row.content_sha256
    with state.database.write() as session:
        page.caller.audit(session, action="list.replay", object_type="inspection_list", object_id=list_id, port=row.port,
                          model_version=record.model_version, result="ok" if identical else "mismatch", status_code=200,
                          detail={"stored_sha256": row.content_sha256, "replayed_sha256": replayed})
    return {"row": row, "identical": identical, "replayed": replayed}


@router.post("/audit/lists/{list_id}/replay")
async def replay(request: Request, list_id: Annotated[str, Path(min_length=36, max_length=36)], page: AuditPage) -> HTMLResponse:
    """Prove a served list identical: regenerate it and compare content hashes."""
    form = await form_data(request)
    check_csrf(page, form)
    outcome = await run_in_threadpool(replay_list, request, page, list_id)
    return render(request, page, "replay.html", **outcome)


def registry_versions(tracking_uri: str, name: str) -> list[dict[str, Any]]:
    """Registered versions of ``name`` (newest first) with aliases, stage of the run and its headline metrics; read only."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    aliases: dict[str, list[str]] = defaultdict(list)
    for alias, version in client.get_registered_model(name).aliases.items():
        aliases[str(version)].append(alias)
    out = []
    for v in sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version), reverse=True)[:30]:
        metrics = client.get_run(v.run_id).data.metrics if v.run_id else {}
        shown = {k.removeprefix("labelled/model/"): metrics[k] for k in HEADLINE_METRICS if k in metrics}
        out.append({"version": v.version, "aliases": sorted(aliases.get(str(v.version), [])), "run_id": v.run_id,
                    "created": datetime.fromtimestamp(v.creation_timestamp / 1000, tz=timezone.utc), "metrics": shown})
    return out


HEADLINE_METRICS = ("labelled/model/precision_at_1", "labelled/model/precision_at_5", "labelled/model/norm_precision_at_1",
                    "labelled/model/norm_precision_at_5")
"""Metrics shown per version on the model page (the full set is in the run)."""


@router.get("/models")
def models_page(request: Request, page: ModelPage) -> HTMLResponse:
    """The model registry, read only: versions, which one is champion, headline metrics. Promotion stays on the command line."""
    settings = request.app.state.settings
    try:
        versions = registry_versions(settings.mlflow_tracking_uri, settings.model_name)
        error = None
    except Exception:  # noqa: BLE001 - the registry being unreachable is shown, not a 500
        versions, error = [], N_("The model registry cannot be read right now.")
    serving = request.app.state.engine_holder.engine
    info = None
    if serving is not None:
        try:
            info = serving.model_info()
        except Exception:  # noqa: BLE001
            info = None
    return render(request, page, "models.html", versions=versions, error=error, info=info, name=settings.model_name)
