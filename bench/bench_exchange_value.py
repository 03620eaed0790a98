"""What sharing is worth: seizures and normalised precision per unit of a simulated network, without and with exchange.

Run: ``python bench/bench_exchange_value.py`` (same as ``targeting exchange value``; about 25 s on 2 cores).
"""

from __future__ import annotations

from targeting.cli import _register, app

if __name__ == "__main__":
    _register()
    app(["exchange", "value"])
