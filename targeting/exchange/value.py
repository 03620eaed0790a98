"""What sharing is worth: a network of units in the simulated world, run with and without the exchange.

Units: **export units** at source ports (they see a container on its ETD day at its port of loading),
**transshipment hubs** (half-way between ETD and ETA at a transshipment port) and **import units** (on its
ETA day at its port of discharge). Each unit inspects ``rate`` of the containers it sees each day:

1. mandatory items first: containers matching one of its watchlist entries in force (party alerts after
   seizures) and, with exchange, pre-arrival notices for that day (at most :data:`MANDATORY_SHARE` of the
   capacity, best own score first);
2. then its own ranking. The own score is a transparent indicator count (high-risk origin country, cover-load
   HS code, reefer, third-party freight payment, transshipments, plus a little noise): it stands for a unit's
   own targeting and is the same with and without exchange.

A container seized at an export unit or a hub never reaches the next unit. After each seizure (unless the
exam showed a rip-on load in a legitimate trader's container) the unit records alerts on the shipper and the
consignee, in force from the next day for 180 days: **without exchange**
only in its own watchlist; **with exchange** in every unit's (SEIZURE_REPORT plus party ALERTs to the network).
With exchange, export units and hubs also send a PRE_ARRIVAL_NOTICE to the import unit of discharge for each
of their containers beyond capacity scoring at least as high as the lowest one they inspected on their own
ranking (deferred high-risk, at most the capacity), mandatory there on the arrival day.

Per unit: inspections, seizures, precision and normalised precision (seizures over the most a perfect unit
could have found: sum over days of min(illicit containers it saw, capacity)). The hidden truth is read only
to count seizures.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

HIGH_RISK_ORIGINS = frozenset({"EC", "CO", "PE", "BR", "PA", "VE", "CR", "DO", "JM", "GH", "CI", "TG", "NG", "MX", "PK", "MA"})
COVER_HS4 = frozenset({"0803", "0901", "1801", "2523", "7204", "4407", "0306", "0804", "2932", "2914", "3824", "6907", "6802"})
ALERT_DAYS = 180
MANDATORY_SHARE = 0.5
INTELLIGENCE_BONUS = 2.0
"""A hit goes first only when its own score plus this is at least the day's best own score (the unit's triage)."""
"""Most of a unit's daily capacity that watchlist hits and notices may take (the rest is its own ranking)."""


@dataclass(frozen=True)
class Unit:
    id: str
    port: str
    role: str  # EXPORT, TRANSSHIPMENT, IMPORT


@dataclass
class UnitResult:
    unit: Unit
    inspections: int = 0
    seizures: int = 0
    best_possible: int = 0
    from_intelligence: int = 0

    @property
    def precision(self) -> float:
        return self.seizures / self.inspections if self.inspections else 0.0

    @property
    def normalised_precision(self) -> float:
        return self.seizures / self.best_possible if self.best_possible else 0.0


def own_scores(manifests: pl.DataFrame, seed: int) -> pl.Series:
    """The units' own risk score per manifest row (see the module docstring)."""
    noise = np.random.default_rng([seed, 14]).random(manifests.height)
    score = (
        2.0 * pl.col("port_of_loading").str.slice(0, 2).is_in(list(HIGH_RISK_ORIGINS)).cast(pl.Float64)
        + 1.5 * pl.col("hs_code").str.slice(0, 4).is_in(list(COVER_HS4)).cast(pl.Float64)
        + pl.col("reefer").cast(pl.Float64)
        + (pl.col("freight_payment") == "TP").cast(pl.Float64)
        + 0.5 * pl.col("transshipment_ports").list.len().fill_null(0).cast(pl.Float64)
    )
    return manifests.select(score.alias("score"))["score"] + pl.Series(noise)


def _visits(manifests: pl.DataFrame, units: list[Unit]) -> dict[tuple[str, date], list[int]]:
    """Row indices each unit sees on each day (export: ETD day, hub: mid-voyage day, import: ETA day)."""
    visits: dict[tuple[str, date], list[int]] = defaultdict(list)
    by_port = {u.port: u for u in units}
    for i, (pol, hubs, pod, etd, eta) in enumerate(manifests.select("port_of_loading", "transshipment_ports", "port_of_discharge", "etd", "eta").iter_rows()):
        if pol in by_port and by_port[pol].role == "EXPORT":
            visits[(by_port[pol].id, etd.date())].append(i)
        for hub in hubs or []:
            if hub in by_port and by_port[hub].role == "TRANSSHIPMENT":
                visits[(by_port[hub].id, (etd + (eta - etd) / 2).date())].append(i)
        if pod in by_port and by_port[pod].role == "IMPORT":
            visits[(by_port[pod].id, eta.date())].append(i)
    return visits


