"""The one injectable clock of the engine: every "now" in source and tests comes from here.

Code that needs the current time calls :func:`now` (or takes a :class:`Clock`
argument and defaults to :func:`current`). Nothing else reads the wall clock,
so a test, a replay or a whole process can run at any date:

- in-process: ``with use_clock(FixedClock(at)): ...`` (or :func:`set_clock`);
- a whole process (a service started by a test, a command line run):
  ``CCP_CLOCK_AT=2025-08-28T09:00:00+00:00`` starts that process's clock at
  that instant; it then runs forward at the real pace (monotonic), so the
  order of events and durations stay real.

All instants are timezone-aware UTC ``datetime`` values.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Iterator
from typing import Protocol

CLOCK_ENV = "CCP_CLOCK_AT"
UTC = dt.timezone.utc


class Clock(Protocol):
    """Anything with ``now() -> datetime`` (aware, UTC)."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The machine's wall clock, in UTC."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class FixedClock:
    """A clock that stands still at ``at`` until moved with :meth:`advance` or :meth:`set`.

    Examples
    --------
    >>> c = FixedClock(dt.datetime(2025, 8, 28, 9, tzinfo=UTC))
    >>> c.advance(minutes=5).isoformat()
    '2025-08-28T09:05:00+00:00'
    """

    def __init__(self, at: dt.datetime) -> None:
        self._at = _aware_utc(at)

    def now(self) -> dt.datetime:
        return self._at

    def set(self, at: dt.datetime) -> None:
        self._at = _aware_utc(at)

    def advance(self, **delta: float) -> dt.datetime:
        self._at = self._at + dt.timedelta(**delta)
        return self._at


class AnchoredClock:
    """A clock that reads ``anchor`` at construction and then runs at the real (monotonic) pace."""

    def __init__(self, anchor: dt.datetime) -> None:
        self._anchor = _aware_utc(anchor)
        self._started = time.monotonic()

    def now(self) -> dt.datetime:
        return self._anchor + dt.timedelta(seconds=time.monotonic() - self._started)


def parse_clock_setting(value: str) -> AnchoredClock:
    """Build the clock that ``CCP_CLOCK_AT`` asks for.

    Raises
    ------
    ValueError
        If ``value`` is not an ISO 8601 timestamp with a UTC offset.
    """
    try:
        anchor = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"{CLOCK_ENV}: {value!r} is not an ISO 8601 timestamp") from exc
    if anchor.tzinfo is None:
        raise ValueError(f"{CLOCK_ENV}: {value!r} has no UTC offset (write e.g. 2025-08-28T09:00:00+00:00)")
    return AnchoredClock(anchor)


def _clock_from_environment() -> Clock:
    value = os.environ.get(CLOCK_ENV, "").strip()
    return parse_clock_setting(value) if value else SystemClock()


def _aware_utc(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError(f"clock instant {at.isoformat()} has no time zone")
    return at.astimezone(UTC)


_current: Clock = _clock_from_environment()


def current() -> Clock:
    """The process's clock (from ``CCP_CLOCK_AT`` at import, else the wall clock, unless replaced)."""
    return _current


def set_clock(clock: Clock) -> Clock:
    """Replace the process's clock; returns the previous one."""
    global _current
    previous, _current = _current, clock
    return previous


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Use ``clock`` as the process's clock inside the block."""
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)


def now() -> dt.datetime:
    """The current instant of the process's clock (aware, UTC)."""
    return _current.now()


def today() -> dt.date:
    """The current UTC date of the process's clock."""
    return now().date()
