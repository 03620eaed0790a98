"""The service's write path: one writer thread group-commits every request's writes.

Requests do not open write transactions themselves. They hand a *write
operation* (a function of a :class:`~sqlalchemy.orm.Session`) to the process's
:class:`GroupWriter` and wait for its result. The writer thread takes the first
queued operation, drains whatever else is queued (up to ``max_batch``), and
applies the batch in **one** write unit of work (:meth:`serve.db.Database.write`:
the store's write lock, ``BEGIN IMMEDIATE`` on SQLite, the advisory lock on
PostgreSQL). The operations run in arrival order, back to back; if one of them
raises, the transaction is rolled back and the batch is run again with each
operation inside its own savepoint (so failures cost a retry, and the common
case two statements fewer per operation). So:

* audit events recorded by the operations through :func:`audit_event` are
  buffered per operation and appended to the hash chain, in operation order,
  at the end of the batch inside the same transaction (one chain-head read and
  one insert for the batch; the chain stays linear); an operation that fails
  leaves no event;
* rows inserted through :func:`insert_unless_taken` are, on the first run,
  assumed to be accepted and inserted at the end of the batch with one
  ``executemany`` per table; when a unique constraint refuses one of them, the
  batch is rolled back and run again with savepoints, where each insert
  happens at once (``INSERT ... ON CONFLICT DO NOTHING``) and its operation
  learns whether it was refused;
* an operation that raises is rolled back alone (its savepoint, on the second
  run) and its caller gets the exception; the other operations of the batch
  still commit (operations must therefore be safe to run twice: they only
  act through the session, whose first run was rolled back);
* the batch commits once (one fsync with SQLite ``synchronous=FULL``), and only
  then does any caller get its result: an acknowledged write is durable. When
  the commit itself fails, every caller of the batch gets that exception (no
  write of the batch is acknowledged).

Several processes (uvicorn workers) each run their own writer; the store's
write lock serialises their batches.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serve.audit import record_event, record_events
from serve.db import Database, utcnow

logger = logging.getLogger("serve.writer")
T = TypeVar("T")
WriteOperation = Callable[[Session], T]
"""A write: called with the batch's session inside a savepoint; its return value is handed to the caller."""


AUDIT_BUFFER = "ccp.audit_buffer"
"""Key of ``session.info`` holding the audit events of the running operation (batch sessions only)."""


def audit_event(session: Session, **fields: Any) -> None:
    """Record an audit event (keyword arguments of :func:`serve.audit.record_event`) in ``session``.

    In a batch of the :class:`GroupWriter` the event is buffered and appended
    with the batch's events when the operation succeeded (same transaction);
    in any other write unit of work it is appended at once. The event time is
    taken now unless ``at`` is given.
    """
    buffer = session.info.get(AUDIT_BUFFER)
    if buffer is None:
        record_event(session, **fields)
        return
    fields.setdefault("at", utcnow())
    buffer.append(fields)


INSERT_BUFFER = "ccp.insert_buffer"
"""Key of ``session.info`` holding ``{table: [row values]}`` inserted at the end of an optimistic batch."""


def insert_unless_taken(session: Session, table: Table, values: dict[str, Any]) -> bool:
    """Insert the row ``values`` into ``table`` unless a unique constraint refuses it; whether it was inserted.

    In the first (optimistic) run of a :class:`GroupWriter` batch the row is
    buffered and ``True`` returned: the batch inserts the buffered rows of
    each table with one ``executemany`` at its end, and if any is refused the
    whole batch is rolled back and run again with savepoints, where this
    inserts at once. Elsewhere it is one ``INSERT ... ON CONFLICT DO NOTHING
    RETURNING`` (SQLite and PostgreSQL). A row inserted in an optimistic batch
    is not visible to the batch's later statements, and constraints other than
    unique ones (foreign keys, checks) fail the operation either way.
    """
    buffer = session.info.get(INSERT_BUFFER)
    if buffer is not None:
        buffer.setdefault(table, []).append(values)
        return True
    return session.execute(_insert_unless_taken_statement(session.get_bind().dialect.name, table), values).first() is not None


_INSERTS_UNLESS_TAKEN: dict[tuple[str, Table], Any] = {}


def _insert_unless_taken_statement(dialect: str, table: Table) -> Any:
    """``INSERT INTO table ... ON CONFLICT DO NOTHING RETURNING <first primary key column>`` (built once per dialect and table)."""
    statement = _INSERTS_UNLESS_TAKEN.get((dialect, table))
    if statement is None:
        insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        statement = insert(table).on_conflict_do_nothing().returning(table.primary_key.columns[0])
        _INSERTS_UNLESS_TAKEN[(dialect, table)] = statement
    return statement


def _insert_buffered(session: Session, buffer: dict[Table, list[dict[str, Any]]]) -> None:
    """Insert the rows an optimistic batch buffered (one ``executemany`` per table); a refused row fails the batch's run."""
    for table, rows in buffer.items():
        try:
            session.execute(table.insert(), rows)
        except IntegrityError as exc:
            raise _OperationFailed from exc


class WriterClosedError(RuntimeError):
    """The writer was closed; no more operations are accepted."""


