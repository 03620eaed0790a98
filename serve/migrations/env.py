"""Alembic environment of the operational store.

Run through :func:`serve.db.upgrade_to_head`, which passes an open connection
(or a URL) in ``config.attributes``; no ``alembic.ini`` is needed. Offline
(SQL script) mode is not supported: the SQLite pragmas and locks need a live
connection.
"""

from __future__ import annotations

from alembic import context

from serve.db import make_engine
from serve.tables import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run the migrations on the connection given by the caller, or on a new one."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations")
    engine = make_engine(url)
    try:
        with engine.connect() as new_connection:
            _run(new_connection)
            new_connection.commit()
    finally:
        engine.dispose()


def _run(connection) -> None:  # noqa: ANN001 - an SQLAlchemy Connection
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported; use serve.db.upgrade_to_head")
run_migrations_online()
