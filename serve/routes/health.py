"""Liveness and readiness probes (public, booleans only)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select

from serve.deps import DatabaseDep, EngineHolderDep, PublicDep
from serve.schemas.health import Liveness, Readiness
from serve.tables import RuleSetVersion

router = APIRouter(tags=["health"], dependencies=[PublicDep])


@router.get("/healthz", response_model=Liveness)
def healthz() -> Liveness:
    """The process is alive."""
    return Liveness(status="ok")


def _store_ready(database: DatabaseDep) -> bool:
    try:
        with database.read() as session:
            return session.scalar(select(RuleSetVersion.version).limit(1)) is not None
    except Exception:  # noqa: BLE001 - readiness is a boolean
        return False


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(database: DatabaseDep, holder: EngineHolderDep) -> JSONResponse:
    """Ready when the store is migrated and reachable and the engine has its model: 200, else 503."""
    checks = {"store": _store_ready(database), **holder.ready()}
    ready = all(checks.values())
    body = Readiness(ready=ready, checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
