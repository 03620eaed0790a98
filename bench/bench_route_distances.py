"""Benchmark: route features from sea-route distances vs the former great-circle values, on a simulated world.

Run: ``python -m bench.bench_route_distances [--days 30] [--per-day 300]``. Prints the number of
distinct routes and port pairs, the time to compute the sea distances (cold, then from the
in-process cache), and the distribution of route_km and route_circuity both ways.
"""

from __future__ import annotations

import argparse
import time

import polars as pl


def great_circle_stats(pol: str, hubs: list[str], pod: str, coords: dict[str, tuple[float, float]]) -> tuple[float, float] | None:
    """The former definition: sum of great-circle legs (whole metres) and the direct great-circle distance."""
    from features.data.reference import haversine_km_np

    stops = [pol, *hubs, pod]
    if any(s not in coords for s in stops):
        return None

    def metres(a: str, b: str) -> int:
        return int(round(float(haversine_km_np(*coords[a], *coords[b])) * 1000.0))

    km = sum(metres(a, b) for a, b in zip(stops[:-1], stops[1:])) / 1000.0
    direct = metres(pol, pod) / 1000.0
    return km, (1.0 if direct < 1.0 else km / direct)


def _describe(name: str, values: pl.Series) -> str:
    q = values.quantile
    return f"{name:<28} mean {values.mean():10.3f}  p50 {q(0.5):10.3f}  p90 {q(0.9):10.3f}  max {values.max():10.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=300)
    args = parser.parse_args(argv)

    from features.data.reference import location_coordinates
    from features.routing import route_stats
    from targeting.sim.world import WorldConfig, simulate_world

    tables = simulate_world(WorldConfig(days=args.days, containers_per_day=args.per_day))
    routes = tables.manifests.select("port_of_loading", pl.col("transshipment_ports").fill_null([]), "port_of_discharge")
    distinct = routes.unique().sort(pl.all())
    coords_frame = location_coordinates()
    coords = dict(zip(coords_frame["locode"], zip(coords_frame["latitude"], coords_frame["longitude"])))
    pairs = set()
    for pol, hubs, pod in distinct.iter_rows():
        stops = [pol, *hubs, pod]
        pairs.update(zip(stops[:-1], stops[1:]))
        pairs.add((pol, pod))
    print(f"bench_route_distances: {tables.manifests.height:,} manifests, {distinct.height:,} distinct routes, {len(pairs):,} port pairs")

    start = time.perf_counter()
    sea = [route_stats(pol, hubs, pod) for pol, hubs, pod in distinct.iter_rows()]
    cold = time.perf_counter() - start
    start = time.perf_counter()
    again = [route_stats(pol, hubs, pod) for pol, hubs, pod in distinct.iter_rows()]
    warm = time.perf_counter() - start
    assert again == sea, "sea route features differ between two runs"
    print(f"  sea distances: {cold:.2f} s first pass (disk cache may hold earlier pairs), {warm * 1000:.1f} ms from the in-process cache; identical both times")

    gc = [great_circle_stats(pol, hubs, pod, coords) for pol, hubs, pod in distinct.iter_rows()]
    rows = [(s["_km"], s["_km"] / s["_direct"] if s["_direct"] >= 1.0 else 1.0, g[0], g[1]) for s, g in zip(sea, gc) if not s["_unknown"] and g is not None]
    per_route = pl.DataFrame(rows, schema=["sea_km", "sea_circuity", "gc_km", "gc_circuity"], orient="row")
    # weight by manifests: join back on the route
    weights = routes.group_by(pl.all()).len()
    weighted = distinct.with_columns(
        pl.Series("ok", [not s["_unknown"] and g is not None for s, g in zip(sea, gc)])
    ).filter("ok").hstack(per_route).join(weights, on=["port_of_loading", "transshipment_ports", "port_of_discharge"])
    expanded = weighted.select(pl.all().repeat_by("len").explode()).drop("len", "ok")
    print(f"  unknown (no coordinates or no sea path): {sum(s['_unknown'] for s in sea)} of {len(sea)} routes")
    print("  per manifest:")
    for col in ("gc_km", "sea_km", "gc_circuity", "sea_circuity"):
        print("   ", _describe(col, expanded[col]))
    ratio = expanded["sea_km"] / expanded["gc_km"]
    print("   ", _describe("sea_km / gc_km", ratio))
    changed = (expanded["sea_circuity"] - expanded["gc_circuity"]).abs()
    print(f"    circuity changed by more than 0.1 for {float((changed > 0.1).mean()) * 100:.1f}% of manifests")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
