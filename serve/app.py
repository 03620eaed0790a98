"""The FastAPI application: :func:`create_app` wires settings, store, engine, middleware, routes and error handlers.

``uvicorn --factory serve.app:app_from_env`` serves it with settings from the
environment (this is what ``targeting serve`` does).
"""

from __future__ import annotations

import gc
import logging
import sys

from fastapi import FastAPI

from sqlalchemy import select

from serve.audit import record_event
from serve.authfailures import AuthFailureCounter
from serve.db import Database, upgrade_to_head
from serve.deps import public_path_matcher, ungated_routes
from serve.docs import install_docs
from serve.openapi import install_openapi
from serve.errors import install_error_handlers
from serve.exchange_sender import exchange_lifespan, install_exchange
from serve.fastlane import FastLaneMiddleware, open_lanes
from serve.middleware import BodySizeLimitMiddleware, CredentialsGuardMiddleware, RequestIdMiddleware
from serve.routes import ROUTERS
from serve.runtime import EngineFactory, EngineHolder, load_engine_factory
from serve.security import RateLimit, RateLimiter, Role
from serve.settings import Settings, harden_process_environment
from serve.web import install_web
from serve.store.keys import PrincipalCache
from serve.store.lists import ServedListCache
from serve.seals import seal_detail
from serve.store.rulesets import ensure_seeded, seeded_profiles
from serve.tables import AuditEvent
from serve.writer import GroupWriter
from targeting.engine import TargetingEngine

logger = logging.getLogger("serve")
SYSTEM_ACTOR = "system"


def open_store(settings: Settings, *, migrate: bool = True) -> Database:
    """Open the store, migrate it to the newest schema, check (or create) its audit key, seed rule-set version 1 (idempotent).

    Raises
    ------
    serve.audit_key.AuditKeyError
        When the audit chain has rows but its key file is missing or unusable.
    """
    if migrate:
        upgrade_to_head(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    database = Database.from_url(
        settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms, audit_key_file=settings.audit_key_file
    )
    if migrate:
        with database.read() as session:
            chain_has_rows = session.scalar(select(AuditEvent.seq).limit(1)) is not None
        database.audit_key.ensure(chain_has_rows=chain_has_rows)  # refuses to start without the key of an existing chain
        with database.write() as session:
            seeded = ensure_seeded(session, actor=SYSTEM_ACTOR)
            if seeded is not None:
                record_event(
                    session,
                    action="ruleset.seed",
                    actor=SYSTEM_ACTOR,
                    object_type="ruleset_version",
                    object_id=str(seeded.version),
                    detail={"ruleset_hash": seeded.ruleset_hash, **seal_detail(seeded, *seeded_profiles(session, seeded))},
                )
    return database


def rate_limiter_from_settings(settings: Settings) -> RateLimiter:
    """The per-key rate limiter of ``settings`` (role limits, key overrides, bucket of ``rate_limit_burst_seconds``)."""

    def limit(per_second: float) -> RateLimit:
        return RateLimit(per_second=per_second, burst=max(1.0, per_second * settings.rate_limit_burst_seconds))

    return RateLimiter(
        {Role(role): limit(rate) for role, rate in settings.rate_limits.items()},
        {key_id: limit(rate) for key_id, rate in settings.key_rate_limits.items()},
    )


def create_app(
    settings: Settings,
    engine: TargetingEngine | None = None,
    engine_factory: EngineFactory | None = None,
    *,
    migrate: bool = True,
) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    settings
        Validated settings (unsafe configurations were refused when they were created).
    engine
        The targeting engine to serve. When ``None``, ``engine_factory`` (or the
        ``CCP_ENGINE_FACTORY`` setting) is called once with ``settings``; if
        that fails or there is none, the service runs without an engine: list,
        risk and model routes answer 503 and ``/readyz`` is 503 until
        ``POST /v1/models/reload`` manages to create one.
    engine_factory
        ``Callable[[Settings], TargetingEngine]``.
    migrate
        Migrate and seed the store at start-up (idempotent).

    Returns
    -------
    FastAPI
        The app. Its ``state`` holds ``settings``, ``database``, ``engine_holder``,
        ``audit_writer`` (group-committed audit events of reads),
        ``list_bodies`` (verified response bodies of stored lists) and
        ``principals`` (recently verified API keys).

    Raises
    ------
    RuntimeError
        When a route has no authorization rule (deny by default).
    """
    harden_process_environment()
    if engine is None and engine_factory is None and settings.engine_factory:
        engine_factory = load_engine_factory(settings.engine_factory)
    database = open_store(settings, migrate=migrate)
    holder = EngineHolder(settings, engine, engine_factory)
    if engine is None:
        holder.try_create()

    app = FastAPI(
        title="ccp-targeting",
        version="0.1.0",
        summary="Container risk targeting for port control units.",
        lifespan=exchange_lifespan,
        docs_url=None,  # Swagger UI and ReDoc come from serve.docs: local assets, no CDN
        redoc_url=None,
        # FastAPI's native OpenTelemetry is off: the service exports no traces or metrics, and checking the global
        # providers costs every request a few percent of its CPU time (bench/bench_writes.py).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.database = database
    app.state.engine_holder = holder
    app.state.writer = GroupWriter(database, max_batch=settings.write_batch_max)
    app.state.audit_writer = app.state.writer  # reads' audit events share the writes' group commits
    app.state.auth_failures = AuthFailureCounter(
        app.state.writer,
        flush_seconds=settings.auth_failure_flush_seconds,
        free_per_second=settings.auth_failure_free_per_second,
        delay_seconds=settings.auth_failure_delay_seconds,
    )
    app.state.rate_limiter = rate_limiter_from_settings(settings)
    app.state.list_bodies = ServedListCache()
    app.state.principals = PrincipalCache(settings.key_cache_seconds)
    install_exchange(app, settings, database)  # intelligence exchange: network, outbox worker (serve/exchange_sender.py)
    for router in ROUTERS:
        app.include_router(router)
    install_error_handlers(app)
    install_web(app)  # the pages (serve/web): same process, same authorization rules
    install_docs(app)
    install_openapi(app, settings)
    app.state.fast_lanes = open_lanes(app)  # every route is registered now
    app.add_middleware(FastLaneMiddleware, service=app)  # added first: innermost, inside the request id, body limit and early 401
    app.add_middleware(CredentialsGuardMiddleware, note_failure=app.state.auth_failures.note, is_public=public_path_matcher(app))
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)  # 413 comes before 401
    app.add_middleware(RequestIdMiddleware)  # added last: outermost, so even a 413 carries the request id

    ungated = ungated_routes(app)
    if ungated:
        raise RuntimeError(f"routes without exactly one authorization rule: {', '.join(ungated)}")
    return app


def freeze_startup_objects() -> None:
    """Move everything built so far (libraries, model, app: ~400,000 objects) out of the garbage collector's reach.

    Call once in the serving process when the app is built: otherwise every
    full collection scans them all and stalls every request in flight for
    200-300 ms (:func:`gc.freeze`).
    """
    gc.collect()
    gc.freeze()


def prepare_serving_process(settings: Settings) -> None:
    """Tune the process that serves an app just built: start-up objects frozen, the thread switch interval of ``settings``.

    Both ``uvicorn --factory serve.app:app_from_env`` and ``targeting serve`` call it.
    """
    freeze_startup_objects()
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from ``CCP_*`` environment variables (process prepared for serving)."""
    settings = Settings()
    app = create_app(settings)
    prepare_serving_process(settings)
    return app
