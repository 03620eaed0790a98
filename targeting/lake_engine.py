"""The engine behind the service: lake history, the champion model and the selection policy.

A list for port P, day D and a direction is decided by :mod:`targeting.kernel`
at decision time D 00:00 UTC from the
lake as of its latest lake log entry (the entry number and the Delta version of
every table read are recorded, so a replay reads exactly the same data), the rule set and watchlist the service passes in, and
the champion model resolved once for the list.

Per decision time and lake commit the engine caches the pre-aggregated entity
state and the container events of the last 200 days (event features only look
at a voyage window ending at the decision time). Per port-day it caches what
every list of that port-day shares: the candidates (per lake commit), their
features, scores, alert hits and precursor hits (per model and watchlist
content; precursor hits read the commit's ``pre_export_notifications``), their rule
hits (per rule-set content) and the model reasons of every candidate explained
so far. Each cache key names every input of what it holds, so a cached value
is exactly what a fresh computation would give (a replay, which reads an older
commit or model, gets its own entries). The first list of a port-day pays for
the features; the next ones only for the selection and the record.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Generic, TypeVar

import polars as pl

from features import clock
from features.entity import EntityState
from features.history import History
from features.intel import match_alerts
from features.data.lake import Lake
from features.pipeline import build_features, entity_state
from features.data.reference import known_locodes
from features.rules.language import evaluate_rules
from models.calibration import NOT_RATED, risk_band
from models.risk_model import predict_proba
from targeting.champion import ChampionStore, LoadedModel
from targeting.engine import ContainerRisk, ModelInfo, ModelUnavailableError, RuleSetSnapshot, UnknownPortError
from targeting.explain import model_reasons_for
from targeting import kernel
from targeting.kernel import MODEL_NAME, NO_MODEL_VERSION, Snapshot
from targeting.lists import InspectionList, ListRequest, canonical_json
from targeting.policy import PolicyConfig, compose_reasons, decision_time, watchlist_reasons
from targeting.record import without_risk

EVENT_WINDOW = timedelta(days=200)
LIST_TABLES = ("manifests", "events", "outcomes", "alerts", "pre_export_notifications")
"""The lake tables a list reads (:meth:`features.history.History.from_lake`); their versions are recorded in the list."""
STATE_CACHE_SIZE = 4
PORT_DAY_CACHE_SIZE = 32

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Memo(Generic[K, V]):
    """A bounded LRU of computed values; concurrent requests for a missing key wait for one computation."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._building: dict[K, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: K, build: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            try:
                value = build()
            except BaseException:
                with self._lock:
                    self._building.pop(key, None)
                raise
            with self._lock:
                self._items[key] = value
                self._building.pop(key, None)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@dataclass(frozen=True)
class DayContext:
    """Everything cached for one (lake commit, decision time)."""

    seq: int
    at: datetime
    state: EntityState
    events: pl.DataFrame


