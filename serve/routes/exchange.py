"""Intelligence exchange: the inbox peers post to, the analyst's inbox and outbox, drafts, hit rates.

``POST /v1/exchange/inbox`` is public at the HTTP level: the Ed25519 signature of a configured peer is
its authentication (checked before anything else is trusted; every refusal is audited with its reason).
Every other route needs an API key: ``exchange:read`` (officers, auditors, admins) or ``exchange:write``
(officers, admins). Officers see and act for their own ports' units only, and a RED message only when it
names their unit; a message a caller may not see answers 404 exactly like a missing one.
An instance without an exchange configuration answers 404 on every exchange route.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from serve.db import utcnow
from serve.deps import Caller, DatabaseDep, PublicDep, require
from serve.schemas.common import InputModel
from serve.security import Permission
from serve.store import exchange as store
from targeting.exchange.messages import SCHEMA_VERSION, parse_message
from targeting.exchange.network import ExchangeNetwork

router = APIRouter(prefix="/v1/exchange", tags=["exchange"])

ExchangeReader = Annotated[Caller, Depends(require(Permission.EXCHANGE_READ))]
ExchangeWriter = Annotated[Caller, Depends(require(Permission.EXCHANGE_WRITE))]
MessageIdPath = Annotated[str, Path(min_length=8, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]


def network_of(request: Request) -> ExchangeNetwork:
    """The instance's exchange network; 404 when it has none."""
    network = getattr(request.app.state, "exchange_network", None)
    if network is None:
        raise HTTPException(status_code=404, detail="this instance does not exchange intelligence")
    return network


def _officer_ports(caller: Caller) -> tuple[str, ...] | None:
    return caller.principal.ports if caller.principal.port_scoped else None


class OutgoingMessage(InputModel):
    """A message to send from one of this instance's units (id, version and creation time filled in)."""

    type: Literal["ALERT", "PRE_ARRIVAL_NOTICE", "SEIZURE_REPORT", "FEEDBACK"]
    sender: str = Field(min_length=2, max_length=32)
    recipients: list[str] = Field(min_length=1, max_length=50)
    tlp: Literal["RED", "AMBER", "GREEN"]
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime
    body: dict[str, Any]
    message_id: str | None = Field(default=None, min_length=8, max_length=80)
    draft: bool = False


class Decision(InputModel):
    reason: str = Field(min_length=1, max_length=300)


def message_public(row: store.ExchangeMessageRow) -> dict[str, Any]:
    """Response body of a stored message: the message itself plus its local state."""
    return {
        "direction": "received" if row.direction == "IN" else "sent",
        "status": row.status,
        "recorded_at": row.recorded_at.isoformat(),
        "decided_at": None if row.decided_at is None else row.decided_at.isoformat(),
        "decided_by": row.decided_by,
        "exam_result": row.exam_result,
        "signed": row.signature is not None,
        "message": json.loads(row.message_json),
    }


def _receive(database: Any, payload: Any, network: ExchangeNetwork) -> store.ReceiveResult:
    with database.write() as session:
        return store.receive(session, payload, network)


@router.post("/inbox", status_code=202, dependencies=[PublicDep])
async def post_inbox(request: Request, database: DatabaseDep) -> JSONResponse:
    """Receive a signed message from a peer: 202 when stored, else the refusal's status with ``code`` and ``reason``."""
    network = network_of(request)
    try:
        payload = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        payload = None
    result = await run_in_threadpool(_receive, database, payload, network)
    if result.refusal is not None:
        return JSONResponse({"detail": {"code": result.refusal.code, "reason": result.refusal.reason}}, status_code=result.status)
    return JSONResponse({"message_id": result.message_id, "status": "accepted" if result.accepted else "received"}, status_code=202)


def _list(request: Request, caller: Caller, database: Any, direction: str, status: str | None, limit: int) -> dict[str, Any]:
    network = network_of(request)
    with database.read() as session:
        visible = store.messages_visible_to(session, network, direction=direction, officer_ports=_officer_ports(caller), status=status, limit=limit)
        return {"items": [message_public(row) for row, _ in visible]}


def _one(request: Request, caller: Caller, database: Any, direction: str, message_id: str) -> dict[str, Any]:
    network = network_of(request)
    with database.read() as session:
        found = store.visible_message(session, network, message_id, direction=direction, officer_ports=_officer_ports(caller))
        if found is None:
            raise HTTPException(status_code=404, detail="no such message")
        return message_public(found[0])


StatusQuery = Annotated[str | None, Query(max_length=16, pattern=r"^[A-Z]+$")]
LimitQuery = Annotated[int, Query(ge=1, le=200)]


@router.get("/received")
def get_received(request: Request, caller: ExchangeReader, database: DatabaseDep, status: StatusQuery = None, limit: LimitQuery = 50) -> dict[str, Any]:
    """Received messages the caller may see, newest first (``status``: RECEIVED, ACCEPTED, DISMISSED)."""
    return _list(request, caller, database, store.IN, status, limit)


