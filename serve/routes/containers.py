"""An officer's ad-hoc risk check of one container due at their port."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import AfterValidator

from serve.db import utcnow
from serve.deps import Caller, DatabaseDep, EngineHolderDep, RiskReader
from serve.schemas.models import ContainerRiskPublic
from serve.store.rulesets import current_ruleset
from serve.store.watchlist import watchlist_frame_at
from serve.validators import normalize_container_number, normalize_locode
from targeting.engine import UnknownPortError

router = APIRouter(prefix="/v1", tags=["containers"])

ContainerPath = Annotated[str, Path(min_length=11, max_length=20), AfterValidator(normalize_container_number)]
PortQuery = Annotated[
    str | None,
    Query(min_length=5, max_length=16, description="Required unless the caller is an officer of exactly one port"),
    AfterValidator(lambda v: None if v is None else normalize_locode(v)),
]
NOTHING_DUE = "no manifest for this container is due at this port"


def resolve_port(caller: Caller, port: str | None) -> str:
    """The port of the check: the given one, or a single-port officer's own port; 422 when ambiguous."""
    if port is not None:
        return port
    ports = caller.principal.ports
    if caller.principal.port_scoped and len(ports) == 1:
        return ports[0]
    raise HTTPException(status_code=422, detail="the port query parameter is required")


@router.get("/containers/{container}/risk", response_model=ContainerRiskPublic)
def container_risk(
    container: ContainerPath,
    caller: RiskReader,
    database: DatabaseDep,
    holder: EngineHolderDep,
    port: PortQuery = None,
) -> ContainerRiskPublic:
    """Score the container's next manifest due at the port, with reasons; 404 when none is due."""
    at_port = resolve_port(caller, port)
    audit = {"action": "risk.check", "object_type": "container", "object_id": container, "port": at_port}
    if not caller.can_access_port(at_port):
        with database.write() as session:
            caller.audit(session, **audit, result="not_found", status_code=404)
        raise HTTPException(status_code=404, detail=NOTHING_DUE)
    engine = holder.require()
    with database.write() as session:
        ruleset = current_ruleset(session)
        at = utcnow()
        watchlist = watchlist_frame_at(session, at)
    try:
        risk = engine.container_risk(at_port, container, ruleset=ruleset, watchlist=watchlist, at=at)
    except UnknownPortError:
        risk = None
    with database.write() as session:
        caller.audit(
            session,
            **audit,
            model_version=None if risk is None else risk.model_version,
            result="ok" if risk is not None else "not_found",
            status_code=200 if risk is not None else 404,
            detail={"ruleset_version": ruleset.version},
        )
    if risk is None:
        raise HTTPException(status_code=404, detail=NOTHING_DUE)
    return ContainerRiskPublic(
        container_number=risk.container_number,
        manifest_id=risk.manifest_id,
        port=risk.port,
        score=risk.score,
        reasons=list(risk.reasons),
        watchlist_hits=list(risk.watchlist_hits),
        rule_hits=list(risk.rule_hits),
        model_version=risk.model_version,
        risk_probability=risk.risk_probability,
        risk_band=risk.risk_band,
    )
