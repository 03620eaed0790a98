"""The one definition of who is a candidate, per direction, at a port-day decision.

A port control unit targets three populations; each is a set of manifest rows
due at the port on the list date, as known at the decision time:

- ``IMPORT``: the port of discharge is the port and the ETA falls on the day;
- ``TRANSSHIPMENT``: the port is one of the manifest's transshipment ports
  (and not its port of discharge) and the *estimated* call there falls on the day;
- ``EXPORT``: the port of loading is the port and the ETD falls on the day.

Time semantics (the same for every direction and every caller):

- the decision time of the list for day ``D`` is ``D`` 00:00 UTC
  (:func:`decision_time`); nothing at or after it is used;
- a manifest is known from ``filed_at``: a candidate has ``filed_at < decision_at``;
- an event is known from ``event_time``: only events with
  ``event_time < decision_at`` are read.

**Shut out at loading.** A container that left the terminal of its port of
loading by road before being loaded (an export seizure, a rolled or cancelled
booking) did not sail: the manifest line is not a candidate in any direction
from the moment that is known. It is recognised from the events alone: among
the container's events at the port of loading in the window
``[etd - 45 days, etd + 2 days)`` known before the decision time there is a
``GATE_IN`` and the last one is a ``GATE_OUT`` (a container that was only
discharged there and left, say an earlier import, is not shut out; one that
was gated in and loaded is not either). With no events, nothing is shut out.

The transshipment call time is an **estimate from the manifest alone** (no
schedule or AIS data): ``etd + (eta - etd) x s`` where ``s`` is the share of
the declared route's great-circle distance (port of loading -> transshipment
ports -> port of discharge, coordinates from
:func:`features.data.reference.port_coordinates_frame`) travelled up to the
first call at the port. When a port on the route has no coordinates (or the
route has zero length) ``s`` is the share of legs travelled instead. These are
the semantics of the serving path before this module existed
(``targeting.policy.candidates_for``).

:func:`candidates` answers one port-day; :func:`candidates_for_days` answers
every port-day at once (training rows, backtests) and agrees with it row for
row. Nothing is collected.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from enum import Enum

import polars as pl

from features.data.contracts import UTC_DATETIME
from features.data.reference import haversine_km, port_coordinates_frame

DECISION_COLUMN = "decision_at"
DIRECTION_COLUMN = "direction"
PORT_COLUMN = "port"
SHUT_OUT_WINDOW = timedelta(days=2)
"""How long after the ETD a gate-out at the port of loading still belongs to the voyage."""
SHUT_OUT_LOOKBACK = timedelta(days=45)
"""How long before the ETD the container's events at the port of loading belong to the voyage (long terminal dwells included)."""


class Direction(str, Enum):
    """The population a list targets at its port."""

    IMPORT = "IMPORT"
    TRANSSHIPMENT = "TRANSSHIPMENT"
    EXPORT = "EXPORT"

    @classmethod
    def parse(cls, value: str | Direction) -> Direction:
        """``Direction`` from its name; ``ValueError`` naming the allowed values otherwise."""
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(d.value for d in cls)
            raise ValueError(f"direction must be one of {allowed}, got {value!r}") from None


def decision_time(day: date) -> datetime:
    """The decision time of the list for ``day``: ``day`` 00:00 UTC (aware).

    Raises ``ValueError`` for a ``datetime`` (a list date is a date, not an instant).
    """
    if isinstance(day, datetime) or not isinstance(day, date):
        raise ValueError(f"day must be a datetime.date, got {day!r}")
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- call times


