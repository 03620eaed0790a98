"""Evaluating the active rule profiles on manifest rows: fired codes, reasons with placeholders, scores."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType

import polars as pl

from features.data.contracts import MANIFESTS
from features.rules.compile import compile_rule, referenced_columns
from features.rules.profiles import RuleProfile, _require_aware


# --------------------------------------------------------------------------- evaluation


def _active_rules(rules: Sequence[RuleProfile], at: datetime, port: str | None) -> list[RuleProfile]:
    """Rules active at ``at`` (and ``port`` when given), ordered by weight desc then code."""
    active = [r for r in rules if (r.is_current(at) if port is None else r.is_active(at, port))]
    codes = [r.code for r in active]
    duplicated = sorted({c for c in codes if codes.count(c) > 1})
    if duplicated:
        raise ValueError(f"duplicate active rule codes: {', '.join(duplicated)}")
    return sorted(active, key=lambda r: (-r.weight, r.code))


def _rule_hit(rule: RuleProfile, port: str | None) -> pl.Expr:
    """Whether ``rule`` fires; without a port, a PORT rule fires only on its port of discharge."""
    hit = compile_rule(rule.expression)
    if port is None and rule.level == "PORT":
        hit = hit & (pl.col("port_of_discharge") == rule.port).fill_null(False)
    return hit


def _with_missing_optional_columns(manifests: pl.LazyFrame, needed: set[str]) -> pl.LazyFrame:
    """Add needed optional contract columns absent from ``manifests`` as typed nulls."""
    present = set(manifests.collect_schema().names())
    missing = sorted(needed - present)
    absent_required = [name for name in missing if MANIFESTS.column(name).required]
    if absent_required:
        raise ValueError(f"manifests lack columns needed by the active rules: {', '.join(absent_required)}")
    return manifests.with_columns(pl.lit(None, dtype=MANIFESTS.column(n).dtype).alias(n) for n in missing)


REASON_PLACEHOLDERS: Mapping[str, tuple[tuple[str, ...], Callable[[], pl.Expr]]] = MappingProxyType({
    "port_of_loading": (("port_of_loading",), lambda: _place(pl.col("port_of_loading"))),
    "place_of_receipt": (("place_of_receipt",), lambda: _place(pl.col("place_of_receipt"))),
    "transshipment_ports": (("transshipment_ports",), lambda: pl.col("transshipment_ports").list.eval(_place(pl.element())).list.join(", ")),
    "hs_code": (("hs_code",), lambda: pl.col("hs_code")),
})
"""``{name}`` placeholders a rule's reason may use, so the reason names the place or goods of each row:
the manifest columns each reads and its text (ports as "Callao, PE (PECLL)")."""


def _place(code: pl.Expr) -> pl.Expr:
    from features.data.reference import load_ports

    ports = load_ports()
    names = dict(zip(ports["locode"].to_list(), ports["name"].to_list(), strict=True))
    return pl.format("{}, {} ({})", code.replace_strict(names, default=code, return_dtype=pl.String()), code.str.slice(0, 2), code)


_PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")


def reason_columns(reason: str) -> frozenset[str]:
    """Manifest columns read by the ``{placeholders}`` of a reason (unknown names are left as text)."""
    return frozenset(c for name in _PLACEHOLDER_RE.findall(reason) if name in REASON_PLACEHOLDERS for c in REASON_PLACEHOLDERS[name][0])


def reason_expr(reason: str) -> pl.Expr:
    """The reason of a fired rule for each row: its ``{placeholders}`` filled from the row ("?" when null).

    >>> frame = pl.DataFrame({"port_of_loading": ["PECLL"]})
    >>> frame.select(r=reason_expr("Loaded at {port_of_loading}."))["r"].to_list()
    ['Loaded at Callao, PE (PECLL).']
    """
    parts = _PLACEHOLDER_RE.split(reason)
    if len(parts) == 1:
        return pl.lit(reason, dtype=pl.String())
    exprs, template = [], []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            template.append(part)
        elif part in REASON_PLACEHOLDERS:
            template.append("{}")
            exprs.append(REASON_PLACEHOLDERS[part][1]().fill_null("?"))
        else:
            template.append("{" + part + "}")
    if not exprs:
        return pl.lit(reason, dtype=pl.String())
    return pl.format("".join(template), *exprs)


def _fired(hit_columns: list[str], labels: list[str | pl.Expr]) -> pl.Expr:
    if not hit_columns:
        return pl.lit([], dtype=pl.List(pl.String()))
    items = [
        pl.when(pl.col(h)).then(label if isinstance(label, pl.Expr) else pl.lit(label, dtype=pl.String()))
        for h, label in zip(hit_columns, labels, strict=True)
    ]
    return pl.concat_list(items).list.drop_nulls()


def _score(hit_columns: list[str], weights: list[float]) -> pl.Expr:
    if not hit_columns:
        return pl.lit(0.0, dtype=pl.Float64())
    terms = [
        pl.when(pl.col(h)).then(pl.lit(w, dtype=pl.Float64())).otherwise(0.0)
        for h, w in zip(hit_columns, weights, strict=True)
    ]
    return pl.sum_horizontal(terms)


def evaluate_rules(
    rules: Sequence[RuleProfile],
    manifests: pl.LazyFrame,
    *,
    at: datetime,
    port: str | None,
) -> pl.LazyFrame:
    """Apply the rules active at ``at`` to every manifest row.

    Parameters
    ----------
    rules
        Candidate rule profiles; only those with ``valid_from <= at < valid_to``
        are applied. Two active rules may not share a code (``ValueError``).
    manifests
        Manifest rows with the contract's columns (optional contract columns
        that are missing are read as null). Row order is preserved.
    at
        Decision time, timezone-aware.
    port
        UN/LOCODE of the evaluating port: NATIONAL rules and that port's PORT
        rules apply. ``None``: NATIONAL rules apply to every row and each PORT
        rule only to rows whose ``port_of_discharge`` is its port.

    Returns
    -------
    pl.LazyFrame
        One row per input row: ``manifest_id``; ``rule_codes`` and
        ``rule_reasons`` (``List(String)``, the fired rules ordered by weight
        descending then code; empty when none fired); ``rule_score``
        (``Float64``, sum of the fired rules' weights, 0.0 when none). Null
        field values never make a rule fire (see the module docstring).
        Nothing is collected (only the input schema is resolved).

    Raises
    ------
    ValueError
        ``at`` is naive, two active rules share a code, or ``manifests`` lacks
        a required contract column that an active rule reads.
    """
    _require_aware(at, "at")
    active = _active_rules(rules, at, port)
    needed = {"manifest_id"} | {c for r in active for c in referenced_columns(r.expression)}
    if port is None and any(r.level == "PORT" for r in active):
        needed.add("port_of_discharge")
    needed |= {c for r in active for c in reason_columns(r.reason)}
    frame = _with_missing_optional_columns(manifests, needed)
    hit_columns = [f"__rule_hit_{i}" for i in range(len(active))]
    frame = frame.with_columns(_rule_hit(r, port).alias(h) for r, h in zip(active, hit_columns, strict=True))
    return frame.select(
        pl.col("manifest_id"),
        _fired(hit_columns, [r.code for r in active]).alias("rule_codes"),
        _fired(hit_columns, [reason_expr(r.reason) for r in active]).alias("rule_reasons"),
        _score(hit_columns, [r.weight for r in active]).alias("rule_score"),
    )
