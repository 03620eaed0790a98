"""The fast lane: the two hottest requests answered by their own route functions, without the framework's generic request handling.

On every request FastAPI routes through the app's routers, solves the route's
dependency tree generically (inspecting every parameter and sub-dependency of
it each time), builds the endpoint context, and wraps the call in two more
exception and exit-stack layers: under load that was about a third of the
server's CPU per request (``bench/bench_writes.py``). :class:`FastLaneMiddleware`,
the innermost of the app's middleware (request ids, the body-size limit and
the early 401 apply as before), takes exactly two request shapes:

* ``POST /v1/inspection-outcomes`` without a query string, with exactly one
  ``Authorization: Bearer <key>``, one ``Content-Type: application/json``, one
  well-formed ``Idempotency-Key``, and a JSON object body that the route's own
  body field (FastAPI's validation of :class:`~serve.schemas.outcomes.OutcomeCreate`)
  accepts;
* ``GET /v1/inspection-lists/{list_id}`` without a query string, ``list_id`` a
  canonical lower-case UUID, with exactly one ``Authorization: Bearer <key>``;

and calls the route's endpoint function with what FastAPI would have resolved:
the caller from the route's own authorization dependency (same authentication,
key cache, rate limit, 403 audit), and the app's writer, settings and list-body
cache. Everything else, and every request whose checks made before the first
side effect fail (for example an invalid body: the framework answers its 422),
goes to the framework unchanged. Exceptions raised on the lane are answered by
the app's exception handlers through Starlette's ``ExceptionMiddleware``, as on
the framework's path. Responses are therefore the same bytes either way
(``tests/serve/test_serve_fastlane.py`` compares them).

A lane opens only when, at app build, the framework would route its request
shape to the expected endpoint and the route's dependencies are exactly the
ones the lane resolves (:func:`open_lanes`); otherwise its requests simply go
to the framework.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.deps import get_list_bodies, get_settings, get_writer, iter_app_routes, require, route_rules
from serve.routes.lists import serve_inspection_list
from serve.routes.outcomes import IDEMPOTENCY_KEY_RE, create_outcome

logger = logging.getLogger("serve.fastlane")

OUTCOMES_PATH = "/v1/inspection-outcomes"
LISTS_PREFIX = "/v1/inspection-lists/"
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] [A-Za-z0-9_-]{1,200}")
LANE_SCOPE_KEY = "ccp.fast_lane"
"""Key of the ASGI scope holding a lane request's resolved arguments (for the lane's endpoint, inside the exception layer)."""


@dataclass(frozen=True)
class Lane:
    """One open lane: the route it stands for and how to authorize its caller."""

    name: str
    route: Any  # fastapi.routing.APIRoute
    authorize: Callable[..., Any]  # the route's own serve.deps.require(...) dependency
    body_field: Any = None  # the route's body ModelField (outcomes)


# The dependencies each lane resolves itself: (parameter name, dependency function); the permission comes from the route.
_EXPECTED = {
    "outcome": {
        "endpoint": create_outcome, "method": "POST", "path": OUTCOMES_PATH,
        "dependencies": ("caller", ("writer", get_writer), ("settings", get_settings)),
        "header": ("idempotency_key",), "path_params": (), "query": (), "body": ("body",),
    },
    "list": {
        "endpoint": serve_inspection_list, "method": "GET", "path": LISTS_PREFIX + "00000000-0000-4000-8000-000000000000",
        "dependencies": ("caller", ("writer", get_writer), ("bodies", get_list_bodies)),
        "header": (), "path_params": ("list_id",), "query": ("include",), "body": (),
    },
}


def _route_for(app: FastAPI, method: str, path: str) -> Any | None:
    """The route context the framework would dispatch ``method path`` to (first full match in routing order)."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"", "headers": []}
    for route in iter_app_routes(app):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route
    return None


def _lane_problem(route: Any, expected: dict[str, Any]) -> str | None:
    """Why ``route`` cannot be served by the lane described by ``expected`` (``None`` when it can)."""
    if route is None or route.endpoint is not expected["endpoint"]:
        return f"{expected['method']} {expected['path']} is not routed to {expected['endpoint'].__name__}"
    dependant = route.dependant
    rules = route_rules(route)
    if len(rules) != 1 or not hasattr(rules[0], "value"):
        return "the route does not declare exactly one permission"
    wanted = [("caller", require(rules[0]))] + [pair for pair in expected["dependencies"] if pair != "caller"]
    declared = [(d.name, d.call) for d in dependant.dependencies]
    if declared != wanted:
        return f"the route's dependencies changed: {[name for name, _ in declared]}"
    for kind, params in (("header", dependant.header_params), ("path_params", dependant.path_params),
                         ("query", dependant.query_params), ("body", dependant.body_params)):
        if tuple(p.name for p in params) != expected[kind]:
            return f"the route's {kind} parameters changed"
    if dependant.cookie_params:
        return "the route has cookie parameters"
    return None


def open_lanes(app: FastAPI) -> dict[str, Lane]:
    """The lanes that can serve ``app``'s routes as they are declared (call once every route is registered).

    A lane whose route differs from what it resolves is left closed, with a warning in the log.
    """
    lanes = {}
    for name, expected in _EXPECTED.items():
        route = _route_for(app, expected["method"], expected["path"])
        problem = _lane_problem(route, expected)
        if problem is not None:
            logger.warning("fast lane %s closed: %s", name, problem)
            continue
        lanes[name] = Lane(name, route.original_route, require(route_rules(route)[0]), route.body_field)
    return lanes


