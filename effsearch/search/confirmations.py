"""Confirmation figures: each confirmed front member's mean, spread and Pareto-membership
probability, read from the run's confirmation study (``search/confirm.py`` runs it).

The Pareto-membership probability is the share of bootstrap resamples (each member's runs
resampled with replacement, their mean taken) in which the member stays non-dominated among
the confirmed members: a point on the front by the luck of one seed shows a low probability.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from effsearch.objectives.goals import losses
from effsearch.objectives.pareto import non_dominated_mask
from effsearch.search import records

if TYPE_CHECKING:
    from effsearch.recipe.schema import Recipe

SEED_STRIDE = 1_000_003
BOOTSTRAP = 500
MEMBER = "confirms_trial"
SEED = "seed"


@dataclass(frozen=True)
class Confirmed:
    """One front member's figures over its runs (the search's and the confirmations')."""

    trial: int
    seeds: list[int]
    metrics_mean: dict[str, float]
    metrics_std: dict[str, float]
    pareto_probability: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds,
            "metrics_mean": self.metrics_mean,
            "metrics_std": self.metrics_std,
            "pareto_probability": self.pareto_probability,
        }


def seeds_for(recipe_seed: int, count: int) -> list[int]:
    """The confirmation seeds: ``count`` seeds other than the search's, fixed per recipe."""
    return [(recipe_seed + i * SEED_STRIDE) % 2**32 for i in range(1, count + 1)]


def summarize(
    recipe: Recipe,
    study: optuna.Study,
    extra: optuna.Study,
    members: Sequence[FrozenTrial] | None = None,
) -> dict[int, Confirmed]:
    """Mean, spread and Pareto-membership probability of every confirmed member."""
    runs: dict[int, list[Mapping[str, float]]] = {}
    seeds: dict[int, list[int]] = {}
    for t in extra.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        runs.setdefault(t.user_attrs[MEMBER], []).append(t.user_attrs.get(records.METRICS, {}))
        seeds.setdefault(t.user_attrs[MEMBER], []).append(t.user_attrs[SEED])
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    numbers = sorted(runs if members is None else {m.number for m in members} & set(runs))
    if not numbers:
        return {}
    every: dict[int, list[Mapping[str, float]]] = {
        n: [trials[n].user_attrs.get(records.METRICS, {}), *runs[n]] for n in numbers
    }
    probability = _membership(recipe, [every[n] for n in numbers])
    found = {}
    for i, number in enumerate(numbers):
        names = set.intersection(*(set(m) for m in every[number]))
        found[number] = Confirmed(
            trial=number,
            seeds=[recipe.seed, *seeds[number]],
            metrics_mean={k: statistics.fmean(m[k] for m in every[number]) for k in sorted(names)},
            metrics_std={
                k: statistics.stdev(m[k] for m in every[number]) if len(every[number]) > 1 else 0.0
                for k in sorted(names)
            },
            pareto_probability=probability[i],
        )
    return found


def _membership(recipe: Recipe, members: Sequence[Sequence[Mapping[str, float]]]) -> list[float]:
    """Per member, the share of bootstrap resamples in which its mean objective values are
    non-dominated among the members' (seeded: the same runs give the same shares)."""
    rng = np.random.default_rng(0)
    values = [
        np.array([[run[o.metric] for o in recipe.objectives] for run in member], dtype=float)
        for member in members
    ]
    kept = np.zeros(len(members))
    for _ in range(BOOTSTRAP):
        points = np.array(
            [v[rng.integers(0, len(v), len(v))].mean(axis=0) for v in values], dtype=float
        )
        kept += non_dominated_mask(losses(points, recipe.objectives))
    return [float(k / BOOTSTRAP) for k in kept]
