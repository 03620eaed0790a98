"""Rule profiles: the validated profile model, rule-set hashing, and the default profiles read from package data."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import resources
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from features.rules.fields import MAX_EXPRESSION_LENGTH, RULESET_FORMAT
from features.rules.compile import validate_expression


# --------------------------------------------------------------------------- profiles

_LOCODE = r"^[A-Z]{2}[A-Z2-9]{3}$"
RuleCode = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Z0-9_-]+$")]
RuleReason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class RuleProfile(BaseModel):
    """One selectivity rule: what it matches, why, where and when it applies, and its weight.

    Attributes
    ----------
    code
        Stable identifier, 1..32 characters of ``A-Z 0-9 _ -``.
    reason
        Plain-language reason shown to officers (1..300 characters).
    expression
        Rule-language condition; validated by compiling it.
    valid_from, valid_to
        Timezone-aware validity window, ``valid_from`` inclusive, ``valid_to``
        exclusive (``None``: open-ended). ``valid_to`` must be after ``valid_from``.
    level, port
        ``"NATIONAL"`` (no port; applies at every port) or ``"PORT"`` with the
        port's UN/LOCODE.
    weight
        Selection weight, ``0 < weight <= 100``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: RuleCode
    reason: RuleReason
    expression: str = Field(min_length=1, max_length=MAX_EXPRESSION_LENGTH)
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None
    level: Literal["NATIONAL", "PORT"] = "NATIONAL"
    port: str | None = Field(default=None, pattern=_LOCODE)
    weight: float = Field(gt=0, le=100, allow_inf_nan=False)

    @field_validator("expression")
    @classmethod
    def _expression_compiles(cls, value: str) -> str:
        validate_expression(value)
        return value

    @model_validator(mode="after")
    def _window_and_level(self) -> RuleProfile:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        if self.level == "PORT" and self.port is None:
            raise ValueError("port is required when level is PORT")
        if self.level == "NATIONAL" and self.port is not None:
            raise ValueError("port must be empty when level is NATIONAL")
        return self

    def is_active(self, at: datetime, port: str) -> bool:
        """True when ``valid_from <= at < valid_to`` and the rule applies at ``port``.

        ``at`` must be timezone-aware. A NATIONAL rule applies at every port;
        a PORT rule only at its own port.
        """
        _require_aware(at, "at")
        return self.is_current(at) and (self.level == "NATIONAL" or self.port == port)

    def is_current(self, at: datetime) -> bool:
        """True when ``valid_from <= at < valid_to`` (``at`` timezone-aware), whatever the port."""
        _require_aware(at, "at")
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)

    def canonical(self) -> dict[str, object]:
        """JSON-ready dict with timestamps as UTC ISO-8601 strings (input of :func:`ruleset_hash`)."""
        return {
            "code": self.code,
            "reason": self.reason,
            "expression": self.expression,
            "valid_from": _utc_iso(self.valid_from),
            "valid_to": None if self.valid_to is None else _utc_iso(self.valid_to),
            "level": self.level,
            "port": self.port,
            "weight": float(self.weight),
        }


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _utc_iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def ruleset_hash(rules: Sequence[RuleProfile]) -> str:
    """sha256 (hex) of the canonical JSON of ``rules``, independent of their order.

    Timestamps are normalised to UTC, so the same instants in other offsets
    hash the same. Duplicated profiles count (the rules form a multiset).
    """
    entries = sorted(_canonical_json(rule.canonical()) for rule in rules)
    payload = _canonical_json({"format": RULESET_FORMAT, "rules": [json.loads(e) for e in entries]})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)




# --------------------------------------------------------------------------- default rule set


DEFAULT_PROFILES_FILE = "default_profiles.json"
"""The default rule profiles, shipped as package data (``features/rules/default_profiles.json``, format ``ccp-rules/1``)."""


def default_rule_profiles() -> list[RuleProfile]:
    """The national rule profiles a unit starts from (valid from 2000-01-01, open-ended), read from the package data file.

    Each call returns new, validated :class:`RuleProfile` objects (a bad file raises
    ``ValueError`` naming the rule's position and code).
    """
    data = json.loads(resources.files("features.rules").joinpath(DEFAULT_PROFILES_FILE).read_text(encoding="utf-8"))
    if data.get("format") != RULESET_FORMAT:
        raise ValueError(f"{DEFAULT_PROFILES_FILE}: format must be {RULESET_FORMAT!r}, got {data.get('format')!r}")
    profiles = []
    for position, row in enumerate(data["rules"], start=1):
        try:
            profiles.append(RuleProfile(**row))
        except ValueError as exc:
            raise ValueError(f"{DEFAULT_PROFILES_FILE}: rule {position} ({row.get('code')!r}) is invalid: {exc}") from None
    return profiles
