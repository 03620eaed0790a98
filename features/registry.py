"""The feature registry: every output column, its family and its meaning, read from the code itself.

Row-wise features register with the :func:`feature` decorator: the function's
name is the output column and its docstring is the description (meaning and
time semantics). Features computed by frame transforms (events, entity
history, intelligence) register with :func:`declare`. ``docs/features.md`` is
rendered from this registry by :func:`render_markdown`, so it cannot drift.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import polars as pl


@dataclass(frozen=True)
class FeatureSpec:
    """One model input column."""

    name: str
    family: str
    description: str
    categorical: bool = False
    function: Callable | None = None


FAMILIES = ("manifest", "routing", "loading", "entity", "priors", "anomaly", "intelligence", "categorical")
REGISTRY: dict[str, FeatureSpec] = {}


def _clean(doc: str | None) -> str:
    return " ".join(inspect.cleandoc(doc or "").split())


def _add(spec: FeatureSpec) -> None:
    if spec.family not in FAMILIES:
        raise ValueError(f"unknown feature family {spec.family!r}")
    if spec.name in REGISTRY and REGISTRY[spec.name] != spec:
        raise ValueError(f"feature {spec.name!r} registered twice")
    REGISTRY[spec.name] = spec


def feature(family: str) -> Callable[[Callable[..., pl.Expr]], Callable[..., pl.Expr]]:
    """Register a row-wise feature: a function returning a ``pl.Expr`` named after the function."""

    def register(function: Callable[..., pl.Expr]) -> Callable[..., pl.Expr]:
        if not function.__doc__:
            raise ValueError(f"feature {function.__name__} needs a docstring stating its meaning and time semantics")
        _add(FeatureSpec(function.__name__, family, _clean(function.__doc__), function=function))
        return function

    return register


def declare(name: str, family: str, description: str, *, categorical: bool = False) -> str:
    """Register a feature produced by a frame transform; returns ``name``."""
    _add(FeatureSpec(name, family, _clean(description), categorical=categorical))
    return name


OFF_BY_DEFAULT: frozenset[str] = frozenset(
    {
        # issue 15's transfer features, measured on the drift benchmark (docs/evaluation.md, "Feature ablation"):
        # computed (ablations, models that ask for them, champions trained with them still score) but not default inputs
        "origin_prior_rate", "commodity_prior_rate", "flow_prior_rate",
        "consignee_origin_n_prior", "consignee_loading_port_n_prior", "consignee_family_n_prior", "shipper_family_n_prior",
        "anomaly_score",
    }
)
"""Registered features the pipeline computes but the default model does not learn from."""


def _canonical() -> list[FeatureSpec]:
    """Every registered feature by :data:`FAMILIES` order, then in registration order within its family.

    Not :data:`REGISTRY`'s own order: modules register their features when they are imported, and the
    import order differs between processes (a Dask worker, a test process that imported one family's
    module first), so it must not decide the columns' order.
    """
    return sorted(REGISTRY.values(), key=lambda spec: FAMILIES.index(spec.family))


def feature_columns() -> list[str]:
    """The default model's input columns in their canonical order (the model's column order): every registered feature but :data:`OFF_BY_DEFAULT`."""
    return [spec.name for spec in _canonical() if spec.name not in OFF_BY_DEFAULT]


def computed_columns() -> list[str]:
    """Every registered feature in canonical order: what :func:`features.pipeline.build_features` outputs (default inputs and :data:`OFF_BY_DEFAULT`)."""
    return [spec.name for spec in _canonical()]


def categorical_columns() -> list[str]:
    return [spec.name for spec in _canonical() if spec.categorical]


def render_markdown() -> str:
    """``docs/features.md``: every feature with its family, meaning and time window."""
    lines = [
        "# Features",
        "",
        "Generated from the feature registry (`features/registry.py`) by `targeting docs features`; do not edit by hand.",
        "",
        "Every feature of a row uses only data available strictly before the row's `decision_at`:",
        "manifests filed before it, container events that happened before it, inspection outcomes",
        "recorded before it and alerts valid at it. Missing values are encoded as finite sentinels",
        "(documented per feature), so every feature is defined and finite. Features marked *off by default*",
        "are computed but not inputs of the default model (measured not to help: `docs/evaluation.md`, Drift scenarios).",
        "",
    ]
    for family in FAMILIES:
        specs = [s for s in REGISTRY.values() if s.family == family]
        if not specs:
            continue
        lines += [f"## {family.capitalize()} ({len(specs)})", "", "| feature | meaning and time window |", "|---|---|"]
        for s in specs:
            kind = (" (categorical)" if s.categorical else "") + (" (off by default)" if s.name in OFF_BY_DEFAULT else "")
            lines.append(f"| `{s.name}`{kind} | {s.description.replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)
