"""A cost predictor learned online: turn away configurations that will surely break a constraint.

``optimizer: {predict_costs: {confidence: 0.95, recheck_rate: 0.1, min_trials: 10}}``. Before
a proposed configuration runs, one GP per constrained metric, fitted to the study's own
finished trials that measured it (log scale for positive metrics, each trial's measured noise
included: ``objectives/noise.py``), predicts the metric with its uncertainty. When the probability
that a constraint is broken reaches ``confidence``, the configuration is *rejected by
prediction*: recorded as an infeasible trial that did not run (its predictions in the record),
so the optimizer learns to avoid the region and no compute is spent on it.

Wrong predictions must not remove a feasible Pareto member silently: a share ``recheck_rate``
of the would-be rejections runs anyway, marked ``prediction_recheck``; a recheck that meets
every constraint is a false rejection, and :func:`report` gives their rate next to the
predictor's rank correlation (Spearman, predicted against measured, over the trials that ran
with a prediction) and the compute the rejections saved (an estimate: each rejection at the
median time of the run's rejections before training where it has some, since without the
predictor such a configuration is rejected by that check; else of its whole trials).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from effsearch.objectives import noise
from effsearch.objectives.goals import Constraint
from effsearch.search import records
from effsearch.search.gp import Surrogate, torch_session
from effsearch.search.space_encoding import SpaceEncoding
from effsearch.spaces.knobs import SearchSpace


@dataclass(frozen=True)
class Prediction:
    """One constrained metric of one configuration, before it runs."""

    constraint: str
    metric: str
    median: float
    """The predicted value (exp of the log-scale mean for a positive metric)."""
    low: float
    high: float
    """A 90 % interval of the prediction."""
    probability_broken: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "constraint": self.constraint,
            "metric": self.metric,
            "median": self.median,
            "low": self.low,
            "high": self.high,
            "probability_broken": self.probability_broken,
        }


@dataclass(frozen=True)
class Verdict:
    """What to do with a proposed configuration."""

    predictions: tuple[Prediction, ...]
    reject: bool
    recheck: bool
    """Would be rejected, but runs to check the prediction."""

    @property
    def reason(self) -> str:
        sure = [p for p in self.predictions if p.probability_broken >= 0.5]
        return "; ".join(
            f"predicted {p.metric} {p.median:.4g} (90 % in {p.low:.4g}-{p.high:.4g}) breaks "
            f"{p.constraint} with probability {p.probability_broken:.3f}"
            for p in sure
        )


class CostPredictor:
    """Predicts the constrained metrics of configurations from a study's finished trials."""

    def __init__(
        self,
        space: SearchSpace,
        constraints: Sequence[Constraint],
        *,
        confidence: float = 0.95,
        recheck_rate: float = 0.1,
        min_trials: int = 10,
        seed: int = 0,
    ) -> None:
        self.encoding = SpaceEncoding(space)
        self.constraints = list(constraints)
        self.confidence = confidence
        self.recheck_rate = recheck_rate
        self.min_trials = min_trials
        self.seed = seed
        self._surrogates: dict[str, Surrogate] = {}

    def verdict(
        self, trials: Sequence[FrozenTrial], params: dict[str, Any], number: int
    ) -> Verdict:
        """Predict ``params``' constrained metrics from ``trials`` and decide (seeded by the
        trial ``number``, so a resumed run decides the same)."""
        with torch_session(self.seed + number, threads=1):
            predictions = tuple(
                p for c in self.constraints if (p := self._predict(trials, params, c)) is not None
            )
        sure = any(p.probability_broken >= self.confidence for p in predictions)
        if not sure:
            return Verdict(predictions, reject=False, recheck=False)
        draw = np.random.default_rng([self.seed, number]).random()
        recheck = bool(draw < self.recheck_rate)
        return Verdict(predictions, reject=not recheck, recheck=recheck)

    def _predict(
        self, trials: Sequence[FrozenTrial], params: dict[str, Any], constraint: Constraint
    ) -> Prediction | None:
        import torch
        from scipy.stats import norm

        metric = constraint.metric
        # every finished trial that measured it: a configuration rejected before training
        # (told FAIL while no trial had values to impute) measured its latency all the same
        seen = [
            (t.params, t.user_attrs[records.METRICS])
            for t in trials
            if t.state.is_finished() and metric in t.user_attrs.get(records.METRICS, {})
        ]
        seen = [(p, m) for p, m in seen if math.isfinite(m[metric])]
        if len(seen) < self.min_trials:
            return None
        values = np.array([m[metric] for _, m in seen], dtype=float)
        log = bool(np.all(values > 0))
        y = np.log(values) if log else values
        variances = np.array([(noise.variance(metric, m) or 0.0) for _, m in seen], dtype=float) / (
            values**2 if log else 1.0
        )
        x = np.array([self.encoding.encode(p) for p, _ in seen])
        surrogate = self._surrogates.setdefault(metric, Surrogate())
        model = surrogate.fit(x, y[:, None], variances[:, None])
        with torch.no_grad():
            posterior = model.posterior(torch.tensor(self.encoding.encode(params)[None]))
            mean = float(posterior.mean.squeeze())
            sd = float(posterior.variance.clamp_min(1e-12).sqrt().squeeze())
        limit = math.log(constraint.limit) if log and constraint.limit > 0 else constraint.limit
        if log and constraint.limit <= 0:
            broken = 1.0 if constraint.op == "<=" else 0.0  # positive values vs limit <= 0
        else:
            below = float(norm.cdf((limit - mean) / sd))
            broken = 1.0 - below if constraint.op == "<=" else below
        back = math.exp if log else (lambda v: v)
        return Prediction(
            constraint=str(constraint),
            metric=metric,
            median=back(mean),
            low=back(mean - 1.645 * sd),
            high=back(mean + 1.645 * sd),
            probability_broken=broken,
        )


