"""The engine behind the service: lake history, the champion model and the selection policy.

A list for port P and day D is built at decision time D 00:00 UTC from the
lake as of its latest commit (the commit number is recorded, so a replay reads
exactly the same data), the rule set and watchlist the service passes in, and
the champion model resolved once for the list.

Per decision time and lake commit the engine caches the pre-aggregated entity
state and the container events of the last 200 days (event features only look
at a voyage window ending at the decision time), so every list of that day
after the first is a few hash joins away.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from features.entity import EntityState
from features.history import History
from features.intel import match_alerts
from features.lake import Lake
from features.pipeline import build_features, entity_state
from features.reference import known_locodes
from features.rules import evaluate_rules
from models.risk_model import predict_proba
from targeting.champion import ChampionStore, LoadedModel
from targeting.engine import ContainerRisk, ModelInfo, ModelUnavailableError, RuleSetSnapshot, UnknownPortError
from targeting.explain import model_reasons_for
from targeting.lists import InspectionList, ListRequest
from targeting.policy import PolicyConfig, build_inspection_list, candidates_for, compose_reasons, decision_time, select, watchlist_reasons

EVENT_WINDOW = timedelta(days=200)
STATE_CACHE_SIZE = 4
MODEL_NAME = "container-risk"


@dataclass(frozen=True)
class DayContext:
    """Everything cached for one (lake commit, decision time)."""

    seq: int
    at: datetime
    state: EntityState
    events: pl.DataFrame


def watchlist_sha256(watchlist: pl.DataFrame | None) -> str:
    """Order-independent digest of watchlist rows."""
    if watchlist is None or watchlist.height == 0:
        return hashlib.sha256(b"").hexdigest()
    rows = sorted(str(r) for r in watchlist.sort("alert_id").iter_rows())
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


class LakeEngine:
    """Implements :class:`targeting.engine.TargetingEngine` over a lake and an MLflow registry. Thread-safe."""

    def __init__(self, *, lake_dir: Path, tracking_uri: str, cache_dir: Path, policy: PolicyConfig = PolicyConfig(), threads: int = 2) -> None:
        self.lake = Lake(lake_dir)
        self.models = ChampionStore(tracking_uri, cache_dir)
        self.policy = policy
        self.threads = threads
        self._lock = threading.RLock()
        self._model: LoadedModel | None = None
        self._days: OrderedDict[tuple[int, datetime], DayContext] = OrderedDict()
        self._day_locks: dict[tuple[int, datetime], threading.Lock] = {}
        try:
            self._model = self.models.champion()
        except ModelUnavailableError:
            self._model = None

    # ------------------------------------------------------------------ model
    def _current(self) -> LoadedModel:
        with self._lock:
            if self._model is None:
                raise ModelUnavailableError("no champion model is loaded: train and promote one, then reload")
            return self._model

    def model_info(self) -> ModelInfo:
        model = self._current()
        return ModelInfo(name=MODEL_NAME, version=model.version, artifact_sha256=model.model_sha256, source=model.source, metrics=dict(model.metrics))

    def reload(self) -> ModelInfo:
        model = self.models.champion()
        with self._lock:
            self._model = model
        return self.model_info()

    def ready(self) -> dict[str, bool]:
        with self._lock:
            loaded = self._model is not None
        try:
            self.lake.last_seq()
            lake_ok = True
        except Exception:  # noqa: BLE001
            lake_ok = False
        return {"model_loaded": loaded, "lake_readable": lake_ok}

    # ------------------------------------------------------------------ data
    def _history(self, seq: int, watchlist: pl.DataFrame | None) -> History:
        return History.from_lake(self.lake, as_of=seq).with_alerts(watchlist)

    def _day(self, seq: int, at: datetime) -> DayContext:
        key = (seq, at)
        with self._lock:
            if key in self._days:
                self._days.move_to_end(key)
                return self._days[key]
            day_lock = self._day_locks.setdefault(key, threading.Lock())
        with day_lock:  # one build per day; other requests of that day wait for it
            with self._lock:
                if key in self._days:
                    return self._days[key]
            history = History.from_lake(self.lake, as_of=seq)
            events = history.events.filter((pl.col("event_time") >= at - EVENT_WINDOW) & (pl.col("event_time") < at)).collect()
            context = DayContext(seq=seq, at=at, state=entity_state(history, at), events=events)
            with self._lock:
                self._days[key] = context
                while len(self._days) > STATE_CACHE_SIZE:
                    old, _ = self._days.popitem(last=False)
                    self._day_locks.pop(old, None)
            return context

    def prepare(self, day: date) -> None:
        """Build the cached state for ``day`` ahead of the first list (e.g. at start-up)."""
        self._day(self.lake.last_seq(), decision_time(day))

    def _input_sha256(self, seq: int, watchlist: pl.DataFrame | None) -> str:
        digest = hashlib.sha256()
        for table in ("manifests", "events", "outcomes", "alerts"):
            digest.update(f"{table}:{self.lake.data_sha256(table, as_of=seq)}\n".encode())
        digest.update(f"watchlist:{watchlist_sha256(watchlist)}\n".encode())
        return digest.hexdigest()

    # ------------------------------------------------------------------ lists
    def build_list(self, request: ListRequest, *, ruleset: RuleSetSnapshot, watchlist: pl.DataFrame, decision_at: datetime | None = None) -> InspectionList:
        if request.port not in known_locodes():
            raise UnknownPortError(f"unknown port {request.port!r}: not in the port reference")
        model = self._current()
        return self._build(request, ruleset, watchlist, model, self.lake.last_seq())

    def replay(self, record: InspectionList, *, ruleset: RuleSetSnapshot, watchlist: pl.DataFrame) -> InspectionList:
        if record.data_version is None:
            raise ValueError("the stored list has no data version: it cannot be replayed")
        request = ListRequest(
            port=record.port,
            list_date=record.list_date,
            capacity=record.capacity,
            exploration_share=record.exploration_share,
            nii_capacity=record.nii_capacity,
            physical_capacity=record.physical_capacity,
            seed=record.seed,
        )
        model = self.models.version(record.model_version)
        if model.model_sha256 != record.model_artifact_sha256:
            raise ValueError(f"model version {record.model_version} no longer matches the recorded artifact hash")
        return self._build(request, ruleset, watchlist, model, record.data_version)

    def _build(self, request: ListRequest, ruleset: RuleSetSnapshot, watchlist: pl.DataFrame, model: LoadedModel, seq: int) -> InspectionList:
        at = decision_time(request.list_date)
        history = self._history(seq, watchlist)
        candidates = candidates_for(history.manifests, request.port, request.list_date).collect()
        day = self._day(seq, at)
        feats = build_features(candidates.drop("call_type"), History(history.manifests, day.events.lazy(), history.outcomes, history.alerts), model.stats, state=day.state)
        scores = predict_proba(model.booster, feats, num_threads=self.threads)
        alert_hits = match_alerts(candidates.lazy(), history.alerts).collect()
        rule_hits = evaluate_rules(ruleset.rules, candidates.lazy(), at=at, port=request.port).collect()
        selection = select(feats.select("manifest_id", "container_number"), scores, alert_hits=alert_hits, rule_hits=rule_hits, request=request, config=self.policy)
        reasons = model_reasons_for(model.booster, feats, selection.manifest_ids, top=self.policy.model_reasons, vocabularies=model.stats.vocabularies)
        built = build_inspection_list(
            selection,
            request=request,
            model_reasons=reasons,
            decision_at=at,
            model_name=MODEL_NAME,
            model_version=model.version,
            model_artifact_sha256=model.model_sha256,
            ruleset_version=ruleset.version,
            input_data_sha256=self._input_sha256(seq, watchlist),
            config=self.policy,
        )
        return replace(built, data_version=seq)

    # ------------------------------------------------------------------ ad-hoc risk
    def container_risk(self, port: str, container_number: str, *, ruleset: RuleSetSnapshot, watchlist: pl.DataFrame, at: datetime) -> ContainerRisk | None:
        """Risk of the container's next manifest due at ``port``, scored as of 00:00 UTC of ``at``'s day (as the day's list)."""
        if port not in known_locodes():
            raise UnknownPortError(f"unknown port {port!r}: not in the port reference")
        model = self._current()
        seq = self.lake.last_seq()
        day = at.astimezone(UTC).date()
        history = self._history(seq, watchlist)
        decision = decision_time(day)
        due = (
            history.manifests.filter(pl.col("container_number") == container_number)
            .filter(pl.col("eta") >= decision)
            .filter(pl.col("filed_at") < decision)
            .filter((pl.col("port_of_discharge") == port) | pl.col("transshipment_ports").list.contains(port))
            .sort("eta", "manifest_id")
            .head(1)
            .with_columns(pl.lit(decision).alias("decision_at"))
            .collect()
        )
        if due.height == 0:
            return None
        context = self._day(seq, decision)
        feats = build_features(due, History(history.manifests, context.events.lazy(), history.outcomes, history.alerts), model.stats, state=context.state)
        score = float(predict_proba(model.booster, feats, num_threads=1)[0])
        alerts = match_alerts(due.lazy(), history.alerts).collect()
        rules = evaluate_rules(ruleset.rules, due.lazy(), at=decision, port=port).collect()
        reasons = model_reasons_for(model.booster, feats, due["manifest_id"].to_list(), top=self.policy.model_reasons, vocabularies=model.stats.vocabularies)
        alert_row = alerts.row(0, named=True)
        severities = alert_row["alert_severities"]
        texts = compose_reasons(
            watchlist_reasons(alert_row["alert_reasons"], severities, alert_row["alert_max_severity"]),
            rules["rule_reasons"][0].to_list(),
            list(reasons[due["manifest_id"][0]]),
            limit=self.policy.max_reasons,
        )
        return ContainerRisk(
            container_number=container_number,
            manifest_id=due["manifest_id"][0],
            port=port,
            score=score,
            reasons=texts,
            watchlist_hits=tuple(alert_row["alert_ids"]),
            rule_hits=tuple(rules["rule_codes"][0].to_list()),
            model_version=model.version,
        )


def engine_from_settings(settings) -> LakeEngine:
    """``CCP_ENGINE_FACTORY=targeting.lake_engine:engine_from_settings``: the engine over the configured lake and registry."""
    lake_dir = Path(settings.lake_dir)
    cache = Path(getattr(settings, "model_cache_dir", None) or lake_dir.parent / "var" / "model-cache")
    return LakeEngine(lake_dir=lake_dir, tracking_uri=settings.mlflow_tracking_uri, cache_dir=cache)


def today() -> date:
    return datetime.now(UTC).date()
