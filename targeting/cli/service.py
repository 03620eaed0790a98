"""Service commands: ``serve``, ``keys``, ``audit``, ``rules``, ``watchlist``, ``outcomes``.

Every command reads its settings from ``CCP_*`` environment variables,
migrates and seeds the store if needed (idempotent) and audits what it
changes as ``cli:<user>``.
"""

from __future__ import annotations

import getpass
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from targeting.cli import app

console = Console()
err_console = Console(stderr=True)

keys_app = typer.Typer(help="API keys (shown once, stored hashed).", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail: verify the hash chain, replay served lists.", no_args_is_help=True)
rules_app = typer.Typer(help="Rule profiles (each change writes a new rule-set version).", no_args_is_help=True)
watchlist_app = typer.Typer(help="Watchlist entries (intelligence alerts).", no_args_is_help=True)
outcomes_app = typer.Typer(help="Inspection outcomes recorded through the service.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(rules_app, name="rules")
app.add_typer(watchlist_app, name="watchlist")
app.add_typer(outcomes_app, name="outcomes")


# --------------------------------------------------------------------------- helpers


def cli_actor() -> str:
    """Audit actor of command-line actions: ``cli:<OS user>``."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name available (containers)
        user = "unknown"
    return f"cli:{user}"[:64]


def _settings(**overrides: Any):  # noqa: ANN202 - serve.settings.Settings, imported lazily
    from serve.settings import Settings

    from targeting.cli.stores import apply_clock

    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        err_console.print(f"[red]configuration refused:[/red] {exc}")
        raise typer.Exit(2) from None
    apply_clock(settings)
    return settings


def _store(settings: Any = None, *, announce: bool = True, uses: tuple[str, ...] = ("database",)):  # noqa: ANN202 - serve.db.Database
    """Open (and migrate) the configured operational store; exit 2 when it does not exist (``targeting init`` creates it).

    ``announce`` names the stores the command uses (``uses``) on stderr first.
    """
    from serve.app import open_store
    from targeting.cli import stores

    settings = settings or _settings()
    if announce:
        stores.announce(settings, uses=uses)
    stores.require_database(settings.database_url)
    return open_store(settings)


def audit_cli_event(action: str, *, settings: Any = None, **fields: Any) -> None:
    """Record an audit event for a command-line action (e.g. ``model.promote``) as ``cli:<user>``.

    ``fields`` are the keyword arguments of :func:`serve.audit.record_event`
    (``object_type``, ``object_id``, ``model_version``, ``detail``, ``result`` ...).
    """
    from serve.audit import record_event

    database = _store(settings, announce=False)
    try:
        with database.write() as session:
            record_event(session, action=action, actor=cli_actor(), role="cli", **fields)
    finally:
        database.dispose()


def parse_aware(value: str | None, name: str) -> datetime | None:
    """Parse an ISO 8601 timestamp with a UTC offset; ``typer.BadParameter`` when naive or malformed."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{name} must be an ISO 8601 timestamp") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise typer.BadParameter(f"{name} must carry a UTC offset, e.g. 2025-01-01T00:00:00+00:00")
    return parsed


def _table(*columns: str) -> Table:
    """A table whose first column (an id or code) is never truncated; other cells wrap."""
    table = Table()
    for i, name in enumerate(columns):
        table.add_column(name, no_wrap=i == 0, overflow="fold")
    return table


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]{message}[/red]")
    return typer.Exit(code)


# --------------------------------------------------------------------------- serve


