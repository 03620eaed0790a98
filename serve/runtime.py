"""The engine as the running service holds it: possibly absent, reloadable.

When no engine could be created the service still runs: routes that need the
engine answer 503 and ``/readyz`` is 503; ``POST /v1/models/reload`` tries the
factory again.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable

from serve.settings import Settings
from targeting.engine import ModelInfo, ModelUnavailableError, TargetingEngine

logger = logging.getLogger("serve")

EngineFactory = Callable[[Settings], TargetingEngine]


def load_engine_factory(spec: str) -> EngineFactory:
    """Import ``package.module:callable`` (the ``CCP_ENGINE_FACTORY`` setting).

    Raises
    ------
    ValueError
        When ``spec`` is not ``module:callable`` or does not name a callable.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError("engine factory must look like 'package.module:callable'")
    factory = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(factory):
        raise ValueError(f"{spec!r} is not a callable")
    return factory


class EngineHolder:
    """Holds the engine (or ``None``) and the factory that can (re)create it. Thread-safe."""

    def __init__(self, settings: Settings, engine: TargetingEngine | None, factory: EngineFactory | None) -> None:
        self._settings = settings
        self._engine = engine
        self._factory = factory
        self._lock = threading.Lock()

    @property
    def engine(self) -> TargetingEngine | None:
        """The engine, ``None`` when none could be created."""
        return self._engine

    def try_create(self) -> bool:
        """Create the engine with the factory if there is none; ``True`` when an engine is held afterwards.

        A failing factory is logged (without secrets) and leaves no engine.
        """
        with self._lock:
            if self._engine is not None:
                return True
            if self._factory is None:
                return False
            try:
                self._engine = self._factory(self._settings)
            except Exception as exc:  # noqa: BLE001 - the service must start without an engine
                logger.error("could not create the targeting engine: %s: %s", type(exc).__name__, exc)
                self._engine = None
            return self._engine is not None

    def require(self) -> TargetingEngine:
        """The engine; raises :class:`ModelUnavailableError` (-> 503) when there is none."""
        engine = self._engine
        if engine is None:
            raise ModelUnavailableError("no targeting engine is available")
        return engine

    def reload(self) -> ModelInfo:
        """Create the engine if absent, else ask it to resolve the champion again; return the model served."""
        if self._engine is None:
            if not self.try_create():
                raise ModelUnavailableError("no targeting engine is available")
            return self.require().model_info()
        return self.require().reload()

    def ready(self) -> dict[str, bool]:
        """Readiness of the engine: ``engine`` plus the engine's own boolean checks."""
        engine = self._engine
        if engine is None:
            return {"engine": False}
        try:
            checks = {str(k): bool(v) for k, v in engine.ready().items()}
        except Exception as exc:  # noqa: BLE001 - readiness is a boolean
            logger.warning("engine readiness check failed: %s", type(exc).__name__)
            return {"engine": False}
        return {"engine": True, **checks}
