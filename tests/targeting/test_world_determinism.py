"""The same seed gives the same simulated world in any process (no per-process hash randomisation leaks in)."""

from __future__ import annotations

import os
import subprocess
import sys

DIGEST = """
import hashlib
from datetime import date
from targeting.sim.world import WorldConfig, simulate_world
w = simulate_world(WorldConfig(seed=4, start=date(2025, 1, 1), days=6, containers_per_day=80))
h = hashlib.sha256()
for name in ("manifests", "events", "outcomes", "alerts", "oracle"):
    h.update(getattr(w, name).hash_rows(seed=0).to_numpy().tobytes())
print(h.hexdigest())
"""


def world_digest(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run([sys.executable, "-c", DIGEST], env=env, capture_output=True, text=True, timeout=300, check=True)
    return done.stdout.strip()


def test_two_processes_with_different_string_hashing_generate_the_same_world() -> None:
    first, second = world_digest("1"), world_digest("2")
    assert len(first) == 64 and first == second