@dataclass
class ScoredDay:
    """A port-day-direction prepared with one model and one watchlist: what every list of it reuses."""

    prepared: kernel.Prepared
    input_sha256: str
    reasons: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Model reasons of the candidates explained so far (explanations are per row: a row's do not depend on the others)."""
    lock: threading.Lock = field(default_factory=threading.Lock)


def _calibrated(model: LoadedModel, score: float) -> dict:
    """``risk_probability`` and ``risk_band`` of one score under the model's own calibrator (not rated without one)."""
    if model.calibrator is None:
        return {"risk_probability": None, "risk_band": NOT_RATED}
    probability = float(model.calibrator.predict([score])[0])
    return {"risk_probability": probability, "risk_band": risk_band(probability)}


def _scorer(model: LoadedModel | None) -> kernel.Scorer | None:
    return None if model is None else kernel.Scorer.of(model)


def request_of(record: InspectionList) -> ListRequest:
    """The request a stored list was built for (what a replay decides again)."""
    return ListRequest(
        port=record.port,
        list_date=record.list_date,
        capacity=record.capacity,
        exploration_share=record.exploration_share,
        nii_capacity=record.nii_capacity,
        physical_capacity=record.physical_capacity,
        seed=record.seed,
        direction=record.direction,
        integrity_share=0.0 if record.integrity_share is None else record.integrity_share,  # recorded before the INTEGRITY slice: none
    )


def rules_sha256(rules) -> str:  # noqa: ANN001 - Sequence[RuleProfile]
    """Digest of rule profiles in their given order (evaluation output follows that order)."""
    return hashlib.sha256(canonical_json([rule.canonical() for rule in rules]).encode()).hexdigest()


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
        self._days: _Memo[tuple[int, datetime], DayContext] = _Memo(STATE_CACHE_SIZE)
        self._candidates: _Memo[tuple, pl.DataFrame] = _Memo(PORT_DAY_CACHE_SIZE)
        self._scored: _Memo[tuple, ScoredDay] = _Memo(PORT_DAY_CACHE_SIZE)
        self._rule_hits: _Memo[tuple, pl.DataFrame] = _Memo(PORT_DAY_CACHE_SIZE)
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
        def build() -> DayContext:
            history = History.from_lake(self.lake, as_of=seq)
            events = history.events.filter((pl.col("event_time") >= at - EVENT_WINDOW) & (pl.col("event_time") < at)).collect()
            return DayContext(seq=seq, at=at, state=entity_state(history, at), events=events)

        return self._days.get((seq, at), build)  # one build per day; other requests of that day wait for it

    def prepare(self, day: date) -> None:
        """Build the cached state for ``day`` ahead of the first list (e.g. at start-up)."""
        self._day(self.lake.last_seq(), decision_time(day))

    def _input_sha256(self, seq: int, watchlist: pl.DataFrame | None) -> str:
        digest = hashlib.sha256()
        for table in ("manifests", "events", "outcomes", "alerts"):
            digest.update(f"{table}:{self.lake.data_sha256(table, as_of=seq)}\n".encode())
        if self.lake.files("pre_export_notifications", as_of=seq):  # only when present: older records keep their digest
            digest.update(f"pre_export_notifications:{self.lake.data_sha256('pre_export_notifications', as_of=seq)}\n".encode())
        digest.update(f"watchlist:{watchlist_sha256(watchlist)}\n".encode())
        return digest.hexdigest()

    # ------------------------------------------------------------------ lists
    def _champion_or_none(self) -> LoadedModel | None:
        with self._lock:
            return self._model

    def build_list(self, request: ListRequest, *, ruleset: RuleSetSnapshot, watchlist: pl.DataFrame, decision_at: datetime | None = None) -> InspectionList:
        """The list for ``request`` from the lake's latest commit; without a champion, the day-one list (see :mod:`targeting.kernel`)."""
        if request.port not in known_locodes():
            raise UnknownPortError(f"unknown port {request.port!r}: not in the port reference")
        return self._build(request, ruleset, watchlist, self._champion_or_none(), self.lake.last_seq())

    def replay(self, record: InspectionList, *, ruleset: RuleSetSnapshot, watchlist: pl.DataFrame) -> InspectionList:
        if record.data_version is None:
            raise ValueError("the stored list has no data version: it cannot be replayed")
        request = request_of(record)
        model = None
        if record.model_version != NO_MODEL_VERSION:
            model = self.models.version(record.model_version)
            if model.model_sha256 != record.model_artifact_sha256:
                raise ValueError(f"model version {record.model_version} no longer matches the recorded artifact hash")
        if record.lake_versions is not None and self._read_versions(record.data_version) != record.lake_versions:
            raise ValueError(
                f"lake log entry {record.data_version} names table versions {self._read_versions(record.data_version)}, "
                f"not the {record.lake_versions} the list read"
            )
        rebuilt = self._build(request, ruleset, watchlist, model, record.data_version)
        if record.lake_versions is None:  # recorded before the lake was on Delta tables
            rebuilt = replace(rebuilt, lake_versions=None)
        if record.integrity_share is None:  # recorded before the INTEGRITY slice: no share, no integrity on its items
            rebuilt = replace(rebuilt, integrity_share=None, items=tuple(replace(i, integrity=None) for i in rebuilt.items))
        return without_risk(rebuilt) if record.calibrator_sha256 is None else rebuilt  # recorded before calibrated risk

    def _read_versions(self, seq: int) -> dict[str, int]:
        """Delta versions, as of lake log entry ``seq``, of the tables a list reads (the quarantine tables are not read)."""
        return {table: version for table, version in self.lake.versions(as_of=seq).items() if table in LIST_TABLES}

    def snapshot(self, seq: int, day: date) -> Snapshot:
        """The kernel's snapshot of lake commit ``seq`` at ``day``'s decision time (events and entity state cached)."""
        context = self._day(seq, decision_time(day))
        history = History.from_lake(self.lake, as_of=seq)
        return Snapshot(replace(history, events=context.events.lazy()), state=context.state)

    def _scored_day(self, request: ListRequest, watchlist: pl.DataFrame, model: LoadedModel | None, seq: int) -> ScoredDay:
        """:func:`targeting.kernel.prepare` of the request's port-day-direction (cached, see the module docstring)."""
        port, day, direction = request.port, request.list_date, request.direction
        snapshot = self.snapshot(seq, day)

        def rows() -> pl.DataFrame:
            return kernel.candidate_rows(snapshot, request)

        def build() -> ScoredDay:
            found = self._candidates.get((seq, port, day, direction), rows)
            prepared = kernel.prepare(snapshot, _scorer(model), watchlist, request, rows=found, threads=self.threads)
            return ScoredDay(prepared, self._input_sha256(seq, watchlist))

        version = None if model is None else (model.version, model.model_sha256)
        return self._scored.get((seq, port, day, direction, version, watchlist_sha256(watchlist)), build)

    def _reasons(self, scored: ScoredDay, model: LoadedModel | None, manifest_ids: list[str]) -> dict[str, tuple[str, ...]]:
        """Model reasons of ``manifest_ids``, explaining only the ones not explained before."""
        with scored.lock:
            missing = [m for m in manifest_ids if m not in scored.reasons]
            if missing:
                scored.reasons.update(kernel.model_reasons(scored.prepared, _scorer(model), missing, top=self.policy.model_reasons))
            return {m: scored.reasons[m] for m in manifest_ids}

    def _build(self, request: ListRequest, ruleset: RuleSetSnapshot, watchlist: pl.DataFrame, model: LoadedModel | None, seq: int) -> InspectionList:
        scored = self._scored_day(request, watchlist, model, seq)
        key = (seq, request.port, request.list_date, request.direction, rules_sha256(ruleset.rules))
        rules = self._rule_hits.get(key, lambda: kernel.rule_hits(ruleset.rules, scored.prepared, request))
        chosen = kernel.selection(scored.prepared, rules, request, self.policy)
        reasons = self._reasons(scored, model, chosen.manifest_ids)
        built = kernel.assemble(
            chosen, request, _scorer(model), reasons, ruleset_version=ruleset.version, input_data_sha256=scored.input_sha256, config=self.policy,
            integrity=kernel.integrity_of(scored.prepared, chosen.manifest_ids),
        )
        return replace(built, data_version=seq, lake_versions=self._read_versions(seq))

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
        rules = kernel.with_precursor_hits(rules, kernel.precursor_hits(due, history.notifications_before(decision)))  # as the day's list
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
            **_calibrated(model, score),
        )


def engine_from_settings(settings) -> LakeEngine:
    """``CCP_ENGINE_FACTORY=targeting.lake_engine:engine_from_settings``: the engine over the configured lake and registry."""
    lake_dir = Path(settings.lake_dir)
    cache = Path(settings.model_cache_dir or lake_dir.parent / "var" / "model-cache")
    return LakeEngine(lake_dir=lake_dir, tracking_uri=settings.mlflow_tracking_uri, cache_dir=cache)


def today() -> date:
    return clock.today()
