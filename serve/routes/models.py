"""The served model: what it is, and reloading it after a promotion."""

from __future__ import annotations

from fastapi import APIRouter

from serve.deps import DatabaseDep, EngineHolderDep, ModelReader, ModelReloader
from serve.schemas.models import ModelInfoPublic
from targeting.engine import ModelInfo, ModelUnavailableError

router = APIRouter(prefix="/v1", tags=["models"])


def model_public(info: ModelInfo) -> ModelInfoPublic:
    """Response body of the engine's model info."""
    return ModelInfoPublic(
        name=info.name,
        version=info.version,
        artifact_sha256=info.artifact_sha256,
        source=info.source,
        metrics={str(k): float(v) for k, v in info.metrics.items()},
    )


@router.get("/models", response_model=ModelInfoPublic)
def get_model(caller: ModelReader, holder: EngineHolderDep) -> ModelInfoPublic:
    """The champion being served: version, artifact hash, metrics (503 without a model)."""
    return model_public(holder.require().model_info())


@router.post("/models/reload", response_model=ModelInfoPublic)
def reload_model(caller: ModelReloader, holder: EngineHolderDep, database: DatabaseDep) -> ModelInfoPublic:
    """Resolve the ``champion`` alias again (or create the engine if it is absent); audited."""
    engine = holder.engine
    before = None
    if engine is not None:
        try:
            before = engine.model_info().version
        except ModelUnavailableError:
            before = None
    try:
        info = holder.reload()
    except ModelUnavailableError:
        with database.write() as session:
            caller.audit(session, action="model.reload", object_type="model", result="error", status_code=503,
                         detail={"before": before})
        raise
    with database.write() as session:
        caller.audit(
            session,
            action="model.reload",
            object_type="model",
            object_id=info.name,
            model_version=info.version,
            status_code=200,
            detail={"before": before, "after": info.version, "artifact_sha256": info.artifact_sha256},
        )
    return model_public(info)
