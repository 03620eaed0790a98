"""API keys are random, parsed strictly and stored only as hashes; roles hold exactly their permissions."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from serve.security import ROLE_PERMISSIONS, Permission, Principal, Role, generate_key, hash_key, parse_key_id
from serve.store.keys import PrincipalCache, create_key, principal_for_key, revoke_key
from serve.tables import ApiKey


def test_keys_are_stored_hashed_not_in_clear(database, settings):
    with database.write() as session:
        created = create_key(session, role=Role.OFFICER, ports=("nlrtm",), label="pcu", created_by="test")
    with database.read() as session:
        row = session.scalars(select(ApiKey)).one()
    assert row.key_hash == hash_key(created.key)
    assert row.id == created.key_id and created.key_id in created.key
    assert row.ports == ["NLRTM"]
    db_file = Path(settings.database_url.removeprefix("sqlite:///"))
    raw = b"".join(p.read_bytes() for p in (db_file, db_file.with_name(db_file.name + "-wal")) if p.exists())
    secret = created.key.split("_", 2)[2].encode()
    assert secret not in raw


def test_a_key_authenticates_until_revoked(database):
    with database.write() as session:
        created = create_key(session, role=Role.AUDITOR, created_by="test")
    with database.read() as session:
        assert principal_for_key(session, created.key) == Principal(created.key_id, Role.AUDITOR, ())
        assert principal_for_key(session, created.key[:-1] + ("A" if created.key[-1] != "A" else "B")) is None
        assert principal_for_key(session, "not-a-key") is None
    with database.write() as session:
        assert revoke_key(session, created.key_id)
    with database.read() as session:
        assert principal_for_key(session, created.key) is None


@pytest.mark.parametrize(
    ("role", "ports", "message"),
    [
        (Role.OFFICER, (), "needs at least one --port"),
        (Role.ADMIN, ("NLRTM",), "not port-scoped"),
        (Role.OFFICER, ("NL-RTM",), "UN/LOCODE"),
    ],
)
def test_key_creation_checks_role_and_ports(database, role, ports, message):
    with database.write() as session, pytest.raises(ValueError, match=message):
        create_key(session, role=role, ports=ports, created_by="test")


def test_generated_keys_are_unique_and_parse():
    keys = {generate_key()[1] for _ in range(200)}
    assert len(keys) == 200
    assert all(parse_key_id(k) is not None for k in keys)
    assert parse_key_id("ccp_abc_def") is None


def test_auditor_holds_no_write_permission():
    writes = {Permission.LISTS_CREATE, Permission.OUTCOMES_CREATE, Permission.WATCHLIST_WRITE, Permission.RULES_WRITE, Permission.MODELS_RELOAD}
    assert not ROLE_PERMISSIONS[Role.AUDITOR] & writes


def test_officer_is_port_scoped():
    officer = Principal("k", Role.OFFICER, ("NLRTM",))
    assert officer.can_access_port("NLRTM") and not officer.can_access_port("BEANR")
    assert Principal("k", Role.ADMIN).can_access_port("BEANR")


# --------------------------------------------------------------------------- the cache of verified keys


def _revoke(database, headers: dict[str, str]) -> None:
    key_id = parse_key_id(headers["Authorization"].removeprefix("Bearer "))
    with database.write() as session:
        assert revoke_key(session, key_id)


def test_a_revoked_key_is_refused_once_its_cache_entry_expires(app, client, database, make_key):
    now = [1000.0]
    app.state.principals = PrincipalCache(5.0, clock=lambda: now[0])
    headers = make_key("auditor")
    assert client.get("/v1/audit/events", headers=headers).status_code == 200  # read from the store, cached
    _revoke(database, headers)
    now[0] += 4.9
    assert client.get("/v1/audit/events", headers=headers).status_code == 200  # still trusted within the TTL
    now[0] += 0.2
    assert client.get("/v1/audit/events", headers=headers).status_code == 401  # expired: the store says revoked
    now[0] -= 10  # and a refusal is never cached
    assert client.get("/v1/audit/events", headers=headers).status_code == 401


def test_without_the_cache_a_revoked_key_is_refused_at_once(app, client, database, make_key):
    app.state.principals = PrincipalCache(0.0)
    headers = make_key("auditor")
    assert client.get("/v1/audit/events", headers=headers).status_code == 200
    _revoke(database, headers)
    assert client.get("/v1/audit/events", headers=headers).status_code == 401


def test_principal_cache_keeps_hashes_only_and_stays_bounded():
    cache = PrincipalCache(60.0, max_entries=2)
    principal = Principal(key_id="k1", role=Role.AUDITOR, ports=())
    cache.put("ccp_k1.secret", principal)
    assert cache.get("ccp_k1.secret") == principal and cache.get("ccp_k1.other") is None
    assert all("secret" not in k for k in cache._entries)
    cache.put("ccp_k2.secret", principal)
    cache.put("ccp_k3.secret", principal)  # full of live entries: starts over
    assert len(cache._entries) <= 2 and cache.get("ccp_k3.secret") == principal
