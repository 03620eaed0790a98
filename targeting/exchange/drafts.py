"""Messages the engine writes itself, and what an accepted message becomes in the watchlist.

- :func:`watchlist_entries_for`: an accepted ALERT becomes one or two watchlist entries (party id and/or
  party name), an accepted PRE_ARRIVAL_NOTICE a CONTAINER entry in force for the container's arrival day
  (so it is a mandatory item on the destination unit's list that day); the issuing unit and the message id
  are in every entry's reason.
- :func:`feedback_for`: the FEEDBACK answering a received notice or alert once the unit recorded its exam.
- :func:`draft_seizure_messages`: after a seizure, a SEIZURE_REPORT to the network plus CONTAINER and PARTY
  alerts, drafted for human approval.
- :func:`draft_pre_arrival_notice`: when an export or transshipment unit defers or only scans a high-risk
  container, a notice to the unit of its port of discharge, drafted for human approval.

Message ids of drafts are derived from what they answer, so drafting twice gives the same id (idempotent).
Times: every function takes ``now`` (from :mod:`features.clock` at the caller); nothing reads a clock here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from features.intel import party_name_value
from targeting.exchange.messages import (
    NETWORK,
    SCHEMA_VERSION,
    FeedbackMessage,
    PreArrivalNoticeMessage,
    parse_message,
)

ALERT_DAYS = 180
"""Validity of alerts drafted after a seizure."""
HIGH_RISK_SCORE = 0.5
"""Score from which a deferred or scanned-only container at an export or transshipment unit gets a draft notice."""


@dataclass(frozen=True)
class WatchlistDraft:
    """A watchlist entry to create for an accepted message (the ALERTS contract fields)."""

    alert_id: str
    kind: str
    value: str
    reason: str
    issuing_unit: str
    severity: int
    valid_from: datetime
    valid_to: datetime | None


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16].upper()


def derived_id(unit: str, kind: str, *key: str) -> str:
    """A stable message id for what ``unit`` drafts of ``kind`` about ``key``."""
    return f"{unit}:{kind}:{_digest(unit, kind, *key)}"


def watchlist_entries_for(message: Any) -> list[WatchlistDraft]:
    """Watchlist entries an accepted ALERT or PRE_ARRIVAL_NOTICE becomes (none for other types)."""
    base = f"XA-{_digest(message.message_id)}"
    if message.type == "PRE_ARRIVAL_NOTICE":
        body = message.body
        day = datetime.combine(body.eta.astimezone(UTC).date(), time(0), tzinfo=UTC)
        reason = f"Pre-arrival notice from {message.sender} ({body.action_at_origin.lower()} at {body.port_of_loading}): " + "; ".join(body.reasons)
        return [WatchlistDraft(base + "-C", "CONTAINER", body.container_number, reason[:500], message.sender, body.severity, day, day + timedelta(days=1))]
    if message.type != "ALERT":
        return []
    body = message.body
    reason = f"{body.reason} (alert {message.message_id} from {message.sender})"[:500]
    drafts = []
    values = [body.value] if body.value else []
    if body.kind == "PARTY" and body.party is not None:
        values = [v for v in (body.party.id, body.value) if v] + ([party_name_value(body.party.name)] if body.party.name else [])
    for n, value in enumerate(dict.fromkeys(values)):
        drafts.append(WatchlistDraft(f"{base}-{n}", body.kind, value, reason, message.sender, body.severity, message.valid_from, message.valid_to))
    return drafts


def _envelope(message_id: str, kind: str, sender: str, recipients: list[str], tlp: str, now: datetime, valid_to: datetime) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "message_id": message_id,
        "type": kind,
        "sender": sender,
        "recipients": recipients,
        "created_at": now.isoformat(),
        "valid_from": now.isoformat(),
        "valid_to": valid_to.isoformat(),
        "tlp": tlp,
    }


def feedback_for(received: Any, *, unit: str, outcome: dict[str, Any], now: datetime) -> FeedbackMessage:
    """The FEEDBACK ``unit`` sends to the sender of ``received`` about ``outcome`` (an OUTCOMES-contract dict).

    RED when the message answered was RED, else AMBER; addressed to the sender only; valid 365 days.
    """
    data = _envelope(
        derived_id(unit, "FEEDBACK", received.message_id, outcome["manifest_id"]),
        "FEEDBACK", unit, [received.sender], "RED" if received.tlp == "RED" else "AMBER", now, now + timedelta(days=365),
    )
    body = {
        "in_reply_to": received.message_id,
        "container_number": outcome["container_number"],
        "port": outcome["port"],
        "exam_type": outcome["exam_type"],
        "result": outcome["result"],
        "inspected_at": outcome["inspected_at"].isoformat(),
    }
    if outcome.get("seizure_category"):
        body["seizure_category"] = outcome["seizure_category"]
    if outcome.get("quantity_kg") is not None:
        body["quantity_kg"] = float(outcome["quantity_kg"])
    return parse_message({**data, "body": body})


def _parties(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    parties = []
    for role in ("shipper", "consignee", "notify"):
        pid, name = manifest.get(f"{role}_id"), manifest.get(f"{role}_name")
        if pid or name:
            party = {"role": "NOTIFY" if role == "notify" else role.upper()}
            party |= {k: v for k, v in (("id", pid), ("name", name), ("country", manifest.get(f"{role}_country"))) if v}
            parties.append(party)
    return parties


def _route(manifest: dict[str, Any]) -> list[str]:
    legs = [manifest.get("port_of_loading"), *(manifest.get("transshipment_ports") or []), manifest.get("port_of_discharge")]
    return list(dict.fromkeys(p for p in legs if p))


def draft_seizure_messages(*, unit: str, outcome: dict[str, Any], manifest: dict[str, Any], now: datetime) -> list[Any]:
    """SEIZURE_REPORT (AMBER, the network) plus CONTAINER and consignee/shipper PARTY alerts, after a seizure.

    ``outcome`` and ``manifest`` are contract dicts of the seizure and of the manifest line it names.
    """
    key = outcome["manifest_id"]
    until = now + timedelta(days=ALERT_DAYS)
    report = {
        "seizure_category": outcome.get("seizure_category") or "OTHER",
        "quantity_kg": float(outcome.get("quantity_kg") or 0.0),
        "seized_at": outcome["inspected_at"].isoformat(),
        "port": outcome["port"],
        "container_number": outcome["container_number"],
        "master_bl": manifest.get("master_bl"),
        "hs_code": manifest.get("hs_code"),
        "concealment_method": outcome.get("concealment_method"),
        "parties": _parties(manifest),
        "route": _route(manifest),
    }
    messages: list[Any] = [
        parse_message({**_envelope(derived_id(unit, "SEIZURE_REPORT", key), "SEIZURE_REPORT", unit, [NETWORK], "AMBER", now, until),
                       "body": {k: v for k, v in report.items() if v is not None}})
    ]
    what = f"{report['seizure_category'].lower()} seizure at {outcome['port']} on {outcome['inspected_at'].date().isoformat()}"
    container_alert = {"kind": "CONTAINER", "value": outcome["container_number"], "severity": 4, "reason": f"Container used in a {what}"}
    messages.append(parse_message({**_envelope(derived_id(unit, "ALERT", key, "CONTAINER"), "ALERT", unit, [NETWORK], "AMBER", now, until), "body": container_alert}))
    for party in _parties(manifest):
        if party["role"] == "NOTIFY":
            continue
        body = {"kind": "PARTY", "party": party, "severity": 5, "reason": f"{party['role'].capitalize()} of a {what}"}
        envelope = _envelope(derived_id(unit, "ALERT", key, party["role"]), "ALERT", unit, [NETWORK], "AMBER", now, until)
        messages.append(parse_message({**envelope, "body": body}))
    return messages


def draft_pre_arrival_notice(
    *, unit: str, destination_unit: str, manifest: dict[str, Any], action: str, score: float, reasons: list[str], now: datetime
) -> PreArrivalNoticeMessage:
    """A notice from ``unit`` to ``destination_unit`` about ``manifest`` (``action``: DEFERRED, SCANNED or NOT_EXAMINED).

    AMBER, valid until two days after the ETA.
    """
    eta: datetime = manifest["eta"]
    data = _envelope(
        derived_id(unit, "PRE_ARRIVAL_NOTICE", manifest["manifest_id"]), "PRE_ARRIVAL_NOTICE", unit, [destination_unit], "AMBER",
        now, max(eta, now) + timedelta(days=2),
    )
    body = {
        "container_number": manifest["container_number"],
        "master_bl": manifest["master_bl"],
        "vessel_imo": manifest["vessel_imo"],
        "voyage": manifest["voyage"],
        "eta": eta.isoformat(),
        "port_of_loading": manifest["port_of_loading"],
        "port_of_discharge": manifest["port_of_discharge"],
        "reasons": [r[:500] for r in reasons[:4]] + [f"Risk score {score:.2f} at {unit}"],
        "severity": 5 if score >= 0.8 else 4,
        "action_at_origin": action,
    }
    return parse_message({**data, "body": body})


def needs_pre_arrival_notice(*, unit_role: str, score: float, action: str) -> bool:
    """Whether an export or transshipment unit should draft a notice: high score and deferred or scanned only."""
    return unit_role in ("EXPORT", "TRANSSHIPMENT") and score >= HIGH_RISK_SCORE and action in ("DEFERRED", "SCANNED")
