"""The targeting service and its operational store.

Layout
------
- :mod:`serve.app` -- ``create_app(settings, engine=None, engine_factory=None)``, ``open_store``, ``app_from_env``.
- :mod:`serve.settings` -- ``Settings`` (``CCP_*`` environment), refusing unsafe configurations.
- :mod:`serve.db` -- engine, write/read units of work (serialised writes), ``upgrade_to_head``.
- :mod:`serve.tables` -- ORM tables; :mod:`serve.migrations` -- Alembic migrations.
- :mod:`serve.security` -- roles, permissions, API keys; :mod:`serve.deps` -- FastAPI dependencies and ``require``.
- :mod:`serve.audit` -- hash-chained audit trail: ``record_event``, ``verify_chain``.
- :mod:`serve.store` -- keys, rule sets, watchlist, lists, outcomes (``export_outcomes``).
- :mod:`serve.schemas` / :mod:`serve.routes` -- one schema family and one router per resource.
- :mod:`serve.middleware`, :mod:`serve.errors`, :mod:`serve.runtime` -- ASGI middleware, error handlers, engine holder.
"""
