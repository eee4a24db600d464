"""The run's Pareto set, reference point and hypervolume, read from its study.

Non-domination, hypervolume and the direction convention are
:mod:`effsearch.objectives.pareto` and :mod:`effsearch.objectives.goals`; this module applies
them to Optuna trials.

The reference point is fixed once per run and stored on the study, so hypervolumes of one run
are comparable over time. Per objective it comes from the recipe (the objective's ``ref``, else
a constraint limit on the same metric); objectives without one are inferred from the first
``INFER_FROM`` feasible finished trials (by trial number) as their worst value pushed out by
10 % of their range. Until those trials exist there is no reference point and no hypervolume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from effsearch.objectives import pareto
from effsearch.objectives.goals import Constraint, Objective, losses
from effsearch.search import records

STUDY_REFERENCE = "effsearch_reference_point"


def infer_from(n_objectives: int) -> int:
    """How many feasible finished trials an inferred reference point is taken from."""
    return max(5, 2 * n_objectives)


def is_feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0.0 for v in trial.constraints.values())


def feasible_complete(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Complete, feasible trials that ran: a configuration rejected before training carries
    imputed values, never measured ones (with no constraint it broke, it is not infeasible)."""
    return [
        t
        for t in trials
        if t.state == TrialState.COMPLETE
        and is_feasible(t)
        and records.REJECTED not in t.user_attrs
    ]


def pareto_front(
    trials: Sequence[FrozenTrial], objectives: Sequence[Objective]
) -> list[FrozenTrial]:
    """The run's Pareto set: feasible complete trials that no other one dominates (by number).

    Trials rejected before training are never on it."""
    return non_dominated(sorted(feasible_complete(trials), key=lambda t: t.number), objectives)


def non_dominated(
    trials: Sequence[FrozenTrial], objectives: Sequence[Objective]
) -> list[FrozenTrial]:
    """The trials no other trial of ``trials`` dominates (complete trials, objective values)."""
    if not trials:
        return []
    mask = pareto.non_dominated_mask(losses([t.values for t in trials], objectives))
    return [trial for trial, keep in zip(trials, mask, strict=True) if keep]


def knee(front: Sequence[FrozenTrial], objectives: Sequence[Objective]) -> FrozenTrial:
    """The trial of a Pareto set closest to its ideal point once every objective is scaled to
    [0, 1] over the set (Euclidean distance; ties go to the lower trial number)."""
    return front[pareto.knee_index(losses([t.values for t in front], objectives))]


@dataclass(frozen=True)
class Reference:
    """A reference point in the objectives' own units, and where it came from."""

    values: list[float]
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"values": self.values, "source": self.source}


def reference_point(
    trials: Sequence[FrozenTrial],
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
) -> Reference | None:
    """The reference point the rule above gives for these trials (None: not yet known)."""
    bounds = [_recipe_bound(o, constraints) for o in objectives]
    if all(b is not None for b in bounds):
        return Reference([float(b) for b in bounds if b is not None], "recipe")
    first = sorted(feasible_complete(trials), key=lambda t: t.number)[: infer_from(len(objectives))]
    if len(first) < infer_from(len(objectives)):
        return None
    values: list[float] = []
    for i, (objective, bound) in enumerate(zip(objectives, bounds, strict=True)):
        if bound is None:
            column = np.array([t.values[i] for t in first], dtype=float)
            spread = float(column.max() - column.min()) or max(abs(float(column[0])), 1.0)
            if objective.direction == "minimize":
                bound = float(column.max() + 0.1 * spread)
            else:
                bound = float(column.min() - 0.1 * spread)
        values.append(float(bound))
    numbers = ", ".join(str(t.number) for t in first)
    return Reference(values, f"inferred from trials {numbers}")


def fixed_reference(
    study: optuna.Study,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    store: bool,
) -> Reference | None:
    """The run's reference point: the stored one, else the rule's (stored if ``store``)."""
    stored = study.user_attrs.get(STUDY_REFERENCE)
    if stored is not None:
        return Reference(list(stored["values"]), str(stored["source"]))
    reference = reference_point(study.get_trials(deepcopy=False), objectives, constraints)
    if reference is not None and store:
        study.set_user_attr(STUDY_REFERENCE, reference.as_dict())
    return reference


def hypervolume(
    trials: Sequence[FrozenTrial],
    objectives: Sequence[Objective],
    reference: Reference | None,
) -> float | None:
    """Hypervolume dominated by the feasible complete trials (None without a reference)."""
    if reference is None:
        return None
    points = feasible_complete(trials)
    if not points:
        return 0.0
    return pareto.volume(
        losses([t.values for t in points], objectives), losses(reference.values, objectives)
    )


def hypervolume_history(
    trials: Sequence[FrozenTrial],
    objectives: Sequence[Objective],
    reference: Reference | None,
) -> list[dict[str, float]]:
    """Hypervolume after each finished trial, in the order the trials finished."""
    if reference is None:
        return []
    finished = sorted(
        (t for t in trials if t.state.is_finished() and t.datetime_complete is not None),
        key=lambda t: (t.datetime_complete, t.number),
    )
    history: list[dict[str, float]] = []
    for count in range(1, len(finished) + 1):
        volume = hypervolume(finished[:count], objectives, reference)
        history.append(
            {"finished": count, "trial": finished[count - 1].number, "hypervolume": volume or 0.0}
        )
    return history


def stalled(history: Sequence[dict[str, float]], window: int, min_improvement: float) -> bool:
    """Whether the last ``window`` finished trials raised the hypervolume by less than
    ``min_improvement`` (relative to its value before them)."""
    if len(history) <= window:
        return False
    before = history[-window - 1]["hypervolume"]
    now = history[-1]["hypervolume"]
    if before <= 0:
        return False
    return (now - before) / before < min_improvement


def _recipe_bound(objective: Objective, constraints: Sequence[Constraint]) -> float | None:
    if objective.ref is not None:
        return objective.ref
    worse_side = "<=" if objective.direction == "minimize" else ">="
    limits = [c.limit for c in constraints if c.metric == objective.metric and c.op == worse_side]
    if not limits:
        return None
    return min(limits) if objective.direction == "minimize" else max(limits)


class HypervolumeTracker:
    """The run's hypervolume after each finished trial, against its fixed reference point."""

    def __init__(
        self,
        study: optuna.Study,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint],
    ) -> None:
        self.study = study
        self.objectives = objectives
        self.constraints = constraints
        self.reference = fixed_reference(study, objectives, constraints, store=True)
        trials = study.get_trials(deepcopy=False)
        self.history = [
            h["hypervolume"] for h in hypervolume_history(trials, objectives, self.reference)
        ]

    def update(self, finished: int) -> float | None:
        """Record ``finished`` more finished trials; the hypervolume now (None: no reference)."""
        if self.reference is None:
            self.reference = fixed_reference(
                self.study, self.objectives, self.constraints, store=True
            )
        volume = hypervolume(self.study.get_trials(deepcopy=False), self.objectives, self.reference)
        if volume is not None:
            self.history.extend([volume] * finished)
        return volume
