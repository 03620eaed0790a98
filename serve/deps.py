"""Every FastAPI dependency of the service, as ``Annotated`` aliases.

Authorization has exactly one mechanism: a route declares the permission it
needs by taking a :func:`require` dependency (usually through one of the
``*Caller`` aliases below), or declares itself public with :data:`PublicDep`.
:func:`route_rules` finds that declaration on any route and
:func:`ungated_routes` lists routes with none, so deny-by-default is checked
when the app is built and by a test.

Authentication failures (401) are counted per client and minute (:mod:`serve.authfailures`); permission
denials (403) are audited; every key has a rate limit (429).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, WithJsonSchema
from starlette.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from serve.audit import AuditWriter
from serve.db import Database
from serve.middleware import request_id_of
from serve.runtime import EngineHolder
from serve.security import Permission, Principal, retry_after_header
from serve.settings import MAX_PAGE_SIZE_CEILING, Settings
from serve.store.keys import KeySealError, PrincipalCache, principal_for_key
from serve.store.lists import ServedListCache
from serve.validators import (
    ISO_DATE_PATTERN,
    ISO_DATETIME_PATTERN,
    LOCODE_PATTERN,
    normalize_locode,
    require_iso_date_text,
    require_iso_datetime_text,
)
from serve.writer import GroupWriter, audit_event

AUTHZ_ATTRIBUTE = "__ccp_authorization__"
PUBLIC = "public"
FRAMEWORK_PUBLIC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/docs/assets/{name}"})
"""Documentation routes (the OpenAPI description, Swagger UI, ReDoc and their assets); public, they show no data."""


# --------------------------------------------------------------------------- app state


# Dependencies that only read the app's state are ``async def``: FastAPI runs every plain ``def``
# dependency in its thread pool, one thread hop each, which costs more than the lookup itself.


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


async def get_database(request: Request) -> Database:
    """The app's store."""
    return request.app.state.database


async def get_engine_holder(request: Request) -> EngineHolder:
    """The app's engine holder (the engine itself may be absent)."""
    return request.app.state.engine_holder


async def get_audit_writer(request: Request) -> AuditWriter:
    """The app's group-committing writer of audit events (for requests whose only write is their audit event)."""
    return request.app.state.audit_writer


async def get_writer(request: Request) -> GroupWriter:
    """The app's group-committing writer: every write of a request goes through it (:mod:`serve.writer`)."""
    return request.app.state.writer


async def get_list_bodies(request: Request) -> ServedListCache:
    """The app's cache of verified response bodies of stored lists."""
    return request.app.state.list_bodies


async def get_principal_cache(request: Request) -> PrincipalCache:
    """The app's short-lived cache of verified API keys."""
    return request.app.state.principals


