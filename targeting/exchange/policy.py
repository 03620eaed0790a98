"""What a receiving instance checks, who may see a message, whom it goes to and what is accepted automatically.

Checks of a received signed message, in this order (the first failure is the refusal):

1. ``malformed``: not ``{"message": {...}, "signature": "..."}`` (422);
2. ``unknown_sender``: ``message.sender`` is not a configured peer (403);
3. ``bad_signature``: the signature does not verify under that peer's key (403);
4. ``schema``: the message breaks the format (422, the field named);
5. ``not_addressed``: no unit of this instance is a recipient (403);
6. ``expired``: the receipt time is at or after ``valid_to`` (422).

A replayed message id (``replay``, 409) is refused by the store, which knows the ids it has seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from targeting.exchange.messages import NETWORK, parse_message
from targeting.exchange.network import ExchangeNetwork, LocalUnit
from targeting.exchange.signing import verify


@dataclass(frozen=True)
class Refusal:
    """Why a received message is refused: a stable code, a plain reason and the HTTP status to answer."""

    code: str
    reason: str
    status: int


def _schema_reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "message"
    return f"schema violation at {where}: {first['msg']}"


def check_incoming(payload: Any, network: ExchangeNetwork, at: datetime) -> Any:
    """The parsed message when ``payload`` passes every check at time ``at``, else a :class:`Refusal`."""
    if not isinstance(payload, dict) or set(payload) != {"message", "signature"}:
        return Refusal("malformed", "body must be an object with exactly 'message' and 'signature'", 422)
    raw, signature = payload["message"], payload["signature"]
    if not isinstance(raw, dict) or not isinstance(signature, str):
        return Refusal("malformed", "'message' must be an object and 'signature' a string", 422)
    sender = raw.get("sender")
    peer = network.peers.get(sender) if isinstance(sender, str) else None
    if peer is None:
        return Refusal("unknown_sender", f"sender {str(sender)[:40]!r} is not a configured peer", 403)
    if not verify(raw, signature, peer.public_key):
        return Refusal("bad_signature", f"signature does not verify under the key of {peer.id}", 403)
    try:
        message = parse_message(raw)
    except ValidationError as exc:
        return Refusal("schema", _schema_reason(exc), 422)
    if not addressed_units(message, network):
        return Refusal("not_addressed", "no unit of this instance is a recipient", 403)
    if at >= message.valid_to:
        return Refusal("expired", f"validity ended at {message.valid_to.isoformat()}", 422)
    return message


def addressed_units(message: Any, network: ExchangeNetwork) -> list[LocalUnit]:
    """Local units the message is addressed to (every local unit for ``NETWORK``)."""
    if message.recipients == [NETWORK]:
        return list(network.units.values())
    return [network.units[r] for r in message.recipients if r in network.units]


def visible_units(message: Any, network: ExchangeNetwork) -> list[LocalUnit]:
    """Local units whose officers may see a received message: RED the named unit, AMBER the addressed ones, GREEN all."""
    if message.tlp == "GREEN":
        return list(network.units.values())
    return addressed_units(message, network)


def may_see(message: Any, *, inbound: bool, network: ExchangeNetwork, officer_ports: tuple[str, ...] | None) -> bool:
    """Whether a caller may see ``message``.

    ``officer_ports`` is the caller's ports for an officer, ``None`` for other roles (admin, auditor). RED
    messages are seen by the named unit's officers only (received) or the sending unit's officers (sent);
    other roles see every non-RED message of the instance.
    """
    if inbound:
        ports = {u.port for u in visible_units(message, network)}
    else:
        sender = network.units.get(message.sender)
        ports = {sender.port} if sender is not None else set()
    if officer_ports is None:
        return message.tlp != "RED"
    return bool(ports & set(officer_ports))


def delivery_targets(message: Any, network: ExchangeNetwork) -> tuple[list[str], list[str]]:
    """``(peer ids, local unit ids)`` an outgoing message goes to; unknown named recipients raise ``ValueError``."""
    if message.recipients == [NETWORK]:
        return sorted(network.peers), sorted(u for u in network.units if u != message.sender)
    unknown = [r for r in message.recipients if r not in network.peers and r not in network.units]
    if unknown:
        raise ValueError(f"unknown recipients: {', '.join(unknown)}")
    return [r for r in message.recipients if r in network.peers], [r for r in message.recipients if r in network.units]


def auto_accepted(message: Any, network: ExchangeNetwork) -> bool:
    """Whether the sending peer's policy accepts this message type without an analyst (alerts and notices only)."""
    peer = network.peers.get(message.sender)
    return peer is not None and message.type in peer.auto_accept and message.type in ("ALERT", "PRE_ARRIVAL_NOTICE")