def report(trials: Sequence[FrozenTrial]) -> dict[str, Any] | None:
    """How the predictor did in a run (None if it never predicted): ``predicted`` trials that
    ran, ``rank_correlation`` per metric (Spearman), ``rejected`` by prediction,
    ``compute_saved_s_est``, ``rechecks`` and ``false_rejections`` (rechecks that met every
    constraint) with their ``false_rejection_rate``."""
    from scipy.stats import spearmanr

    predicted = [t for t in trials if records.PREDICTED_COSTS in t.user_attrs]
    if not predicted:
        return None
    ran = [t for t in predicted if records.REJECTED_BY_PREDICTION not in t.user_attrs]
    correlation: dict[str, float | None] = {}
    pairs: dict[str, list[tuple[float, float]]] = {}
    for trial in ran:
        metrics = trial.user_attrs.get(records.METRICS, {})
        for p in trial.user_attrs[records.PREDICTED_COSTS]:
            if p["metric"] in metrics and trial.state == TrialState.COMPLETE:
                pairs.setdefault(p["metric"], []).append((p["median"], metrics[p["metric"]]))
    for metric, points in pairs.items():
        if len(points) >= 3 and len({b for _, b in points}) > 1:
            rho = spearmanr([a for a, _ in points], [b for _, b in points]).statistic
            correlation[metric] = float(rho)
        else:
            correlation[metric] = None
    rejected = [t for t in predicted if records.REJECTED_BY_PREDICTION in t.user_attrs]
    rechecks = [
        t
        for t in ran
        if t.user_attrs.get(records.PREDICTION_RECHECK) and t.state == TrialState.COMPLETE
    ]
    false = [t for t in rechecks if all(v <= 0 for v in t.constraints.values())]
    # What a rejected configuration would have cost without the predictor: where the run
    # rejects configurations before training (a constraint measured untrained), that check's
    # time; else a whole trial's.
    checked = [
        float(t.user_attrs[records.DURATION])
        for t in trials
        if t.user_attrs.get(records.REJECTED)
        and records.REJECTED_BY_PREDICTION not in t.user_attrs
        and records.DURATION in t.user_attrs
    ]
    durations = checked or [
        float(t.user_attrs[records.DURATION])
        for t in ran
        if t.state == TrialState.COMPLETE
        and records.DURATION in t.user_attrs
        and records.REJECTED not in t.user_attrs
    ]
    median_s = statistics.median(durations) if durations else 0.0
    return {
        "predicted": len(ran),
        "rank_correlation": correlation,
        "rejected": len(rejected),
        "compute_saved_s_est": round(len(rejected) * median_s, 1),
        "rechecks": len(rechecks),
        "false_rejections": len(false),
        "false_rejection_rate": len(false) / len(rechecks) if rechecks else None,
    }