class _Network:
    def __init__(self, manifests: pl.DataFrame, illicit: np.ndarray, rip_on: np.ndarray, units: list[Unit], *, share: bool, rate: float, seed: int) -> None:
        self.units, self.share, self.rate = units, share, rate
        self.illicit = illicit
        self.score = own_scores(manifests, seed).to_numpy()
        self.parties = list(zip(manifests["shipper_id"].to_list(), manifests["consignee_id"].to_list()))
        self.rip_on = rip_on
        self.pod = manifests["port_of_discharge"].to_list()
        self.eta_day = [e.date() for e in manifests["eta"].to_list()]
        self.watch: dict[str, dict[str, date]] = {u.id: {} for u in units}  # unit -> party -> in force until (exclusive)
        self.notices: dict[tuple[str, date], set[int]] = defaultdict(set)
        self.seized: set[int] = set()
        self.results = {u.id: UnitResult(u) for u in units}
        self.import_unit_at = {u.port: u.id for u in units if u.role == "IMPORT"}

    def day(self, unit: Unit, day: date, rows: list[int]) -> None:
        rows = [i for i in rows if i not in self.seized]
        if not rows:
            return
        capacity = max(1, math.ceil(self.rate * len(rows)))
        watch = self.watch[unit.id]
        flagged = {i for i in rows if any(p is not None and watch.get(p, day) > day for p in self.parties[i])}
        flagged |= self.notices.get((unit.id, day), set()) & set(rows)
        ranked = sorted(rows, key=lambda i: (-self.score[i], i))
        mandatory = [i for i in sorted(flagged, key=lambda i: (-self.score[i], i)) if self.score[i] + INTELLIGENCE_BONUS >= self.score[ranked[0]]]
        mandatory = mandatory[: max(1, int(capacity * MANDATORY_SHARE))]
        own = [i for i in ranked if i not in set(mandatory)][: capacity - len(mandatory)]
        chosen = mandatory + own
        result = self.results[unit.id]
        result.inspections += len(chosen)
        result.best_possible += min(int(self.illicit[rows].sum()), capacity)
        for i in chosen:
            if self.illicit[i]:
                result.seizures += 1
                result.from_intelligence += i in flagged
                self.seized.add(i)
                if not self.rip_on[i]:  # a rip-on load says nothing about the (legitimate) trader's parties
                    self._alert(unit, day, self.parties[i])
        if self.share and unit.role != "IMPORT":
            bar = min((self.score[i] for i in own), default=math.inf)
            deferred = [i for i in ranked if i not in set(chosen) and self.score[i] >= bar][:capacity]
            for i in deferred:
                target = self.import_unit_at.get(self.pod[i])
                if target is not None:
                    self.notices[(target, self.eta_day[i])].add(i)

    def _alert(self, unit: Unit, day: date, parties: tuple[str | None, ...]) -> None:
        until = day + timedelta(days=1 + ALERT_DAYS)
        for target in (self.units if self.share else [unit]):
            for party in parties:
                if party is not None:
                    self.watch[target.id][party] = max(self.watch[target.id].get(party, day), until)


def run_network(manifests: pl.DataFrame, oracle: pl.DataFrame, units: list[Unit], *, share: bool, rate: float = 0.02, seed: int = 7) -> list[UnitResult]:
    """Replay the world day by day through the units (export, then hubs, then imports each day); results per unit.

    ``manifests`` and ``oracle`` are the simulated world's tables (the oracle only decides what an exam finds).
    Watchlist entries from a day's seizures are in force from the next day.
    """
    manifests = manifests.sort("manifest_id")
    truth = manifests.join(oracle.select("manifest_id", "illicit", "concealment"), on="manifest_id", how="left")
    illicit = truth["illicit"].fill_null(False).to_numpy()
    rip_on = truth["concealment"].fill_null("").str.contains("RIP-ON").to_numpy()
    network = _Network(manifests, illicit, rip_on, units, share=share, rate=rate, seed=seed)
    visits = _visits(manifests, units)
    order = {"EXPORT": 0, "TRANSSHIPMENT": 1, "IMPORT": 2}
    for day in sorted({d for _, d in visits}):
        for unit in sorted(units, key=lambda u: (order[u.role], u.id)):
            network.day(unit, day, visits.get((unit.id, day), []))
    return [network.results[u.id] for u in units]


def value_table(without: list[UnitResult], with_exchange: list[UnitResult]) -> list[dict]:
    """One row per unit plus a network total: seizures and normalised precision without and with exchange."""
    rows = []
    for a, b in zip(without, with_exchange):
        rows.append({"unit": a.unit.id, "role": a.unit.role, "inspections": b.inspections, "seizures_without": a.seizures,
                     "seizures_with": b.seizures, "from_intelligence": b.from_intelligence,
                     "norm_precision_without": a.normalised_precision, "norm_precision_with": b.normalised_precision})
    total = lambda results, f: sum(getattr(r, f) for r in results)  # noqa: E731
    rows.append({"unit": "NETWORK", "role": "", "inspections": total(with_exchange, "inspections"),
                 "seizures_without": total(without, "seizures"), "seizures_with": total(with_exchange, "seizures"),
                 "from_intelligence": total(with_exchange, "from_intelligence"),
                 "norm_precision_without": total(without, "seizures") / max(1, total(without, "best_possible")),
                 "norm_precision_with": total(with_exchange, "seizures") / max(1, total(with_exchange, "best_possible"))})
    return rows


DEFAULT_UNITS = [
    Unit("PCU-ECGYE", "ECGYE", "EXPORT"), Unit("PCU-BRSSZ", "BRSSZ", "EXPORT"), Unit("PCU-PECLL", "PECLL", "EXPORT"),
    Unit("PCU-PAMIT", "PAMIT", "TRANSSHIPMENT"), Unit("PCU-COCTG", "COCTG", "TRANSSHIPMENT"),
    Unit("PCU-NLRTM", "NLRTM", "IMPORT"), Unit("PCU-BEANR", "BEANR", "IMPORT"), Unit("PCU-DEHAM", "DEHAM", "IMPORT"),
]
