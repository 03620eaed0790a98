"""Failed authentications, aggregated per client address and UTC minute, kept off the write path.

A 401 costs an in-memory counter increment (:meth:`AuthFailureCounter.note`),
no database write and no thread hop. Every ``flush_seconds`` a background
thread hands the counts gathered so far to the group writer as **one**
operation: per (client, minute) it adds them to that row of
``auth_failure_counts`` and appends one ``auth.failure`` audit event carrying
the counts (``detail``: minute, missing, invalid). A flood of unauthenticated
requests therefore costs one row update and one audit event per client and
flush, whatever its rate.

A client address that fails more than ``free_per_second`` times within a
second gets each further 401 only after ``delay_seconds`` (a tarpit: the
server spends a timer on it, no CPU), which caps what a flood of
unauthenticated requests can cost the service; requests with valid keys from
the same address are never delayed.

Counts noted since the last flush are lost if the process is killed (at most
``flush_seconds`` of them); no client was ever promised they were stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from serve.audit import record_event
from serve.db import utcnow
from serve.tables import AuthFailureCount
from serve.writer import GroupWriter

logger = logging.getLogger("serve.auth")
MISSING = "missing"
INVALID = "invalid"
CLIENT_LEN = 64


@dataclass
class _Tally:
    missing: int = 0
    invalid: int = 0
    last_at: datetime = field(default_factory=utcnow)


class AuthFailureCounter:
    """Counts 401s per (client address, UTC minute) in memory and flushes them in one write.

    Parameters
    ----------
    writer
        The app's group writer (flushes go through it like every other write).
    flush_seconds
        Interval of the background flush; ``0`` disables the thread (call :meth:`flush` yourself).
    free_per_second, delay_seconds
        The tarpit (see the module).
    monotonic
        Time source of the tarpit's one-second windows (monotonic seconds; not a date).
    """

    def __init__(
        self,
        writer: GroupWriter,
        *,
        flush_seconds: float = 1.0,
        free_per_second: int = 20,
        delay_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._writer = writer
        self._free_per_second = free_per_second
        self._delay_seconds = delay_seconds
        self._monotonic = monotonic
        self._window: dict[str, tuple[int, int]] = {}  # client -> (second, failures in it)
        self._flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, datetime], _Tally] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def note(self, client: str | None, kind: str) -> float:
        """Count one failed authentication of ``client`` now (``kind``: ``missing`` or ``invalid`` credentials).

        Returns the seconds to wait before answering (0 unless the client is
        over ``free_per_second`` failures in this second).
        """
        now = utcnow()
        minute = now.replace(second=0, microsecond=0)
        client = (client or "unknown")[:CLIENT_LEN]
        key = (client, minute)
        second = int(self._monotonic())
        with self._lock:
            window_second, failures = self._window.get(client, (second, 0))
            failures = failures + 1 if window_second == second else 1
            if len(self._window) > 10_000 and client not in self._window:
                self._window.clear()  # bounded memory under address-spraying floods
            self._window[client] = (second, failures)
            tally = self._pending.get(key)
            if tally is None:
                tally = self._pending[key] = _Tally()
            if kind == MISSING:
                tally.missing += 1
            else:
                tally.invalid += 1
            tally.last_at = now
        self._ensure_thread()
        return self._delay_seconds if failures > self._free_per_second else 0.0

    def flush(self) -> int:
        """Write the counts gathered so far (one group-writer operation); returns how many rows it touched."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        try:
            self._writer.submit(lambda session: _store_tallies(session, pending))
        except Exception as exc:  # noqa: BLE001 - put the counts back; the next flush retries
            logger.warning("could not store authentication failure counts: %s", type(exc).__name__)
            with self._lock:
                for key, tally in pending.items():
                    merged = self._pending.setdefault(key, _Tally(last_at=tally.last_at))
                    merged.missing += tally.missing
                    merged.invalid += tally.invalid
            return 0
        return len(pending)

    def close(self) -> None:
        """Stop the background thread after a last flush."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush()

    def _ensure_thread(self) -> None:
        if self._thread is not None or self._flush_seconds <= 0:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ccp-auth-failures", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            self.flush()


def _store_tallies(session: Session, pending: dict[tuple[str, datetime], _Tally]) -> None:
    """Add each tally to its row (created when missing) and audit it as one ``auth.failure`` event."""
    for (client, minute), tally in sorted(pending.items(), key=lambda item: (item[0][1], item[0][0])):
        row = session.get(AuthFailureCount, (client, minute))
        if row is None:
            session.add(AuthFailureCount(client=client, minute=minute, missing=tally.missing, invalid=tally.invalid, last_at=tally.last_at))
        else:
            row.missing += tally.missing
            row.invalid += tally.invalid
            row.last_at = max(row.last_at, tally.last_at)
        session.flush()
        record_event(
            session,
            action="auth.failure",
            result="unauthenticated",
            status_code=401,
            object_type="client",
            object_id=client,
            detail={"minute": minute.isoformat(), MISSING: tally.missing, INVALID: tally.invalid},
        )
