"""Exception handlers: no stack trace ever reaches a client.

* any unhandled exception -> 500 ``{"detail": "internal server error", "request_id": ...}``
  (the traceback is logged server-side with the request id);
* storage unavailable (SQLAlchemy ``OperationalError``, pool timeout) -> 503 with ``Retry-After``;
* engine without a model -> 503 with ``Retry-After``;
* request validation -> 422 listing each error's location, message and type, without the input;
* every other 422 (raised by a route with a message) gets the same shape: ``{"detail": [{"loc", "msg", "type"}]}``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from serve.middleware import request_id_of
from targeting.engine import ModelUnavailableError

logger = logging.getLogger("serve")
RETRY_AFTER_SECONDS = "1"


def _with_request_id(request: Request, status: int, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    request_id = request_id_of(request.scope)
    all_headers = dict(headers or {})
    if request_id:
        all_headers["X-Request-ID"] = request_id
    return JSONResponse({"detail": detail, "request_id": request_id}, status_code=status, headers=all_headers)


def storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 for a database that is locked, down or out of connections."""
    logger.warning("storage unavailable (request %s): %s", request_id_of(request.scope), type(exc).__name__)
    return _with_request_id(
        request, 503, "storage temporarily unavailable; retry", {"Retry-After": RETRY_AFTER_SECONDS}
    )


def model_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 when the engine has no model."""
    return _with_request_id(request, 503, "no model is loaded; retry later", {"Retry-After": "30"})


def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """500 with only a request id; the traceback goes to the server log."""
    logger.error("unhandled error (request %s)", request_id_of(request.scope), exc_info=exc)
    return _with_request_id(request, 500, "internal server error")


def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 listing where and why the request is invalid, never echoing the input."""
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's answer to an ``HTTPException``, except that a 422 with a message takes the one 422 shape."""
    if exc.status_code == 422 and isinstance(exc.detail, str):
        body = {"detail": [{"loc": [], "msg": exc.detail, "type": "value_error"}]}
        return JSONResponse(body, status_code=422, headers=getattr(exc, "headers", None))
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(OperationalError, storage_unavailable)
    app.add_exception_handler(PoolTimeoutError, storage_unavailable)
    app.add_exception_handler(ModelUnavailableError, model_unavailable)
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, internal_error)