def _transshipment_calls(rows: pl.LazyFrame, port: str | None) -> pl.LazyFrame:
    """``__row``, ``port`` and ``__call_at``: one row per manifest row and transshipment port called.

    Only the first call at each port counts; a transshipment port equal to the
    port of discharge is not a transshipment call. ``port`` restricts to one port.
    """
    coords = port_coordinates_frame().lazy().select(
        pl.col("locode").alias("__port"), pl.col("latitude").alias("__lat"), pl.col("longitude").alias("__lon")
    )
    legs = (
        rows.select(
            "__row",
            "etd",
            "eta",
            "port_of_discharge",
            pl.concat_list(pl.col("port_of_loading"), pl.col("transshipment_ports").fill_null([]), pl.col("port_of_discharge")).alias("__port"),
        )
        .with_columns(pl.int_ranges(pl.col("__port").list.len()).alias("__pos"), pl.col("__port").list.len().alias("__len"))
        .explode(["__port", "__pos"])
        .join(coords, on="__port", how="left")
        .sort("__row", "__pos")
        .with_columns(
            haversine_km(
                pl.col("__lat").shift(1).over("__row"),
                pl.col("__lon").shift(1).over("__row"),
                pl.col("__lat"),
                pl.col("__lon"),
            ).alias("__leg")
        )
        .with_columns(pl.when(pl.col("__pos") == 0).then(pl.lit(0.0)).otherwise(pl.col("__leg")).alias("__leg"))
        .with_columns(
            pl.col("__leg").fill_null(0.0).cum_sum().over("__row").alias("__travelled"),
            pl.col("__leg").sum().over("__row").alias("__total"),
            pl.col("__leg").is_null().any().over("__row").alias("__unknown"),
        )
    )
    calls = legs.filter(
        (pl.col("__pos") > 0) & (pl.col("__pos") < pl.col("__len") - 1) & (pl.col("__port") != pl.col("port_of_discharge"))
    )
    if port is not None:
        calls = calls.filter(pl.col("__port") == port)
    calls = calls.group_by("__row", "__port").agg(pl.all().sort_by("__pos").first())
    by_distance = pl.col("__travelled") / pl.col("__total")
    by_legs = pl.col("__pos").cast(pl.Float64) / (pl.col("__len") - 1).cast(pl.Float64)
    share = pl.when(pl.col("__unknown") | (pl.col("__total") <= 0)).then(by_legs).otherwise(by_distance).clip(0.0, 1.0)
    etd_us = pl.col("etd").dt.epoch("us")
    transit_us = pl.col("eta").dt.epoch("us") - etd_us
    call_us = etd_us + (transit_us.cast(pl.Float64) * share).round().cast(pl.Int64)
    call_at = pl.from_epoch(call_us, time_unit="us").dt.replace_time_zone("UTC")
    return calls.select("__row", pl.col("__port").alias(PORT_COLUMN), call_at.alias("__call_at"))


def _calls(rows: pl.LazyFrame, direction: Direction, port: str | None) -> pl.LazyFrame:
    """``__row``, ``port`` and ``__call_at`` (the moment the row is due at ``port``) for ``direction``."""
    if direction is Direction.IMPORT:
        calls = rows.select("__row", pl.col("port_of_discharge").alias(PORT_COLUMN), pl.col("eta").alias("__call_at"))
    elif direction is Direction.EXPORT:
        calls = rows.select("__row", pl.col("port_of_loading").alias(PORT_COLUMN), pl.col("etd").alias("__call_at"))
    else:
        if port is not None:
            rows = rows.filter(pl.col("transshipment_ports").list.contains(port).fill_null(False))
        return _transshipment_calls(rows, port)
    return calls if port is None else calls.filter(pl.col(PORT_COLUMN) == port)


# --------------------------------------------------------------------------- shut out


def _shut_out(due: pl.LazyFrame, events: pl.LazyFrame) -> pl.LazyFrame:
    """``__row`` of the due rows whose container was shut out at loading, as known at their ``decision_at``."""
    containers = due.select("container_number").unique()
    events = events.join(containers, on="container_number", how="semi")  # only the due containers' events are held
    at_loading = due.select("__row", "container_number", "port_of_loading", "etd", DECISION_COLUMN).join(
        events.select(
            "container_number",
            pl.col("locode").alias("port_of_loading"),
            pl.col("event_time").cast(UTC_DATETIME),
            "event_type",
        ),
        on=["container_number", "port_of_loading"],
        how="inner",
    )
    known = at_loading.filter(
        (pl.col("event_time") < pl.col(DECISION_COLUMN))
        & (pl.col("event_time") >= pl.col("etd") - pl.lit(SHUT_OUT_LOOKBACK))
        & (pl.col("event_time") < pl.col("etd") + pl.lit(SHUT_OUT_WINDOW))
    )
    last = known.group_by("__row").agg(
        pl.col("event_type").sort_by("event_time", "event_type").last().alias("__last"),
        (pl.col("event_type") == "GATE_IN").any().alias("__gated_in"),
    )
    return last.filter((pl.col("__last") == "GATE_OUT") & pl.col("__gated_in")).select("__row")


# --------------------------------------------------------------------------- candidates


