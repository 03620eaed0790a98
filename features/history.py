"""The history a feature row may look at, and columns derived from a manifest.

:class:`History` bundles the lake tables as lazy frames. Feature functions
restrict every table to what was available strictly before each candidate's
``decision_at``: manifests by ``filed_at``, events by ``event_time``, outcomes
by ``inspected_at``, alerts by their validity window, pre-export notifications
by ``notified_at`` (:meth:`History.notifications_before`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import polars as pl

from features.candidates import DECISION_COLUMN
from features.data.contracts import ALERTS, CONTAINER_EVENTS, INSPECTION_OUTCOMES, MANIFESTS, PRE_EXPORT_NOTIFICATIONS, UTC_DATETIME
from features.hierarchy import hierarchy_columns
ROUTE_SEPARATOR = ">"


@dataclass(frozen=True)
class History:
    """Lake tables as lazy frames (contract schemas).

    ``notifications`` (PRE_EXPORT_NOTIFICATIONS, precursor controls) is optional: ``None`` means none
    are known (a lake without the table, or a caller that does not use them).
    """

    manifests: pl.LazyFrame
    events: pl.LazyFrame
    outcomes: pl.LazyFrame
    alerts: pl.LazyFrame
    notifications: pl.LazyFrame | None = None

    @classmethod
    def from_lake(cls, lake, *, as_of: int | None = None) -> "History":
        """The lake's committed tables (optionally as of log sequence ``as_of``)."""
        return cls(
            manifests=lake.scan("manifests", as_of=as_of),
            events=lake.scan("events", as_of=as_of),
            outcomes=lake.scan("outcomes", as_of=as_of),
            alerts=lake.scan("alerts", as_of=as_of),
            notifications=lake.scan("pre_export_notifications", as_of=as_of),
        )

    @classmethod
    def from_frames(
        cls,
        manifests: pl.DataFrame | pl.LazyFrame,
        events: pl.DataFrame | pl.LazyFrame | None = None,
        outcomes: pl.DataFrame | pl.LazyFrame | None = None,
        alerts: pl.DataFrame | pl.LazyFrame | None = None,
        notifications: pl.DataFrame | pl.LazyFrame | None = None,
    ) -> "History":
        """History from in-memory frames; missing tables are empty."""

        def lazy(frame, schema) -> pl.LazyFrame:
            if frame is None:
                return pl.LazyFrame(schema=schema)
            return frame.lazy()

        return cls(
            manifests=lazy(manifests, MANIFESTS.schema),
            events=lazy(events, CONTAINER_EVENTS.schema),
            outcomes=lazy(outcomes, INSPECTION_OUTCOMES.schema),
            alerts=lazy(alerts, ALERTS.schema),
            notifications=lazy(notifications, PRE_EXPORT_NOTIFICATIONS.schema),
        )

    def with_alerts(self, extra: pl.DataFrame | pl.LazyFrame | None) -> "History":
        """This history plus ``extra`` alert rows (e.g. watchlist entries created through the service)."""
        if extra is None:
            return self
        combined = pl.concat([self.alerts, extra.lazy().select(ALERTS.column_names).cast(ALERTS.schema)]).unique(
            "alert_id", keep="last", maintain_order=True
        )
        return replace(self, alerts=combined)

    def notifications_before(self, at: datetime) -> pl.DataFrame:
        """Pre-export notifications known strictly before ``at`` (``notified_at < at``), collected.

        A notification issued (or only ingested with a ``notified_at``) at or after ``at`` is not known to a
        decision made at ``at``. No table, or an empty one, gives an empty frame with the contract schema.
        """
        if self.notifications is None:
            return pl.DataFrame(schema=PRE_EXPORT_NOTIFICATIONS.schema)
        known = self.notifications.select(PRE_EXPORT_NOTIFICATIONS.column_names).cast(PRE_EXPORT_NOTIFICATIONS.schema)
        return known.filter(pl.col("notified_at") < as_utc(at)).collect()


def origin_country() -> pl.Expr:
    """Country of the port of loading (first two letters of its UN/LOCODE)."""
    return pl.col("port_of_loading").str.slice(0, 2).alias("origin_country")


def hs_chapter() -> pl.Expr:
    """HS chapter: first two digits of the HS code."""
    return pl.col("hs_code").str.slice(0, 2).alias("hs_chapter")


def hs_heading() -> pl.Expr:
    """HS heading: first four digits of the HS code."""
    return pl.col("hs_code").str.slice(0, 4).alias("hs_heading")


def route_signature() -> pl.Expr:
    """The sailing route as text: loading port, transshipment ports in order, discharge port."""
    return (
        pl.concat_list(pl.col("port_of_loading"), pl.col("transshipment_ports").fill_null([]), pl.col("port_of_discharge"))
        .list.join(ROUTE_SEPARATOR)
        .alias("route_signature")
    )


def last_hub() -> pl.Expr:
    """Last transshipment port before discharge, or ``DIRECT``."""
    return pl.col("transshipment_ports").list.last().fill_null("DIRECT").alias("last_hub")


def with_derived_columns(manifests: pl.LazyFrame) -> pl.LazyFrame:
    """Add the derived manifest columns used as entity keys and categoricals (hierarchy levels: :mod:`features.hierarchy`)."""
    return manifests.with_columns(origin_country(), hs_chapter(), hs_heading(), route_signature(), last_hub(), *hierarchy_columns())


def as_utc(value: datetime) -> datetime:
    """Reject naive datetimes; convert aware ones to UTC."""
    if value.tzinfo is None:
        raise ValueError("decision times must be timezone-aware")
    from datetime import UTC

    return value.astimezone(UTC)


def days(n: int) -> timedelta:
    return timedelta(days=n)


def ensure_decision_column(candidates: pl.LazyFrame) -> pl.LazyFrame:
    """Cast ``decision_at`` to UTC microseconds; raise if it is missing."""
    if DECISION_COLUMN not in candidates.collect_schema().names():
        raise ValueError("candidates need a 'decision_at' column (UTC) stating when each row is scored")
    return candidates.with_columns(pl.col(DECISION_COLUMN).cast(UTC_DATETIME))