@app.command("serve")
def serve_command(
    host: Annotated[str | None, typer.Option(help="Bind address (CCP_HOST); non-loopback needs CCP_ALLOW_REMOTE=true")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (CCP_PORT)")] = None,
    access_log: Annotated[
        bool, typer.Option(help="One uvicorn log line per request (off: every request is already in the audit trail, with its request id)")
    ] = False,
) -> None:
    """Run the HTTP service (uvicorn) with settings from the environment."""
    import uvicorn

    from serve.app import create_app, prepare_serving_process

    from targeting.cli import stores

    settings = _settings(host=host, port=port)
    stores.announce(settings)
    stores.require_database(settings.database_url)
    stores.require_lake(settings.lake_dir)
    stores.require_tracking_store(settings.mlflow_tracking_uri)
    app = create_app(settings, engine_factory=_engine_factory(settings))
    prepare_serving_process(settings)  # as uvicorn --factory serve.app:app_from_env: frozen start-up objects, short GIL switch interval
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", server_header=False, access_log=access_log)


def _engine_factory(settings: Any):  # noqa: ANN202 - Callable[[Settings], TargetingEngine]
    """``CCP_ENGINE_FACTORY`` when set, else the engine over the configured lake and MLflow registry."""
    from serve.runtime import load_engine_factory

    if settings.engine_factory:
        return load_engine_factory(settings.engine_factory)
    from targeting.lake_engine import engine_from_settings

    return engine_from_settings


# --------------------------------------------------------------------------- keys


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="officer, data_scientist, auditor or admin")],
    port: Annotated[list[str] | None, typer.Option("--port", help="UN/LOCODE of an officer's port (repeat for several)")] = None,
    label: Annotated[str | None, typer.Option(help="Who or what the key is for")] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from serve.security import Role
    from serve.store.keys import create_key

    try:
        role_value = Role(role)
    except ValueError:
        raise _fail(f"unknown role {role!r}; use one of {', '.join(r.value for r in Role)}", 2) from None
    database = _store()
    try:
        with database.write() as session:
            created = create_key(  # audits key.create itself, sealing the key
                session, role=role_value, ports=tuple(port or ()), label=label, created_by=cli_actor(), actor_role="cli"
            )
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    finally:
        database.dispose()
    console.print(f"key id: {created.key_id}  role: {created.role.value}  ports: {','.join(created.ports) or '-'}")
    console.print("API key (shown once, store it now):")
    typer.echo(created.key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids, roles, ports; never the keys)."""
    from serve.store.keys import list_keys

    database = _store()
    try:
        with database.read() as session:
            rows = list_keys(session)
            table = _table("id", "role", "ports", "label", "created", "revoked")
            for row in rows:
                table.add_row(
                    row.id, row.role, ",".join(row.ports), row.label or "", row.created_at.isoformat(),
                    row.revoked_at.isoformat() if row.revoked_at else "",
                )
    finally:
        database.dispose()
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (the part after 'ccp_')")]) -> None:
    """Revoke a key (it stops authenticating immediately)."""
    from serve.audit import record_event
    from serve.store.keys import revoke_key

    database = _store()
    try:
        with database.write() as session:
            done = revoke_key(session, key_id, actor=cli_actor(), actor_role="cli")  # audits key.revoke when done
            if not done:
                record_event(
                    session, action="key.revoke", actor=cli_actor(), role="cli", object_type="api_key", object_id=key_id,
                    result="not_found",
                )
    finally:
        database.dispose()
    if not done:
        raise _fail(f"no active key {key_id!r}")
    console.print(f"revoked {key_id}")


# --------------------------------------------------------------------------- audit


def uninitialised_store_problem(database_url: str) -> str | None:
    """Why the store at ``database_url`` cannot be verified (missing, unreachable, never initialised); ``None`` when it can.

    Nothing is created: an SQLite file that does not exist stays absent.
    """
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        if not url.database or not path.is_file():
            return f"no store at {path}: the database file does not exist (nothing to verify)"
        url = url.set(query={**url.query, "mode": "ro"}, database=f"file:{path.resolve()}").update_query_dict({"uri": "true"})
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
    except SQLAlchemyError as exc:
        return f"the store {make_url(database_url).render_as_string()} cannot be opened: {type(exc).__name__}"
    finally:
        engine.dispose()
    if not {"alembic_version", "audit_events"} <= tables:
        return f"the store {make_url(database_url).render_as_string()} was never initialised (no schema): nothing to verify"
    return None


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the keyed audit chain, every sealed record (lists with their metadata, outcomes, amendments, watchlist
    entries, rule profiles, rule-set versions, keys) and every list's content; exit 1 naming each bad row or record.

    Exit 2 (nothing verified) when the store does not exist, was never initialised or its audit key is missing.
    """
    from serve.audit import verify_chain
    from serve.audit_key import AuditKeyError
    from serve.db import Database
    from serve.seals import verify_records
    from serve.store.lists import verify_stored_lists

    from targeting.cli.stores import announce

    settings = _settings()
    announce(settings, uses=("database",))
    refused = uninitialised_store_problem(settings.database_url)
    if refused is not None:
        raise _fail(f"audit verify refused: {refused}", 2)
    database = Database.from_url(settings.database_url, audit_key_file=settings.audit_key_file)
    try:
        with database.read() as session:
            result = verify_chain(session)
            lists_checked, bad_lists = verify_stored_lists(session)
            counts, bad_records = verify_records(session)
    except AuditKeyError as exc:
        raise _fail(f"audit verify refused: {exc}", 2) from None
    finally:
        database.dispose()
    if not result.ok:
        err_console.print(f"audit chain BROKEN at row {result.first_bad_seq}: {result.problem}")
    else:
        console.print(f"audit chain intact: {result.rows_checked} rows; head hash {result.head_hash}")
    for bad in bad_lists:
        err_console.print(f"stored list {bad.list_id} FAILS verification: {bad.problem}")
    for bad in bad_records:
        err_console.print(f"record {bad.record} FAILS verification: {bad.problem}")
    if bad_lists or bad_records or not result.ok:
        raise typer.Exit(1)
    console.print(f"stored lists intact: {lists_checked} lists match their content hashes")
    console.print("sealed records intact: " + ", ".join(f"{n} {name}" for name, n in counts.items()))


