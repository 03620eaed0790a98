"""The value-of-sharing replay: deterministic, conservative of containers, and intelligence only counted with it."""

from __future__ import annotations

from datetime import date

import pytest

from targeting.exchange.value import DEFAULT_UNITS, run_network, value_table
from targeting.sim.world import WorldConfig, simulate_world


@pytest.fixture(scope="module")
def world():
    return simulate_world(WorldConfig(seed=5, start=date(2025, 1, 1), days=50, containers_per_day=250, illicit_rate=0.008))


def test_network_replay_is_deterministic_and_the_total_row_sums_the_units(world):
    first = run_network(world.manifests, world.oracle, DEFAULT_UNITS, share=True, seed=5)
    again = run_network(world.manifests, world.oracle, DEFAULT_UNITS, share=True, seed=5)
    assert [(r.inspections, r.seizures) for r in first] == [(r.inspections, r.seizures) for r in again]
    rows = value_table(run_network(world.manifests, world.oracle, DEFAULT_UNITS, share=False, seed=5), first)
    total = rows[-1]
    assert total["unit"] == "NETWORK" and total["seizures_with"] == sum(r["seizures_with"] for r in rows[:-1])
    assert all(0 <= r["norm_precision_with"] <= 1 and 0 <= r["norm_precision_without"] <= 1 for r in rows)


def test_seizures_never_exceed_the_illicit_containers_and_each_container_is_seized_once(world):
    results = run_network(world.manifests, world.oracle, DEFAULT_UNITS, share=True, seed=5)
    assert sum(r.seizures for r in results) <= int(world.oracle["illicit"].sum())
    assert all(r.seizures <= r.inspections and r.from_intelligence <= r.seizures for r in results)
