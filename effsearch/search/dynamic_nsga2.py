"""NSGA-II with a dynamic population size.

"Speeding Up the NSGA-II via Dynamic Population Sizes" (Bian, Zhou, Li and Qian, 2023): start
with a population of 4 and double it after every ``tau`` evaluations until it reaches ``mu``.
Small early generations exploit sooner; the full population keeps diversity later. Built on
Optuna's NSGAIISampler, whose generations are counted against the population size in force
when each trial starts.
"""

from __future__ import annotations

from typing import Any

from optuna import Study
from optuna.samplers import NSGAIISampler
from optuna.samplers.nsgaii._elite_population_selection_strategy import (
    NSGAIIElitePopulationSelectionStrategy,
)
from optuna.trial import FrozenTrial, TrialState

INITIAL_POPULATION = 4


def population_at(evaluations: int, tau: int, mu: int) -> int:
    """``min(mu, 4 * 2 ** (evaluations // tau))``."""
    doublings = min(evaluations // tau, 32)
    return max(2, min(mu, INITIAL_POPULATION * 2**doublings))


class DynamicNSGAIISampler(NSGAIISampler):
    """NSGA-II whose population grows 4, 8, 16, ... every ``tau`` evaluations, up to ``mu``."""

    def __init__(self, *, tau: int = 16, mu: int = 50, **kwargs: Any) -> None:
        if tau < 1 or mu < INITIAL_POPULATION:
            raise ValueError(f"need tau >= 1 and mu >= {INITIAL_POPULATION}; got {tau=}, {mu=}")
        super().__init__(population_size=INITIAL_POPULATION, **kwargs)
        self.tau = tau
        self.mu = mu

    def generation_size(self, generation: int) -> int:
        """Population of ``generation``: fixed when it starts, from the evaluations before it."""
        evaluations = 0
        size = INITIAL_POPULATION
        for _ in range(generation + 1):
            size = population_at(evaluations, self.tau, self.mu)
            evaluations += size
        return size

    def get_trial_generation(self, study: Study, trial: FrozenTrial) -> int:
        # Optuna puts a new trial in the newest generation until that one is full; "full" must
        # mean that generation's own size, not the size in force today.
        complete = study._get_trials(deepcopy=False, states=[TrialState.COMPLETE], use_cache=True)
        key = self._get_generation_key()
        newest = max((t.system_attrs.get(key, 0) for t in complete), default=0)
        self._set_size(self.generation_size(newest))
        generation = super().get_trial_generation(study, trial)
        self._set_size(self.generation_size(generation))  # the parents' selection uses it
        return generation

    def _set_size(self, size: int) -> None:
        self.population_size = size
        strategy = self._elite_population_selection_strategy
        if isinstance(strategy, NSGAIIElitePopulationSelectionStrategy):
            strategy._population_size = size
