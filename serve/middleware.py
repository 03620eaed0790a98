"""Pure ASGI middleware: request ids, the request-body size limit, and the fast refusal of requests without credentials."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_SCOPE_KEY = "ccp.request_id"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_of(scope: Scope) -> str | None:
    """The request id assigned to ``scope`` by :class:`RequestIdMiddleware`."""
    return scope.get(REQUEST_ID_SCOPE_KEY)


def accept_request_id(value: str | None) -> str:
    """A client's ``X-Request-ID`` when it is 1-64 of ``A-Za-z0-9._-``, else a new uuid4 hex.

    Examples
    --------
    >>> accept_request_id("abc-1")
    'abc-1'
    >>> len(accept_request_id("bad id with spaces"))
    32
    """
    if value is not None and _REQUEST_ID_RE.match(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Give every HTTP request an id (the client's ``X-Request-ID`` if well-formed) and echo it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = accept_request_id(incoming)
        scope[REQUEST_ID_SCOPE_KEY] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodySizeLimitMiddleware:
    """Refuse request bodies larger than ``max_body_bytes`` with 413, before the application sees them.

    A declared ``Content-Length`` above the limit is refused without reading
    the body. Otherwise (including chunked bodies without ``Content-Length``)
    the body is read into memory up to the limit and replayed to the
    application; the first byte beyond the limit ends the request with 413.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0")
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _send_413(scope, send, self.max_body_bytes)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body_bytes:
                await _send_413(scope, send, self.max_body_bytes)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(scope: Scope, send: Send, limit: int) -> None:
    body = json.dumps(
        {"detail": f"request body larger than {limit} bytes", "request_id": request_id_of(scope)}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_WELL_FORMED_BEARER = re.compile(rb"^bearer ccp_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$", re.IGNORECASE)
MISSING_CREDENTIALS = "missing"
INVALID_CREDENTIALS = "invalid"


def credentials_problem(scope: Scope) -> str | None:
    """``"missing"`` without an ``Authorization`` header, ``"invalid"`` when it is not a well-formed bearer API key, else ``None``.

    Only the shape is checked here; whether the key exists is the application's business.
    """
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return None if _WELL_FORMED_BEARER.match(value.strip()) else INVALID_CREDENTIALS
    return MISSING_CREDENTIALS


class CredentialsGuardMiddleware:
    """Answer 401 at once to API requests (paths under ``prefix``, except routes declared public) that carry no well-formed API key.

    Such requests never reach the application, its thread pool or the store:
    each costs a call of ``note_failure(client_address, "missing" | "invalid")``
    (an in-memory counter, see :mod:`serve.authfailures`, which returns how long
    to hold the answer back: a tarpit for flooding addresses) and a small
    response, so a flood of them cannot hold up authenticated writes. The body
    and headers are those of the application's own 401.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        note_failure: Callable[[str | None, str], float],
        is_public: Callable[[str], bool] = lambda path: False,
        prefix: str = "/v1/",
    ) -> None:
        self.app = app
        self.note_failure = note_failure
        self.is_public = is_public
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        problem = credentials_problem(scope)
        if problem is None or self.is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        delay = self.note_failure(client[0] if client else None, problem)
        if delay > 0:
            await asyncio.sleep(delay)
        body = b'{"detail":"not authenticated"}'  # byte for byte the application's own 401 body
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
