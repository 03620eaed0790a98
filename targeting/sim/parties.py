"""Legitimate trade: traders, their trading relationships, lanes and fleets.

A relationship is a stable shipper -> consignee flow of one commodity from one
origin port to one destination port, carried by one carrier on one
transshipment route. Relationships have heavy-tailed volumes and a start day
(new traders appear during the simulated period).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.data.checks import imo_check_digit
from targeting.sim.catalogue import (
    CARRIERS,
    COMMODITIES,
    HUB_OPTIONS,
    LEGAL_FORMS,
    MAIN_PORTS,
    NAME_STEMS,
    NAME_TRADES,
    REGION_OF_COUNTRY,
)


def ports_by_country(known: frozenset[str]) -> dict[str, list[tuple[str, float]]]:
    """Main container ports per country with relative sizes, restricted to ``known`` LOCODEs."""
    out: dict[str, list[tuple[str, float]]] = {}
    for country, ports in MAIN_PORTS.items():
        kept = [(p, w) for p, w in ports if p in known]
        if kept:
            out[country] = kept
    return out


def party_name(rng: np.random.Generator, country: str, trade_hint: str | None = None) -> str:
    """A plausible company name for ``country``."""
    stem = NAME_STEMS[int(rng.integers(len(NAME_STEMS)))]
    trade = trade_hint or NAME_TRADES[int(rng.integers(len(NAME_TRADES)))]
    return f"{stem} {trade} {LEGAL_FORMS.get(country, 'Ltd')}"


def make_vessels(rng: np.random.Generator, per_carrier: int) -> dict[str, list[str]]:
    """A fleet of valid IMO numbers per carrier."""
    used: set[str] = set()
    fleets: dict[str, list[str]] = {}
    for carrier in CARRIERS:
        fleet = []
        while len(fleet) < per_carrier:
            six = f"{int(rng.integers(900000, 990000)):06d}"
            imo = six + str(imo_check_digit(six))
            if imo not in used:
                used.add(imo)
                fleet.append(imo)
        fleets[carrier] = fleet
    return fleets


@dataclass(frozen=True)
class TradeStructure:
    """The legitimate trade of the world."""

    relationships: pl.DataFrame
    parties: pl.DataFrame  # party_id, name, country


def _commodity_weight_table(port_country: str) -> np.ndarray:
    # crude import mix: fruit-heavy for the Low Countries, generic elsewhere
    weights = []
    for c in COMMODITIES:
        w = 1.0
        if c.hs_code.startswith("08") and port_country in ("NL", "BE", "DE"):
            w = 2.5
        if c.hs_code in ("240220",):
            w = 0.15
        if c.hs_code.startswith(("29", "38")):
            w = 0.6
        weights.append(w)
    w = np.asarray(weights)
    return w / w.sum()


def route_for_lane(origin: str, seed_rng: np.random.Generator) -> tuple[str, ...]:
    """Pick a transshipment route for a lane from its region's options."""
    region = REGION_OF_COUNTRY.get(origin[:2], "NORTH_EUROPE")
    options = HUB_OPTIONS[region]
    weights = np.array([w for _, w in options], dtype=float)
    hubs = options[int(seed_rng.choice(len(options), p=weights / weights.sum()))][0]
    return tuple(h for h in hubs if h != origin)


def make_trade(
    *,
    rng: np.random.Generator,
    dest_ports: tuple[str, ...],
    n_consignees: int,
    days: int,
    ports_of_country: dict[str, list[tuple[str, float]]],
) -> TradeStructure:
    """Create consignees, their suppliers and the relationships between them."""
    rel_rows: list[dict] = []
    parties: dict[str, tuple[str, str]] = {}
    shipper_pool: dict[tuple[str, str], list[str]] = {}  # (country, hs) -> shipper ids
    lane_routes: dict[tuple[str, str, str], tuple[str, ...]] = {}
    n_shippers = 0
    for c_idx in range(n_consignees):
        dest = dest_ports[c_idx % len(dest_ports)]
        country = dest[:2]
        consignee_id = f"C{country}{c_idx:06d}"
        size = float(rng.pareto(1.3) + 1.0)
        start = int(rng.integers(1, days)) if rng.random() < 0.12 else -10_000
        n_commodities = int(rng.choice([1, 1, 1, 2, 2, 3]))
        commodity_idx = rng.choice(len(COMMODITIES), size=n_commodities, replace=False, p=_commodity_weight_table(country))
        trade_hint = "Fresh Produce" if COMMODITIES[commodity_idx[0]].hs_code.startswith("08") else None
        parties[consignee_id] = (party_name(rng, country, trade_hint), country)
        nvocc = rng.random() < 0.22
        freight = rng.choice(["PP", "CC", "TP"], p=[0.68, 0.28, 0.04])
        notify_mode = rng.choice(["self", "broker", "none"], p=[0.6, 0.3, 0.1])
        broker_id = f"N{country}{int(rng.integers(0, 400)):05d}"
        if broker_id not in parties:
            parties[broker_id] = (f"{NAME_STEMS[int(rng.integers(len(NAME_STEMS)))]} Customs Brokers {LEGAL_FORMS.get(country, 'Ltd')}", country)
        for ci in commodity_idx:
            com = COMMODITIES[ci]
            origins = [(o, w) for o, w in com.origins if o in ports_of_country]
            if not origins:
                continue
            ocountries, ow = zip(*origins)
            for _ in range(int(rng.choice([1, 1, 2, 2, 3]))):
                ocountry = ocountries[int(rng.choice(len(ocountries), p=np.asarray(ow) / sum(ow)))]
                pool = shipper_pool.setdefault((ocountry, com.hs_code), [])
                if pool and rng.random() < 0.5:
                    shipper_id = pool[int(rng.integers(len(pool)))]
                else:
                    n_shippers += 1
                    shipper_id = f"S{ocountry}{n_shippers:06d}"
                    parties[shipper_id] = (party_name(rng, ocountry), ocountry)
                    pool.append(shipper_id)
                ports, pw = zip(*ports_of_country[ocountry])
                origin = ports[int(rng.choice(len(ports), p=np.asarray(pw) / sum(pw)))]
                carrier = CARRIERS[int(rng.integers(len(CARRIERS)))]
                lane = (origin, dest, carrier)
                if lane not in lane_routes:
                    lane_routes[lane] = tuple(h for h in route_for_lane(origin, rng) if h != dest)
                rel_rows.append(
                    {
                        "shipper_id": shipper_id,
                        "consignee_id": consignee_id,
                        "notify_id": {"self": consignee_id, "broker": broker_id, "none": None}[notify_mode],
                        "hs_code": com.hs_code,
                        "origin_port": origin,
                        "dest_port": dest,
                        "carrier": carrier,
                        "route": list(lane_routes[lane]),
                        "freight_payment": str(freight),
                        "nvocc": bool(nvocc),
                        "start_day": start,
                        "weight": size * float(rng.uniform(0.3, 1.0)),
                    }
                )
    relationships = pl.DataFrame(rel_rows, schema_overrides={"route": pl.List(pl.String)}).with_row_index("relationship")
    party_frame = pl.DataFrame(
        {"party_id": list(parties), "name": [v[0] for v in parties.values()], "country": [v[1] for v in parties.values()]}
    )
    return TradeStructure(relationships=relationships, parties=party_frame)
