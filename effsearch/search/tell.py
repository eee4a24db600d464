"""Recording how a trial ended in the study: the one place a trial is told.

Used by the runner for every executor's outcomes and by the Ray Tune searcher for Tune's
results, so both record metrics, failures, stopped and rejected trials the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from effsearch.objectives.goals import Constraint, Objective, worst
from effsearch.search import records
from effsearch.search.cost_predictor import Verdict
from effsearch.search.executors.base import Status, TrialOutcome
from effsearch.search.study import reenqueue


@dataclass(frozen=True)
class Told:
    """What a trial was recorded as: ``complete``, ``rejected`` (an infeasible COMPLETE with
    imputed values), ``stopped`` (PRUNED), ``failed`` or ``interrupted`` (FAIL, re-enqueued)."""

    kind: str
    reason: str = ""
    values: tuple[float, ...] = ()


def record(
    study: optuna.Study,
    trial: optuna.Trial,
    outcome: TrialOutcome,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    interrupted: bool = False,
) -> Told:
    """Store ``outcome`` on ``trial`` (metrics, history, notes, where it was measured) and tell
    the study how it ended. ``interrupted``: the driver stopped it; its parameters are queued
    again so that a resumed run re-runs it."""
    trial.set_user_attr(records.METRICS, outcome.metrics)
    trial.set_user_attr(records.DURATION, round(outcome.duration_s, 3))
    if outcome.history:
        trial.set_user_attr(records.HISTORY, outcome.history)
    if outcome.notes:
        trial.set_user_attr(records.NOTES, outcome.notes)
    if outcome.measured_on:
        trial.set_user_attr(records.MEASURED_ON, outcome.measured_on)
    if outcome.status == Status.STOPPED:
        trial.set_user_attr(records.STOPPED, outcome.reason)
        study.tell(trial, state=TrialState.PRUNED)
        return Told("stopped", outcome.reason)
    if outcome.status == Status.REJECTED and _tell_rejected(
        study, trial, outcome, objectives, constraints
    ):
        return Told("rejected", outcome.reason)
    reason = (
        outcome.reason
        if not outcome.ok
        else missing_metric(outcome.metrics, objectives, constraints)
    )
    if reason:
        trial.set_user_attr(records.FAIL_REASON, reason)
        if interrupted:
            trial.set_user_attr(records.INTERRUPTED, True)
            reenqueue(study, trial.number, trial.params, trial.user_attrs)
        study.tell(trial, state=TrialState.FAIL)
        return Told("interrupted" if interrupted else "failed", reason)
    for constraint in constraints:
        trial.set_constraint(
            str(constraint), constraint.violation(outcome.metrics[constraint.metric])
        )
    values = tuple(outcome.metrics[o.metric] for o in objectives)
    study.tell(trial, list(values))
    return Told("complete", values=values)


def missing_metric(
    metrics: Mapping[str, float], objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> str:
    """Why ``metrics`` cannot be told ('' when every objective and constrained metric is in)."""
    needed = [o.metric for o in objectives] + [c.metric for c in constraints]
    missing = [m for m in dict.fromkeys(needed) if m not in metrics]
    if not missing:
        return ""
    got = ", ".join(sorted(metrics)) or "nothing"
    return f"the task returned no {', '.join(map(repr, missing))} (it returned: {got})"


def _tell_rejected(
    study: optuna.Study,
    trial: optuna.Trial,
    outcome: TrialOutcome,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
) -> bool:
    """Tell the optimizer about a configuration rejected before training.

    It is recorded as an infeasible COMPLETE trial (its constraint violations as measured
    before training; constraints on metrics not measured count as met) with imputed objective
    values: the worst each objective has reached so far. Samplers that model constraints learn
    to avoid the region; the trial can never be on the Pareto set. Returns False (record it as
    failed instead, still marked rejected) while no trial has values to impute from.
    """
    trial.set_user_attr(records.REJECTED, outcome.reason)
    imputed = _worst_so_far(study, objectives)
    if imputed is None:
        return False
    for constraint in constraints:
        value = outcome.metrics.get(constraint.metric)
        trial.set_constraint(
            str(constraint), constraint.violation(value) if value is not None else 0.0
        )
    study.tell(trial, imputed)
    return True


def record_prediction_rejection(
    study: optuna.Study,
    trial: optuna.Trial,
    verdict: Verdict,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
) -> Told:
    """Tell the optimizer about a configuration the cost predictor turned away (it did not
    run): like a configuration rejected before training, with its constraint violations as
    predicted. Before any trial has values to impute from, it is recorded as FAIL."""
    reason = f"rejected by prediction: {verdict.reason}"
    trial.set_user_attr(records.REJECTED_BY_PREDICTION, verdict.reason)
    trial.set_user_attr(records.DURATION, 0.0)
    imputed = _worst_so_far(study, objectives)
    if imputed is None:
        trial.set_user_attr(records.FAIL_REASON, reason)
        study.tell(trial, state=TrialState.FAIL)
        return Told("failed", reason)
    trial.set_user_attr(records.REJECTED, reason)
    predicted = {p.constraint: p.median for p in verdict.predictions}
    for constraint in constraints:
        name = str(constraint)
        trial.set_constraint(
            name, constraint.violation(predicted[name]) if name in predicted else 0.0
        )
    study.tell(trial, imputed)
    return Told("rejected", reason)


def _worst_so_far(study: optuna.Study, objectives: Sequence[Objective]) -> list[float] | None:
    """The worst value each objective has reached in trials that ran (None: none yet)."""
    measured = [
        t.values
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if records.REJECTED not in t.user_attrs
    ]
    return worst(measured, objectives) if measured else None
