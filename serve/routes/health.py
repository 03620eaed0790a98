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
    """Ready when the store is migrated and reachable, the engine exists and its lake is readable: 200, else 503.

    ``model_loaded`` is reported but not required: without a champion, lists come from the watchlist,
    the rule profiles and a random slice, with a warning in the list body (day one of a new unit).
    """
    checks = {"store": _store_ready(database), **holder.ready()}
    ready = all(value for name, value in checks.items() if name != "model_loaded")
    body = Readiness(ready=ready, checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