@audit_app.command("replay")
def audit_replay(list_id: Annotated[str, typer.Argument(help="Id of a served inspection list")]) -> None:
    """Regenerate a served list with its recorded rule set and watchlist; exit 1 unless byte-identical."""
    from serve.audit import record_event
    from serve.store.lists import get_list, load_record
    from serve.store.rulesets import ruleset_snapshot
    from serve.store.watchlist import watchlist_frame_at

    settings = _settings()
    database = _store(settings, uses=("lake", "database", "MLflow"))
    try:
        with database.read() as session:
            row = get_list(session, list_id)
            if row is None:
                raise _fail(f"no inspection list {list_id!r}", 2)
            record = load_record(row)
            ruleset = ruleset_snapshot(session, row.ruleset_version)
            watchlist = watchlist_frame_at(session, row.watchlist_as_of)
        engine = _engine_factory(settings)(settings)
        replayed = engine.replay(record, ruleset=ruleset, watchlist=watchlist)
        identical = replayed.content_sha256() == row.content_sha256
        with database.write() as session:
            record_event(
                session, action="list.replay", actor=cli_actor(), role="cli", object_type="inspection_list",
                object_id=list_id, port=row.port, model_version=record.model_version,
                result="ok" if identical else "mismatch",
                detail={"stored_sha256": row.content_sha256, "replayed_sha256": replayed.content_sha256()},
            )
    finally:
        database.dispose()
    if not identical:
        raise _fail(f"replay DIFFERS: stored {row.content_sha256}, replayed {replayed.content_sha256()}")
    console.print(f"replay identical: {row.content_sha256}")


# --------------------------------------------------------------------------- rules


