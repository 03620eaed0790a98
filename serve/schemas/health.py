"""Schemas of the liveness and readiness probes (booleans only)."""

from __future__ import annotations

from serve.schemas.common import OutputModel


class Liveness(OutputModel):
    """The process answers."""

    status: str


class Readiness(OutputModel):
    """Whether the service can do its work; ``checks`` maps check names to booleans."""

    ready: bool
    checks: dict[str, bool]
