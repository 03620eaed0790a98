"""How much novelty legitimate trade has (``WorldConfig.legit_churn``)."""

from __future__ import annotations

CHURN_LEVELS = ("static", "realistic")


def check_churn_level(level: str) -> str:
    """``level`` when it is one of :data:`CHURN_LEVELS`; a clear error listing them otherwise."""
    if level not in CHURN_LEVELS:
        raise ValueError(f"unknown legit_churn {level!r}: use one of {', '.join(CHURN_LEVELS)}")
    return level
