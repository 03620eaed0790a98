"""Fixtures of the exchange tests: every test runs on a clock anchored at :data:`exchange_helpers.NOW`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from features.clock import AnchoredClock, use_clock

for _helpers in (Path(__file__).parent, Path(__file__).parents[1] / "features"):  # exchange_helpers, ingest_samples
    if str(_helpers) not in sys.path:
        sys.path.insert(0, str(_helpers))

from exchange_helpers import NOW  # noqa: E402


@pytest.fixture(autouse=True)
def anchored_now() -> Iterator[AnchoredClock]:
    with use_clock(AnchoredClock(NOW)) as anchored:
        yield anchored