def _due(
    manifests: pl.LazyFrame,
    events: pl.LazyFrame | None,
    direction: Direction,
    port: str | None,
    window: tuple[datetime, datetime] | None,
) -> pl.LazyFrame:
    columns = [c for c in manifests.collect_schema().names() if c not in (DECISION_COLUMN, DIRECTION_COLUMN, PORT_COLUMN)]
    if window is not None:
        start, end = (pl.lit(t, dtype=UTC_DATETIME) for t in window)
        # every call (discharge, loading, a hub between them) is between etd and eta: rows whose voyage misses the window
        # cannot be due in it, and leaving them out before the row index lets a scan skip them (memory of the window, not the lake)
        # (min(etd, eta) < end and max(etd, eta) >= start, written as plain comparisons so that the scan skips row groups by their statistics)
        manifests = manifests.filter(((pl.col("etd") < end) | (pl.col("eta") < end)) & ((pl.col("etd") >= start) | (pl.col("eta") >= start)))
    rows = manifests.with_row_index("__row")
    calls = _calls(rows, direction, port).with_columns(pl.col("__call_at").dt.truncate("1d").alias(DECISION_COLUMN))
    if window is not None:
        calls = calls.filter((pl.col("__call_at") >= start) & (pl.col("__call_at") < end))
    due = rows.join(calls.drop("__call_at"), on="__row", how="inner").filter(pl.col("filed_at") < pl.col(DECISION_COLUMN))
    if events is not None:
        if window is not None:
            # the shut-out rule reads events from SHUT_OUT_LOOKBACK before a due row's etd to its decision time: bound them by the
            # earliest etd of the window's rows (one scan of two columns) so that only those weeks of events are read
            first = manifests.select(pl.min_horizontal("etd", "eta").min()).collect(engine="streaming").item()
            since = pl.lit(first - SHUT_OUT_LOOKBACK if first is not None else window[1], dtype=UTC_DATETIME)
            events = events.filter((pl.col("event_time").cast(UTC_DATETIME) >= since) & (pl.col("event_time").cast(UTC_DATETIME) < end))
        due = due.join(_shut_out(due, events), on="__row", how="anti")
    return due.sort("manifest_id", PORT_COLUMN, "__row").select(
        *columns,
        pl.col(DECISION_COLUMN).cast(UTC_DATETIME),
        pl.lit(direction.value).alias(DIRECTION_COLUMN),
        pl.col(PORT_COLUMN),
    )


def candidates(
    manifests: pl.LazyFrame,
    events: pl.LazyFrame | None,
    *,
    port: str,
    day: date,
    direction: Direction | str,
) -> pl.LazyFrame:
    """The manifest rows due at ``port`` on ``day`` in ``direction``, as known at ``day`` 00:00 UTC.

    Parameters
    ----------
    manifests
        Manifest rows (MANIFESTS contract; timestamps ``Datetime("us", "UTC")``),
        any snapshot: rows filed at or after the decision time are ignored.
    events
        Container events (EVENTS contract) or ``None``; read only for the
        shut-out rule (module docstring), only those before the decision time.
    port
        UN/LOCODE of the inspecting port.
    day
        The list date (a ``date``; ``ValueError`` for a ``datetime``).
    direction
        ``Direction`` (or its name).

    Returns
    -------
    pl.LazyFrame
        The manifest columns plus ``decision_at`` (``Datetime("us", "UTC")``,
        the same for every row), ``direction`` (the direction's name) and
        ``port`` (= ``port``), sorted by ``manifest_id``. One row per manifest
        row (a route calling twice at a hub counts its first call).
    """
    direction = Direction.parse(direction)
    start = decision_time(day)
    return _due(manifests, events, direction, port, (start, start + timedelta(days=1)))


def candidates_for_days(
    manifests: pl.LazyFrame,
    events: pl.LazyFrame | None,
    *,
    direction: Direction | str,
    ports: Iterable[str] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> pl.LazyFrame:
    """Every port-day's candidates in ``direction`` at once (training rows, backtests).

    Row for row the union of :func:`candidates` over every port and day: each
    row's ``decision_at`` is 00:00 UTC of the day it is due at its ``port``
    (both columns added), with the same known-before rules applied per row.

    Parameters
    ----------
    manifests, events
        As for :func:`candidates`.
    direction
        ``Direction`` (or its name).
    ports
        Restrict to these UN/LOCODEs (``None``: every port).
    start, end
        Restrict to list dates ``start <= day < end`` (either may be ``None``).

    Returns
    -------
    pl.LazyFrame
        The manifest columns plus ``decision_at``, ``direction`` and ``port``,
        sorted by ``manifest_id`` then ``port``.
    """
    direction = Direction.parse(direction)
    low = decision_time(start) if start is not None else datetime(1, 1, 1, tzinfo=timezone.utc)
    high = decision_time(end) if end is not None else datetime(9999, 12, 31, tzinfo=timezone.utc)
    due = _due(manifests, events, direction, None, (low, high))
    if ports is not None:
        wanted = sorted(set(ports))
        due = due.filter(pl.col(PORT_COLUMN).is_in(wanted))
    return due
