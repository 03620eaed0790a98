"""How much novelty legitimate trade has (``WorldConfig.legit_churn``): a messier legitimate world.

In a world where every legitimate trader is old, every shipper known and
every lane fixed, "first seen" is almost the same as "trafficking", and a model
learns novelty rather than risk. Real trade is not like that: firms enter and
leave importing every year, importers try new suppliers, carriers redesign
their services, filers write HS codes at different lengths and invoice in
several currencies. Level ``realistic`` adds that churn; level ``static``
(the default) is the historical world, bit-identical for a seed.

Rates of ``realistic`` (:data:`CHURN_RATES`) and where their orders of magnitude come from
(shares of *legitimate* shipments unless stated; firm-level statistics are turned into shipment shares by
the fact, common to all these studies, that new and small traders are numerous but ship little):

=============================  ===========================  ==================================================
churn                          rate                         source (order of magnitude)
=============================  ===========================  ==================================================
spot suppliers (one-off        4 % of shipments             Monarch (2016, FRB IFDP 1165; Econometrica 2022):
shippers)                                                   only 45 % of US importers keep their Chinese
                                                            supplier from one year to the next. Eaton, Eslava,
                                                            Kugler & Tybout (2007): about half of a year's
                                                            exporters are new, tiny, and most stop within a
                                                            year. Many new supplier relationships, few
                                                            shipments each: a few % of shipments.
small sporadic importers       2 % of shipments, to         Freund & Pierola (2010): entry into exporting of
(1-3 shipments each)           importers never seen before  30-60 % of firms a year across 15 countries; the
                                                            same skew on the import side (Bernard, Jensen,
                                                            Redding & Schott 2007; Bernard, Boler & Dhingra
                                                            2018): most importers bring in a few containers.
seasonal new importers         4 % of consignees, each      Fresh-produce campaigns (southern-hemisphere
                               active 60-120 days           fruit, cocoa, electronics peaks): a share of
                                                            importers trade only in their season; firm entry
                                                            rates as above.
re-routings of established     25 % of trading relation-    Monarch (2016): one third of importers who switch
traders                        ships a year take a new      supplier stay in the same city, the rest move;
                               origin port or hub route     port choice follows carriers' calls and congestion.
                               from a random day            An assumption of order of magnitude.
carriers changing services     40 % of carrier lanes a      2025 alliance reshuffle (Gemini Cooperation,
                               year: new vessels and hub    Premier Alliance, MSC alone from February 2025)
                               from a random day            redrew most Asia-Europe loops at once; carriers
                                                            revise rotations every season.
HS code length                 6 digits 60 %, 8 digits      ICS2/ENS needs at least 6 digits; EU declarations
                               25 %, 10 digits 15 % (per    use the 8-digit CN and 10-digit TARIC, which filers
                               trading pair and code)       often copy into manifests. The split is an
                                                            assumption (the contracts accept 6, 8 or 10).
invoice currency               USD 50 %, EUR 38 %, the      Eurostat ext_lt_invcur: extra-EU imports 2020 were
                               exporter's currency 12 %     invoiced 48 % in USD, 38 % in EUR, the rest in
                               (per trading pair)           other or unknown currencies (56 % / 35 % in 2018).
party spellings                10 % of party mentions       Name-and-address matching of US and Colombian
                               (when the world sets none)   customs records links only 85 % of the value
                                                            (US Census CES); :mod:`targeting.sim.spelling`.
=============================  ===========================  ==================================================

Front companies get identifiers numbered like any new trader's (in the static world they are numbered
apart, ``C..FC...``), so an identifier's form tells nothing (:meth:`LegitChurn.alias`).

All churn draws come from their own generator (seeded from the world's seed),
so a ``static`` world never draws them. Every legitimate manifest row
carries a hidden ``_churn`` label (``spot``, ``sporadic``, ``seasonal``,
``reroute``, ``service`` or null) so that tests can measure the rates; it
never reaches the public tables.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from features.stats import USD_PER_UNIT
from targeting.sim.catalogue import CARRIERS, COMMODITIES, HUB_OPTIONS, REGION_OF_COUNTRY
from targeting.sim.parties import party_name, route_for_lane

CHURN_LEVELS = ("static", "realistic")
NO_END_DAY = 1_000_000_000
_SIM_UNITS_PER_USD = {"USD": 1.0, "EUR": 0.92, "CNY": 7.2}  # the rates targeting.sim.world invoices in
_CURRENCY_OF_COUNTRY = {
    "CN": "CNY", "IN": "INR", "JP": "JPY", "GB": "GBP", "BR": "BRL", "MX": "MXN", "ZA": "ZAR", "TR": "TRY", "CO": "COP", "PE": "PEN",
    "CL": "CLP", "AR": "ARS", "VN": "VND", "TH": "THB", "MY": "MYR", "ID": "IDR", "PK": "PKR", "EG": "EGP", "MA": "MAD", "NG": "NGN",
    "GH": "GHS", "KE": "KES", "KR": "KRW", "AU": "AUD", "AE": "AED", "SG": "SGD", "CA": "CAD",
}


@dataclass(frozen=True)
class ChurnRates:
    """The rates of one churn level (see the module table)."""

    spot_supplier_share: float
    sporadic_importer_share: float
    seasonal_importer_share: float
    reroute_per_year: float
    service_change_per_year: float
    hs_digits: tuple[tuple[int, float], ...]
    currencies: tuple[tuple[str, float], ...]
    spelling_variant_rate: float


CHURN_RATES: dict[str, ChurnRates | None] = {
    "static": None,
    "realistic": ChurnRates(
        spot_supplier_share=0.04,
        sporadic_importer_share=0.02,
        seasonal_importer_share=0.04,
        reroute_per_year=0.25,
        service_change_per_year=0.40,
        hs_digits=((6, 0.60), (8, 0.25), (10, 0.15)),
        currencies=(("USD", 0.50), ("EUR", 0.38), ("LOCAL", 0.12)),
        spelling_variant_rate=0.10,
    ),
}


def check_churn_level(level: str) -> str:
    """``level`` when it is one of :data:`CHURN_LEVELS`; a clear error listing them otherwise."""
    if level not in CHURN_LEVELS:
        raise ValueError(f"unknown legit_churn {level!r}: use one of {', '.join(CHURN_LEVELS)}")
    return level


def _within(per_year: float, days: int) -> float:
    """Probability that an event with yearly hazard ``per_year`` happens within ``days``."""
    return 1.0 - (1.0 - per_year) ** (days / 365.0)


def _unit(*parts: str) -> float:
    """A stable uniform number in [0, 1) from text (the same in every process)."""
    return zlib.crc32("|".join(parts).encode()) / 2**32


class LegitChurn:
    """Applies one churn level to the legitimate trade of a world (see the module docstring).

    Deterministic for ``seed``; uses its own generator, never the world's.
    """

    def __init__(self, rates: ChurnRates, *, seed: int, days: int, ports_of_country) -> None:
        self.rates = rates
        self.days = days
        self.ports_of_country = ports_of_country
        self.rng = np.random.default_rng([seed, 2029])
        self._new_parties: list[dict] = []
        self._next_shipper = 0
        self._next_consignee = 0
        self._aliases: dict[str, str] = {}

    # ------------------------------------------------------------------ parties
    def _reserve_numbers(self, parties: pl.DataFrame) -> None:
        numbers = {"S": [0], "C": [0]}
        for pid in parties["party_id"].to_list():
            match = re.fullmatch(r"([SC])[A-Z]{2}(\d{6})", pid)
            if match:
                numbers[match.group(1)].append(int(match.group(2)))
        self._next_shipper, self._next_consignee = max(numbers["S"]) + 1, max(numbers["C"]) + 1

    def _new_party(self, role: str, country: str, hint: str | None = None) -> str:
        if role == "S":
            number, self._next_shipper = self._next_shipper, self._next_shipper + 1
        else:
            number, self._next_consignee = self._next_consignee, self._next_consignee + 1
        party_id = f"{role}{country}{number:06d}"
        self._new_parties.append({"party_id": party_id, "name": party_name(self.rng, country, hint), "country": country})
        return party_id

    def alias(self, party_id: str) -> str:
        """A legitimate-looking identifier for a front company's (``C..FC...``/``S..FS...``), stable per front; others unchanged.

        In the historical world front companies are numbered apart from
        legitimate traders; here they are numbered like any new trader, so an
        identifier's form says nothing about who is behind it.
        """
        match = re.fullmatch(r"([SC])([A-Z]{2})F[CS]\d+", party_id)
        if match is None:
            return party_id
        if party_id not in self._aliases:
            role, country = match.groups()
            if role == "S":
                number, self._next_shipper = self._next_shipper, self._next_shipper + 1
            else:
                number, self._next_consignee = self._next_consignee, self._next_consignee + 1
            self._aliases[party_id] = f"{role}{country}{number:06d}"
        return self._aliases[party_id]

    def take_new_parties(self, schema) -> pl.DataFrame:
        """The parties created since the last call (party_id, name, country)."""
        frame = pl.DataFrame(self._new_parties, schema=schema)
        self._new_parties = []
        return frame

    # ------------------------------------------------------------------ trade structure
    def extend_trade(self, relationships: pl.DataFrame, parties: pl.DataFrame, dest_ports: tuple[str, ...]) -> pl.DataFrame:
        """``relationships`` plus seasonal importers, with an ``end_day`` column (see the module table)."""
        self._reserve_numbers(parties)
        n_base = relationships.select(pl.col("consignee_id").n_unique()).item()
        seasonal = [c for c in COMMODITIES if c.season_amplitude >= 0.3 and any(o in self.ports_of_country for o, _ in c.origins)]
        rows = []
        for i in range(int(round(self.rates.seasonal_importer_share * n_base))):
            dest = dest_ports[i % len(dest_ports)]
            com = seasonal[int(self.rng.integers(len(seasonal)))]
            origins = [(o, w) for o, w in com.origins if o in self.ports_of_country]
            country = origins[int(self.rng.choice(len(origins), p=np.array([w for _, w in origins]) / sum(w for _, w in origins)))][0]
            ports, weights = zip(*self.ports_of_country[country])
            origin = ports[int(self.rng.choice(len(ports), p=np.asarray(weights) / sum(weights)))]
            consignee = self._new_party("C", dest[:2], "Fresh Produce" if com.hs_code.startswith(("07", "08")) else None)
            start = int(self.rng.integers(0, max(1, self.days - 30)))
            rows.append({
                "shipper_id": self._new_party("S", country), "consignee_id": consignee,
                "notify_id": consignee if self.rng.random() < 0.6 else None, "hs_code": com.hs_code, "origin_port": origin,
                "dest_port": dest, "carrier": CARRIERS[int(self.rng.integers(len(CARRIERS)))],
                "route": [h for h in route_for_lane(origin, self.rng) if h != dest], "freight_payment": "PP",
                "nvocc": bool(self.rng.random() < 0.3), "start_day": start, "weight": float(self.rng.uniform(0.5, 2.0)),
                "end_day": start + int(self.rng.integers(60, 121)),
            })
        base = relationships.with_columns(pl.lit(NO_END_DAY, pl.Int64).alias("end_day"))
        if not rows:
            return base
        extra = pl.DataFrame(rows, schema={k: v for k, v in base.schema.items() if k != "relationship"})
        extra = extra.with_row_index("relationship", offset=relationships.height).select(base.columns)
        return pl.concat([base, extra.cast(base.schema)]).with_columns(
            (pl.col("relationship") >= relationships.height).alias("_seasonal")
        )

    # ------------------------------------------------------------------ shipments
    def apply(self, plan: pl.DataFrame) -> pl.DataFrame:
        """Re-routings, service changes, spot suppliers and sporadic importers on the legitimate plan rows.

        Precondition: ``plan`` has the relationship columns plus ``relationship`` and ``day``.
        Adds ``_churn`` and ``_service_shift``.
        """
        n = plan.height
        plan = plan.with_columns(pl.lit(None, pl.String).alias("_churn"), pl.lit(0, pl.Int64).alias("_service_shift"))
        if n == 0:
            return plan
        plan = self._reroute(plan)
        plan = self._service_changes(plan)
        seasonal = plan["_seasonal"].fill_null(False).to_numpy() if "_seasonal" in plan.columns else np.zeros(n, bool)
        spot = (self.rng.random(n) < self.rates.spot_supplier_share) & ~seasonal
        sporadic = (self.rng.random(n) < self.rates.sporadic_importer_share) & ~seasonal & ~spot
        shippers = plan["shipper_id"].to_list()
        origins = plan["origin_port"].to_list()
        for i in np.flatnonzero(spot):
            shippers[i] = self._new_party("S", origins[i][:2])
        consignees, notify = self._sporadic_importers(plan, sporadic)
        label = (
            pl.when(pl.Series(spot)).then(pl.lit("spot"))
            .when(pl.Series(sporadic)).then(pl.lit("sporadic"))
            .when(pl.Series(seasonal)).then(pl.lit("seasonal"))
            .otherwise(pl.col("_churn"))
        )
        plan = plan.with_columns(
            pl.Series("shipper_id", shippers, dtype=pl.String),
            pl.Series("consignee_id", consignees, dtype=pl.String),
            pl.Series("notify_id", notify, dtype=pl.String),
            label.alias("_churn"),
        )
        return plan.drop("_seasonal", strict=False)

    def _sporadic_importers(self, plan: pl.DataFrame, picked: np.ndarray) -> tuple[list, list]:
        """New small importers for the picked rows: runs of 1-3 shipments per destination and commodity, in day order."""
        consignees = plan["consignee_id"].to_list()
        notify = plan["notify_id"].to_list()
        rows = plan.with_row_index("_i").filter(pl.Series(picked)).sort("dest_port", "hs_code", "day", "_i")
        current, left, key = None, 0, None
        for i, dest, hs in zip(rows["_i"].to_list(), rows["dest_port"].to_list(), rows["hs_code"].to_list()):
            if left == 0 or key != (dest, hs):
                hint = "Fresh Produce" if hs.startswith(("07", "08")) else None
                current, left, key = self._new_party("C", dest[:2], hint), int(self.rng.integers(1, 4)), (dest, hs)
            self_notify = notify[i] == consignees[i]
            consignees[i] = current
            notify[i] = current if self_notify else notify[i]
            left -= 1
        return consignees, notify

    def _reroute(self, plan: pl.DataFrame) -> pl.DataFrame:
        """Established relationships that move to another origin port of the same country (or another hub route) from a day on."""
        seasonal = pl.col("_seasonal").fill_null(False) if "_seasonal" in plan.columns else pl.lit(False)
        rels = plan.filter(~seasonal).select("relationship", "origin_port", "dest_port").unique("relationship", keep="first").sort("relationship")
        chosen = rels.filter(pl.Series(self.rng.random(rels.height) < _within(self.rates.reroute_per_year, self.days)))
        rows = []
        for rel, origin, dest in chosen.iter_rows():
            ports = [p for p, _ in self.ports_of_country.get(origin[:2], []) if p != origin]
            new_origin = ports[int(self.rng.integers(len(ports)))] if ports and self.rng.random() < 0.6 else origin
            route = [h for h in route_for_lane(new_origin, self.rng) if h not in (dest, new_origin)]
            rows.append({"relationship": rel, "_from": int(self.rng.integers(1, self.days)), "_origin": new_origin, "_route": route})
        if not rows:
            return plan
        table = pl.DataFrame(rows, schema={"relationship": plan.schema["relationship"], "_from": pl.Int64, "_origin": pl.String, "_route": pl.List(pl.String)})
        moved = pl.col("_from").is_not_null() & (pl.col("day") >= pl.col("_from"))
        return (
            plan.join(table, on="relationship", how="left", maintain_order="left")
            .with_columns(
                pl.when(moved).then(pl.col("_origin")).otherwise(pl.col("origin_port")).alias("origin_port"),
                pl.when(moved).then(pl.col("_route")).otherwise(pl.col("route")).alias("route"),
                pl.when(moved).then(pl.lit("reroute")).otherwise(pl.col("_churn")).alias("_churn"),
            )
            .drop("_from", "_origin", "_route")
        )

    def _service_changes(self, plan: pl.DataFrame) -> pl.DataFrame:
        """Carrier lanes (carrier, origin country, destination) whose service changes from a day on: other vessels, another hub option."""
        lane = [pl.col("carrier"), pl.col("origin_port").str.slice(0, 2).alias("_country"), pl.col("dest_port")]
        lanes = plan.select(lane).unique(maintain_order=True).sort("carrier", "_country", "dest_port")
        chosen = lanes.filter(pl.Series(self.rng.random(lanes.height) < _within(self.rates.service_change_per_year, self.days)))
        rows = []
        for carrier, country, dest in chosen.iter_rows():
            options = HUB_OPTIONS[REGION_OF_COUNTRY.get(country, "NORTH_EUROPE")]
            hubs = list(options[int(self.rng.integers(len(options)))][0])
            rows.append({"carrier": carrier, "_country": country, "dest_port": dest, "_from": int(self.rng.integers(1, self.days)),
                         "_hubs": hubs, "_shift": int(self.rng.integers(1, 40))})
        if not rows:
            return plan
        table = pl.DataFrame(rows, schema={"carrier": pl.String, "_country": pl.String, "dest_port": pl.String, "_from": pl.Int64,
                                           "_hubs": pl.List(pl.String), "_shift": pl.Int64})
        changed = pl.col("_from").is_not_null() & (pl.col("day") >= pl.col("_from"))
        new_route = pl.col("_hubs").list.set_difference(pl.concat_list("origin_port", "dest_port"))
        return (
            plan.with_columns(pl.col("origin_port").str.slice(0, 2).alias("_country"))
            .join(table, on=["carrier", "_country", "dest_port"], how="left", maintain_order="left")
            .with_columns(
                pl.when(changed).then(new_route).otherwise(pl.col("route")).alias("route"),
                pl.when(changed).then(pl.col("_shift")).otherwise(pl.col("_service_shift")).alias("_service_shift"),
                pl.when(changed & pl.col("_churn").is_null()).then(pl.lit("service")).otherwise(pl.col("_churn")).alias("_churn"),
            )
            .drop("_country", "_from", "_hubs", "_shift")
        )

    # ------------------------------------------------------------------ filing
    def file(self, manifests: pl.DataFrame) -> pl.DataFrame:
        """HS codes at 6, 8 or 10 digits and invoice currencies per trading pair, for every row (legitimate and not).

        Precondition: ``hs_code_declared`` (6 digits), ``declared_value``
        and ``currency`` as the world invoices them (USD, EUR or CNY),
        ``shipper_id``, ``consignee_id`` and ``port_of_loading``. Adds
        ``_churn`` and ``_service_shift`` when absent.
        """
        shipper, consignee = manifests["shipper_id"].to_list(), manifests["consignee_id"].to_list()
        codes = manifests["hs_code_declared"].to_list()
        lengths, shares = zip(*self.rates.hs_digits)
        cut = np.cumsum(shares)
        filed = []
        for s, c, code in zip(shipper, consignee, codes):
            digits = lengths[int(np.searchsorted(cut, _unit("digits", s, c, code) * cut[-1], side="right"))]
            suffix = f"{zlib.crc32(f'{code}|{s}'.encode()) % 10_000:04d}"
            filed.append(code + suffix[: digits - 6])
        names, weights = zip(*self.rates.currencies)
        ccut = np.cumsum(weights)
        countries = [p[:2] for p in manifests["port_of_loading"].to_list()]
        currency = []
        for s, c, country in zip(shipper, consignee, countries):
            pick = names[int(np.searchsorted(ccut, _unit("currency", s, c) * ccut[-1], side="right"))]
            currency.append(_CURRENCY_OF_COUNTRY.get(country, "USD") if pick == "LOCAL" else pick)
        usd = manifests["declared_value"].to_numpy() / np.array([_SIM_UNITS_PER_USD[x] for x in manifests["currency"].to_list()])
        value = np.round(usd / np.array([USD_PER_UNIT[x] for x in currency]), 2)
        out = manifests.with_columns(
            pl.Series("hs_code_declared", filed, dtype=pl.String),
            pl.Series("currency", currency, dtype=pl.String),
            pl.Series("declared_value", value),
        )
        missing = {"_churn": pl.lit(None, pl.String), "_service_shift": pl.lit(0, pl.Int64)}
        return out.with_columns(v.alias(k) for k, v in missing.items() if k not in out.columns)


def make_churn(level: str, *, seed: int, days: int, ports_of_country) -> LegitChurn | None:
    """The churn of ``level`` for a world (None for ``static``)."""
    rates = CHURN_RATES[check_churn_level(level)]
    return None if rates is None else LegitChurn(rates, seed=seed, days=days, ports_of_country=ports_of_country)