async def get_request_id(request: Request) -> str:
    """The id of this request (see :class:`serve.middleware.RequestIdMiddleware`)."""
    return request_id_of(request.scope) or ""


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
EngineHolderDep = Annotated[EngineHolder, Depends(get_engine_holder)]
AuditWriterDep = Annotated[AuditWriter, Depends(get_audit_writer)]
WriterDep = Annotated[GroupWriter, Depends(get_writer)]
ListBodiesDep = Annotated[ServedListCache, Depends(get_list_bodies)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
PrincipalCacheDep = Annotated[PrincipalCache, Depends(get_principal_cache)]

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer ccp_...`")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


# --------------------------------------------------------------------------- the caller


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of a request, with what audit events need."""

    principal: Principal
    request_id: str

    @property
    def key_id(self) -> str:
        return self.principal.key_id

    def can_access_port(self, port: str) -> bool:
        """Whether the caller may see or write ``port``'s data."""
        return self.principal.can_access_port(port)

    def audit(self, session: Session, *, action: str, **fields: Any) -> None:
        """Record an audit event by this caller in ``session`` (a write unit of work; buffered in a group-writer batch)."""
        audit_event(
            session,
            action=action,
            actor=self.principal.key_id,
            role=self.principal.role.value,
            request_id=self.request_id,
            **fields,
        )

    async def audit_async(self, writer: GroupWriter, *, action: str, **fields: Any) -> None:
        """Record an audit event of this caller through the group writer from a coroutine; returns once it is durable."""
        await writer.record_async(
            action=action, actor=self.principal.key_id, role=self.principal.role.value, request_id=self.request_id, **fields
        )

    def audit_read(self, writer: AuditWriter, *, action: str, **fields: Any) -> None:
        """Record an audit event of a read (no other write) through ``writer``; returns once it is durable."""
        writer.record(
            action=action,
            actor=self.principal.key_id,
            role=self.principal.role.value,
            request_id=self.request_id,
            **fields,
        )


def _route_path(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or request.url.path[:200]


def _audit_refusal(request: Request, database: Database, *, action: str, result: str, status: int, **fields: Any) -> None:
    """Audit a refused request through the app's group writer (``database`` is unused, kept for the signature)."""
    request.app.state.writer.record(
        action=action,
        request_id=request_id_of(request.scope),
        result=result,
        status_code=status,
        detail={"method": request.method, "path": _route_path(request)},
        **fields,
    )


def _principal_from_store(request: Request, key: str) -> Principal | None:
    """The key's principal from the store (its row checked against its seal); a row that fails is audited, and refused as unknown."""
    try:
        with request.app.state.database.read() as session:
            return principal_for_key(session, key)
    except KeySealError as exc:  # edited in the database: same 401 as an unknown key (no oracle), the audit names the key
        request.app.state.writer.record(
            action="auth.key_seal_mismatch", request_id=request_id_of(request.scope), result="error", status_code=401,
            actor=exc.key_id, object_type="api_key", object_id=exc.key_id,
            detail={"method": request.method, "path": _route_path(request), "problem": exc.problem},
        )
        return None


async def authenticate(request: Request, credentials: BearerDep) -> Caller:
    """The caller of a bearer API key; 401 when the key is missing, unknown or revoked; 429 above the key's rate limit.

    A key verified in the last ``CCP_KEY_CACHE_SECONDS`` is trusted without
    reading the store (no thread-pool hop either); store reads run in the
    thread pool. A refusal writes nothing: it is counted per client address
    and minute (:mod:`serve.authfailures`). A key over its rate limit
    (:class:`serve.security.RateLimiter`) gets 429 with ``Retry-After``.
    The app's store and key cache are taken from ``request.app.state`` rather
    than as dependencies: every sub-dependency costs FastAPI tens of
    microseconds per request, and this one runs on every request.
    """
    principal = None
    state = request.app.state
    if credentials is not None:
        principal = state.principals.get(credentials.credentials)
        if principal is None:
            principal = await run_in_threadpool(_principal_from_store, request, credentials.credentials)
            if principal is not None:
                state.principals.put(credentials.credentials, principal)
    if principal is None:
        client = request.client.host if request.client else None
        delay = request.app.state.auth_failures.note(client, "missing" if credentials is None else "invalid")
        if delay > 0:
            await asyncio.sleep(delay)  # tarpit for an address that keeps failing (serve.authfailures)
        raise HTTPException(status_code=401, detail="not authenticated", headers={"WWW-Authenticate": "Bearer"})
    wait = state.rate_limiter.acquire(principal)
    if wait > 0:
        raise HTTPException(
            status_code=429,
            detail="too many requests for this API key; retry later",
            headers={"Retry-After": retry_after_header(wait)},
        )
    return Caller(principal=principal, request_id=request_id_of(request.scope) or "")


_REQUIREMENTS: dict[Permission, Callable[..., Caller]] = {}


def require(permission: Permission) -> Callable[..., Caller]:
    """The dependency that authenticates the caller and demands ``permission`` (403, audited, otherwise).

    One dependency object exists per permission; it carries the permission
    in the attribute :data:`AUTHZ_ATTRIBUTE`, which :func:`route_rules` reads.
    """
    if permission in _REQUIREMENTS:
        return _REQUIREMENTS[permission]

    async def dependency(request: Request, credentials: BearerDep) -> Caller:
        # async: granted calls (nearly all) skip a thread-pool hop; a refusal's audit write runs in the pool.
        # authenticate is called, not declared as a sub-dependency: one dependency fewer for FastAPI to solve per request.
        caller = await authenticate(request, credentials)
        if not caller.principal.has(permission):
            await run_in_threadpool(
                _audit_refusal,
                request,
                request.app.state.database,
                action="auth.denied",
                result="denied",
                status=403,
                actor=caller.key_id,
                role=caller.principal.role.value,
                object_type="permission",
                object_id=permission.value,
            )
            raise HTTPException(status_code=403, detail="not permitted")
        return caller

    dependency.__name__ = f"require_{permission.name.lower()}"
    setattr(dependency, AUTHZ_ATTRIBUTE, permission)
    _REQUIREMENTS[permission] = dependency
    return dependency


async def public_route() -> None:
    """Marks a route as deliberately public (no authentication)."""


setattr(public_route, AUTHZ_ATTRIBUTE, PUBLIC)

PublicDep = Depends(public_route)
"""Use as ``dependencies=[PublicDep]`` on the few public routes."""

ListCreator = Annotated[Caller, Depends(require(Permission.LISTS_CREATE))]
ListReader = Annotated[Caller, Depends(require(Permission.LISTS_READ))]
RiskReader = Annotated[Caller, Depends(require(Permission.RISK_READ))]
OutcomeWriter = Annotated[Caller, Depends(require(Permission.OUTCOMES_CREATE))]
WatchlistReader = Annotated[Caller, Depends(require(Permission.WATCHLIST_READ))]
WatchlistWriter = Annotated[Caller, Depends(require(Permission.WATCHLIST_WRITE))]
RuleReader = Annotated[Caller, Depends(require(Permission.RULES_READ))]
RuleWriter = Annotated[Caller, Depends(require(Permission.RULES_WRITE))]
ModelReader = Annotated[Caller, Depends(require(Permission.MODELS_READ))]
ModelReloader = Annotated[Caller, Depends(require(Permission.MODELS_RELOAD))]
AuditReader = Annotated[Caller, Depends(require(Permission.AUDIT_READ))]


# --------------------------------------------------------------------------- pagination


@dataclass(frozen=True)
class Page:
    """Validated offset pagination."""

    limit: int
    offset: int


async def page_params(
    settings: SettingsDep,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE_SIZE_CEILING)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page:
    """``limit`` (default ``settings.default_page_size``, at most ``settings.max_page_size``) and ``offset``."""
    if limit is not None and limit > settings.max_page_size:
        raise HTTPException(status_code=422, detail=f"limit must be at most {settings.max_page_size}")
    return Page(limit=limit or settings.default_page_size, offset=offset)


PageDep = Annotated[Page, Depends(page_params)]

PortPath = Annotated[
    str,
    Path(pattern=LOCODE_PATTERN, description="UN/LOCODE of the port (2 letters + 3 of A-Z, 2-9), upper case."),
    AfterValidator(normalize_locode),
]
"""A UN/LOCODE path parameter (422 unless it matches :data:`serve.validators.LOCODE_PATTERN`)."""
IsoDateTimeQuery = Annotated[
    AwareDatetime,
    BeforeValidator(require_iso_datetime_text),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": ISO_DATETIME_PATTERN}),
]
"""A timezone-aware ISO 8601 date-time query value; numbers (``until=0.5``) are refused with 422."""
IsoDateQuery = Annotated[
    date, BeforeValidator(require_iso_date_text), WithJsonSchema({"type": "string", "format": "date", "pattern": ISO_DATE_PATTERN})
]
"""An ISO 8601 date query value (``YYYY-MM-DD``)."""


# --------------------------------------------------------------------------- route audit


def _dependency_calls(dependant: Any) -> list[Any]:
    calls = []
    for sub in getattr(dependant, "dependencies", ()):
        calls.append(sub.call)
        calls.extend(_dependency_calls(sub))
    return calls


def route_rules(route: Any) -> list[Any]:
    """The authorization rules (permissions or :data:`PUBLIC`) a route declares, directly or in sub-dependencies.

    ``route`` is a :class:`fastapi.routing.RouteContext` (see :func:`iter_app_routes`)
    or a plain route; router- and include-level dependencies count.
    """
    original = getattr(route, "original_route", route)
    if not isinstance(original, APIRoute):
        return [PUBLIC] if getattr(route, "path", None) in FRAMEWORK_PUBLIC_PATHS else []
    dependant = getattr(route, "dependant", None) or original.dependant
    rules = []
    for call in _dependency_calls(dependant):
        rule = getattr(call, AUTHZ_ATTRIBUTE, None)
        if rule is not None and rule not in rules:
            rules.append(rule)
    return rules


def iter_app_routes(app: FastAPI) -> list[Any]:
    """Every effective route of ``app``, included routers flattened (FastAPI's ``iter_route_contexts``)."""
    return list(iter_route_contexts(app.routes))


def describe_route(route: Any) -> str:
    """``"GET,HEAD /path"`` for messages."""
    methods = ",".join(sorted(getattr(route, "methods", None) or ()))
    return f"{methods} {getattr(route, 'path', route)}"


def public_path_matcher(app: FastAPI) -> Callable[[str], bool]:
    """``is_public(path)``: whether ``path`` is served by a route of ``app`` declared :data:`PUBLIC`.

    The routes are read at the first call (when every route is registered).
    """
    patterns: list[Any] = []
    loaded = False

    def is_public(path: str) -> bool:
        nonlocal loaded
        if not loaded:
            patterns.extend(r.path_regex for r in iter_app_routes(app) if route_rules(r) == [PUBLIC])
            loaded = True
        return any(pattern.match(path) for pattern in patterns)

    return is_public


def ungated_routes(app: FastAPI) -> list[str]:
    """Routes declaring no authorization rule, or more than one (as :func:`describe_route` strings)."""
    return [describe_route(r) for r in iter_app_routes(app) if len(route_rules(r)) != 1]
