"""The exchange's background work in the service: deliver the outbox, answer with FEEDBACK, draft after events.

:class:`ExchangeWorker` runs as one asyncio task in the app's lifespan (:func:`exchange_lifespan`).
Every ``poll_seconds`` it

1. posts each pending delivery to its peer's inbox (``httpx``), recording each attempt; a delivery that
   failed waits ``base * 2^(attempts-1)`` seconds (capped) before its next try, in monotonic time, so a
   peer that is down gets its queue when it is back, and a restart tries every pending delivery at once;
2. sends FEEDBACK for every accepted notice or container alert whose container this instance examined
   (the outcome recorded by the unit goes back to the sender without anyone typing it again);
3. drafts, for human approval, a SEIZURE_REPORT plus container and party alerts after each seizure a local
   unit records, and a PRE_ARRIVAL_NOTICE for each high-risk container a local export or transshipment
   unit's list deferred or only scanned (destination: the peer unit at the port of discharge).

Store work runs in worker threads; the event loop only waits on the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from features.data.lake import Lake
from serve.db import Database, utcnow
from serve.store.exchange import IN, OUT, ExchangeError, ExchangeMessageRow, create_outgoing, parsed, pending_deliveries, record_attempt
from serve.store.lists import load_record
from serve.tables import OutcomeRow, StoredList
from targeting.exchange.drafts import HIGH_RISK_SCORE, derived_id, draft_pre_arrival_notice, draft_seizure_messages, feedback_for
from targeting.exchange.network import ExchangeNetwork, load_network

logger = logging.getLogger("serve.exchange")


class ExchangeWorker:
    """Delivery, feedback and drafting for one instance (see the module docstring)."""

    def __init__(self, database: Database, network: ExchangeNetwork, *, lake_dir: Path | None, poll_seconds: float = 0.5) -> None:
        self.database = database
        self.network = network
        self.lake_dir = lake_dir
        self.poll_seconds = poll_seconds
        self._next_try: dict[int, float] = {}
        self._seen_lists: set[str] = set()

    async def run(self) -> None:
        """Tick forever (cancel the task to stop); a failing tick is logged and the next one runs."""
        async with httpx.AsyncClient(timeout=self.network.send_timeout_seconds, trust_env=False) as client:
            while True:
                try:
                    await self.tick(client)
                except Exception:  # noqa: BLE001 - the worker must outlive one bad tick
                    logger.exception("exchange tick failed")
                await asyncio.sleep(self.poll_seconds)

    async def tick(self, client: httpx.AsyncClient) -> None:
        """One round: automatic messages first, then every due delivery."""
        await run_in_threadpool(self.automatic)
        pending = await run_in_threadpool(self._pending)
        for delivery_id, peer, payload in pending:
            if self._next_try.get(delivery_id, 0.0) > time.monotonic():
                continue
            status, error = await self._post(client, self.network.peers[peer].inbox_url, payload)
            attempts, delivered = await run_in_threadpool(self._record, delivery_id, status, error)
            if delivered:
                self._next_try.pop(delivery_id, None)
            else:
                self._next_try[delivery_id] = time.monotonic() + self.network.backoff_seconds(attempts)

    @staticmethod
    async def _post(client: httpx.AsyncClient, url: str | None, payload: dict[str, Any]) -> tuple[int | None, str | None]:
        try:
            response = await client.post(url, json=payload)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]
        return response.status_code, None if response.status_code < 300 else response.text[:300]

    def _pending(self) -> list[tuple[int, str, dict[str, Any]]]:
        with self.database.read() as session:
            return pending_deliveries(session)

    def _record(self, delivery_id: int, status: int | None, error: str | None) -> tuple[int, bool]:
        with self.database.write() as session:
            attempts = record_attempt(session, delivery_id, status=status, error=error)
        return attempts, status is not None and (200 <= status < 300 or status == 409)

    def automatic(self) -> None:
        """Feedback due, seizure drafts and pre-arrival notice drafts (idempotent: derived message ids)."""
        with self.database.write() as session:
            send_feedback_due(session, self.network)
            draft_after_seizures(session, self.network, self.lake_dir)
            self._draft_notices(session)

    def _draft_notices(self, session: Any) -> None:
        ports = {u.port for u in self.network.units.values() if u.role in ("EXPORT", "TRANSSHIPMENT")}
        if not ports or self.lake_dir is None:
            return
        rows = session.scalars(select(StoredList).where(StoredList.port.in_(ports))).all()
        for row in rows:
            if row.id not in self._seen_lists:
                draft_notices_for_list(session, self.network, row, self.lake_dir)
                self._seen_lists.add(row.id)


def _outcome_dict(row: OutcomeRow) -> dict[str, Any]:
    names = ("manifest_id", "container_number", "port", "inspected_at", "exam_type", "result", "seizure_category", "quantity_kg", "concealment_method")
    return {name: getattr(row, name) for name in names}


def _exams_count_from(row: ExchangeMessageRow) -> datetime:
    """Exams answering a message: from 00:00 UTC of a notice's ETA day, or from an alert's validity start."""
    message = parsed(row)
    if row.type == "PRE_ARRIVAL_NOTICE":
        return datetime.combine(message.body.eta.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    return message.valid_from


def send_feedback_due(session: Any, network: ExchangeNetwork) -> int:
    """FEEDBACK for accepted notices and container alerts whose container a local unit examined since; returns how many.

    Exams count from 00:00 UTC of a notice's ETA day, or from an alert's ``valid_from``; the first such
    exam answers the message (its result is also kept on the received message, for hit rates).
    """
    local = {u.port: u for u in network.units.values()}
    waiting = session.scalars(
        select(ExchangeMessageRow).where(
            ExchangeMessageRow.direction == IN, ExchangeMessageRow.status == "ACCEPTED",
            ExchangeMessageRow.container_number.is_not(None), ExchangeMessageRow.exam_result.is_(None),
        )
    ).all()
    sent = 0
    for row in waiting:
        outcome = session.scalars(
            select(OutcomeRow).where(
                OutcomeRow.container_number == row.container_number, OutcomeRow.port.in_(list(local)),
                OutcomeRow.inspected_at >= _exams_count_from(row),
            ).order_by(OutcomeRow.inspected_at)
        ).first()
        if outcome is None or row.sender not in network.peers:
            continue
        message = feedback_for(parsed(row), unit=local[outcome.port].id, outcome=_outcome_dict(outcome), now=utcnow())
        row.exam_result = outcome.result
        if session.get(ExchangeMessageRow, (message.message_id, OUT)) is None:
            create_outgoing(session, message, network, actor="system")
            sent += 1
    return sent


def _manifest(lake_dir: Path | None, manifest_id: str) -> dict[str, Any] | None:
    if lake_dir is None or not Path(lake_dir).is_dir():
        return None
    frame = Lake(lake_dir).scan("manifests").filter(pl.col("manifest_id") == manifest_id).collect()
    return frame.row(frame.height - 1, named=True) if frame.height else None


def draft_after_seizures(session: Any, network: ExchangeNetwork, lake_dir: Path | None) -> int:
    """Draft a seizure report and its alerts for each local seizure not drafted yet; returns the messages drafted."""
    local = {u.port: u for u in network.units.values()}
    seizures = session.scalars(select(OutcomeRow).where(OutcomeRow.result == "SEIZURE", OutcomeRow.port.in_(list(local)))).all()
    drafted = 0
    for outcome in seizures:
        unit = local[outcome.port].id
        if session.get(ExchangeMessageRow, (derived_id(unit, "SEIZURE_REPORT", outcome.manifest_id), OUT)) is not None:
            continue
        manifest = _manifest(lake_dir, outcome.manifest_id) or {"manifest_id": outcome.manifest_id}
        for message in draft_seizure_messages(unit=unit, outcome=_outcome_dict(outcome), manifest=manifest, now=utcnow()):
            if session.get(ExchangeMessageRow, (message.message_id, OUT)) is None:
                create_outgoing(session, message, network, actor="system", draft=True)
                drafted += 1
    return drafted


def draft_notices_for_list(session: Any, network: ExchangeNetwork, row: StoredList, lake_dir: Path, *, min_score: float = HIGH_RISK_SCORE) -> int:
    """Draft notices for a local export/transshipment list's high-risk deferred or scan-only containers."""
    unit = next((u for u in network.units.values() if u.port == row.port and u.role in ("EXPORT", "TRANSSHIPMENT")), None)
    if unit is None:
        return 0
    record = load_record(row)
    risky = [(i.manifest_id, i.score, "SCANNED", list(i.reasons)) for i in record.items if i.exam_type == "NII" and i.score >= min_score]
    risky += [(d.manifest_id, d.score, "DEFERRED", []) for d in record.deferred if d.score >= min_score]
    drafted = 0
    for manifest_id, score, action, reasons in risky:
        manifest = _manifest(lake_dir, manifest_id)
        destination = None if manifest is None else next((p for p in network.peers.values() if p.port == manifest["port_of_discharge"]), None)
        if destination is None or session.get(ExchangeMessageRow, (derived_id(unit.id, "PRE_ARRIVAL_NOTICE", manifest_id), OUT)) is not None:
            continue
        notice = draft_pre_arrival_notice(unit=unit.id, destination_unit=destination.id, manifest=manifest, action=action, score=score,
                                          reasons=reasons or ["High risk score, not physically examined at origin"], now=utcnow())
        try:
            create_outgoing(session, notice, network, actor="system", draft=True)
            drafted += 1
        except ExchangeError:
            continue
    return drafted


def install_exchange(app: Any, settings: Any, database: Database) -> None:
    """Load the instance's exchange configuration (``settings.exchange_config``) into ``app.state``.

    Sets ``exchange_network`` (``None`` without a configuration) and ``exchange_worker``.

    Raises
    ------
    targeting.exchange.network.ExchangeConfigError
        When the configured file is missing or invalid: the service does not start half-configured.
    """
    app.state.exchange_network = None
    app.state.exchange_worker = None
    if settings.exchange_config is None:
        return
    path = Path(settings.exchange_config)
    network = load_network(path if path.is_absolute() else settings.home / path)
    app.state.exchange_network = network
    app.state.exchange_worker = ExchangeWorker(database, network, lake_dir=settings.lake_dir, poll_seconds=settings.exchange_poll_seconds)


@contextlib.asynccontextmanager
async def exchange_lifespan(app: Any) -> AsyncIterator[None]:
    """The app's lifespan: runs the exchange worker as a background task while the app serves (none without exchange)."""
    worker = getattr(app.state, "exchange_worker", None)
    if worker is None:
        yield
        return
    task = asyncio.create_task(worker.run(), name="exchange-worker")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
