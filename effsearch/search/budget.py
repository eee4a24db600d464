"""Stop criteria: when a search may start no further trial (pymoo's termination objects).

The runner asks every criterion before each launch. A budget criterion (trials, wall clock,
steps, compute) holds launches back while its budget is spent; an *early* one (the hypervolume
stalled, trials report no steps to count) ends the launching for good, and the run records why.
Trials in flight always finish.
"""

from __future__ import annotations

import statistics
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import optuna
from optuna.trial import TrialState

from effsearch.search import records, study_front

if TYPE_CHECKING:
    from effsearch.recipe.schema import BudgetSection


@dataclass
class Progress:
    """What criteria read: the study, the trials counted against the budget, how long each
    trial in flight has run, and the hypervolume after each finished trial."""

    study: optuna.Study
    counted: int
    running_s: Sequence[float]
    hypervolumes: Sequence[float] = ()


class Criterion(ABC):
    """One stop criterion."""

    #: when met, the run is recorded as stopped early (with the reason), and launches end
    early: ClassVar[bool] = False

    @abstractmethod
    def met(self, progress: Progress) -> str | None:
        """Why no further trial may start now (None: one may)."""


@dataclass
class TrialCount(Criterion):
    """``budget.trials``: finished trials (interrupted ones excluded) plus those in flight."""

    trials: int

    def met(self, progress: Progress) -> str | None:
        if progress.counted + len(progress.running_s) >= self.trials:
            return f"budget.trials ({self.trials}) reached"
        return None


@dataclass
class WallClock(Criterion):
    """``budget.wall_minutes``, counting the wall time of earlier sessions of the run."""

    seconds: float | None
    used_before_s: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def used_s(self) -> float:
        return self.used_before_s + time.monotonic() - self.started

    def met(self, progress: Progress) -> str | None:
        if self.seconds is not None and self.used_s() >= self.seconds:
            return f"budget.wall_minutes ({self.seconds / 60:g}) reached"
        return None


@dataclass
class StepBudget(Criterion):
    """``budget.steps``: reported training steps summed over finished trials; one more trial
    starts only if it fits even when it runs all the way (as far as any finished one ran)."""

    steps: int

    def met(self, progress: Progress) -> str | None:
        if steps_committed(progress.study, len(progress.running_s) + 1) > self.steps:
            return f"budget.steps ({self.steps}) reached"
        return None


@dataclass
class ComputeBudget(Criterion):
    """``budget.compute_minutes``: the seconds trials ran, summed; one more starts only if
    the median full trial still fits."""

    seconds: float

    def met(self, progress: Progress) -> str | None:
        if compute_committed_s(progress.study, progress.running_s) > self.seconds:
            return f"budget.compute_minutes ({self.seconds / 60:g}) reached"
        return None


@dataclass
class Stalled(Criterion):
    """``budget.stop_when_stalled``: the last ``trials`` finished trials raised the
    hypervolume by less than ``min_improvement`` (relative)."""

    early = True
    trials: int
    min_improvement: float

    def met(self, progress: Progress) -> str | None:
        history = [{"hypervolume": v} for v in progress.hypervolumes]
        if not study_front.stalled(history, self.trials, self.min_improvement):
            return None
        return (
            f"the hypervolume rose by less than {self.min_improvement:.2%} over the last "
            f"{self.trials} finished trials (budget.stop_when_stalled)"
        )


@dataclass
class StepsUnreported(Criterion):
    """A ``budget.steps`` run cannot go on when its trials report no steps to count."""

    early = True
    steps: int

    def met(self, progress: Progress) -> str | None:
        finished = [t for t in progress.study.get_trials(deepcopy=False) if t.state.is_finished()]
        if len(finished) < 3 or any(records.trial_steps(t) for t in finished):
            return None
        return (
            f"budget.steps is {self.steps} but {len(finished)} finished trials reported no "
            "steps (a task reports them with ctx.report(step, metrics)); set budget.trials instead"
        )


def criteria(budget: BudgetSection, wall_used_before_s: float) -> tuple[list[Criterion], WallClock]:
    """The recipe's budget as criteria, and the wall clock (the run records its time)."""
    wall = WallClock(budget.wall_minutes * 60 if budget.wall_minutes else None, wall_used_before_s)
    found: list[Criterion] = [wall]
    if budget.trials is not None:
        found.append(TrialCount(budget.trials))
    if budget.steps is not None:
        found += [StepBudget(budget.steps), StepsUnreported(budget.steps)]
    if budget.compute_minutes is not None:
        found.append(ComputeBudget(budget.compute_minutes * 60))
    if budget.stop_when_stalled is not None:
        rule = budget.stop_when_stalled
        found.append(Stalled(rule.trials, rule.min_improvement))
    return found, wall


def steps_committed(study: optuna.Study, in_flight: int) -> float:
    """Steps finished trials ran, plus, per trial in flight, the most a finished one ran (it
    may go the whole way)."""
    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and not t.user_attrs.get(records.INTERRUPTED)
    ]
    steps = [records.trial_steps(t) for t in finished]
    return sum(steps) + in_flight * max(steps, default=0.0)


def compute_committed_s(study: optuna.Study, running_s: Sequence[float]) -> float:
    """Seconds finished trials ran (interrupted ones too: they used the machine), plus what the
    trials in flight and one more are expected to take: at least the median duration of the
    trials that ran to the end."""
    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and records.DURATION in t.user_attrs
    ]
    spent = sum(float(t.user_attrs[records.DURATION]) for t in finished)
    whole = [
        float(t.user_attrs[records.DURATION])
        for t in finished
        if t.state == TrialState.COMPLETE and not t.user_attrs.get(records.REJECTED)
    ]
    typical = statistics.median(whole) if whole else 0.0
    return spent + sum(max(s, typical) for s in running_s) + typical
