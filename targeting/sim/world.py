"""A simulated port world: legitimate trade, trafficking, intelligence, and a historical inspection policy.

The world is generated day by day (by arrival date). Each day, the
trafficking organisations ship; the port control units inspect what their
historical policy selects (watchlist hits, rule profiles, a small random
slice); seizures make the organisations adapt. The world keeps its hidden
truth (which containers really carried contraband) in an oracle table that
the engine's feature inputs never read.

Deterministic for a seed: every random draw comes from one
``numpy.random.Generator`` and every frame operation keeps row order.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Callable

import numpy as np
import polars as pl

from features.data.contracts import ALERTS, CONTAINER_EVENTS, INSPECTION_OUTCOMES, MANIFESTS
from features.data.reference import known_locodes
from features.rules.language import RuleProfile, default_rule_profiles
from targeting.sim.catalogue import COMMODITY_BY_HS, NVOCC_PREFIXES, VAGUE_DESCRIPTIONS
from targeting.sim.churn import check_churn_level, make_churn
from targeting.sim.containers import assign_containers, number_new_containers
from targeting.sim.export_control import (
    EXPORT_PORTS,
    apply_effects,
    booking_changes,
    examine_exports,
    export_candidates,
    export_rule_profiles,
)
from targeting.sim.inspection import HistoricalInspector, Inspector, examine_imports
from targeting.sim.parties import make_trade, make_vessels, party_name, ports_by_country
from targeting.sim.scenarios import DriftScenario, check_scenario, install_scenario, scenario_organisation
from targeting.sim.spelling import spell_parties
from targeting.sim.trafficking import (
    Method,
    Organisation,
    adapt_after_seizure,
    make_organisations,
    replace_dissolved,
    use_front,
)
from targeting.sim.summary import summarise
from targeting.sim.voyages import build_events, voyage_hours

__all__ = ["DayBatch", "HistoricalInspector", "Inspector", "World", "WorldConfig", "WorldTables", "assign_containers", "simulate_world", "summarise"]

HOUR = timedelta(hours=1)
TARE_KG = {"22G1": 2200.0, "42G1": 3750.0, "45G1": 3900.0, "22R1": 3000.0, "45R1": 4600.0}
MAX_CARGO_KG = {20: 27_000.0, 40: 27_500.0}
DEPARTURE_LAG_DAYS = 30
TRUTH_SCHEMA = {
    "org_id": pl.String,
    "method": pl.String,
    "category": pl.String,
    "quantity_kg": pl.Float64,
    "concealment": pl.String,
    "manifest_id": pl.String,
    "loaded_at": pl.String,
    "pattern": pl.String,
}
ORACLE_COLUMNS = (
    "manifest_id",
    "container_number",
    "port_of_discharge",
    "eta",
    "illicit",
    "category",
    "quantity_kg",
    "org_id",
    "method",
    "concealment",
    "port_of_loading",
    "etd",
    "loaded_at",
    "seized_at_export",
    "pattern",
)
"""The hidden truth per manifest line. ``loaded_at``: where the contraband entered the container (the port of
loading, or the hub of a rip-on at transshipment; null when clean); ``seized_at_export``: stopped at its port of
loading by an export unit (it never sailed); ``pattern``: the trafficking pattern of an illicit line (its method's
name, or ``"<scenario>:new"`` for the changed organisation's shipments from a drift scenario's change day; null when
clean)."""
ISSUING_UNITS = ("MAOC-N", "EUROPOL", "INTERPOL", "JPCU GUAYAQUIL", "PCU SANTOS", "PCU CARTAGENA", "NATIONAL TARGETING CENTRE")


@dataclass(frozen=True)
class WorldConfig:
    """Parameters of a simulated world.

    ``containers_per_day`` is the mean number of arriving containers per day
    over all ``ports``; ``illicit_rate`` the share of them carrying contraband
    (the base rate, well under 1%); ``inspection_rate`` the historical
    inspection capacity as a share of arrivals; ``random_rate`` the random
    quality-control slice as a share of arrivals; ``malformed_rate`` the share
    of rows written malformed on purpose.

    ``export_ports`` are source ports with their own port control unit
    inspecting departures (``export_inspection_rate`` of a port's departures,
    plus an ``export_random_rate`` random slice): see
    :mod:`targeting.sim.export_control`. Empty: no export control.

    ``scenario``: a drift scenario of :data:`targeting.sim.scenarios.SCENARIOS`
    (None: none), changing at arrival day ``change_day`` (None: the
    scenario's default; must fall inside the world). ``legit_churn``: how
    much novelty legitimate trade has, one of
    :data:`targeting.sim.churn.CHURN_LEVELS` (``static``: the historical world,
    unchanged for a seed; ``realistic``: spot suppliers, re-routings, seasonal
    and sporadic importers, carrier service changes, 6/8/10-digit HS codes,
    several currencies, several spellings, see :mod:`targeting.sim.churn`).
    """

    seed: int = 7
    start: date = date(2025, 1, 1)
    days: int = 120
    ports: tuple[str, ...] = ("NLRTM", "BEANR", "DEHAM")
    containers_per_day: int = 600
    illicit_rate: float = 0.004
    inspection_rate: float = 0.015
    random_rate: float = 0.002
    malformed_rate: float = 0.005
    organisations: int = 14
    adapt_probability: float = 0.7
    tip_probability: float = 0.05
    spelling_variant_rate: float = 0.0  # share of party mentions another filer rewrites (targeting.sim.spelling)
    export_ports: tuple[str, ...] = EXPORT_PORTS
    export_inspection_rate: float = 0.02
    export_random_rate: float = 0.003
    scenario: str | None = None
    change_day: int | None = None
    legit_churn: str = "static"

    def __post_init__(self) -> None:
        if self.days < 1 or self.containers_per_day < 1:
            raise ValueError("days and containers_per_day must be >= 1")
        if not 0 < self.illicit_rate < 0.05:
            raise ValueError("illicit_rate must be in (0, 0.05)")
        for name in ("inspection_rate", "random_rate", "malformed_rate", "export_inspection_rate", "export_random_rate", "spelling_variant_rate"):
            if not 0 <= getattr(self, name) < 0.5:
                raise ValueError(f"{name} must be in [0, 0.5)")
        unknown = [p for p in (*self.ports, *self.export_ports) if p not in known_locodes()]
        if unknown:
            raise ValueError(f"unknown port(s) {', '.join(unknown)}: not in the port reference")
        check_churn_level(self.legit_churn)
        scenario = check_scenario(self.scenario)
        if scenario is None and self.change_day is not None:
            raise ValueError("change_day is set but no scenario is: name a scenario or leave change_day unset")
        if scenario is not None and not 1 <= self.scenario_change_day < self.days:
            raise ValueError(f"change_day {self.scenario_change_day} of scenario {scenario.name!r} must be in [1, days={self.days})")

    @property
    def drift_scenario(self) -> DriftScenario | None:
        """The configured drift scenario (None: none)."""
        return check_scenario(self.scenario)

    @property
    def scenario_change_day(self) -> int | None:
        """0-based arrival day of the scenario's change (None without a scenario)."""
        scenario = self.drift_scenario
        if scenario is None:
            return None
        return scenario.change_day if self.change_day is None else self.change_day

    @property
    def start_at(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)


@dataclass
class DayBatch:
    """One arrival day: the manifests due, with the hidden truth beside them."""

    day: int
    manifests: pl.DataFrame  # typed MANIFESTS columns + hidden columns prefixed "_"
    truth: pl.DataFrame  # manifest_id, illicit, category, quantity_kg, org_id, method, concealment


@dataclass
class World:
    """A world being generated; see the module docstring."""

    config: WorldConfig
    rng: np.random.Generator = field(init=False)
    orgs: list[Organisation] = field(init=False)
    parties: pl.DataFrame = field(init=False)
    alerts: list[dict] = field(default_factory=list)
    _front_counter: list[int] = field(default_factory=lambda: [0])
    _manifest_counter: int = 0

    def __post_init__(self) -> None:
        cfg = self.config
        self.rng = np.random.default_rng(cfg.seed)
        self.ports_of_country = ports_by_country(known_locodes())
        self.fleets = make_vessels(self.rng, per_carrier=40)
        n_consignees = max(30, int(cfg.containers_per_day * 0.9))
        trade = make_trade(rng=self.rng, dest_ports=cfg.ports, n_consignees=n_consignees, days=cfg.days, ports_of_country=self.ports_of_country)
        self.relationships = trade.relationships
        self.parties = trade.parties
        self.churn = make_churn(cfg.legit_churn, seed=cfg.seed, days=cfg.days, ports_of_country=self.ports_of_country)
        if self.churn is not None:  # its own generator: the world's draws above are those of the static world
            self.relationships = self.churn.extend_trade(self.relationships, self.parties, cfg.ports)
            self.parties = pl.concat([self.parties, self.churn.take_new_parties(self.parties.schema)])
        self.orgs = make_organisations(
            n=cfg.organisations,
            daily_illicit=cfg.illicit_rate * cfg.containers_per_day,
            dest_ports=cfg.ports,
            ports_of_country=self.ports_of_country,
            rng=self.rng,
        )
        plan = self._plan_legit()
        if self.churn is not None:
            self.parties = pl.concat([self.parties, self.churn.take_new_parties(self.parties.schema)])
        legit = assign_containers(self._build(plan), self.rng)
        del plan
        self._legit_columns = legit.columns
        self._empty = legit.clear()
        self._legit_by_day = legit.partition_by("_day", as_dict=True, maintain_order=True)
        del legit
        self._party_ids = set(self.parties["party_id"].to_list())
        self._new_parties: list[dict] = []
        self._front_by_day: dict[int, tuple[pl.DataFrame, pl.DataFrame]] = {}
        self._shippers_by_country = _shippers_by_country(self.relationships)
        self._seed_false_alerts()
        self.scenario = cfg.drift_scenario
        self.scenario_slot = scenario_organisation(self.orgs, self.scenario) if self.scenario else None
        self.scenario_org_id = self.orgs[self.scenario_slot].org_id if self.scenario else None  # its successors are "<id>-<day>"

    # ------------------------------------------------------------------ legitimate trade
    def _season(self, day: int) -> float:
        d = self.config.start + timedelta(days=day)
        weekly = (0.85, 1.05, 1.1, 1.1, 1.05, 0.95, 0.9)[d.weekday()]
        return weekly * (1.0 + 0.12 * math.sin(2 * math.pi * (d.timetuple().tm_yday - 80) / 365.25))

    def _plan_legit(self) -> pl.DataFrame:
        cfg = self.config
        rel = self.relationships
        weights = rel["weight"].to_numpy()
        starts = rel["start_day"].to_numpy()
        ends = rel["end_day"].to_numpy() if "end_day" in rel.columns else None
        months = np.array([COMMODITY_BY_HS[h].season_peak for h in rel["hs_code"].to_list()])
        amplitude = np.array([COMMODITY_BY_HS[h].season_amplitude for h in rel["hs_code"].to_list()])
        dest_codes = rel["dest_port"].to_numpy()
        port_share = {p: 1.0 / len(cfg.ports) for p in cfg.ports}
        rows_rel, rows_day = [], []
        for day in range(cfg.days):
            month = (cfg.start + timedelta(days=day)).month
            season = 1.0 + amplitude * np.cos(2 * np.pi * (month - months) / 12.0)
            w = weights * season * (starts <= day)
            if ends is not None:
                w = w * (ends > day)
            for port in cfg.ports:
                mask = dest_codes == port
                p = w * mask
                total = p.sum()
                if total <= 0:
                    continue
                n = self.rng.poisson(cfg.containers_per_day * port_share[port] * self._season(day))
                rows_rel.append(self.rng.choice(len(p), size=n, p=p / total))
                rows_day.append(np.full(n, day))
        idx = np.concatenate(rows_rel) if rows_rel else np.array([], dtype=np.int64)
        days = np.concatenate(rows_day) if rows_day else np.array([], dtype=np.int64)
        plan = rel[idx].with_columns(pl.Series("day", days, dtype=pl.Int64))
        if self.churn is not None:
            plan = self.churn.apply(plan)
        return plan.with_columns(
            pl.lit("legit").alias("kind"),
            pl.col("hs_code").alias("declared_hs"),
            pl.lit(None, pl.String).alias("org_id"),
        ).drop("relationship", "weight", "start_day", "end_day", strict=False)

    # ------------------------------------------------------------------ manifests
    def _next_ids(self, n: int) -> list[str]:
        start = self._manifest_counter
        self._manifest_counter += n
        return [f"M{start + i:09d}" for i in range(n)]

    def _build(self, plan: pl.DataFrame) -> pl.DataFrame:
        """Turn plan rows (who ships what, where, when) into full manifests with hidden timing columns."""
        rng = self.rng
        cfg = self.config
        n = plan.height
        front = (plan["kind"] == "front").to_numpy()
        tells = front & plan["physical_tells"].fill_null(True).to_numpy() if "physical_tells" in plan.columns else front
        hs = plan["hs_code"].to_list()
        com = [COMMODITY_BY_HS[h] for h in hs]
        reefer = np.array([c.reefer for c in com])
        size = np.array([c.size for c in com])
        vpk = np.array([c.value_per_kg for c in com])
        cargo = np.array([c.cargo_kg for c in com])
        packages = np.array([c.packages for c in com])
        route_len = plan["route"].list.len().fill_null(0).to_numpy()

        ctype = np.where(reefer, np.where(size == 20, "22R1", "45R1"), np.where(size == 20, "22G1", np.where(rng.random(n) < 0.6, "45G1", "42G1")))
        mass = np.minimum(cargo * rng.lognormal(0, 0.08, n), np.where(size == 20, MAX_CARGO_KG[20], MAX_CARGO_KG[40]))
        mass = np.round(mass, 1)
        value = np.round(mass * vpk * rng.lognormal(0, 0.25, n) * np.where(tells & (rng.random(n) < 0.5), rng.uniform(0.3, 0.7, n), 1.0), 2)
        currency = rng.choice(["USD", "EUR", "CNY"], size=n, p=[0.88, 0.1, 0.02])
        value = np.where(currency == "EUR", np.round(value * 0.92, 2), np.where(currency == "CNY", np.round(value * 7.2, 2), value))
        tare = np.array([TARE_KG[t] for t in ctype])
        vgm_extra = np.where(tells & (rng.random(n) < 0.5), rng.uniform(150, 1200, n), 0.0)
        vgm = np.round(mass + tare + rng.normal(0, 0.004, n) * mass + vgm_extra, 1)
        vgm_present = rng.random(n) < 0.8

        dwell_ts = [list(np.round(np.clip(rng.lognormal(np.log(55), 0.5, k), 10, 240), 1)) for k in route_len]
        origin_dwell = np.round(np.clip(rng.lognormal(np.log(70), 0.55, n), 8, 400), 1)
        late_gate_in = rng.random(n) < 0.03  # legitimate exporters gating in at the last moment
        origin_dwell = np.where(late_gate_in, np.round(rng.uniform(2, 12, n), 1), origin_dwell)
        timing = plan.select(pl.int_range(n, dtype=pl.Int64).alias("row"), "origin_port", "route", "dest_port").with_columns(
            pl.Series("ts_dwell_h", dwell_ts, dtype=pl.List(pl.Float64))
        )
        voyage_h = voyage_hours(timing)["voyage_h"].to_numpy()
        eta_h = plan["day"].to_numpy() * 24.0 + np.round(rng.uniform(0, 24, n), 2)
        etd_h = eta_h - voyage_h
        late_filing = rng.random(n) < np.where(front, 0.15, 0.02)
        filed_h = np.where(late_filing, etd_h + rng.uniform(1, 24, n), etd_h - rng.uniform(24, 72, n))
        filed_h = np.minimum(filed_h, eta_h - 24)
        short_notice = rng.random(n) < np.where(front, 0.4, 0.05)
        booked_h = filed_h - np.where(short_notice, rng.uniform(6, 48, n), rng.uniform(72, 480, n))
        booking_amended_h, booking_fields = booking_changes(rng, front, booked_h, etd_h)
        amended = rng.random(n) < np.where(front, 0.22, 0.07)
        amend_frac = np.where(front, rng.uniform(0.75, 0.98, n), rng.uniform(0.05, 0.9, n))
        amended_h = filed_h + (eta_h - 6 - filed_h) * amend_frac
        fields_legit = ["description", "mass", "value", "notify", "consignee", "destination"]
        fields_front = ["consignee", "destination", "description"]
        amended_fields = [
            (sorted(set(rng.choice(fields_front if f else fields_legit, size=int(rng.integers(1, 3)), replace=True).tolist())) if a else None)
            for a, f in zip(amended, front)
        ]
        vague = rng.random(n) < np.where(front, 0.2, 0.025)
        descriptions = [
            VAGUE_DESCRIPTIONS[int(rng.integers(len(VAGUE_DESCRIPTIONS)))] if v else c.descriptions[int(rng.integers(len(c.descriptions)))]
            for v, c in zip(vague, com)
        ]
        declared_hs = plan["declared_hs"].to_list()
        declared_desc = [
            ("CHEMICAL RAW MATERIAL" if rng.random() < 0.5 else "ORGANIC CHEMICAL INTERMEDIATE") if d != h and not v else desc
            for d, h, v, desc in zip([d[:6] for d in declared_hs], hs, vague, descriptions)
        ]
        nvocc = plan["nvocc"].to_numpy() | (front & (rng.random(n) < 0.3))
        house_bl = [f"{NVOCC_PREFIXES[int(rng.integers(len(NVOCC_PREFIXES)))]}{int(rng.integers(10**8, 10**9))}" if x else None for x in nvocc]
        freight = plan["freight_payment"].to_numpy().copy()
        switch = front & (rng.random(n) < 0.5)
        freight[switch] = rng.choice(["CC", "TP"], size=int(switch.sum()), p=[0.5, 0.5])
        seal_missing = rng.random(n) < np.where(front, 0.05, 0.01)
        carriers = plan["carrier"].to_numpy()
        seals = [None if m else f"{c[:2]}{int(rng.integers(10**6, 10**7))}" for m, c in zip(seal_missing, carriers)]
        week = (eta_h // (24 * 7)).astype(int)
        # a stable hash (Python's hash() of strings changes with every process): the same seed gives the same world anywhere
        lanes = zip(carriers, plan["dest_port"].to_list(), plan["origin_port"].to_list())
        service_shift = plan["_service_shift"].to_numpy() if "_service_shift" in plan.columns else 0  # a carrier's service change (churn)
        vessel_idx = (np.array([zlib.crc32(f"{c}|{d}|{o[:2]}".encode()) % 97 for c, d, o in lanes], dtype=np.int64) + week + service_shift) % 40
        vessels = [self.fleets[c][i] for c, i in zip(carriers, vessel_idx)]
        second_vessel = [self.fleets[c][(i + 17) % 40] if k > 0 else None for c, i, k in zip(carriers, vessel_idx, route_len)]
        voyage = [f"{w % 1000:03d}{'N' if i % 2 else 'E'}" for w, i in zip(week, vessel_idx)]
        master_bl = [f"{c}{int(rng.integers(10**9, 10**10))}" for c in carriers]

        start = cfg.start_at
        ts = lambda hours: _utc_series(start, hours)  # noqa: E731
        parties = self.parties
        manifests = plan.with_columns(
            pl.Series("manifest_id", self._next_ids(n)),
            pl.Series("container_type", ctype),
            pl.Series("reefer", reefer),
            pl.Series("seal_number", seals, dtype=pl.String),
            pl.Series("master_bl", master_bl),
            pl.Series("house_bl", house_bl, dtype=pl.String),
            pl.Series("vessel_imo", vessels),
            pl.Series("voyage", voyage),
            pl.col("origin_port").alias("place_of_receipt"),
            pl.col("origin_port").alias("port_of_loading"),
            pl.col("route").alias("transshipment_ports"),
            pl.col("dest_port").alias("port_of_discharge"),
            pl.col("dest_port").alias("place_of_delivery"),
            pl.Series("hs_code_declared", declared_hs),
            pl.Series("goods_description", declared_desc),
            pl.Series("packages", np.maximum(1, (packages * rng.uniform(0.9, 1.1, n)).astype(np.int64))),
            pl.Series("gross_mass_kg", mass),
            pl.Series("verified_gross_mass_kg", np.where(vgm_present, vgm, np.nan)).fill_nan(None),
            pl.Series("declared_value", value),
            pl.Series("currency", currency),
            pl.Series("freight_payment", freight),
            ts(booked_h).alias("booked_at"),
            ts(filed_h).alias("filed_at"),
            pl.when(pl.Series(amended)).then(ts(amended_h)).otherwise(None).alias("amended_at"),
            pl.Series("amended_fields", amended_fields, dtype=pl.List(pl.String)),
            pl.when(pl.Series(~np.isnan(booking_amended_h))).then(ts(np.nan_to_num(booking_amended_h))).otherwise(None).alias("booking_amended_at"),
            pl.Series("booking_amended_fields", booking_fields, dtype=pl.List(pl.String)),
            ts(etd_h).alias("etd"),
            ts(eta_h).alias("eta"),
            pl.Series("_origin_dwell_h", origin_dwell),
            pl.Series("_ts_dwell_h", dwell_ts, dtype=pl.List(pl.Float64)),
            pl.lit(0.0).alias("_ripon_hub_extra_h"),
            pl.Series("_second_vessel", second_vessel, dtype=pl.String),
            pl.lit(None, pl.Datetime("us", "UTC")).alias("_export_stopped_at"),
            pl.lit(False).alias("_seal_swap_at_hub"),
            pl.lit(False).alias("_seal_swap_before_gate_in"),
            pl.col("day").alias("_day"),
        ).with_columns(pl.col("seal_number").alias("_event_seal"))
        if self.churn is not None:
            manifests = self.churn.file(manifests)
        manifests = self._with_party_columns(manifests)
        return manifests.drop("hs_code").rename({"hs_code_declared": "hs_code"})

    def _with_party_columns(self, manifests: pl.DataFrame) -> pl.DataFrame:
        parties = self.parties
        for role in ("shipper", "consignee", "notify"):
            manifests = manifests.join(
                parties.rename({"party_id": f"{role}_id", "name": f"{role}_name", "country": f"{role}_country"}),
                on=f"{role}_id",
                how="left",
                maintain_order="left",
            )
        rate = self.config.spelling_variant_rate or (self.churn.rates.spelling_variant_rate if self.churn is not None else 0.0)
        if rate > 0:  # its own generator: worlds without variants are unchanged
            rng = self.__dict__.setdefault("_spelling_rng", np.random.default_rng([self.config.seed, 1313]))
            manifests = spell_parties(manifests, rng, rate=rate)
        return manifests

    # ------------------------------------------------------------------ trafficking
    def _register_party(self, party_id: str, country: str, hint: str | None = None) -> None:
        if party_id not in self._party_ids:
            self._party_ids.add(party_id)
            self._new_parties.append({"party_id": party_id, "name": party_name(self.rng, country, hint), "country": country})

    def _flush_parties(self) -> None:
        if self._new_parties:
            self.parties = pl.concat([self.parties, pl.DataFrame(self._new_parties, schema=self.parties.schema)])
            self._new_parties = []

    def _plan_front_shipment(self, org: Organisation, day: int) -> tuple[dict, dict]:
        """One front-company shipment arriving on ``day``, configured as the organisation was ~30 days earlier (departure)."""
        cfg = org.config_at(day - DEPARTURE_LAG_DAYS)
        front, front_shipper = use_front(org, self.rng, self._front_counter)
        dest = org.dest_ports[int(self.rng.integers(len(org.dest_ports)))]
        consignee = f"C{dest[:2]}{front}"
        if self.churn is not None:  # realistic churn: fronts are numbered like any new trader
            consignee = self.churn.alias(consignee)
        self._register_party(consignee, dest[:2], "Trading")
        origin = cfg["origin_port"]
        if front_shipper:
            shipper = f"S{origin[:2]}{front_shipper}"
        else:
            pool = self._shippers_by_country.get(origin[:2], [])
            shipper = pool[int(self.rng.integers(len(pool)))] if pool else f"S{origin[:2]}{front}"
        if self.churn is not None:
            shipper = self.churn.alias(shipper)
        self._register_party(shipper, origin[:2])
        method = org.method_at(day - DEPARTURE_LAG_DAYS)
        declared = method.declared_hs[int(self.rng.integers(len(method.declared_hs)))] if method.declared_hs else cfg["cover_hs"]
        plan = {
            "shipper_id": shipper,
            "consignee_id": consignee,
            "notify_id": consignee if self.rng.random() < 0.5 else None,
            "hs_code": cfg["cover_hs"],
            "declared_hs": declared,
            "origin_port": origin,
            "dest_port": dest,
            "carrier": ("MAEU", "MSCU", "CMDU", "HLCU", "ONEY")[int(self.rng.integers(5))],
            "route": [h for h in cfg["route"] if h not in (origin, dest)],
            "freight_payment": "PP",
            "nvocc": bool(self.rng.random() < 0.35),
            "day": day,
            "kind": "front",
            "org_id": org.org_id,
            "physical_tells": method.physical_tells,
        }
        truth = self._truth_row(org, method, float(np.round(self.rng.uniform(*method.quantity_kg), 1)))
        truth["loaded_at"] = origin  # stuffed at the front exporter's premises
        org.shipments += 1
        return plan, truth

    def _front_chunk(self, first_day: int) -> None:
        """Plan and build front-company shipments for ``DEPARTURE_LAG_DAYS`` arrival days at once.

        Shipments arriving on day ``d`` departed ~``DEPARTURE_LAG_DAYS`` earlier,
        so their configuration is already fixed when the chunk starts.
        """
        plans, truths = [], []
        last = min(self.config.days, first_day + DEPARTURE_LAG_DAYS)
        for day in range(first_day, last):
            for org in self.orgs:
                if org.method_at(day - DEPARTURE_LAG_DAYS).rip_on:
                    continue
                for _ in range(self.rng.poisson(org.rate_per_day)):
                    plan, truth = self._plan_front_shipment(org, day)
                    plans.append(plan)
                    truths.append(truth)
        self._front_by_day = {}
        if not plans:
            return
        self._flush_parties()
        built = self._build(pl.DataFrame(plans, schema_overrides={"route": pl.List(pl.String), "notify_id": pl.String}))
        built = number_new_containers(built, self.rng, offset=self._manifest_counter)
        for t, mid in zip(truths, built["manifest_id"].to_list()):
            t["manifest_id"] = mid
        truth_frame = pl.DataFrame(truths, schema=TRUTH_SCHEMA)
        for (day,), frame in built.partition_by("_day", as_dict=True, maintain_order=True).items():
            self._front_by_day[day] = (frame.select(self._legit_columns), truth_frame.filter(pl.col("manifest_id").is_in(frame["manifest_id"].implode())))

    def _truth_row(self, org: Organisation, method: Method, qty: float) -> dict:
        return {
            "org_id": org.org_id,
            "method": method.name,
            "category": method.category,
            "quantity_kg": qty,
            "concealment": method.concealments[int(self.rng.integers(len(method.concealments)))],
            "pattern": method.label,
        }

    def _rip_on(self, day: int, legit: pl.DataFrame) -> tuple[pl.DataFrame, list[dict]]:
        """Contaminate legitimate containers: abnormal dwell at the origin terminal or first hub, sometimes a new seal."""
        truths: list[dict] = []
        for org in self.orgs:
            method = org.method_at(day - DEPARTURE_LAG_DAYS)
            if not method.rip_on:
                continue
            k = self.rng.poisson(org.rate_per_day)
            if k == 0:
                continue
            cfg = org.config_at(day - 30)
            country = cfg["origin_port"][:2]
            pool = legit.filter(
                (pl.col("port_of_loading").str.slice(0, 2) == country)
                & pl.col("port_of_discharge").is_in(list(org.dest_ports))
                & pl.col("hs_code").str.slice(0, 6).is_in(list(method.cover_hs))
                & ~pl.col("manifest_id").is_in([t["manifest_id"] for t in truths])
            )
            if pool.height == 0:
                pool = legit.filter(pl.col("port_of_loading").str.slice(0, 2) == country)
            if pool.height == 0:
                continue
            picks = self.rng.choice(pool.height, size=min(k, pool.height), replace=False)
            for i in sorted(int(p) for p in picks):
                mid = pool["manifest_id"][i]
                at_hub = pool["transshipment_ports"][i] is not None and len(pool["transshipment_ports"][i]) > 0 and self.rng.random() < 0.5
                abnormal = self.rng.random() < 0.75
                swap = self.rng.random() < 0.45
                row_mask = pl.col("manifest_id") == mid
                updates = []
                late = False
                if abnormal and at_hub:
                    extra = float(self.rng.uniform(96, 360))
                    updates.append(pl.when(row_mask).then(pl.lit(extra)).otherwise(pl.col("_ripon_hub_extra_h")).alias("_ripon_hub_extra_h"))
                elif abnormal:
                    # at the origin terminal: either a long dwell, or a gate-in shortly before loading (stuffed outside)
                    late = self.rng.random() < 0.5
                    dwell = float(self.rng.uniform(1.5, 6)) if late else None
                    extra = float(self.rng.uniform(150, 480))
                    new_dwell = pl.lit(dwell) if late else pl.col("_origin_dwell_h") + extra
                    updates.append(pl.when(row_mask).then(new_dwell).otherwise(pl.col("_origin_dwell_h")).alias("_origin_dwell_h"))
                if swap:
                    updates.append(
                        pl.when(row_mask).then(pl.lit(f"RS{int(self.rng.integers(10**6, 10**7))}")).otherwise(pl.col("_event_seal")).alias("_event_seal")
                    )
                    if at_hub:
                        updates.append(pl.when(row_mask).then(True).otherwise(pl.col("_seal_swap_at_hub")).alias("_seal_swap_at_hub"))
                    elif abnormal and late:  # stuffed outside the terminal: the new seal is already read at gate-in
                        updates.append(pl.when(row_mask).then(True).otherwise(pl.col("_seal_swap_before_gate_in")).alias("_seal_swap_before_gate_in"))
                if updates:
                    legit = legit.with_columns(updates)
                truth = self._truth_row(org, method, float(np.round(self.rng.uniform(*method.quantity_kg), 1)))
                truth["manifest_id"] = mid
                truth["loaded_at"] = pool["transshipment_ports"][i][0] if at_hub else pool["port_of_loading"][i]
                truths.append(truth)
                org.shipments += 1
        return legit, truths

    # ------------------------------------------------------------------ intelligence
    def _alert(self, kind: str, value: str, reason: str, severity: int, valid_from: datetime, valid_to: datetime | None) -> None:
        self.alerts.append(
            {
                "alert_id": f"A{len(self.alerts) + 1:07d}",
                "kind": kind,
                "value": value,
                "reason": reason,
                "issuing_unit": ISSUING_UNITS[int(self.rng.integers(len(ISSUING_UNITS)))],
                "severity": severity,
                "valid_from": valid_from,
                "valid_to": valid_to,
            }
        )

    def _seed_false_alerts(self) -> None:
        """Intelligence is imperfect: some alerts name legitimate (mostly small) traders."""
        volume = self.relationships.group_by("consignee_id").agg(pl.col("weight").sum()).sort("consignee_id")
        small = volume.filter(pl.col("weight") <= pl.col("weight").quantile(0.6))["consignee_id"].to_list()
        for _ in range(max(1, self.config.days // 20)):
            day = int(self.rng.integers(0, self.config.days))
            at = self.config.start_at + timedelta(days=day)
            party = small[int(self.rng.integers(len(small)))]
            reason = "Reported by a partner agency: possible links to a trafficking network"
            self._alert("PARTY", party, reason, int(self.rng.integers(2, 4)), at, at + timedelta(days=int(self.rng.integers(30, 90))))
        self._alert("HS_CODE", "293941", "Ephedrine salts: scheduled precursor, verify pre-export notification", 4, self.config.start_at - timedelta(days=365), None)

    def _tip_offs(self, batch: DayBatch) -> None:
        illicit = batch.truth.join(batch.manifests.select("manifest_id", "container_number", "etd", "eta"), on="manifest_id", how="left")
        for row in illicit.iter_rows(named=True):
            if self.rng.random() < self.config.tip_probability:
                issued = row["etd"] + (row["eta"] - row["etd"]) * float(self.rng.uniform(0.2, 0.9))
                self._alert("CONTAINER", row["container_number"], "Intelligence tip-off: container suspected to carry drugs", int(self.rng.integers(4, 6)), issued, row["eta"] + timedelta(days=15))

    def _after_seizure(self, day: int, seized: pl.DataFrame) -> None:
        at = self.config.start_at + timedelta(days=day + 1)
        for row in seized.iter_rows(named=True):
            org = next((o for o in self.orgs if o.org_id == row["org_id"]), None)
            if org is None:
                continue
            if row["method"] == "cocaine-rip-on":  # the trader was used unknowingly: no alert on the parties
                pass
            elif row["shipper_id"] and self.rng.random() < 0.3:
                self._alert("PARTY", row["shipper_id"], f"Shipper of a {row['category'].lower()} seizure", 4, at, at + timedelta(days=365))
            if row["method"] != "cocaine-rip-on" and self.rng.random() < 0.4:
                self._alert("PARTY", row["consignee_id"], f"Consignee of a {row['category'].lower()} seizure", 5, at, at + timedelta(days=365))
            adapt_after_seizure(org, day, self.ports_of_country, self.rng, self._front_counter, adapt_probability=self.config.adapt_probability)
        replace_dissolved(self.orgs, day, self.ports_of_country, self.rng, max_seizures=4)

    def alerts_frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.alerts, schema=ALERTS.schema)

    # ------------------------------------------------------------------ day loop
    def day(self, day: int) -> DayBatch:
        """Generate the manifests arriving on ``day`` (0-based) with their truth. Days must be generated in order."""
        self._maybe_install_scenario(day)
        if day % DEPARTURE_LAG_DAYS == 0:
            self._front_chunk(day)
        legit = self._legit_by_day.pop((day,), self._empty)
        legit, ripon_truth = self._rip_on(day, legit)
        front, front_truth = self._front_by_day.pop(day, (self._empty, pl.DataFrame(schema=TRUTH_SCHEMA)))
        manifests = pl.concat([legit, front])
        truth = pl.concat([pl.DataFrame(ripon_truth, schema=TRUTH_SCHEMA), front_truth])
        batch = DayBatch(day=day, manifests=manifests, truth=truth)
        self._tip_offs(batch)
        return batch

    def _maybe_install_scenario(self, day: int) -> None:
        """Install the drift scenario's change when the world reaches its first departure day (see targeting.sim.scenarios)."""
        if self.scenario is None:
            return
        from_day = self.config.scenario_change_day - DEPARTURE_LAG_DAYS
        if day == max(0, from_day):
            install_scenario(self.orgs, self.scenario_slot, self.scenario, from_day=from_day, seed=self.config.seed, ports_of_country=self.ports_of_country)

    def inspect_exports(self, batch: DayBatch, inspector: Inspector) -> pl.DataFrame:
        """Export control of the day's shipments at their source ports, each at its departure day.

        Call it after :meth:`day` and before :meth:`inspect` and before building
        the batch's events: the export candidates are the batch rows loaded at
        one of ``config.export_ports`` (each with ``decision_at`` = 00:00 UTC of
        its ETD day and ``port`` = its port of loading, see
        :func:`targeting.sim.export_control.export_candidates`); ``inspector``
        selects among them per port. A seizure stops the container (it never
        sails; :meth:`inspect` skips it) and the organisation reacts as of the
        departure day; a physical exam without seizure leaves a customs seal.
        Returns the export outcome rows (``port`` = port of loading).

        The world is generated by arrival day, so an export unit's capacity is
        applied per port over the departures of one arrival day's batch (the
        same share of departures overall), and traffickers adapt to an export
        seizure only for shipments planned after it (fronts are planned
        ``DEPARTURE_LAG_DAYS`` ahead).
        """
        candidates = export_candidates(batch.manifests, self.config.export_ports)
        if candidates.height == 0:
            return pl.DataFrame(schema=INSPECTION_OUTCOMES.schema)
        selection = inspector(batch.day, candidates, self.alerts_frame(), self.rng)
        if selection.height == 0:
            return pl.DataFrame(schema=INSPECTION_OUTCOMES.schema)
        outcomes, effects = examine_exports(candidates, selection, batch.truth, self.rng)
        batch.manifests = apply_effects(batch.manifests, effects)
        seized = (
            outcomes.filter(pl.col("result") == "SEIZURE")
            .join(batch.truth, on="manifest_id", how="inner")
            .join(batch.manifests.select("manifest_id", "shipper_id", "consignee_id", "etd"), on="manifest_id", how="left")
            .with_columns(((pl.col("etd") - pl.lit(self.config.start_at)).dt.total_days()).alias("_etd_day"))
            .sort("_etd_day", "manifest_id")
        )
        for (etd_day,), rows in seized.partition_by("_etd_day", as_dict=True, maintain_order=True).items():
            self._after_seizure(int(etd_day), rows)
        return outcomes

    def inspect(self, batch: DayBatch, inspector: Inspector) -> pl.DataFrame:
        """Apply ``inspector`` to the day's arrivals; return outcome rows and let traffickers react to seizures.

        Containers stopped at export (:meth:`inspect_exports`) never arrive and are not offered.
        """
        arrivals = batch.manifests.filter(pl.col("_export_stopped_at").is_null())
        selection = inspector(batch.day, arrivals, self.alerts_frame(), self.rng)
        if selection.height == 0:
            return pl.DataFrame(schema=INSPECTION_OUTCOMES.schema)
        result = examine_imports(batch.manifests, batch.truth, selection, self.rng)
        seized = (
            result.filter(pl.col("result") == "SEIZURE")
            .join(batch.truth, on="manifest_id", how="inner")
            .join(batch.manifests.select("manifest_id", "shipper_id", "consignee_id"), on="manifest_id", how="left")
        )
        if seized.height:
            self._after_seizure(batch.day, seized)
        return result

@dataclass
class WorldTables:
    """Everything a simulation produces (typed, before any deliberate corruption)."""

    manifests: pl.DataFrame
    events: pl.DataFrame
    outcomes: pl.DataFrame
    alerts: pl.DataFrame
    oracle: pl.DataFrame
    rules: list[RuleProfile]
    summary: dict
    export_rules: list[RuleProfile] = field(default_factory=list)


def simulate_world(
    config: WorldConfig,
    *,
    inspector: Inspector | None = None,
    export_inspector: Inspector | None = None,
    progress: Callable[[int], None] | None = None,
) -> WorldTables:
    """Run the world for ``config.days`` days under ``inspector`` at the destinations and ``export_inspector`` at the source ports.

    Both default to the historical policy (the export one with
    :func:`targeting.sim.export_control.export_rule_profiles`). Each day the
    export units act first (a seized container never sails), then the
    import units.
    """
    world = World(config)
    rules = default_rule_profiles()
    export_rules = export_rule_profiles()
    inspector = inspector or HistoricalInspector(rules, config.inspection_rate, config.random_rate, config.start_at)
    export_inspector = export_inspector or HistoricalInspector(
        export_rules, config.export_inspection_rate, config.export_random_rate, config.start_at, port_column="port", stochastic_capacity=True
    )
    batches, truths, outcomes = [], [], []
    for day in range(config.days):
        batch = world.day(day)
        outcomes.append(world.inspect_exports(batch, export_inspector))
        outcomes.append(world.inspect(batch, inspector))
        batches.append(batch.manifests)
        truths.append(batch.truth)
        if progress:
            progress(day)
    manifests = pl.concat(batches).sort("eta", "manifest_id")
    events = build_events(manifests.with_row_index("_row"), world.rng).drop("row")
    truth = pl.concat(truths)
    oracle = (
        manifests.select("manifest_id", "container_number", "port_of_discharge", "eta", "port_of_loading", "etd", "_export_stopped_at")
        .join(truth, on="manifest_id", how="left")
        .with_columns(pl.col("category").is_not_null().alias("illicit"), pl.col("_export_stopped_at").is_not_null().alias("seized_at_export"))
    )
    hidden = [c for c in manifests.columns if c.startswith("_") or c not in MANIFESTS.column_names]
    outcome_frame = pl.concat(outcomes).select(INSPECTION_OUTCOMES.column_names)
    tables = WorldTables(
        manifests=manifests.drop(hidden).select(MANIFESTS.column_names),
        events=events.select(CONTAINER_EVENTS.column_names),
        outcomes=outcome_frame,
        alerts=world.alerts_frame(),
        oracle=oracle.select(ORACLE_COLUMNS),
        rules=rules,
        export_rules=export_rules,
        summary={},
    )
    tables.summary = summarise(config, tables)
    if tables.summary["scenario"] is not None:
        tables.summary["scenario"]["organisation"] = world.scenario_org_id
    return tables


def _shippers_by_country(relationships: pl.DataFrame) -> dict[str, list[str]]:
    """Legitimate shipper ids per origin country (for organisations that borrow a real exporter's name)."""
    grouped = relationships.group_by(pl.col("origin_port").str.slice(0, 2).alias("country"), maintain_order=True).agg(
        pl.col("shipper_id").unique(maintain_order=True)
    )
    return dict(zip(grouped["country"].to_list(), grouped["shipper_id"].to_list()))


def _utc_series(start: datetime, hours: np.ndarray) -> pl.Series:
    """UTC timestamps ``start + hours`` (microsecond precision)."""
    micros = (int(start.timestamp()) + np.round(np.asarray(hours, dtype=float) * 3600).astype(np.int64)) * 1_000_000
    return pl.Series(micros).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