class GroupWriter:
    """Group-commits the write operations of concurrent requests (see the module).

    Parameters
    ----------
    database
        The store.
    max_batch
        Most operations applied in one transaction.

    Notes
    -----
    Thread-safe. The writer thread starts on the first :meth:`submit` and is a
    daemon thread: a killed process loses only operations that were never
    acknowledged.
    """

    def __init__(self, database: Database, *, max_batch: int = 256) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._database = database
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[WriteOperation[Any], Future[Any] | _LoopWaiter] | None] = queue.SimpleQueue()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0
        """Transactions committed or attempted so far (for tests and benchmarks)."""
        self.operations = 0
        """Operations applied so far."""

    @property
    def database(self) -> Database:
        """The store the batches are written to."""
        return self._database

    def submit_async(self, operation: WriteOperation[T]) -> Future[T]:
        """Queue ``operation``; the future resolves after its batch committed (or with its exception)."""
        if self._closed:
            raise WriterClosedError("the writer is closed")
        self._ensure_thread()
        future: Future[T] = Future()
        self._queue.put((operation, future))
        return future

    def submit(self, operation: WriteOperation[T]) -> T:
        """Apply ``operation`` in the next batch; return its result once the batch committed (blocks).

        Raises whatever the operation raised (only its own savepoint was rolled
        back) or what the batch's commit raised (e.g. SQLAlchemy
        ``OperationalError`` when the store is locked or down: a 503).
        """
        return self.submit_async(operation).result()

    async def run(self, operation: WriteOperation[T]) -> T:
        """:meth:`submit` for coroutines: awaits the batch's commit without holding a thread.

        The caller waits on a plain asyncio future of its own event loop; the
        writer settles all of a batch's futures of one loop with a single
        ``call_soon_threadsafe`` (one wake-up of the loop per batch, not one
        per operation).
        """
        if self._closed:
            raise WriterClosedError("the writer is closed")
        self._ensure_thread()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        self._queue.put((operation, _LoopWaiter(loop, waiter)))
        return await waiter

    async def record_async(self, **fields: Any) -> None:
        """:meth:`record` for coroutines."""
        await self.run(lambda session: audit_event(session, **fields))

    def record(self, **fields: Any) -> None:
        """Append one audit event (the keyword arguments of :func:`serve.audit.record_event`); blocks until durable.

        The interface of :class:`serve.audit.AuditWriter`, so reads' audit
        events share the batches of the writes.
        """
        self.submit(lambda session: audit_event(session, **fields))

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting operations, apply those already queued, and stop the thread."""
        self._closed = True
        with self._start_lock:
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    # ------------------------------------------------------------------ the writer thread

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ccp-group-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._apply(batch)
            if stop:
                return

    def _apply(self, batch: list[tuple[WriteOperation[Any], Future[Any] | _LoopWaiter]]) -> None:
        operations = [operation for operation, _ in batch]
        try:
            try:
                outcomes = self._commit(operations, isolated=False)  # the common case: no operation fails
            except _OperationFailed:
                outcomes = self._commit(operations, isolated=True)  # again, each operation in its own savepoint
        except BaseException as exc:  # noqa: BLE001 - the commit failed: no write of the batch is acknowledged
            logger.warning("write batch of %d operations failed: %s", len(batch), type(exc).__name__)
            _settle([(waiter, False, exc) for _, waiter in batch])
            self.batches += 1
            return
        self.batches += 1
        self.operations += len(batch)
        _settle([(waiter, ok, value) for (_, waiter), (ok, value) in zip(batch, outcomes, strict=True)])

    def _commit(self, operations: list[WriteOperation[Any]], *, isolated: bool) -> list[tuple[bool, Any]]:
        """Run ``operations`` in one transaction and commit it; ``(ok, result or exception)`` per operation.

        Not ``isolated``: the operations run back to back (two statements fewer each), their
        :func:`insert_unless_taken` rows are inserted together at the end, and the first failure (or a
        refused row) raises :class:`_OperationFailed` (the transaction is rolled back: nothing was written).
        ``isolated``: each runs in its own savepoint, a failure is rolled back alone and reported.
        """
        outcomes: list[tuple[bool, Any]] = []
        with self._database.write() as session:
            events: list[dict[str, Any]] = []
            inserts: dict[Table, list[dict[str, Any]]] = {}
            if not isolated:
                session.info[INSERT_BUFFER] = inserts
            for operation in operations:
                buffer = session.info[AUDIT_BUFFER] = []
                if isolated:
                    ok, value = _run_in_savepoint(session, operation)
                else:
                    try:
                        ok, value = True, operation(session)
                    except Exception as exc:
                        raise _OperationFailed from exc
                if ok:
                    events.extend(buffer)
                outcomes.append((ok, value))
            del session.info[AUDIT_BUFFER]
            session.info.pop(INSERT_BUFFER, None)
            _insert_buffered(session, inserts)
            if events:
                record_events(session, events)
        return outcomes


class _LoopWaiter:
    """The asyncio future of a coroutine waiting in :meth:`GroupWriter.run`, with its event loop."""

    __slots__ = ("loop", "future")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
        self.loop, self.future = loop, future


def _settle(results: list[tuple[Future[Any] | _LoopWaiter, bool, Any]]) -> None:
    """Hand each waiter its ``(ok, result or exception)``: threads at once, coroutines with one call per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for waiter, ok, value in results:
        if isinstance(waiter, _LoopWaiter):
            by_loop.setdefault(waiter.loop, []).append((waiter.future, ok, value))
        elif ok:
            waiter.set_result(value)
        else:
            waiter.set_exception(value)
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_in_loop, settled)
        except RuntimeError:  # the loop was closed: nobody is waiting any more
            logger.warning("%d write results had no event loop to go to", len(settled))


def _settle_in_loop(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in settled:
        if future.done():  # the waiting request was cancelled (its write still committed)
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class _OperationFailed(Exception):
    """An operation of a batch run without savepoints failed: the batch is run again with them."""


def _run_in_savepoint(session: Session, operation: WriteOperation[Any]) -> tuple[bool, Any]:
    """``(True, result)`` or ``(False, exception)``; a failed operation's changes are rolled back alone."""
    try:
        with session.begin_nested():
            return True, operation(session)
    except Exception as exc:  # noqa: BLE001 - handed to the operation's caller
        return False, exc
