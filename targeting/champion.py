"""The champion model as serving sees it: loaded from the registry, with a verified local copy as fallback.

Every successful load from MLflow writes the model text, its feature
statistics, calibrator and integrity norms to ``cache_dir/<version>/`` with their sha256 digests (atomic
renames); resolving the ``champion`` alias also points
``cache_dir/champion.json`` at the champion's copy (loading another version,
e.g. to replay an old list, never moves that pointer). When MLflow is
unreachable, the last verified copy serves, after its digests are checked.
Models loaded from a local copy are not kept in memory: the next load tries
the registry again. Models are native LightGBM boosters read from text:
nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb

from features.integrity import IntegrityNorms
from features.stats import FeatureStats
from models.calibration import Calibrator
from targeting.engine import ModelUnavailableError

os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"


@dataclass(frozen=True)
class LoadedModel:
    """A model version ready to score: booster, statistics and provenance."""

    version: str
    booster: lgb.Booster
    stats: FeatureStats
    model_sha256: str
    source: str  # "registry" or "local-copy"
    metrics: dict[str, float]
    calibrator: Calibrator | None = None
    """The version's own score calibrator (from its model artefact); ``None`` for a version registered without one."""
    integrity_norms: IntegrityNorms | None = None
    """The version's own seal/dwell norms (from its model artefact); ``None`` for a version registered before they were bundled."""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class ChampionStore:
    """Resolves and loads model versions; thread-safe."""

    def __init__(self, tracking_uri: str, cache_dir: Path) -> None:
        self.tracking_uri = tracking_uri
        self.cache_dir = Path(cache_dir)
        self._lock = threading.Lock()
        self._by_version: dict[str, LoadedModel] = {}

    # ------------------------------------------------------------------ registry
    def _client(self):
        from models.tracking import configure

        return configure(self.tracking_uri)

    def champion(self) -> LoadedModel:
        """The version the ``champion`` alias points at now; the verified local copy when MLflow fails."""
        try:
            from models.tracking import champion_version

            version = champion_version(self._client())
        except Exception as exc:  # noqa: BLE001 - any registry failure falls back to the local copy
            return self._local_champion(f"registry unreachable ({type(exc).__name__}: {exc})")
        if version is None:
            return self._local_champion("no champion alias is set in the registry")
        model = self.version(version)
        if model.source == "registry":
            self._point_champion(model.version)
        return model

    def version(self, version: str) -> LoadedModel:
        """A specific version (used to replay a stored list with the model it was built with)."""
        with self._lock:
            cached = self._by_version.get(version)
        if cached is not None:
            return cached
        try:
            from models.tracking import load_version

            registered = load_version(self._client(), version)
            model = LoadedModel(
                version=registered.version,
                booster=registered.booster,
                stats=FeatureStats.from_json(registered.stats_json),
                model_sha256=registered.model_sha256,
                source="registry",
                metrics=registered.metrics,
                calibrator=None if registered.calibrator_json is None else Calibrator.from_json(registered.calibrator_json),
                integrity_norms=None if registered.integrity_norms_json is None else IntegrityNorms.from_json(registered.integrity_norms_json),
            )
            self._write_copy(model, registered.stats_json, registered.calibrator_json, registered.integrity_norms_json)
        except ModelUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001
            return self._local_version(version, f"registry unreachable ({type(exc).__name__}: {exc})")
        with self._lock:
            self._by_version[version] = model
        return model

    # ------------------------------------------------------------------ local verified copy
    def _write_copy(self, model: LoadedModel, stats_json: str, calibrator_json: str | None = None, norms_json: str | None = None) -> None:
        folder = self.cache_dir / model.version
        folder.mkdir(parents=True, exist_ok=True)
        text = model.booster.model_to_string()
        _atomic_write(folder / "model.txt", text)
        _atomic_write(folder / "feature_stats.json", stats_json)
        meta = {"version": model.version, "model_sha256": _sha256(text), "stats_sha256": _sha256(stats_json), "metrics": model.metrics}
        if calibrator_json is not None:
            _atomic_write(folder / "calibrator.json", calibrator_json)
            meta["calibrator_sha256"] = _sha256(calibrator_json)
        if norms_json is not None:
            _atomic_write(folder / "integrity_norms.json", norms_json)
            meta["integrity_norms_sha256"] = _sha256(norms_json)
        _atomic_write(folder / "meta.json", json.dumps(meta, sort_keys=True))

    def _point_champion(self, version: str) -> None:
        """Point ``champion.json`` at the verified copy of ``version`` (written when it was loaded from the registry)."""
        pointer = self.cache_dir / "champion.json"
        text = json.dumps({"version": version})
        try:
            if pointer.read_text() == text:
                return
        except OSError:
            pass
        _atomic_write(pointer, text)

    def _local_champion(self, why: str) -> LoadedModel:
        pointer = self.cache_dir / "champion.json"
        if not pointer.exists():
            raise ModelUnavailableError(f"no champion model: {why}, and no verified local copy in {self.cache_dir}")
        return self._local_version(json.loads(pointer.read_text())["version"], why)

    def _local_version(self, version: str, why: str) -> LoadedModel:
        folder = self.cache_dir / str(version)
        try:
            meta = json.loads((folder / "meta.json").read_text())
            text = (folder / "model.txt").read_text()
            stats_json = (folder / "feature_stats.json").read_text()
            calibrator_json = (folder / "calibrator.json").read_text() if "calibrator_sha256" in meta else None
            norms_json = (folder / "integrity_norms.json").read_text() if "integrity_norms_sha256" in meta else None
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(f"model version {version} unavailable: {why}; local copy unreadable ({exc})") from None
        if (_sha256(text) != meta["model_sha256"] or _sha256(stats_json) != meta["stats_sha256"]
                or (calibrator_json is not None and _sha256(calibrator_json) != meta["calibrator_sha256"])
                or (norms_json is not None and _sha256(norms_json) != meta["integrity_norms_sha256"])):
            raise ModelUnavailableError(f"model version {version} unavailable: {why}; local copy failed its sha256 check")
        return LoadedModel(
            version=str(version),
            booster=lgb.Booster(model_str=text),
            stats=FeatureStats.from_json(stats_json),
            model_sha256=meta["model_sha256"],
            source="local-copy",
            metrics=meta.get("metrics", {}),
            calibrator=None if calibrator_json is None else Calibrator.from_json(calibrator_json),
            integrity_norms=None if norms_json is None else IntegrityNorms.from_json(norms_json),
        )
