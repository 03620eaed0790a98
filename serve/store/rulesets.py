"""Rule profiles and immutable rule-set versions.

Every change (seeding, adding a profile, expiring one) writes a new
``ruleset_versions`` row numbered ``previous + 1`` holding the canonical JSON
of the profiles active after the change and their
:func:`features.rules.language.ruleset_hash`. Lists are built with the newest version
and record its number, so a replay fetches exactly the same snapshot
(:func:`ruleset_snapshot`). Profiles are never deleted; expiring one sets its
``expired_at``. Call these functions inside a write unit of work
(:meth:`serve.db.Database.write`), which serialises version numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from features.rules.language import RuleProfile, default_rule_profiles, ruleset_hash
from serve.db import to_utc, utcnow
from serve.seals import SealMismatchError, ruleset_version_seal_problems
from serve.tables import RuleProfileRow, RuleSetVersion
from targeting.engine import RuleSetSnapshot, ruleset_from
from targeting.lists import canonical_json


class RuleConflictError(ValueError):
    """A profile with this code is already active."""


class RuleNotFoundError(LookupError):
    """No active profile has this code."""


class NoRuleSetError(LookupError):
    """The store has no rule-set version (it was never seeded)."""


def profile_of(row: RuleProfileRow) -> RuleProfile:
    """The :class:`RuleProfile` stored in ``row``."""
    return RuleProfile(
        code=row.code,
        reason=row.reason,
        expression=row.expression,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        level=row.level,
        port=row.port,
        weight=row.weight,
    )


def snapshot_json(rules: Sequence[RuleProfile]) -> str:
    """Canonical JSON of ``rules`` (ordered by code, then content): what a version stores."""
    return canonical_json(sorted((r.canonical() for r in rules), key=lambda d: (d["code"], canonical_json(d))))


def rules_from_json(text: str) -> tuple[RuleProfile, ...]:
    """Inverse of :func:`snapshot_json`."""
    return tuple(RuleProfile.model_validate(item) for item in json.loads(text))


def active_rule_rows(session: Session) -> list[RuleProfileRow]:
    """Profiles not expired in the store, ordered by code."""
    return list(
        session.scalars(select(RuleProfileRow).where(RuleProfileRow.expired_at.is_(None)).order_by(RuleProfileRow.code))
    )


def list_rule_rows(session: Session, *, include_expired: bool = False) -> list[RuleProfileRow]:
    """Stored profiles ordered by code then id (only active ones unless ``include_expired``)."""
    query = select(RuleProfileRow).order_by(RuleProfileRow.code, RuleProfileRow.id)
    if not include_expired:
        query = query.where(RuleProfileRow.expired_at.is_(None))
    return list(session.scalars(query))


def latest_version(session: Session) -> int | None:
    """Number of the newest rule-set version, ``None`` when there is none."""
    return session.scalar(select(func.max(RuleSetVersion.version)))


def _write_version(
    session: Session, rules: Sequence[RuleProfile], *, change: str, actor: str, at: datetime
) -> RuleSetVersion:
    """Insert the next version holding ``rules`` (the profiles active after the change)."""
    row = RuleSetVersion(
        version=(latest_version(session) or 0) + 1,
        created_at=at,
        created_by=actor,
        change=change[:200],
        ruleset_hash=ruleset_hash(rules),
        rules_json=snapshot_json(rules),
    )
    session.add(row)
    session.flush()
    return row


def _insert_profile(session: Session, profile: RuleProfile, *, version: int, actor: str, at: datetime) -> RuleProfileRow:
    row = RuleProfileRow(
        code=profile.code,
        reason=profile.reason,
        expression=profile.expression,
        valid_from=to_utc(profile.valid_from),
        valid_to=to_utc(profile.valid_to),
        level=profile.level,
        port=profile.port,
        weight=float(profile.weight),
        created_at=at,
        created_by=actor,
        created_in_version=version,
    )
    session.add(row)
    return row


def ensure_seeded(session: Session, *, actor: str = "system", at: datetime | None = None) -> RuleSetVersion | None:
    """Create version 1 from :func:`features.rules.language.default_rule_profiles` when the store has no version.

    Idempotent: returns ``None`` (and changes nothing) once any version exists.
    """
    if latest_version(session) is not None:
        return None
    at = at or utcnow()
    profiles = default_rule_profiles()
    version = _write_version(session, profiles, change="seed: default rule profiles", actor=actor, at=at)
    for profile in profiles:
        _insert_profile(session, profile, version=version.version, actor=actor, at=at)
    session.flush()
    return version


def seeded_profiles(session: Session, version: RuleSetVersion) -> list[RuleProfileRow]:
    """The profile rows created with ``version`` (ordered by id)."""
    return list(session.scalars(select(RuleProfileRow).where(RuleProfileRow.created_in_version == version.version).order_by(RuleProfileRow.id)))


def add_rule(
    session: Session, profile: RuleProfile, *, actor: str, at: datetime | None = None
) -> tuple[RuleProfileRow, RuleSetVersion]:
    """Add an active profile and write the new rule-set version.

    Raises
    ------
    RuleConflictError
        When a profile with the same code is active (expire it first).
    """
    at = at or utcnow()
    active = active_rule_rows(session)
    if any(row.code == profile.code for row in active):
        raise RuleConflictError(f"an active rule profile with code {profile.code!r} exists; expire it first")
    rules = [profile_of(row) for row in active] + [profile]
    version = _write_version(session, rules, change=f"add {profile.code}", actor=actor, at=at)
    row = _insert_profile(session, profile, version=version.version, actor=actor, at=at)
    session.flush()
    return row, version


def expire_rule(
    session: Session, code: str, *, actor: str, at: datetime | None = None
) -> tuple[RuleProfileRow, RuleSetVersion]:
    """Expire the active profile ``code`` and write the new rule-set version.

    Raises
    ------
    RuleNotFoundError
        When no active profile has this code.
    """
    at = at or utcnow()
    active = active_rule_rows(session)
    target = next((row for row in active if row.code == code), None)
    if target is None:
        raise RuleNotFoundError(f"no active rule profile with code {code!r}")
    rules = [profile_of(row) for row in active if row is not target]
    version = _write_version(session, rules, change=f"expire {code}", actor=actor, at=at)
    target.expired_at = at
    target.expired_by = actor
    target.expired_in_version = version.version
    session.flush()
    return target, version


def snapshot_of(row: RuleSetVersion) -> RuleSetSnapshot:
    """The engine-facing snapshot of a stored version."""
    return ruleset_from(rules_from_json(row.rules_json), row.version)


def current_ruleset(session: Session) -> RuleSetSnapshot:
    """The newest rule-set version (what new lists use).

    Raises
    ------
    NoRuleSetError
        When the store was never seeded (see :func:`ensure_seeded`).
    """
    row = session.scalar(select(RuleSetVersion).order_by(RuleSetVersion.version.desc()).limit(1))
    if row is None:
        raise NoRuleSetError("the store has no rule set; run the migrations and seed it")
    return snapshot_of(row)


def verified_current_ruleset(session: Session) -> RuleSetSnapshot:
    """:func:`current_ruleset`, its stored version first checked against its seal in the keyed audit trail (for building lists).

    Raises
    ------
    NoRuleSetError
        When the store was never seeded.
    serve.seals.SealMismatchError
        When the newest version's rules (or metadata) were edited in the store or it was inserted there behind the service.
    """
    row = session.scalar(select(RuleSetVersion).order_by(RuleSetVersion.version.desc()).limit(1))
    if row is None:
        raise NoRuleSetError("the store has no rule set; run the migrations and seed it")
    problems = ruleset_version_seal_problems(session, [row])
    if problems:
        raise SealMismatchError("ruleset_version", problems)
    return snapshot_of(row)


def ruleset_snapshot(session: Session, version: int) -> RuleSetSnapshot:
    """The snapshot of ``version`` (for replaying a stored list).

    Raises
    ------
    NoRuleSetError
        When the version does not exist.
    """
    row = session.get(RuleSetVersion, version)
    if row is None:
        raise NoRuleSetError(f"rule-set version {version} does not exist")
    return snapshot_of(row)


def list_versions(session: Session) -> list[RuleSetVersion]:
    """Every rule-set version, oldest first."""
    return list(session.scalars(select(RuleSetVersion).order_by(RuleSetVersion.version)))
