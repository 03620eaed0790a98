"""Alembic migrations of the operational store (run them with :func:`serve.db.upgrade_to_head`)."""
