"""The exchange format, version 1.0: four message types in one signed envelope.

These Pydantic models are the one source of truth of the format:
``docs/exchange/schema-v1.json`` is generated from them (:func:`json_schema`,
``targeting exchange schema``) and a test checks that the committed file equals
the generated one.

Every message has a stable ``message_id``, its ``sender`` unit, its
``recipients`` (named units, or ``NETWORK`` for every peer), ``created_at``,
a validity window (``valid_from`` inclusive, ``valid_to`` exclusive, both
timezone-aware) and a Traffic Light Protocol handling code:

- ``RED``: exactly one named recipient unit; only that unit's officers see it;
- ``AMBER``: the named receiving units (or, with ``NETWORK``, every unit of the receiving instances);
- ``GREEN``: anyone in the network.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal, Union

from features.data.contracts import SEIZURE_CATEGORIES
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, model_validator

SCHEMA_VERSION = "1.0"
SCHEMA_ID = "https://ccp-targeting.example/exchange/schema-v1.json"
NETWORK = "NETWORK"
MESSAGE_TYPES = ("ALERT", "PRE_ARRIVAL_NOTICE", "SEIZURE_REPORT", "FEEDBACK")
TLP_CODES = ("RED", "AMBER", "GREEN")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


UnitId = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$")]
Recipient = Annotated[str, StringConstraints(pattern=r"^(NETWORK|[A-Z0-9][A-Z0-9-]{1,31})$")]
MessageId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,79}$")]
Locode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}[A-Z2-9]{3}$")]
ContainerNumber = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}[UJZ][0-9]{7}$")]
Reference = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9._/:-]{0,63}$")]
ImoNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{7}$")]
HsCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{2,10}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True), AfterValidator(_no_control_characters)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True), AfterValidator(_no_control_characters)]
Severity = Annotated[int, Field(ge=1, le=5)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Party(_Strict):
    """A trader as the sender knows it: an identifier, a name, or both."""

    role: Literal["SHIPPER", "CONSIGNEE", "NOTIFY"] | None = None
    id: Reference | None = None
    name: Name | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None

    @model_validator(mode="after")
    def _id_or_name(self) -> Party:
        if self.id is None and self.name is None:
            raise ValueError("a party needs an id or a name")
        return self


class AlertBody(_Strict):
    """What to look for: a party, container, B/L, vessel, HS code prefix or route ``FROM>TO``."""

    kind: Literal["PARTY", "CONTAINER", "BL", "VESSEL", "HS_CODE", "ROUTE"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    party: Party | None = None
    severity: Severity
    reason: Text

    @model_validator(mode="after")
    def _target(self) -> AlertBody:
        if self.kind == "PARTY" and self.value is None and self.party is None:
            raise ValueError("a PARTY alert needs a value (party id) or a party")
        if self.kind != "PARTY" and (self.value is None or self.party is not None):
            raise ValueError(f"a {self.kind} alert needs a value and no party")
        return self


class PreArrivalNoticeBody(_Strict):
    """An export or transshipment unit tells the destination unit about a risky container on its way."""

    container_number: ContainerNumber
    master_bl: Reference
    vessel_imo: ImoNumber
    voyage: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    eta: AwareDatetime
    port_of_loading: Locode
    port_of_discharge: Locode
    reasons: Annotated[list[Text], Field(min_length=1, max_length=5)]
    severity: Severity
    action_at_origin: Literal["DEFERRED", "SCANNED", "NOT_EXAMINED"]


class SeizureReportBody(_Strict):
    """What was found, how much, where, how it was hidden, who and which route."""

    seizure_category: Literal[SEIZURE_CATEGORIES]  # type: ignore[valid-type]
    quantity_kg: Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]
    seized_at: AwareDatetime
    port: Locode
    container_number: ContainerNumber | None = None
    master_bl: Reference | None = None
    hs_code: HsCode | None = None
    concealment_method: Text | None = None
    parties: Annotated[list[Party], Field(max_length=10)] = []
    route: Annotated[list[Locode], Field(max_length=10)] = []


class FeedbackBody(_Strict):
    """The receiving unit's exam result on a notice or alert it received (sent back automatically)."""

    in_reply_to: MessageId
    container_number: ContainerNumber
    port: Locode
    exam_type: Literal["NII", "PHYSICAL"]
    result: Literal["NO_FINDING", "DISCREPANCY", "SEIZURE"]
    inspected_at: AwareDatetime
    seizure_category: Literal[SEIZURE_CATEGORIES] | None = None  # type: ignore[valid-type]
    quantity_kg: Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)] | None = None


class _Envelope(_Strict):
    schema_version: Literal["1.0"]
    message_id: MessageId
    sender: UnitId
    recipients: Annotated[list[Recipient], Field(min_length=1, max_length=50)]
    created_at: AwareDatetime
    valid_from: AwareDatetime
    valid_to: AwareDatetime
    tlp: Literal["RED", "AMBER", "GREEN"]

    @model_validator(mode="after")
    def _addressing(self) -> _Envelope:
        if self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        if NETWORK in self.recipients and len(self.recipients) > 1:
            raise ValueError("NETWORK must be the only recipient when present")
        if len(set(self.recipients)) != len(self.recipients):
            raise ValueError("recipients must be distinct")
        if self.sender in self.recipients:
            raise ValueError("the sender cannot be a recipient")
        if self.tlp == "RED" and (len(self.recipients) != 1 or self.recipients[0] == NETWORK):
            raise ValueError("a RED message must name exactly one recipient unit")
        return self

    def is_valid_at(self, at: datetime) -> bool:
        """Whether ``valid_from <= at < valid_to``."""
        return self.valid_from <= at < self.valid_to


class AlertMessage(_Envelope):
    type: Literal["ALERT"]
    body: AlertBody


class PreArrivalNoticeMessage(_Envelope):
    type: Literal["PRE_ARRIVAL_NOTICE"]
    body: PreArrivalNoticeBody


class SeizureReportMessage(_Envelope):
    type: Literal["SEIZURE_REPORT"]
    body: SeizureReportBody


class FeedbackMessage(_Envelope):
    type: Literal["FEEDBACK"]
    body: FeedbackBody


Message = Annotated[Union[AlertMessage, PreArrivalNoticeMessage, SeizureReportMessage, FeedbackMessage], Field(discriminator="type")]
MESSAGE = TypeAdapter(Message)


class SignedMessage(_Strict):
    """What travels: the message and the base64 Ed25519 signature of its canonical JSON by the sender's key."""

    message: Message
    signature: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{86}==$")]


def parse_message(data: Any) -> AlertMessage | PreArrivalNoticeMessage | SeizureReportMessage | FeedbackMessage:
    """Validate ``data`` (a dict) as a message; ``pydantic.ValidationError`` naming each bad field."""
    return MESSAGE.validate_python(data)


def message_dict(message: _Envelope) -> dict[str, Any]:
    """The JSON-ready dict of a message (what is signed and sent)."""
    return message.model_dump(mode="json", exclude_none=True)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a signed message, version :data:`SCHEMA_VERSION`."""
    schema = TypeAdapter(SignedMessage).json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"ccp-targeting exchange message, version {SCHEMA_VERSION}",
        **schema,
    }


def json_schema_text() -> str:
    """:func:`json_schema` as the committed file's text (sorted keys, two-space indent, final newline)."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
