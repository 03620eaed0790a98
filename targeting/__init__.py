"""Targeting: the simulated world, the selection policy and its reasons, the engine, backtests, the command line."""

import os

# Set before LightGBM (OpenMP) is first loaded: spinning waiters starve other work on small hosts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
