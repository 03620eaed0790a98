"""Schemas of rule profiles and rule-set versions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, StrictStr, ValidationError, field_validator, model_validator

from features.rules.language import MAX_EXPRESSION_LENGTH, RuleProfile, validate_expression
from serve.schemas.common import IsoDateTime, InputModel, Locode, OutputModel, SafeText


class RuleCreate(InputModel):
    """A new rule profile (see :class:`features.rules.language.RuleProfile`); the expression must compile."""

    code: StrictStr = Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9_-]+$")
    reason: SafeText = Field(min_length=1, max_length=300)
    expression: SafeText = Field(min_length=1, max_length=MAX_EXPRESSION_LENGTH)
    valid_from: IsoDateTime
    valid_to: IsoDateTime | None = None
    level: Literal["NATIONAL", "PORT"] = "NATIONAL"
    port: Locode | None = None
    weight: float = Field(gt=0, le=100, allow_inf_nan=False, strict=True)

    @field_validator("expression")
    @classmethod
    def _compiles(cls, value: str) -> str:
        validate_expression(value)
        return value

    @model_validator(mode="after")
    def _is_a_profile(self) -> RuleCreate:
        try:
            self.to_profile()
        except ValidationError as exc:
            raise ValueError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None
        return self

    def to_profile(self) -> RuleProfile:
        """The :class:`RuleProfile` described (raises ``ValueError`` if it is not a valid profile)."""
        return RuleProfile(**self.model_dump())


class RulePublic(OutputModel):
    """A stored rule profile and its history."""

    id: int
    code: str
    reason: str
    expression: str
    valid_from: datetime
    valid_to: datetime | None
    level: str
    port: str | None
    weight: float
    created_at: datetime
    created_by: str
    created_in_version: int
    expired_at: datetime | None
    expired_by: str | None
    expired_in_version: int | None


class RuleSetVersionPublic(OutputModel):
    """A rule-set version (without its rules)."""

    version: int
    created_at: datetime
    created_by: str
    change: str
    ruleset_hash: str
    rule_count: int


class RuleSetVersionDetail(RuleSetVersionPublic):
    """A rule-set version with the canonical form of its rules."""

    rules: list[dict[str, object]]


class RuleList(OutputModel):
    """Stored rule profiles and the current rule-set version."""

    ruleset_version: int
    items: list[RulePublic]


class RuleChange(OutputModel):
    """Result of adding or expiring a profile: the profile and the new rule-set version."""

    rule: RulePublic
    ruleset_version: RuleSetVersionPublic