@rules_app.command("list")
def rules_list(
    all_: Annotated[bool, typer.Option("--all", help="Include expired profiles")] = False,
) -> None:
    """List rule profiles and the current rule-set version."""
    from serve.store.rulesets import latest_version, list_rule_rows

    database = _store()
    try:
        with database.read() as session:
            rows = list_rule_rows(session, include_expired=all_)
            version = latest_version(session)
            table = _table("code", "level", "port", "weight", "valid from", "valid to", "expired", "reason")
            for r in rows:
                table.add_row(
                    r.code, r.level, r.port or "", f"{r.weight:g}", r.valid_from.isoformat(),
                    r.valid_to.isoformat() if r.valid_to else "", r.expired_at.isoformat() if r.expired_at else "",
                    r.reason,
                )
    finally:
        database.dispose()
    console.print(f"rule-set version {version}")
    console.print(table)


@rules_app.command("add")
def rules_add(
    code: Annotated[str, typer.Option(help="A-Z 0-9 _ -, at most 32")],
    reason: Annotated[str, typer.Option(help="Plain-language reason shown to officers")],
    expression: Annotated[str, typer.Option(help="Rule-language condition (see features.rules.language)")],
    weight: Annotated[float, typer.Option(help="Selection weight, 0 < w <= 100")],
    valid_from: Annotated[str, typer.Option(help="ISO 8601 with offset")],
    valid_to: Annotated[str | None, typer.Option(help="ISO 8601 with offset (exclusive)")] = None,
    level: Annotated[str, typer.Option(help="NATIONAL or PORT")] = "NATIONAL",
    port: Annotated[str | None, typer.Option(help="UN/LOCODE, for PORT level")] = None,
) -> None:
    """Add a rule profile (the expression is validated) and write a new rule-set version."""
    from pydantic import ValidationError

    from features.rules.language import RuleProfile
    from serve.audit import record_event
    from serve.seals import seal_detail
    from serve.store.rulesets import RuleConflictError, add_rule

    try:
        profile = RuleProfile(
            code=code, reason=reason, expression=expression, weight=weight, level=level, port=port,
            valid_from=parse_aware(valid_from, "--valid-from"), valid_to=parse_aware(valid_to, "--valid-to"),
        )
    except ValidationError as exc:
        raise _fail("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()), 2) from None
    database = _store()
    try:
        with database.write() as session:
            row, version = add_rule(session, profile, actor=cli_actor())
            record_event(
                session, action="rule.create", actor=cli_actor(), role="cli", object_type="rule_profile",
                object_id=profile.code, port=profile.port,
                detail={"ruleset_version": version.version, "ruleset_hash": version.ruleset_hash, **seal_detail(row, version)},
            )
    except RuleConflictError as exc:
        raise _fail(str(exc)) from None
    finally:
        database.dispose()
    console.print(f"added {profile.code}; rule-set version {version.version} ({version.ruleset_hash})")


@rules_app.command("expire")
def rules_expire(code: Annotated[str, typer.Argument(help="Code of the active profile")]) -> None:
    """Expire an active rule profile and write a new rule-set version."""
    from serve.audit import record_event
    from serve.seals import seal_detail
    from serve.store.rulesets import RuleNotFoundError, expire_rule

    database = _store()
    try:
        with database.write() as session:
            row, version = expire_rule(session, code, actor=cli_actor())
            record_event(
                session, action="rule.expire", actor=cli_actor(), role="cli", object_type="rule_profile",
                object_id=code, detail={"ruleset_version": version.version, "ruleset_hash": version.ruleset_hash, **seal_detail(row, version)},
            )
    except RuleNotFoundError as exc:
        raise _fail(str(exc)) from None
    finally:
        database.dispose()
    console.print(f"expired {code}; rule-set version {version.version} ({version.ruleset_hash})")


# --------------------------------------------------------------------------- watchlist


@watchlist_app.command("list")
def watchlist_list(
    all_: Annotated[bool, typer.Option("--all", help="Include expired entries")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Most entries to list")] = 1000,
) -> None:
    """List watchlist entries ordered by alert id."""
    from serve.store.watchlist import list_entries

    database = _store()
    try:
        with database.read() as session:
            rows = list_entries(session, include_expired=all_, limit=limit)
            table = _table("alert id", "kind", "value", "severity", "valid from", "valid to", "expired", "issuing unit")
            for r in rows:
                table.add_row(
                    r.alert_id, r.kind, r.value, str(r.severity), r.valid_from.isoformat(),
                    r.valid_to.isoformat() if r.valid_to else "", r.expired_at.isoformat() if r.expired_at else "",
                    r.issuing_unit,
                )
    finally:
        database.dispose()
    console.print(table)


@watchlist_app.command("add")
def watchlist_add(
    kind: Annotated[str, typer.Option(help="PARTY, CONTAINER, BL, VESSEL, HS_CODE or ROUTE")],
    value: Annotated[str, typer.Option(help="What to match (checked against the kind)")],
    reason: Annotated[str, typer.Option(help="Plain-language reason shown to officers")],
    issuing_unit: Annotated[str, typer.Option(help="Unit or agency issuing the alert")],
    severity: Annotated[int, typer.Option(min=1, max=5, help="1 (low) to 5 (high)")],
    valid_from: Annotated[str, typer.Option(help="ISO 8601 with offset")],
    valid_to: Annotated[str | None, typer.Option(help="ISO 8601 with offset (exclusive)")] = None,
    alert_id: Annotated[str | None, typer.Option(help="Id to use (generated when omitted)")] = None,
) -> None:
    """Add a watchlist entry."""
    from serve.audit import record_event
    from serve.seals import seal_detail
    from serve.store.watchlist import NewEntry, add_entry

    entry = NewEntry(
        kind=kind.upper(), value=value, reason=reason, issuing_unit=issuing_unit, severity=severity,
        valid_from=parse_aware(valid_from, "--valid-from"), valid_to=parse_aware(valid_to, "--valid-to"),
        alert_id=alert_id,
    )
    database = _store()
    try:
        with database.write() as session:
            row = add_entry(session, entry, actor=cli_actor())
            record_event(
                session, action="watchlist.create", actor=cli_actor(), role="cli", object_type="watchlist_entry",
                object_id=row.alert_id, detail={"kind": row.kind, "severity": row.severity, **seal_detail(row)},
            )
            created = row.alert_id
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    finally:
        database.dispose()
    console.print(f"added {created}")


@watchlist_app.command("expire")
def watchlist_expire(alert_id: Annotated[str, typer.Argument(help="Id of the entry in force")]) -> None:
    """Take a watchlist entry out of force from now on."""
    from serve.audit import record_event
    from serve.seals import seal_detail
    from serve.store.watchlist import WatchlistNotFoundError, expire_entry

    database = _store()
    try:
        with database.write() as session:
            row = expire_entry(session, alert_id, actor=cli_actor())
            record_event(
                session, action="watchlist.expire", actor=cli_actor(), role="cli", object_type="watchlist_entry",
                object_id=alert_id, detail=seal_detail(row),
            )
    except WatchlistNotFoundError as exc:
        raise _fail(str(exc)) from None
    finally:
        database.dispose()
    console.print(f"expired {alert_id}")


# --------------------------------------------------------------------------- outcomes


@outcomes_app.command("export")
def outcomes_export(
    out: Annotated[Path, typer.Argument(help="Parquet file to write")],
    port: Annotated[str | None, typer.Option(help="Only this port's outcomes")] = None,
) -> None:
    """Write the recorded outcomes (INSPECTION_OUTCOMES contract) to a Parquet file for training.

    Every outcome is checked against its seal in the audit trail first: an outcome edited in the database, or
    written there outside the service, is named and nothing is written (exit 1).
    """
    from serve.seals import SealMismatchError
    from serve.store.outcomes import export_outcomes

    database = _store()
    try:
        frame = export_outcomes(database, port=port)
    except SealMismatchError as exc:
        raise _fail(str(exc)) from None
    finally:
        database.dispose()
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(out)
    console.print(json.dumps({"rows": frame.height, "path": str(out)}))
