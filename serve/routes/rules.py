"""Rule profiles and rule-set versions: read by every role; created and expired by admins and data scientists.

Port officers see national rules and the port-level rules of their own ports
only (:func:`rule_is_visible`); another port's rules are left out of every
answer, as if they did not exist.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from serve.deps import AuditWriterDep, Caller, DatabaseDep, RuleReader, RuleWriter
from serve.schemas.rules import (
    RuleChange,
    RuleCreate,
    RuleList,
    RulePublic,
    RuleSetVersionDetail,
    RuleSetVersionPublic,
)
from serve.store.rulesets import (
    RuleConflictError,
    RuleNotFoundError,
    add_rule,
    expire_rule,
    latest_version,
    list_rule_rows,
    list_versions,
)
from serve.seals import SealMismatchError, rule_profile_seal_problems, seal_detail
from serve.tables import RuleProfileRow, RuleSetVersion

router = APIRouter(prefix="/v1", tags=["rules"])

RuleCodePath = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Z0-9_-]+$")]


def rule_is_visible(caller: Caller, level: str | None, port: str | None) -> bool:
    """Whether ``caller`` may see a rule: national rules for everyone, port rules for callers of that port."""
    return port is None or caller.can_access_port(port)


def rule_public(row: RuleProfileRow) -> RulePublic:
    """Response body of a stored profile."""
    return RulePublic.model_validate(
        {name: getattr(row, name) for name in RulePublic.model_fields}
    )


HIDDEN_CHANGE = "a change of another port's rules"


def version_public(row: RuleSetVersion, caller: Caller | None = None, session: Session | None = None) -> RuleSetVersionPublic:
    """Response body of a rule-set version (without its rules).

    With ``caller`` (and the ``session`` it was read in), ``rule_count`` counts the rules the caller may see
    and the ``change`` of another port's rule is not named.
    """
    rules, change = json.loads(row.rules_json), row.change
    if caller is not None:
        rules = [r for r in rules if rule_is_visible(caller, r.get("level"), r.get("port"))]
        changed = session.scalars(
            select(RuleProfileRow).where(or_(RuleProfileRow.created_in_version == row.version, RuleProfileRow.expired_in_version == row.version))
        ).all()
        if any(not rule_is_visible(caller, r.level, r.port) for r in changed):
            change = HIDDEN_CHANGE
    return RuleSetVersionPublic(
        version=row.version,
        created_at=row.created_at,
        created_by=row.created_by,
        change=change,
        ruleset_hash=row.ruleset_hash,
        rule_count=len(rules),
    )


@router.get("/rules", response_model=RuleList)
def get_rules(
    caller: RuleReader, database: DatabaseDep, writer: AuditWriterDep, include_expired: Annotated[bool, Query()] = False
) -> RuleList:
    """Stored profiles ordered by code (active only unless ``include_expired``) and the current version.

    Each profile shown is checked against its seal: one edited in the store or inserted there behind the
    service answers 500 and the audit event names it.
    """
    with database.read() as session:
        rows = [r for r in list_rule_rows(session, include_expired=include_expired) if rule_is_visible(caller, r.level, r.port)]
        version = latest_version(session) or 0
        problems = rule_profile_seal_problems(session, rows)
    if problems:
        caller.audit_read(writer, action="rule.read", object_type="rule_profile", result="error", status_code=500,
                          detail={"bad_records": [p.record for p in problems[:20]]})
        raise SealMismatchError("rule_profile", problems)
    return RuleList(ruleset_version=version, items=[rule_public(r) for r in rows])


@router.get("/rules/versions", response_model=list[RuleSetVersionPublic])
def get_rule_versions(caller: RuleReader, database: DatabaseDep) -> list[RuleSetVersionPublic]:
    """Every rule-set version, oldest first."""
    with database.read() as session:
        return [version_public(v, caller, session) for v in list_versions(session)]


@router.get("/rules/versions/{version}", response_model=RuleSetVersionDetail)
def get_rule_version(
    version: Annotated[int, Path(ge=1, le=2**31 - 1)], caller: RuleReader, database: DatabaseDep
) -> RuleSetVersionDetail:
    """One rule-set version with its rules (what lists recording this version were built with; an officer sees the
    national rules and those of their own ports, and ``rule_count`` counts those)."""
    with database.read() as session:
        row = session.get(RuleSetVersion, version)
        public = None if row is None else version_public(row, caller, session)
    if row is None:
        raise HTTPException(status_code=404, detail="rule-set version not found")
    rules = [r for r in json.loads(row.rules_json) if rule_is_visible(caller, r.get("level"), r.get("port"))]
    return RuleSetVersionDetail(**public.model_dump(), rules=rules)


@router.post("/rules", status_code=201, response_model=RuleChange)
def create_rule(body: RuleCreate, caller: RuleWriter, database: DatabaseDep) -> RuleChange:
    """Add a profile (409 while a profile with its code is active); writes a new rule-set version."""
    profile = body.to_profile()
    conflict = None
    with database.write() as session:
        try:
            row, version = add_rule(session, profile, actor=caller.key_id)
        except RuleConflictError as exc:
            conflict = str(exc)
        caller.audit(
            session,
            action="rule.create",
            object_type="rule_profile",
            object_id=profile.code,
            port=profile.port,
            result="ok" if conflict is None else "conflict",
            status_code=201 if conflict is None else 409,
            detail=None if conflict else {"ruleset_version": version.version, "ruleset_hash": version.ruleset_hash, **seal_detail(row, version)},
        )
        change = None if conflict else RuleChange(rule=rule_public(row), ruleset_version=version_public(version))
    if change is None:
        raise HTTPException(status_code=409, detail=conflict)
    return change


@router.post("/rules/{code}/expire", response_model=RuleChange)
def expire_rule_profile(code: RuleCodePath, caller: RuleWriter, database: DatabaseDep) -> RuleChange:
    """Expire the active profile ``code``; writes a new rule-set version."""
    change = None
    with database.write() as session:
        try:
            row, version = expire_rule(session, code, actor=caller.key_id)
            change = RuleChange(rule=rule_public(row), ruleset_version=version_public(version))
            seals = seal_detail(row, version)
        except RuleNotFoundError:
            pass
        caller.audit(
            session,
            action="rule.expire",
            object_type="rule_profile",
            object_id=code,
            result="ok" if change else "not_found",
            status_code=200 if change else 404,
            detail=None
            if change is None
            else {"ruleset_version": change.ruleset_version.version, "ruleset_hash": change.ruleset_version.ruleset_hash, **seals},
        )
    if change is None:
        raise HTTPException(status_code=404, detail="no active rule profile with this code")
    return change
