"""Let any sampler learn from trials stopped early, through their last measured values.

Optuna's samplers treat a PRUNED trial of a multi-objective study as worse than every finished
one (TPE, for one, cannot rank pruned trials without single-objective intermediate values). With
early stopping that is harmful: most trials are stopped, the few that finish are the ones the
rungs favoured, and the sampler keeps proposing near them, whatever the stopped trials showed.

:class:`SeesStoppedTrials` wraps a sampler and shows it a view of the study where a stopped trial
whose last metrics hold every objective counts as finished with those values (objective values
reported during training as of its last report; size, latency and the like measured before
training) and its constraints as they stood. The values are pessimistic for what improves with
training, so the region is rated no better than it showed. Storage, the Pareto set and every
report still hold the trial as PRUNED: only the sampler's view changes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from effsearch.objectives.goals import Constraint, Objective
from effsearch.search import records

StoppedValues = Callable[[FrozenTrial], "tuple[list[float], dict[str, float]] | None"]
"""Objective values and constraint violations of a trial stopped early (None: not known)."""


def last_values(
    objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> StoppedValues:
    """Reads a stopped trial's last metrics as objective values and constraint violations."""

    def read(trial: FrozenTrial) -> tuple[list[float], dict[str, float]] | None:
        last = trial.user_attrs.get(records.METRICS, {})
        if not objectives or any(o.metric not in last for o in objectives):
            return None
        violations = {str(c): c.violation(last[c.metric]) for c in constraints if c.metric in last}
        return [float(last[o.metric]) for o in objectives], violations

    return read


class SeesStoppedTrials(BaseSampler):
    """``sampler``, shown stopped trials as finished with their last values (see module doc)."""

    def __init__(self, sampler: BaseSampler, stopped: StoppedValues) -> None:
        self.sampler = sampler
        self.stopped = stopped

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.sampler.infer_relative_search_space(self._view(study), trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.sampler.sample_relative(self._view(study), trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.sampler.sample_independent(
            self._view(study), trial, param_name, param_distribution
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self.sampler.before_trial(self._view(study), trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.sampler.after_trial(self._view(study), trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()

    def _view(self, study: Study) -> Study:
        return _StudyView(study, self.stopped)  # type: ignore[return-value]


class _StudyView:
    """A study whose trial lists show stopped trials as finished; everything else delegates."""

    def __init__(self, study: Study, stopped: StoppedValues) -> None:
        self._study = study
        self._stopped = stopped

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    def get_trials(
        self, deepcopy: bool = True, states: Collection[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy, states)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Collection[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        wanted = None if states is None else (*states, TrialState.PRUNED)
        shown = []
        for trial in self._study._get_trials(deepcopy, wanted, use_cache):
            if trial.state == TrialState.PRUNED:
                trial = self._as_finished(trial)
            if states is None or trial.state in states:
                shown.append(trial)
        return shown

    def _as_finished(self, trial: FrozenTrial) -> FrozenTrial:
        last = self._stopped(trial)
        if last is None:
            return trial
        values, violations = last
        finished = optuna.trial.FrozenTrial(
            number=trial.number,
            state=TrialState.COMPLETE,
            value=None,
            values=values,
            datetime_start=trial.datetime_start,
            datetime_complete=trial.datetime_complete,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=trial.user_attrs,
            system_attrs=dict(trial.system_attrs),
            intermediate_values=trial.intermediate_values,
            trial_id=trial._trial_id,
        )
        for name, violation in violations.items():
            finished.set_constraint(name, violation)
        return finished