@router.get("/sent")
def get_sent(request: Request, caller: ExchangeReader, database: DatabaseDep, status: StatusQuery = None, limit: LimitQuery = 50) -> dict[str, Any]:
    """Sent and drafted messages the caller may see, newest first (``status``: DRAFT, QUEUED, SENT)."""
    return _list(request, caller, database, store.OUT, status, limit)


@router.get("/received/{message_id}")
def get_received_message(request: Request, message_id: MessageIdPath, caller: ExchangeReader, database: DatabaseDep) -> dict[str, Any]:
    """One received message (404 when absent or not visible to the caller)."""
    return _one(request, caller, database, store.IN, message_id)


@router.get("/sent/{message_id}")
def get_sent_message(request: Request, message_id: MessageIdPath, caller: ExchangeReader, database: DatabaseDep) -> dict[str, Any]:
    """One sent or drafted message (404 when absent or not visible to the caller)."""
    return _one(request, caller, database, store.OUT, message_id)


def _decide(request: Request, caller: Caller, database: Any, message_id: str, action: str, reason: str | None = None) -> dict[str, Any]:
    network = network_of(request)
    with database.write() as session:
        if store.visible_message(session, network, message_id, direction=store.IN, officer_ports=_officer_ports(caller)) is None:
            raise HTTPException(status_code=404, detail="no such message")
        try:
            if action == "accept":
                row = store.accept(session, message_id, actor=caller.key_id)
            else:
                row = store.dismiss(session, message_id, actor=caller.key_id, reason=reason or "")
        except store.ExchangeError as exc:
            raise HTTPException(status_code=exc.status, detail=str(exc)) from None
        return message_public(row)


@router.post("/received/{message_id}/accept")
def accept_message(request: Request, message_id: MessageIdPath, caller: ExchangeWriter, database: DatabaseDep) -> dict[str, Any]:
    """Accept a received alert or notice into the watchlist (notices: mandatory on the arrival day's list)."""
    return _decide(request, caller, database, message_id, "accept")


@router.post("/received/{message_id}/dismiss")
def dismiss_message(request: Request, message_id: MessageIdPath, body: Decision, caller: ExchangeWriter, database: DatabaseDep) -> dict[str, Any]:
    """Dismiss a received message with a reason (kept, audited, not used)."""
    return _decide(request, caller, database, message_id, "dismiss", body.reason)


def _may_send_as(caller: Caller, network: ExchangeNetwork, unit: str) -> bool:
    local = network.units.get(unit)
    return local is not None and caller.can_access_port(local.port)


@router.post("/sent", status_code=201)
def send_message(request: Request, body: OutgoingMessage, caller: ExchangeWriter, database: DatabaseDep) -> dict[str, Any]:
    """Create a message from one of the caller's units: signed and queued, or a draft (``draft: true``)."""
    network = network_of(request)
    if not _may_send_as(caller, network, body.sender):
        raise HTTPException(status_code=422, detail=f"sender {body.sender} is not a unit of this instance that you act for")
    now = utcnow()
    data = {
        "schema_version": SCHEMA_VERSION, "message_id": body.message_id or f"{body.sender}:{uuid.uuid4().hex[:20].upper()}",
        "type": body.type, "sender": body.sender, "recipients": body.recipients, "tlp": body.tlp, "created_at": now,
        "valid_from": body.valid_from or now, "valid_to": body.valid_to, "body": body.body,
    }
    try:
        message = parse_message(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise HTTPException(status_code=422, detail=f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    with database.write() as session:
        try:
            row = store.create_outgoing(session, message, network, actor=caller.key_id, draft=body.draft)
        except store.ExchangeError as exc:
            raise HTTPException(status_code=exc.status, detail=str(exc)) from None
        return message_public(row)


@router.post("/sent/{message_id}/approve")
def approve_draft(request: Request, message_id: MessageIdPath, caller: ExchangeWriter, database: DatabaseDep) -> dict[str, Any]:
    """Approve a draft the engine wrote (notice, seizure report, alert): it is signed and queued."""
    network = network_of(request)
    with database.write() as session:
        found = store.visible_message(session, network, message_id, direction=store.OUT, officer_ports=_officer_ports(caller))
        if found is None or not _may_send_as(caller, network, found[0].sender):
            raise HTTPException(status_code=404, detail="no such message")
        try:
            row = store.approve(session, message_id, network, actor=caller.key_id)
        except store.ExchangeError as exc:
            raise HTTPException(status_code=exc.status, detail=str(exc)) from None
        return message_public(row)


@router.get("/hit-rates")
def get_hit_rates(request: Request, caller: ExchangeReader, database: DatabaseDep) -> dict[str, Any]:
    """Per originating unit and message type: received, accepted, examined, seizures and hit rate."""
    network_of(request)
    with database.read() as session:
        return {"items": store.hit_rates(session)}
