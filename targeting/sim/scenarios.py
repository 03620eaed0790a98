"""Named drift scenarios: a known trafficking organisation changes its modus operandi at a known day.

A scenario is a real regime change in the generator, not a relabelling: from
its change day the chosen organisation ships with another configuration and
method (another origin country and cover load, another hub, rip-on instead of
front companies, another declared HS code, another concealment), and keeps
adapting after seizures within the new method. Its shipments after the change
are labelled ``"<scenario>:new"`` in the truth's ``pattern`` column (every
other illicit shipment carries its method's name), so that a benchmark can
measure recall of the moved pattern.

Timing. ``change_day`` is the 0-based *arrival* day from which the port sees
the new pattern: the new regime applies to shipments departing from
``change_day - DEPARTURE_LAG_DAYS`` (the world plans shipments ~30 days
before arrival), so no shipment arriving before ``change_day`` uses it and
every shipment of the organisation arriving on or after it does. The change
is installed when the world reaches that departure day (or day 0), so
adaptations after earlier seizures never copy the future regime back.

Which organisation and which new origin, cover, hub or code: the first
organisation (by id) following the scenario's ``source_method``, and an
option drawn from the scenario's candidates with a generator seeded from the
world's seed and the scenario name (deterministic per seed; it does not touch
the world's own generator, so a scenario world is the baseline world up to the
first consequence of the change).

=====================  ==================  ===============================================================
scenario               organisation        change from ``change_day``
=====================  ==================  ===============================================================
moved-origin-cover     cocaine reefer      a new origin country (CL, AR, UY or ZA) and a new cover load that
                       fronts              country really exports (grapes, wine, frozen beef, oranges), on its
                                           region's usual hub routes
new-hub                cocaine reefer      transships through a hub no cocaine method used (Freeport, Malta,
                       fronts              Gioia Tauro or Valencia); origin and cover unchanged
fronts-to-rip-on       cocaine reefer      stops using front companies: rip-on in legitimate traders'
                       fronts              containers of its cover loads from its origin country (abnormal
                                           terminal dwell, sometimes a replaced seal), 30-300 kg a container
new-precursor-code     precursor           declares under an HS code no precursor is known to be misdeclared
                       misdeclared         under (not in ``features/data/precursors.csv``)
new-concealment        cocaine dry fronts  a new concealment (impregnated in the cargo's packaging) in its
                                           known flow: no verified-gross-mass excess, no undervalued invoice
=====================  ==================  ===============================================================
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np

from targeting.sim.catalogue import HUB_OPTIONS, REGION_OF_COUNTRY
from targeting.sim.trafficking import METHODS, Method, Organisation

__all__ = ["DriftScenario", "SCENARIOS", "NEW_PATTERN_SUFFIX", "check_scenario", "install_scenario", "scenario_organisation", "new_pattern_label"]

NEW_PATTERN_SUFFIX = ":new"
DEFAULT_CHANGE_DAY = 90


@dataclass(frozen=True)
class DriftScenario:
    """A named regime change of one trafficking organisation.

    ``change_day``: the default 0-based arrival day of the change (a world
    can move it with ``WorldConfig(change_day=...)``); ``source_method``: the
    method of the organisation that changes; ``kind``: what changes (see the
    module table).
    """

    name: str
    description: str
    change_day: int
    source_method: str
    kind: str

    @property
    def new_pattern(self) -> str:
        """The truth's ``pattern`` label of the changed organisation's shipments after the change."""
        return new_pattern_label(self.name)


def new_pattern_label(name: str) -> str:
    return f"{name}{NEW_PATTERN_SUFFIX}"


SCENARIOS: dict[str, DriftScenario] = {
    s.name: s
    for s in (
        DriftScenario(
            "moved-origin-cover",
            "A known cocaine organisation (reefer fronts) moves to a new origin country and a new cover load.",
            DEFAULT_CHANGE_DAY, "cocaine-reefer-front", "origin_cover",
        ),
        DriftScenario(
            "new-hub",
            "A known cocaine organisation (reefer fronts) moves its flow to a new transshipment hub.",
            DEFAULT_CHANGE_DAY, "cocaine-reefer-front", "hub",
        ),
        DriftScenario(
            "fronts-to-rip-on",
            "A known cocaine organisation switches from front companies to rip-on in legitimate traders' containers.",
            DEFAULT_CHANGE_DAY, "cocaine-reefer-front", "rip_on",
        ),
        DriftScenario(
            "new-precursor-code",
            "A precursor diversion network misdeclares a new precursor under a new HS code.",
            DEFAULT_CHANGE_DAY, "precursor-misdeclared", "precursor_code",
        ),
        DriftScenario(
            "new-concealment",
            "A known cocaine organisation (dry-cargo fronts) uses a new concealment in its known flow.",
            DEFAULT_CHANGE_DAY, "cocaine-dry-front", "concealment",
        ),
    )
}

# (country, cover HS) pairs the organisation can move to: legitimately exported from there (targeting.sim.catalogue),
# and neither the country nor the commodity used by any cocaine method before the change.
MOVED_ORIGIN_COVERS: tuple[tuple[str, str], ...] = (("CL", "080610"), ("CL", "220421"), ("AR", "020230"), ("UY", "020230"), ("ZA", "080510"), ("AR", "220421"))
NEW_HUBS: tuple[str, ...] = ("BSFPO", "MTMAR", "ITGIT", "ESVLC")
NEW_PRECURSOR_CODES: tuple[str, ...] = ("291830", "293390", "292149")
NEW_CONCEALMENT = "IMPREGNATED IN CARGO PACKAGING"
_RIP_ON = next(m for m in METHODS if m.rip_on)


def check_scenario(name: str | None) -> DriftScenario | None:
    """The scenario called ``name`` (None: none); a clear error listing the valid names otherwise."""
    if name is None:
        return None
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}: use one of {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def scenario_organisation(orgs: list[Organisation], scenario: DriftScenario) -> int:
    """Index (slot) of the organisation that changes: the first following the scenario's source method."""
    for i, org in enumerate(orgs):
        if org.method.name == scenario.source_method:
            return i
    raise ValueError(f"scenario {scenario.name!r}: no organisation follows {scenario.source_method!r}")


