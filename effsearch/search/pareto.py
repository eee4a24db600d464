"""Pareto set and hypervolume of a study, directions handled in one place.

Internally every objective is a loss (maximized ones negated), as Optuna's hypervolume expects.
The reference point per objective comes from the recipe (the objective's ``ref``, else a
constraint limit on the same metric), else it is inferred from the finished trials as the worst
feasible value pushed out by 10 % of the observed range, and reported as inferred.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna._hypervolume import compute_hypervolume
from optuna.trial import FrozenTrial, TrialState

from effsearch.recipe import Constraint, ObjectiveSection


def signs(objectives: Sequence[ObjectiveSection]) -> np.ndarray:
    """+1 for minimized, -1 for maximized objectives: ``loss = sign * value``."""
    return np.array([1.0 if o.direction == "minimize" else -1.0 for o in objectives])


def is_feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0.0 for v in trial.constraints.values())


def feasible_complete(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state == TrialState.COMPLETE and is_feasible(t)]


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """Feasible complete trials that no other feasible complete trial dominates."""
    return sorted(study.best_trials, key=lambda t: t.number)


@dataclass(frozen=True)
class Hypervolume:
    value: float | None
    reference_point: list[float] | None  # in the objectives' own units and directions
    inferred: bool


def hypervolume(
    trials: Sequence[FrozenTrial],
    objectives: Sequence[ObjectiveSection],
    constraints: Sequence[Constraint],
) -> Hypervolume:
    """Hypervolume dominated by the feasible complete trials (None when there are none)."""
    points = feasible_complete(trials)
    sign = signs(objectives)
    reference, inferred = reference_point(points, objectives, constraints)
    if reference is None or not points:
        return Hypervolume(None, reference, inferred)
    losses = np.array([t.values for t in points], dtype=float) * sign
    ref_loss = np.array(reference) * sign
    inside = losses[np.all(losses <= ref_loss, axis=1)]
    value = float(compute_hypervolume(inside, ref_loss)) if len(inside) else 0.0
    return Hypervolume(value, reference, inferred)


def reference_point(
    points: Sequence[FrozenTrial],
    objectives: Sequence[ObjectiveSection],
    constraints: Sequence[Constraint],
) -> tuple[list[float] | None, bool]:
    """``(reference point, inferred?)``; None when neither the recipe nor trials give one."""
    reference: list[float] = []
    inferred = False
    for i, objective in enumerate(objectives):
        bound = _recipe_bound(objective, constraints)
        if bound is None:
            if not points:
                return None, True
            values = np.array([t.values[i] for t in points], dtype=float)
            spread = float(values.max() - values.min()) or max(abs(float(values[0])), 1.0)
            worst = values.max() if objective.direction == "minimize" else values.min()
            step = 0.1 * spread
            bound = float(worst + step if objective.direction == "minimize" else worst - step)
            inferred = True
        reference.append(bound)
    return reference, inferred


def _recipe_bound(objective: ObjectiveSection, constraints: Sequence[Constraint]) -> float | None:
    if objective.ref is not None:
        return objective.ref
    worse_side = "<=" if objective.direction == "minimize" else ">="
    limits = [c.limit for c in constraints if c.metric == objective.metric and c.op == worse_side]
    if not limits:
        return None
    return min(limits) if objective.direction == "minimize" else max(limits)
