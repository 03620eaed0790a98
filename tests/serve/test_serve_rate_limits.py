"""Every API key has a rate limit (429 with Retry-After); failed authentications stay off the write path and are tarpitted."""

from __future__ import annotations

import time

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import ValidationError

from serve.app import create_app
from serve.authfailures import AuthFailureCounter
from serve.deps import PublicDep
from serve.security import Principal, RateLimit, RateLimiter, Role, retry_after_header
from serve.settings import Settings
from serve.store.keys import create_key
from serve.writer import GroupWriter
from serve_helpers import PORT


def key_headers(app, role: str, *ports: str) -> dict[str, str]:
    """Authorization headers of a new key of ``role`` in ``app``'s store."""
    with app.state.database.write() as session:
        created = create_key(session, role=Role(role), ports=ports, created_by="test")
    return {"Authorization": f"Bearer {created.key}"}


class SteppedClock:
    """A monotonic time source the test advances by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


ALL_ROLES = {role: RateLimit(per_second=2, burst=3) for role in Role}


def test_a_key_gets_its_burst_then_waits_for_its_rate():
    clock = SteppedClock()
    limiter = RateLimiter(ALL_ROLES, monotonic=clock)
    officer = Principal("aaaaaaaaaaaa", Role.OFFICER, (PORT,))
    assert [limiter.acquire(officer) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire(officer) == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire(officer) == 0.0
    assert limiter.acquire(Principal("bbbbbbbbbbbb", Role.OFFICER, (PORT,))) == 0.0  # buckets are per key


def test_a_key_override_beats_its_role_limit():
    limiter = RateLimiter(ALL_ROLES, {"aaaaaaaaaaaa": RateLimit(per_second=1, burst=1)}, monotonic=SteppedClock())
    officer = Principal("aaaaaaaaaaaa", Role.OFFICER, (PORT,))
    assert limiter.acquire(officer) == 0.0
    assert limiter.acquire(officer) == pytest.approx(1.0)


def test_every_role_needs_a_limit():
    with pytest.raises(ValueError, match="no rate limit for roles: admin"):
        RateLimiter({role: RateLimit(1, 1) for role in Role if role is not Role.ADMIN})
    with pytest.raises(ValidationError, match="rate_limits must give exactly the roles"):
        Settings(rate_limits={"officer": 10.0})
    with pytest.raises(ValidationError, match="every rate limit must be above 0"):
        Settings(key_rate_limits={"aaaaaaaaaaaa": 0.0})


def test_retry_after_is_whole_seconds_and_at_least_one():
    assert [retry_after_header(s) for s in (0.001, 1.0, 1.01)] == ["1", "1", "2"]


def test_over_the_limit_a_key_gets_429_with_retry_after_and_other_keys_do_not(tmp_path, service_lake_dir):
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ccp.db'}", lake_dir=service_lake_dir, auth_failure_flush_seconds=0,
        rate_limits={"officer": 1.0, "data_scientist": 100.0, "auditor": 100.0, "admin": 100.0}, rate_limit_burst_seconds=2.0,
    )
    app = create_app(settings)
    officer, other = key_headers(app, "officer", PORT), key_headers(app, "officer", PORT)
    with TestClient(app) as client:
        statuses = [client.get("/v1/rules", headers=officer).status_code for _ in range(3)]
        refused = client.get("/v1/rules", headers=officer)
        assert statuses[:2] == [200, 200] and 429 in statuses[2:] + [refused.status_code]
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["detail"] == "too many requests for this API key; retry later"
        assert client.get("/v1/rules", headers=other).status_code == 200


def test_failed_authentications_write_nothing_until_the_flush_which_writes_once(app, client):
    writer: GroupWriter = app.state.writer
    before = writer.operations
    for i in range(200):
        headers = {} if i % 2 else {"Authorization": "Bearer ccp_000000000000_" + "z" * 43}
        assert client.get("/v1/inspection-lists/0b6b2a58-8a7c-4a43-9ad2-0cf3a7e0f1a1", headers=headers).status_code == 401
    assert writer.operations == before  # no write, no fsync, no write lock per 401
    assert app.state.auth_failures.flush() == 1
    assert writer.operations == before + 1


def test_an_address_over_its_free_failures_is_tarpitted():
    clock = SteppedClock()
    counter = AuthFailureCounter(None, flush_seconds=0, free_per_second=3, delay_seconds=0.5, monotonic=clock)  # type: ignore[arg-type]
    assert [counter.note("10.0.0.1", "missing") for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]
    assert counter.note("10.0.0.2", "invalid") == 0.0  # per address
    clock.now += 1
    assert counter.note("10.0.0.1", "missing") == 0.0  # a new second


def test_the_tarpit_holds_back_the_401_but_not_the_valid_keys_of_the_same_address(tmp_path, service_lake_dir):
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ccp.db'}", lake_dir=service_lake_dir, auth_failure_flush_seconds=0,
        auth_failure_free_per_second=2, auth_failure_delay_seconds=0.3,
    )
    app = create_app(settings)
    officer = key_headers(app, "officer", PORT)
    with TestClient(app) as client:
        began = time.perf_counter()
        assert {client.get("/v1/rules").status_code for _ in range(6)} == {401}
        assert time.perf_counter() - began >= 0.3  # at least one of them waited (whatever second boundaries fell between)
        assert client.get("/v1/rules", headers=officer).status_code == 200


def test_a_public_route_under_v1_is_not_refused_for_lack_of_credentials(app):
    router = APIRouter()

    @router.get("/v1/open/{name}", dependencies=[PublicDep])
    def open_route(name: str) -> dict:
        return {"name": name}

    app.include_router(router)
    with TestClient(app) as client:
        assert client.get("/v1/open/x").json() == {"name": "x"}
        assert client.get("/v1/rules").status_code == 401