def _headers(scope: Scope, names: tuple[bytes, ...]) -> dict[bytes, bytes] | None:
    """The values of the headers ``names`` (lower case); ``None`` when one of them occurs more than once."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in names:
            if name in found:
                return None
            found[name] = value
    return found


def _credentials(value: bytes | None) -> HTTPAuthorizationCredentials | None:
    """What ``HTTPBearer`` makes of a plain ``Bearer <key>`` header; ``None`` for any other shape."""
    if value is None:
        return None
    text = value.decode("latin-1")
    if not _BEARER.fullmatch(text):
        return None
    scheme, credentials = get_authorization_scheme_param(text)
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials)


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """Every message of the request body and the body (``None`` when the client disconnected first)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` again, then whatever ``receive`` gives."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class FastLaneMiddleware:
    """Serve the lanes of :func:`open_lanes` directly; hand every other request to the app (see the module).

    Parameters
    ----------
    app
        The rest of the application (the framework's exception layer and router).
    service
        The FastAPI application: its ``state`` (writer, settings, list bodies,
        ``fast_lanes``) and its exception handlers (read when the middleware
        stack is built, at the first request). ``service.state.fast_lane_served``
        (a ``Counter``, created here) counts the requests each lane took.
    """

    def __init__(self, app: ASGIApp, *, service: FastAPI) -> None:
        self.app = app
        self.lanes: dict[str, Lane] = service.state.fast_lanes
        self.served: Counter[str] = Counter()
        service.state.fast_lane_served = self.served
        handlers = {key: value for key, value in service.exception_handlers.items() if key not in (500, Exception)}
        # the framework's own exception layer, around each lane's endpoint: exceptions get the app's answers
        self._outcome = ExceptionMiddleware(self._outcome_endpoint, handlers=handlers)
        self._list = ExceptionMiddleware(self._list_endpoint, handlers=handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("query_string") and not scope.get("root_path"):
            method, path = scope["method"], scope["path"]
            if method == "POST" and path == OUTCOMES_PATH and "outcome" in self.lanes:
                await self._serve_outcome(scope, receive, send)
                return
            if (method == "GET" and path.startswith(LISTS_PREFIX) and "list" in self.lanes
                    and _CANONICAL_UUID.fullmatch(path, len(LISTS_PREFIX))):
                await self._serve_list(scope, receive, send)
                return
        await self.app(scope, receive, send)

    # ------------------------------------------------------------------ outcomes

    async def _serve_outcome(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lanes["outcome"]
        headers = _headers(scope, (b"authorization", b"content-type", b"idempotency-key"))
        credentials = None if headers is None else _credentials(headers.get(b"authorization"))
        key = None if headers is None else headers.get(b"idempotency-key", b"").decode("latin-1")
        if credentials is None or headers.get(b"content-type") != b"application/json" or not IDEMPOTENCY_KEY_RE.match(key):
            await self.app(scope, receive, send)
            return
        messages, raw = await _read_body(receive)
        receive = _replaying(messages, receive)
        body = _validated_body(lane, raw)
        if body is None:  # not valid JSON, or not valid for the route: the framework answers (422 or 400)
            await self.app(scope, receive, send)
            return
        _enter_route(scope, lane, {})
        scope[LANE_SCOPE_KEY] = (credentials, body, key)
        self.served["outcome"] += 1
        await self._outcome(scope, receive, send)

    async def _outcome_endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        credentials, body, key = scope[LANE_SCOPE_KEY]
        request = Request(scope, receive, send)
        caller = await self.lanes["outcome"].authorize(request, credentials)
        state = scope["app"].state
        response = await create_outcome(body=body, caller=caller, writer=state.writer, settings=state.settings, idempotency_key=key)
        await response(scope, receive, send)

    # ------------------------------------------------------------------ lists

    async def _serve_list(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lanes["list"]
        headers = _headers(scope, (b"authorization",))
        credentials = None if headers is None else _credentials(headers.get(b"authorization"))
        if credentials is None:
            await self.app(scope, receive, send)
            return
        list_id = scope["path"][len(LISTS_PREFIX):]
        _enter_route(scope, lane, {"list_id": list_id})
        scope[LANE_SCOPE_KEY] = (credentials, uuid.UUID(list_id))
        self.served["list"] += 1
        await self._list(scope, receive, send)

    async def _list_endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        credentials, list_id = scope[LANE_SCOPE_KEY]
        request = Request(scope, receive, send)
        caller = await self.lanes["list"].authorize(request, credentials)
        state = scope["app"].state
        response = await serve_inspection_list(list_id=list_id, caller=caller, writer=state.writer, bodies=state.list_bodies, include=None)
        await response(scope, receive, send)


def _validated_body(lane: Lane, raw: bytes | None) -> Any | None:
    """The route's validated body model for a JSON object ``raw`` (as FastAPI validates it), or ``None``."""
    if not raw:
        return None
    try:
        payload = json.loads(raw)  # what Starlette's Request.json() does
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    value, errors = lane.body_field.validate(payload, {}, loc=("body",))
    return None if errors else value


def _enter_route(scope: Scope, lane: Lane, path_params: dict[str, str]) -> None:
    """What the framework's router puts in the scope for the lane's route (the audit of a refusal names the route)."""
    scope["route"] = lane.route
    scope["endpoint"] = lane.route.endpoint
    scope["path_params"] = path_params
