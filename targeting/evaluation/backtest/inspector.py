"""A strategy as the simulated world's inspector: the kernel per port and list period."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import polars as pl

from features.candidates import Direction
from features.data.contracts import MANIFESTS
from features.history import History
from features.integrity import ROW_COLUMNS as INTEGRITY_ROW_COLUMNS, integrity_details, integrity_inputs
from features.intel import match_alerts
from features.rules.language import RuleProfile, default_rule_profiles
from targeting.lists import ListRequest
from targeting import kernel
from targeting.policy import derive_seed
from targeting.evaluation.backtest.config import BacktestConfig, DECISION_SCHEMA, Strategy, WARMUP
from targeting.evaluation.backtest.sampling import _timed, capacity_for, plan_port_selection, reviewed_alerts, ucb_weights
from targeting.evaluation.backtest.learning import KnownHistory, Learner, _day_features


# --------------------------------------------------------------------------- the inspector


@dataclass
class StrategyInspector:
    """A strategy as a :class:`targeting.sim.world.Inspector`: the real selection policy per port and list period.

    Called by :meth:`targeting.sim.world.World.inspect` with a day's
    arrivals; it reads only their contract columns and the alerts, never the
    hidden ones. With a ``learner`` holding a model and ``known`` history it
    scores candidates (snapshot features at the decision time, cached for
    training); without a model (or with ``warmup``) it runs the warm-up
    behaviour for model strategies. Every draw uses generators seeded from
    ``seed``, the strategy name, the port and the day; the world's generator
    (``rng``) is never used. For multi-day list periods, :meth:`prepare`
    decides the whole period first; each call then returns its day's part.
    """

    strategy: Strategy
    config: BacktestConfig
    seed: int
    rules: list[RuleProfile] = field(default_factory=default_rule_profiles)
    learner: Learner | None = None
    known: KnownHistory | None = None
    warmup: bool = False
    prepared: dict[int, pl.DataFrame] = field(default_factory=dict)
    decisions: list[pl.DataFrame] = field(default_factory=list)
    candidates: list[pl.DataFrame] = field(default_factory=list)
    timers: dict[str, float] = field(default_factory=dict)

    def __call__(self, day: int, candidates: pl.DataFrame, alerts: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
        if day not in self.prepared:
            with _timed(self.timers, "decide"):
                self.prepare({day: candidates}, alerts)
        rows = self.prepared.pop(day)
        return rows.select("manifest_id", pl.col("source").alias("selection_source"), "exam_type")

    @property
    def _featuring(self) -> bool:
        """Whether the candidates' features are computed (and cached for training): statistics exist."""
        return self.strategy.uses_model and not self.warmup and self.learner is not None and self.learner.stats is not None

    @property
    def _scoring(self) -> bool:
        """Whether the candidates are scored by a model (until the first model exists, the warm-up behaviour runs)."""
        return self._featuring and self.learner.booster is not None

    @property
    def _judging(self) -> bool:
        """Whether the candidates' integrity is judged (the current model has its norms): the INTEGRITY slice runs."""
        return self._scoring and self.learner.integrity_norms is not None and self.config.integrity_share > 0

    def prepare(self, arrivals: dict[int, pl.DataFrame], alerts: pl.DataFrame) -> None:
        """Decide the list period made of ``arrivals`` (arrival day -> that day's manifests), pooling capacity per port."""
        days = sorted(arrivals)
        first = self.config.start + timedelta(days=days[0])
        alerts = reviewed_alerts(alerts, self.config.alert_days)
        per_day = [self._score_day(d, arrivals[d].select(MANIFESTS.column_names), alerts) for d in days]
        pooled = pl.concat([p[0] for p in per_day], how="vertical")
        hits = pl.concat([p[1] for p in per_day], how="vertical")
        rules = pl.concat([p[2] for p in per_day], how="vertical")
        self.candidates.append(pooled.select("day", "port", "manifest_id", pl.lit("IMPORT").alias("direction")))
        decided = []
        label = WARMUP.name if (self.strategy.uses_model and not self._scoring) else self.strategy.name
        for port in self.config.ports:
            mine = pooled.filter(pl.col("port") == port)
            ids = mine.get_column("manifest_id").implode()
            rows = plan_port_selection(
                self.strategy,
                mine,
                mine.get_column("score").to_numpy() if self._scoring else None,
                alert_hits=hits.filter(pl.col("manifest_id").is_in(ids)),
                rule_hits=rules.filter(pl.col("manifest_id").is_in(ids)),
                port=port,
                list_date=first,
                capacity=capacity_for(mine.height, self.config.capacity_share),
                seed=derive_seed(self.seed, label, port, days[0]),
                config=self.config,
                warmup=self.strategy.uses_model and not self._scoring,
                weights=mine.get_column("weight").to_numpy() if self._scoring and self.strategy.kind == "ucb" else None,
                integrity=mine.select("integrity_surprisal", "integrity_unusual") if self._judging else None,
            )
            decided.append(rows.join(mine.select("manifest_id", "day"), on="manifest_id", how="left").with_columns(pl.lit(port).alias("port"), pl.lit("IMPORT").alias("direction")))
        decision = pl.concat(decided, how="vertical").select([pl.col(c).cast(t) for c, t in DECISION_SCHEMA.items()])
        self.decisions.append(decision)
        for d in days:
            self.prepared[d] = decision.filter(pl.col("day") == d)
        if self._featuring:
            chosen = set(decision.get_column("manifest_id").to_list())
            for d, (_, _, _, feats) in zip(days, per_day):
                if feats is not None:
                    self.learner.remember(feats, chosen, d)

    def _score_day(self, day: int, manifests: pl.DataFrame, alerts: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame | None]:
        """Candidates of every port on ``day`` (with score and ucb weight), their alert hits, rule hits and features."""
        list_date = self.config.start + timedelta(days=day)
        parts, rule_parts = [], []
        for port in self.config.ports:
            request = ListRequest(port=port, list_date=list_date, capacity=0, direction=Direction.IMPORT)
            found = kernel.candidate_rows(kernel.Snapshot(History.from_frames(manifests)), request)
            parts.append(found.with_columns(pl.lit(port).alias("port"), pl.lit("IMPORT").alias("direction")))
            no_scores = kernel.Prepared(found, None, None, pl.DataFrame())
            rule_parts.append(kernel.rule_hits(self.rules, no_scores, request))
        cands = pl.concat(parts, how="vertical")
        hits = (
            match_alerts(cands.drop("port").lazy(), alerts.lazy())
            .select("manifest_id", "alert_count", "alert_max_severity", "alert_reasons", "alert_severities")
            .collect()
        )
        scores = np.zeros(cands.height)
        weights = np.zeros(cands.height)
        feats = None
        if self._featuring and cands.height:
            with _timed(self.timers, "features"):
                outcomes = self.known.outcome_frame()
                feats = _day_features(day, cands.drop("port"), self.known, alerts, self.learner.stats, outcomes)
        if self._scoring and feats is not None:
            with _timed(self.timers, "scoring"):
                scores = self.learner.score(feats)
            if self.strategy.kind == "ucb":
                seen = np.minimum(feats.get_column("lane_n_inspections").to_numpy(), feats.get_column("hs_origin_n_inspections").to_numpy())
                weights = ucb_weights(scores, seen, prior_rate=self.learner.stats.prior_finding_rate, kappa=self.config.ucb_kappa)
        surprisal, unusual = np.zeros(cands.height), np.zeros(cands.height, dtype=bool)
        if self._judging and feats is not None:
            judged = integrity_details(self.learner.integrity_norms, integrity_inputs(cands, feats))
            surprisal, unusual = judged.get_column("integrity_surprisal").to_numpy(), judged.get_column("integrity_unusual").to_numpy()
        if feats is not None:  # the inspecting port (outcomes label rows by manifest and port) and what integrity norms read
            feats = feats.with_columns(cands.get_column("port"), *(cands.get_column(c) for c in INTEGRITY_ROW_COLUMNS))
        scored = cands.select(
            pl.lit(day, dtype=pl.Int64).alias("day"), "port", "manifest_id", "container_number", pl.Series("score", scores), pl.Series("weight", weights),
            pl.Series("integrity_surprisal", surprisal, dtype=pl.Float64), pl.Series("integrity_unusual", unusual, dtype=pl.Boolean),
        )
        return scored, hits, pl.concat(rule_parts, how="vertical"), feats