def _option(options: tuple, seed: int, scenario: DriftScenario):
    rng = np.random.default_rng([seed, zlib.crc32(scenario.name.encode())])
    return options[int(rng.integers(len(options)))]


def changed_method(scenario: DriftScenario, method: Method, config: dict, *, seed: int, ports_of_country) -> tuple[Method, dict]:
    """The method and configuration the organisation switches to (see the module table)."""
    label = scenario.new_pattern
    cfg = dict(config)
    if scenario.kind == "origin_cover":
        options = tuple((c, h) for c, h in MOVED_ORIGIN_COVERS if c in ports_of_country)
        country, cover = _option(options, seed, scenario)
        hub_options = HUB_OPTIONS[REGION_OF_COUNTRY[country]]
        routes = tuple(hubs for hubs, _ in hub_options)
        ports = ports_of_country[country]
        cfg.update(origin_port=ports[0][0], route=routes[0], cover_hs=cover)
        return replace(method, origins=((country, 1.0),), routes=routes, cover_hs=(cover,), pattern=label), cfg
    if scenario.kind == "hub":
        hub = _option(NEW_HUBS, seed, scenario)
        cfg.update(route=(hub,))
        return replace(method, routes=((hub,),), pattern=label), cfg
    if scenario.kind == "rip_on":
        return replace(
            method, name=_RIP_ON.name, front_company=False, rip_on=True, quantity_kg=_RIP_ON.quantity_kg,
            concealments=_RIP_ON.concealments, pattern=label,
        ), cfg
    if scenario.kind == "precursor_code":
        code = _option(NEW_PRECURSOR_CODES, seed, scenario)
        return replace(method, declared_hs=(code,), pattern=label), cfg
    if scenario.kind == "concealment":
        return replace(method, concealments=(NEW_CONCEALMENT,), physical_tells=False, pattern=label), cfg
    raise ValueError(f"scenario {scenario.name!r}: unknown kind {scenario.kind!r}")


def install_scenario(orgs: list[Organisation], slot: int, scenario: DriftScenario, *, from_day: int, seed: int, ports_of_country) -> Organisation:
    """Switch the organisation in ``slot`` to the scenario's method and configuration for departures from ``from_day``.

    Precondition: called when the world reaches ``from_day`` (no later
    adaptation may have been planned yet). Returns the changed organisation.
    """
    org = orgs[slot]
    method, cfg = changed_method(scenario, org.method_at(from_day), org.config_at(from_day), seed=seed, ports_of_country=ports_of_country)
    org.regimes.append((from_day, method))
    org.history.append((from_day, cfg))
    return org
