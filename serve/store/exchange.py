"""Exchange messages in the store: the inbox, the outbox and its durable delivery queue.

Tables (migration 0006): ``exchange_messages`` (one row per message and direction: ``IN`` received,
``OUT`` sent or drafted; the signed JSON as it travelled) and ``exchange_deliveries`` (one row per
outgoing message and peer with an inbox: attempts, delivery, refusal). A queued delivery survives a
restart; the sender (:mod:`serve.exchange_sender`) retries it with exponential backoff until the peer
answers 2xx (delivered), 409 (it already has the id: delivered) or another 4xx (refused, kept with the reason).

Every receipt, refusal, acceptance, dismissal, draft, approval and send is an audit event
(:func:`serve.audit.record_event`) in the same unit of work as the change it describes.
Times come from :func:`serve.db.utcnow` (the one clock).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from serve.audit import record_event
from serve.db import UTCDateTime, utcnow
from serve.seals import seal_detail
from serve.store.watchlist import NewEntry, WatchlistConflictError, add_entry
from serve.tables import Base
from targeting.exchange.drafts import watchlist_entries_for
from targeting.exchange.messages import message_dict, parse_message
from targeting.exchange.network import ExchangeNetwork
from targeting.exchange.policy import Refusal, auto_accepted, check_incoming, delivery_targets, may_see
from targeting.exchange.signing import sign

IN, OUT = "IN", "OUT"


class ExchangeMessageRow(Base):
    """A received (``IN``) or sent/drafted (``OUT``) message."""

    __tablename__ = "exchange_messages"

    message_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    direction: Mapped[str] = mapped_column(String(3), primary_key=True)
    type: Mapped[str] = mapped_column(String(24))
    sender: Mapped[str] = mapped_column(String(32), index=True)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    tlp: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_to: Mapped[datetime] = mapped_column(UTCDateTime())
    message_json: Mapped[str] = mapped_column(Text)
    signature: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(80), index=True)
    container_number: Mapped[str | None] = mapped_column(String(11), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(64))
    exam_result: Mapped[str | None] = mapped_column(String(16))


class ExchangeDeliveryRow(Base):
    """One outgoing message to one peer's inbox."""

    __tablename__ = "exchange_deliveries"
    __table_args__ = (UniqueConstraint("message_id", "peer", name="uq_exchange_deliveries_message_peer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(80), index=True)
    peer: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refused: Mapped[bool] = mapped_column(Boolean)
    last_error: Mapped[str | None] = mapped_column(String(300))


class ExchangeError(ValueError):
    """An exchange operation is not possible (the message says why); ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ReceiveResult:
    """What a receipt did: ``received`` (status 202) or refused with a :class:`Refusal`."""

    message_id: str | None
    refusal: Refusal | None = None
    accepted: bool = False

    @property
    def status(self) -> int:
        return 202 if self.refusal is None else self.refusal.status


def signed_payload(row: ExchangeMessageRow) -> dict[str, Any]:
    """The signed message as it travels: ``{"message": ..., "signature": ...}``."""
    return {"message": json.loads(row.message_json), "signature": row.signature}


def parsed(row: ExchangeMessageRow) -> Any:
    """The row's message as its Pydantic model."""
    return parse_message(json.loads(row.message_json))


def _row(message: Any, direction: str, status: str, *, signature: str | None, at: datetime) -> ExchangeMessageRow:
    body = message.body
    return ExchangeMessageRow(
        message_id=message.message_id, direction=direction, type=message.type, sender=message.sender,
        recipients=list(message.recipients), tlp=message.tlp, created_at=message.created_at, valid_from=message.valid_from,
        valid_to=message.valid_to, message_json=json.dumps(message_dict(message), sort_keys=True), signature=signature,
        status=status, in_reply_to=getattr(body, "in_reply_to", None),
        container_number=getattr(body, "container_number", None) or (body.value if getattr(body, "kind", None) == "CONTAINER" else None),
        recorded_at=at,
    )


def _audit(session: Session, action: str, *, actor: str, message_id: str | None, result: str = "ok", status: int | None = None, **detail: Any) -> None:
    record_event(
        session, action=action, actor=actor, object_type="exchange_message", object_id=message_id, result=result,
        status_code=status, detail={k: v for k, v in detail.items() if v is not None} or None,
    )


def receive(session: Session, payload: Any, network: ExchangeNetwork, *, channel: str = "http") -> ReceiveResult:
    """Check, store and (per the sender's policy) accept a received signed message; every outcome audited.

    ``channel`` is ``http`` or ``file`` (an imported JSON Lines file). A replayed id is refused (409) whatever
    its content. FEEDBACK records the exam result on the message it answers.
    """
    at = utcnow()
    raw = payload.get("message") if isinstance(payload, dict) else None
    claimed_id = str(raw.get("message_id"))[:80] if isinstance(raw, dict) and raw.get("message_id") is not None else None
    claimed_sender = str(raw.get("sender"))[:40] if isinstance(raw, dict) and raw.get("sender") is not None else "unknown"
    checked = check_incoming(payload, network, at)
    if not isinstance(checked, Refusal) and session.get(ExchangeMessageRow, (checked.message_id, IN)) is not None:
        checked = Refusal("replay", f"message id {checked.message_id} was already received", 409)
    if isinstance(checked, Refusal):
        _audit(session, "exchange.refuse", actor=f"peer:{claimed_sender}", message_id=claimed_id, result="invalid" if checked.status == 422 else "denied",
               status=checked.status, code=checked.code, reason=checked.reason[:300], channel=channel)
        return ReceiveResult(claimed_id, checked)
    message = checked
    session.add(_row(message, IN, "RECEIVED", signature=payload["signature"], at=at))
    session.flush()
    _audit(session, "exchange.receive", actor=f"peer:{message.sender}", message_id=message.message_id, status=202,
           type=message.type, sender=message.sender, tlp=message.tlp, channel=channel)
    if message.type == "FEEDBACK":
        _record_feedback(session, message)
    accepted = False
    if auto_accepted(message, network):
        accept(session, message.message_id, actor=f"policy:{message.sender}")
        accepted = True
    return ReceiveResult(message.message_id, None, accepted)


def _record_feedback(session: Session, feedback: Any) -> None:
    sent = session.get(ExchangeMessageRow, (feedback.body.in_reply_to, OUT))
    if sent is not None and sent.recipients and (feedback.sender in sent.recipients or sent.recipients == ["NETWORK"]):
        sent.exam_result = _stronger(sent.exam_result, feedback.body.result)
        session.flush()


_RESULT_ORDER = {None: 0, "NO_FINDING": 1, "DISCREPANCY": 2, "SEIZURE": 3}


def _stronger(current: str | None, new: str) -> str:
    return new if _RESULT_ORDER[new] >= _RESULT_ORDER.get(current, 0) else current  # type: ignore[return-value]


def accept(session: Session, message_id: str, *, actor: str) -> ExchangeMessageRow:
    """Accept a received ALERT or PRE_ARRIVAL_NOTICE into the watchlist (idempotent entries); audited.

    Raises
    ------
    ExchangeError
        404 when there is no such received message, 409 when it was already decided, 422 for other types.
    """
    row = session.get(ExchangeMessageRow, (message_id, IN))
    if row is None:
        raise ExchangeError("no received message with this id", 404)
    if row.status != "RECEIVED":
        raise ExchangeError(f"message {message_id} is already {row.status.lower()}", 409)
    if row.type not in ("ALERT", "PRE_ARRIVAL_NOTICE"):
        raise ExchangeError(f"a {row.type} is information only: it cannot be accepted into the watchlist", 422)
    created, entries = [], []
    for draft in watchlist_entries_for(parsed(row)):
        try:
            entry = add_entry(session, NewEntry(draft.kind, draft.value, draft.reason, draft.issuing_unit, draft.severity,
                                                draft.valid_from, draft.valid_to, draft.alert_id), actor=actor[:64])
            created.append(entry.alert_id)
            entries.append(entry)
        except WatchlistConflictError:
            created.append(draft.alert_id)
    row.status, row.decided_at, row.decided_by = "ACCEPTED", utcnow(), actor[:64]
    session.flush()
    _audit(session, "exchange.accept", actor=actor, message_id=message_id, status=200, type=row.type, sender=row.sender, watchlist=created,
           **seal_detail(*entries))  # the new watchlist entries are sealed like those the watchlist route writes
    return row


def dismiss(session: Session, message_id: str, *, actor: str, reason: str) -> ExchangeMessageRow:
    """Dismiss a received message (kept, not used); audited with the analyst's reason."""
    row = session.get(ExchangeMessageRow, (message_id, IN))
    if row is None:
        raise ExchangeError("no received message with this id", 404)
    if row.status != "RECEIVED":
        raise ExchangeError(f"message {message_id} is already {row.status.lower()}", 409)
    row.status, row.decided_at, row.decided_by = "DISMISSED", utcnow(), actor[:64]
    session.flush()
    _audit(session, "exchange.dismiss", actor=actor, message_id=message_id, status=200, reason=reason[:300])
    return row


def create_outgoing(session: Session, message: Any, network: ExchangeNetwork, *, actor: str, draft: bool = False) -> ExchangeMessageRow:
    """Store an outgoing message: a ``DRAFT`` awaiting approval, or signed and queued to its recipients.

    Raises
    ------
    ExchangeError
        422 when the sender is not a unit of this instance or a recipient is unknown; 409 for a used id.
    """
    if message.sender not in network.units:
        raise ExchangeError(f"sender {message.sender} is not a unit of this instance")
    try:
        delivery_targets(message, network)
    except ValueError as exc:
        raise ExchangeError(str(exc)) from None
    if session.get(ExchangeMessageRow, (message.message_id, OUT)) is not None:
        raise ExchangeError(f"message id {message.message_id} is already used", 409)
    row = _row(message, OUT, "DRAFT", signature=None, at=utcnow())
    session.add(row)
    session.flush()
    _audit(session, "exchange.draft" if draft else "exchange.create", actor=actor, message_id=message.message_id, status=201,
           type=message.type, recipients=list(message.recipients), tlp=message.tlp)
    if not draft:
        _queue(session, row, network, actor=actor)
    return row


def approve(session: Session, message_id: str, network: ExchangeNetwork, *, actor: str) -> ExchangeMessageRow:
    """Approve a draft: sign it and queue it to its recipients (audited)."""
    row = session.get(ExchangeMessageRow, (message_id, OUT))
    if row is None:
        raise ExchangeError("no outgoing message with this id", 404)
    if row.status != "DRAFT":
        raise ExchangeError(f"message {message_id} is not a draft (it is {row.status.lower()})", 409)
    _queue(session, row, network, actor=actor)
    return row


def _queue(session: Session, row: ExchangeMessageRow, network: ExchangeNetwork, *, actor: str) -> None:
    message = parsed(row)
    row.signature = sign(message_dict(message), network.units[message.sender].key)
    row.status, row.decided_at, row.decided_by = "QUEUED", utcnow(), actor[:64]
    peers, local = delivery_targets(message, network)
    for peer in peers:
        if network.peers[peer].inbox_url:
            session.add(ExchangeDeliveryRow(message_id=row.message_id, peer=peer, attempts=0, delivered_at=None, refused=False, last_error=None))
    for unit in local:  # a co-hosted unit: straight into this instance's inbox
        if session.get(ExchangeMessageRow, (row.message_id, IN)) is None:
            session.add(_row(message, IN, "RECEIVED", signature=row.signature, at=utcnow()))
    session.flush()
    _audit(session, "exchange.send", actor=actor, message_id=row.message_id, status=202, type=row.type, peers=peers, local_units=local)


def pending_deliveries(session: Session, *, limit: int = 100) -> list[tuple[int, str, dict[str, Any]]]:
    """``(delivery id, peer, signed payload)`` of every delivery neither delivered nor refused, oldest first."""
    query = (
        select(ExchangeDeliveryRow, ExchangeMessageRow)
        .join(ExchangeMessageRow, (ExchangeMessageRow.message_id == ExchangeDeliveryRow.message_id) & (ExchangeMessageRow.direction == OUT))
        .where(ExchangeDeliveryRow.delivered_at.is_(None), ExchangeDeliveryRow.refused.is_(False))
        .order_by(ExchangeDeliveryRow.id)
        .limit(limit)
    )
    return [(d.id, d.peer, signed_payload(m)) for d, m in session.execute(query)]


def record_attempt(session: Session, delivery_id: int, *, status: int | None, error: str | None) -> int:
    """Record one delivery attempt (``status`` None: no answer). Returns the attempts so far; audited."""
    delivery = session.get(ExchangeDeliveryRow, delivery_id)
    delivery.attempts += 1
    delivered = status is not None and (200 <= status < 300 or status == 409)
    refused = status is not None and 400 <= status < 500 and not delivered
    if delivered:
        delivery.delivered_at, delivery.last_error = utcnow(), None
    else:
        delivery.refused, delivery.last_error = refused, (error or f"HTTP {status}")[:300]
    session.flush()
    if delivered and session.scalar(
        select(func.count()).select_from(ExchangeDeliveryRow).where(ExchangeDeliveryRow.message_id == delivery.message_id, ExchangeDeliveryRow.delivered_at.is_(None))
    ) == 0:
        session.get(ExchangeMessageRow, (delivery.message_id, OUT)).status = "SENT"
    action = "exchange.delivered" if delivered else "exchange.refused_by_peer" if refused else "exchange.retry"
    _audit(session, action, actor="system", message_id=delivery.message_id, result="ok" if delivered else "error", status=status,
           peer=delivery.peer, attempts=delivery.attempts, error=delivery.last_error)
    return delivery.attempts


def get_message(session: Session, message_id: str, direction: str) -> ExchangeMessageRow | None:
    """The message of that id and direction, ``None`` when absent."""
    return session.get(ExchangeMessageRow, (message_id, direction))


def list_messages(session: Session, *, direction: str, status: str | None = None, limit: int = 1000) -> list[ExchangeMessageRow]:
    """Messages of a direction (and status), newest first."""
    query = select(ExchangeMessageRow).where(ExchangeMessageRow.direction == direction)
    if status is not None:
        query = query.where(ExchangeMessageRow.status == status)
    return list(session.scalars(query.order_by(ExchangeMessageRow.recorded_at.desc(), ExchangeMessageRow.message_id).limit(limit)))


def hit_rates(session: Session) -> list[dict[str, Any]]:
    """Per originating unit and message type of received messages: received, accepted, examined, seizures, hit rate.

    *Examined* counts messages this instance answered with an exam result (its FEEDBACK); the hit rate is
    seizures / examined (``None`` before the first exam).
    """
    rows = session.execute(
        select(ExchangeMessageRow.sender, ExchangeMessageRow.type, ExchangeMessageRow.status, ExchangeMessageRow.exam_result).where(
            ExchangeMessageRow.direction == IN, ExchangeMessageRow.type.in_(("ALERT", "PRE_ARRIVAL_NOTICE"))
        )
    )
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for sender, kind, status, result in rows:
        entry = table.setdefault((sender, kind), {"sender": sender, "type": kind, "received": 0, "accepted": 0, "examined": 0, "seizures": 0})
        entry["received"] += 1
        entry["accepted"] += status == "ACCEPTED"
        entry["examined"] += result is not None
        entry["seizures"] += result == "SEIZURE"
    for entry in table.values():
        entry["hit_rate"] = entry["seizures"] / entry["examined"] if entry["examined"] else None
    return [table[k] for k in sorted(table)]


def messages_visible_to(
    session: Session, network: ExchangeNetwork, *, direction: str, officer_ports: tuple[str, ...] | None, status: str | None = None, limit: int = 200
) -> list[tuple[ExchangeMessageRow, Any]]:
    """``(row, message)`` of a direction that a caller may see (:func:`targeting.exchange.policy.may_see`), newest first.

    ``officer_ports``: the officer's ports, or ``None`` for admins and auditors. For the API and the web pages.
    """
    visible = []
    for row in list_messages(session, direction=direction, status=status, limit=10_000):
        message = parsed(row)
        if may_see(message, inbound=direction == IN, network=network, officer_ports=officer_ports):
            visible.append((row, message))
            if len(visible) >= limit:
                break
    return visible


def visible_message(
    session: Session, network: ExchangeNetwork, message_id: str, *, direction: str, officer_ports: tuple[str, ...] | None
) -> tuple[ExchangeMessageRow, Any] | None:
    """The message if it exists and the caller may see it, else ``None`` (absent and hidden answer alike)."""
    row = get_message(session, message_id, direction)
    if row is None:
        return None
    message = parsed(row)
    return (row, message) if may_see(message, inbound=direction == IN, network=network, officer_ports=officer_ports) else None


def signed_messages(session: Session, *, direction: str = OUT) -> list[dict[str, Any]]:
    """Every signed message of a direction, oldest first (what ``targeting exchange export`` writes)."""
    rows = session.scalars(
        select(ExchangeMessageRow).where(ExchangeMessageRow.direction == direction, ExchangeMessageRow.signature.is_not(None))
        .order_by(ExchangeMessageRow.recorded_at, ExchangeMessageRow.message_id)
    )
    return [signed_payload(r) for r in rows]
