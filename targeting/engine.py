"""The targeting engine's interface as the service sees it.

The service (``serve``) owns the operational store (keys, lists, outcomes,
watchlist entries and rule profiles created through the API, audit events).
The engine owns data, features, the champion model and the selection policy.
The service passes the store's rule set and watchlist entries into every call,
so the engine never reads the store and a stored list can be regenerated from
its record alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Sequence

import polars as pl

from features.rules.language import RuleProfile
from targeting.lists import InspectionList, ListRequest


@dataclass(frozen=True)
class RuleSetSnapshot:
    """The rule profiles in force, as one immutable numbered version."""

    version: int
    rules: tuple[RuleProfile, ...]


@dataclass(frozen=True)
class ModelInfo:
    """The model a list is scored with, resolved once per list."""

    name: str
    version: str
    artifact_sha256: str
    source: str
    """'registry' when loaded from MLflow, 'local-copy' when served from the verified local copy."""
    metrics: dict[str, float]


@dataclass(frozen=True)
class ContainerRisk:
    """An officer's ad-hoc risk check of one container due at their port."""

    container_number: str
    manifest_id: str
    port: str
    score: float
    reasons: tuple[str, ...]
    watchlist_hits: tuple[str, ...]
    rule_hits: tuple[str, ...]
    model_version: str
    risk_probability: float | None = None
    """The champion's calibrated probability that an exam finds contraband (``None``: the champion has no calibrator)."""
    risk_band: str = "NOT_RATED"
    """The band of ``risk_probability`` (:data:`models.calibration.RISK_BANDS`)."""


class TargetingEngine(Protocol):
    """What the service needs from the engine."""

    def model_info(self) -> ModelInfo:
        """The champion currently loaded (raises ``ModelUnavailableError`` when none)."""

    def reload(self) -> ModelInfo:
        """Resolve the ``champion`` alias again and load it if it moved."""

    def build_list(
        self,
        request: ListRequest,
        *,
        ruleset: RuleSetSnapshot,
        watchlist: pl.DataFrame,
        decision_at: datetime | None = None,
    ) -> InspectionList:
        """Build the list for ``request`` (its port, date and direction) with :mod:`targeting.kernel`.

        ``watchlist`` has the ALERTS contract columns. Without a champion the
        list is the day-one list (watchlist, rule profiles, random slice, with
        a warning); it never fails for want of a model.
        """

    def container_risk(
        self,
        port: str,
        container_number: str,
        *,
        ruleset: RuleSetSnapshot,
        watchlist: pl.DataFrame,
        at: datetime,
    ) -> ContainerRisk | None:
        """Risk of the container's next manifest due at ``port``; ``None`` when none is due there."""

    def replay(
        self,
        record: InspectionList,
        *,
        ruleset: RuleSetSnapshot,
        watchlist: pl.DataFrame,
    ) -> InspectionList:
        """Regenerate a stored list from its record (same model version, rules, data, seed)."""

    def ready(self) -> dict[str, bool]:
        """Readiness checks: model loaded, lake readable."""


class ModelUnavailableError(RuntimeError):
    """No champion model could be loaded (neither from the registry nor a verified local copy)."""


class UnknownPortError(ValueError):
    """The port is not in the port reference."""


def ruleset_from(rules: Sequence[RuleProfile], version: int) -> RuleSetSnapshot:
    """Freeze ``rules`` as version ``version``."""
    return RuleSetSnapshot(version=version, rules=tuple(rules))
