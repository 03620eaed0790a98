"""Schemas of the served model and the risk check."""

from __future__ import annotations

from serve.schemas.common import OutputModel


class ModelInfoPublic(OutputModel):
    """The champion model the engine serves."""

    name: str
    version: str
    artifact_sha256: str
    source: str
    metrics: dict[str, float]


class ContainerRiskPublic(OutputModel):
    """An ad-hoc risk check of one container due at a port."""

    container_number: str
    manifest_id: str
    port: str
    score: float
    reasons: list[str]
    watchlist_hits: list[str]
    rule_hits: list[str]
    model_version: str
    risk_probability: float | None = None
    risk_band: str = "NOT_RATED"
