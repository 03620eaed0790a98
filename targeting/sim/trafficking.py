"""Trafficking organisations: their methods, shipments, and how they adapt after seizures.

Each organisation follows one method (modus operandi) and keeps a current
configuration (origin port, transshipment route, cover commodity, front
companies). After a seizure it may move to another port, another hub or another
cover load, and always burns the seized front company: the drift that the
engine must survive.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class Method:
    """How contraband moves.

    ``front_company``: shipped by a new consignee set up for the purpose.
    ``rip_on``: hidden in a legitimate trader's container at the origin terminal
    or a transshipment hub (the trader is unaware): abnormal dwell, sometimes a
    replaced seal. ``declared_hs``: HS codes the goods are declared under when
    they differ from the cover commodity (precursors misdeclared under a
    neighbouring code). ``pattern``: the label of its shipments in the truth's
    ``pattern`` column (empty: the method's name; a drift scenario's changed
    method is labelled ``"<scenario>:new"``). ``physical_tells``: its
    concealment leaves the physical traces of a front shipment (verified gross
    mass above the manifest, an undervalued invoice) half of the time.
    """

    name: str
    category: str
    share: float
    origins: tuple[tuple[str, float], ...]
    routes: tuple[tuple[str, ...], ...]
    cover_hs: tuple[str, ...]
    quantity_kg: tuple[float, float]
    concealments: tuple[str, ...]
    front_company: bool = True
    rip_on: bool = False
    declared_hs: tuple[str, ...] = ()
    pattern: str = ""
    physical_tells: bool = True

    @property
    def label(self) -> str:
        """The truth's ``pattern`` label of this method's shipments."""
        return self.pattern or self.name


METHODS: tuple[Method, ...] = (
    Method("cocaine-reefer-front", "COCAINE", 0.27,
           (("EC", 4), ("CO", 2), ("PE", 1), ("PA", 1), ("CR", 1), ("DO", 0.5)),
           ((), ("PAMIT",), ("COCTG",), ("JMKIN",), ("DOCAU",)),
           ("080390", "080430", "080440", "030617"), (150, 1500),
           ("HIDDEN IN CARGO BOXES", "REEFER UNIT COMPARTMENT", "FALSE FLOOR")),
    Method("cocaine-dry-front", "COCAINE", 0.12,
           (("BR", 3), ("CO", 1), ("EC", 1), ("PE", 1)),
           ((), ("ESALG",), ("PTSIE",), ("COCTG",)),
           ("090111", "180100", "252329", "720449", "440799"), (200, 1200),
           ("MIXED IN CARGO", "INSIDE CEMENT BAGS", "FALSE WALL")),
    Method("cocaine-rip-on", "COCAINE", 0.25,
           (("EC", 3), ("CO", 2), ("BR", 2), ("PA", 1), ("CR", 1), ("PE", 1)),
           ((), ("PAMIT",), ("COCTG",), ("JMKIN",)),
           ("080390", "080430", "080440", "090111", "030617", "080450"), (30, 300),
           ("BAGS BEHIND THE DOORS (RIP-ON/RIP-OFF)",), front_company=False, rip_on=True),
    Method("cocaine-west-africa", "COCAINE", 0.05,
           (("CI", 2), ("GH", 1), ("TG", 1), ("NG", 1)),
           ((), ("TGLFW",), ("MAPTM",)),
           ("180100", "440799", "720449"), (100, 800),
           ("MIXED IN CARGO", "FALSE WALL")),
    Method("precursor-misdeclared", "PRECURSOR", 0.12,
           (("CN", 4), ("IN", 1)),
           ((), ("SGSIN",), ("LKCMB",)),
           ("293299", "291439", "382499"), (800, 9000),
           ("MISDECLARED AS INDUSTRIAL CHEMICAL",), declared_hs=("293299", "291439", "382499", "291419", "292690")),
    Method("meth-mexico", "METHAMPHETAMINE", 0.05,
           (("MX", 3),),
           ((), ("JMKIN",), ("ESALG",)),
           ("690721", "870899", "200912"), (50, 600),
           ("INSIDE MACHINERY", "DISSOLVED IN LIQUID CARGO")),
    Method("heroin-south-asia", "HEROIN", 0.04,
           (("PK", 2), ("IN", 0.5)),
           (("AEJEA",), ("OMSLL",), ()),
           ("680221", "100630", "620342"), (30, 400),
           ("INSIDE MARBLE BLOCKS", "MIXED IN CARGO")),
    Method("cannabis-morocco", "CANNABIS", 0.05,
           (("MA", 3),),
           ((), ("ESALG",)),
           ("070960", "080510"), (500, 4000),
           ("HIDDEN IN VEGETABLE CARGO",)),
    Method("counterfeit-cigarettes", "COUNTERFEIT", 0.05,
           (("AE", 2), ("CN", 2)),
           ((), ("EGPSD",), ("GRPIR",)),
           ("940360", "401110", "690721"), (4000, 8500),
           ("CIGARETTES BEHIND COVER LOAD",)),
)


@dataclass
class Organisation:
    """A trafficking organisation, its route configuration and its current front companies.

    ``history`` holds ``(from_day, config)`` pairs of route configurations
    (origin port, hub route, cover commodity): a shipment arriving on day ``d``
    uses the configuration in force when it departed. Front companies are
    current state: each is used for a handful of shipments, then replaced, and
    burned at once after a seizure. ``regimes`` holds ``(from_day, method)``
    pairs (departure days, like ``history``): a change of modus operandi (a
    drift scenario, :mod:`targeting.sim.scenarios`); empty: ``method`` always.
    """

    org_id: str
    method: Method
    rate_per_day: float
    dest_ports: tuple[str, ...]
    history: list[tuple[int, dict]] = field(default_factory=list)
    front: str = ""
    front_shipper: str | None = None
    front_uses: int = 0
    front_limit: int = 5
    seizures: int = 0
    shipments: int = 0
    regimes: list[tuple[int, Method]] = field(default_factory=list)

    def method_at(self, day: int) -> Method:
        """The method in force for shipments departing on ``day``: the latest regime started on or before it."""
        current = self.method
        for start, method in self.regimes:
            if start <= day:
                current = method
        return current

    def config_at(self, day: int) -> dict:
        """The configuration in force on ``day``: the latest-starting entry that started on or before it."""
        eligible = [(start, i) for i, (start, _) in enumerate(self.history) if start <= day]
        if not eligible:
            return self.history[0][1]
        return self.history[max(eligible)[1]][1]


def _weighted_choice(rng: np.random.Generator, options, weights=None):
    weights = np.asarray(weights if weights is not None else np.ones(len(options)), dtype=float)
    return options[int(rng.choice(len(options), p=weights / weights.sum()))]


def initial_config(method: Method, ports_of_country: dict[str, list[tuple[str, float]]], rng: np.random.Generator) -> dict:
    """A fresh route configuration for an organisation using ``method``."""
    countries = [c for c, _ in method.origins if c in ports_of_country]
    weights = [w for c, w in method.origins if c in ports_of_country]
    country = _weighted_choice(rng, countries, weights)
    ports, pw = zip(*ports_of_country[country])
    return {
        "origin_port": _weighted_choice(rng, list(ports), list(pw)),
        "route": method.routes[int(rng.integers(len(method.routes)))],
        "cover_hs": method.cover_hs[int(rng.integers(len(method.cover_hs)))],
    }


def new_front_company(counter: list[int], prefix: str = "FC") -> str:
    counter[0] += 1
    return f"{prefix}{counter[0]:05d}"


def renew_fronts(org: Organisation, rng: np.random.Generator, counter: list[int], *, new_shipper_probability: float = 1.0) -> None:
    """Set up a new front consignee (and, sometimes, a new front shipper) for the next shipments."""
    org.front = new_front_company(counter)
    org.front_uses = 0
    org.front_limit = int(rng.integers(2, 7))
    if rng.random() < new_shipper_probability:
        org.front_shipper = new_front_company(counter, prefix="FS") if rng.random() < 0.6 else None


def use_front(org: Organisation, rng: np.random.Generator, counter: list[int]) -> tuple[str, str | None]:
    """The front companies for the next shipment; rotates them once used up."""
    if not org.front or org.front_uses >= org.front_limit:
        renew_fronts(org, rng, counter, new_shipper_probability=0.3 if org.front else 1.0)
    org.front_uses += 1
    return org.front, org.front_shipper


def adapt_after_seizure(org: Organisation, day: int, ports_of_country, rng: np.random.Generator,
                        front_counter: list[int], *, adapt_probability: float) -> None:
    """Change the organisation after one of its shipments was seized on ``day``.

    Always burns the front consignee (and half the time the front shipper);
    with ``adapt_probability`` moves to another origin port (displacement,
    favouring smaller ports), and independently may change hub route and cover
    load for shipments departing from the next day on.
    """
    org.seizures += 1
    renew_fronts(org, rng, front_counter, new_shipper_probability=0.5)
    cfg = dict(org.config_at(day + 1_000_000))
    method = org.method_at(day + 1)
    if rng.random() < adapt_probability:
        countries = [c for c, _ in method.origins if c in ports_of_country]
        country = countries[int(rng.integers(len(countries)))]
        ports, pw = zip(*ports_of_country[country])
        inverse = 1.0 / np.asarray(pw, dtype=float)  # displacement to smaller ports
        cfg["origin_port"] = _weighted_choice(rng, list(ports), inverse)
    if rng.random() < adapt_probability * 0.7:
        cfg["route"] = method.routes[int(rng.integers(len(method.routes)))]
    if rng.random() < adapt_probability * 0.6:
        cfg["cover_hs"] = method.cover_hs[int(rng.integers(len(method.cover_hs)))]
    org.history.append((day + 1, cfg))


def make_organisations(*, n: int, daily_illicit: float, dest_ports: tuple[str, ...], ports_of_country,
                       rng: np.random.Generator) -> list[Organisation]:
    """Create ``n`` organisations whose combined rate is ``daily_illicit`` shipments per day."""
    shares = np.array([m.share for m in METHODS])
    # every method gets at least one organisation, the rest by share
    picks = list(range(len(METHODS))) + list(rng.choice(len(METHODS), size=max(0, n - len(METHODS)), p=shares / shares.sum()))
    counts = np.bincount(picks, minlength=len(METHODS))
    orgs: list[Organisation] = []
    for method_idx in picks:
        method = METHODS[method_idx]
        rate = daily_illicit * method.share / shares.sum() / counts[method_idx]
        k = int(rng.integers(1, len(dest_ports) + 1))
        dests = tuple(sorted(rng.choice(dest_ports, size=k, replace=False).tolist()))
        org = Organisation(f"ORG{len(orgs) + 1:03d}", method, float(rate), dests)
        org.history.append((-10_000, initial_config(method, ports_of_country, rng)))
        orgs.append(org)
    return orgs


def replace_dissolved(orgs: list[Organisation], day: int, ports_of_country, rng, *, max_seizures: int) -> None:
    """An organisation hit ``max_seizures`` times dissolves; a new one with a fresh configuration takes its place.

    The successor inherits the organisation's modus operandi timeline (``regimes``: after a drift scenario's change,
    the changed method, for departures from the change on) and starts from a fresh configuration of the method in force.
    """
    for i, org in enumerate(orgs):
        if org.seizures >= max_seizures:
            successor = Organisation(f"{org.org_id}-{day}", org.method, org.rate_per_day, org.dest_ports, regimes=list(org.regimes))
            successor.history.append((day + 1, initial_config(org.method_at(day + 1), ports_of_country, rng)))
            orgs[i] = successor
