"""Request ids and the body-size limit (413), including chunked bodies without Content-Length."""

from __future__ import annotations

import asyncio
import json

from serve.middleware import BodySizeLimitMiddleware, accept_request_id
from serve_helpers import idem, outcome_body


def _chunks(total: int, size: int = 1000):
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b"x" * n


def test_oversized_body_with_content_length_is_413(client, make_key):
    headers = {**make_key("officer", "NLRTM"), **idem(), "Content-Type": "application/json"}
    response = client.post("/v1/inspection-outcomes", content=b"{" + b" " * 5000 + b"}", headers=headers)
    assert response.status_code == 413
    assert response.json()["detail"] == "request body larger than 4096 bytes"
    assert response.headers["x-request-id"]


def test_oversized_chunked_body_without_content_length_is_413(client, make_key):
    headers = {**make_key("officer", "NLRTM"), **idem(), "Content-Type": "application/json"}
    response = client.post("/v1/inspection-outcomes", content=_chunks(10_000), headers=headers)
    assert response.status_code == 413


def test_oversized_body_is_refused_before_authentication(client):
    response = client.post("/v1/inspection-outcomes", content=b"x" * 5000)
    assert response.status_code == 413


def test_body_within_limit_passes(client, make_key):
    headers = {**make_key("officer", "NLRTM"), **idem()}
    assert client.post("/v1/inspection-outcomes", json=outcome_body(), headers=headers).status_code == 201


def _drive(app, messages):
    """Run an ASGI app on one HTTP request whose body arrives as ``messages``; return what it sent."""
    sent = []
    queue = list(messages)

    async def receive():
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
    asyncio.run(app(scope, receive, send))
    return sent


async def _echo_length(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def test_many_small_chunks_over_the_limit_are_cut_at_the_first_excess_byte():
    limited = BodySizeLimitMiddleware(_echo_length, max_body_bytes=100)
    chunks = [{"type": "http.request", "body": b"x" * 30, "more_body": True} for _ in range(10)]
    sent = _drive(limited, chunks)
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["detail"] == "request body larger than 100 bytes"


def test_chunks_within_the_limit_are_replayed_whole():
    limited = BodySizeLimitMiddleware(_echo_length, max_body_bytes=100)
    chunks = [
        {"type": "http.request", "body": b"x" * 30, "more_body": True},
        {"type": "http.request", "body": b"x" * 70, "more_body": False},
    ]
    sent = _drive(limited, chunks)
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"100"


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc.123"}).headers["x-request-id"] == "abc.123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"]
    assert generated != "bad id\twith spaces" and len(generated) == 32
    assert accept_request_id("x" * 65) != "x" * 65
