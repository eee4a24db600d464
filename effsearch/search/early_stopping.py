"""Multi-objective early stopping: successive halving ranked by non-domination, and a Pareto pruner.

Optuna's pruners refuse multi-objective studies, so this is ours. Both rules are decided in the
driver at each intermediate report and can be combined (a trial goes on only if both agree).

**Successive halving** (asynchronous). Rungs sit at steps ``min_step * eta**k``. The first
time a trial reports at or past a rung, its reported values of the objectives (those it
reports: accuracy per epoch, say; those known before training: size, latency of the untrained
compressed model) are recorded there, and it goes on only if it ranks in the top ``1/eta`` of
every trial recorded at that rung so far. Ranking: non-dominated sorting, ties in a front
broken by hypervolume contribution, SMS-EMOA's rule (what the front would lose without the
point: a knee beats a near-duplicate; crowding distance called nearly every point of a small
3-objective front a boundary point and so ranked by arrival). With fewer than ``eta`` trials at
a rung, everyone goes on. The state is rebuilt on resume from the intermediate reports stored
with finished trials.

**Pareto pruner.** At each report from ``min_step`` on, once ``min_trials`` feasible trials have
finished, a trial's *optimistic bound* is built per objective: a value known before training
(size, params, FLOPs, latency of the untrained compressed model: never in a task's own
reports) is exact; a value the task reports (accuracy per epoch) is the current value plus the
largest gain that the ``neighbours`` finished trials nearest to it at this step (by their own
report then) made from this step to their final value; a value not known yet is the best any
finished trial reached. Gains of trials at the same level are the honest guide: a trial at 0.40
accuracy after 3 epochs may gain 0.5, one at 0.92 cannot. The trial stops when a finished
feasible trial is strictly better than that bound in every objective: even its best case
would not reach the Pareto set. With ``min_gain`` > 0 it also stops when its bound would add
less than that share to the hypervolume of the finished feasible trials (from the run's
reference point): a configuration that at best ties the front where it already is, or lies
outside the reference box, is not worth the rest of its training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from effsearch.objectives import pareto
from effsearch.objectives.goals import Constraint, Objective, sign, signs
from effsearch.search import records, study_front
from effsearch.search.executors.base import Report

if TYPE_CHECKING:
    from effsearch.recipe.schema import EarlyStoppingSection

Decision = Callable[[int, float, Mapping[str, float]], bool]
"""``rule(trial number, step, metrics) -> go on?``"""


class SuccessiveHalving:
    """Decides, at each intermediate report, whether a trial continues."""

    def __init__(self, objectives: Sequence[Objective], min_step: int = 1, eta: int = 3) -> None:
        if min_step < 1 or eta < 2:
            raise ValueError(f"need min_step >= 1 and eta >= 2; got {min_step=}, {eta=}")
        self.objectives = list(objectives)
        self.min_step = min_step
        self.eta = eta
        self.rungs: dict[int, dict[int, list[float]]] = {}
        self._last_rung: dict[int, int] = {}

    def rung_of(self, step: float) -> int:
        """The highest rung index at or below ``step`` (-1 below the first rung)."""
        if step < self.min_step:
            return -1
        return math.floor(math.log(step / self.min_step, self.eta) + 1e-9)

    def observe(self, number: int, step: float, metrics: Mapping[str, float]) -> bool:
        """Record a report of trial ``number``; True if it should go on."""
        rung = self.rung_of(step)
        if rung <= self._last_rung.get(number, -1):
            return True  # between rungs, or this rung is decided already
        self._last_rung[number] = rung
        losses = self._losses(metrics)
        if losses is None:
            return True
        peers = self.rungs.setdefault(rung, {})
        peers[number] = losses
        if len(peers) < self.eta:
            return True
        kept = math.ceil(len(peers) / self.eta)
        return number in rank(peers)[:kept]

    def replay(self, histories: Iterable[tuple[int, Sequence[Mapping[str, float]]]]) -> None:
        """Rebuild the rungs from stored reports (``(trial number, [{step, metric...}])``)."""
        for number, history in histories:
            for entry in history:
                self.observe(number, entry["step"], entry)

    def _losses(self, metrics: Mapping[str, float]) -> list[float] | None:
        """Losses of the objectives reported during training; an objective only known at the
        end (latency, say) is the same 0 for every trial, so it cannot change a ranking."""
        if not any(o.metric in metrics for o in self.objectives):
            return None
        return [
            sign(o.direction) * float(metrics[o.metric]) if o.metric in metrics else 0.0
            for o in self.objectives
        ]


NEIGHBOURS = 5
"""Finished trials whose gains bound a running trial's: the nearest in value at its step."""


class ParetoPruner:
    """Stops a trial whose optimistic bound a finished trial dominates (see the module doc).

    Works in losses (smaller is better), like every other rule here."""

    def __init__(
        self,
        objectives: Sequence[Objective],
        finished: Callable[[], Sequence[FrozenTrial]],
        min_step: int = 1,
        min_trials: int = 5,
        min_gain: float = 0.0,
        reference: Callable[[], study_front.Reference | None] = lambda: None,
        neighbours: int = NEIGHBOURS,
    ) -> None:
        if min_step < 1 or min_trials < 1 or neighbours < 1 or not 0.0 <= min_gain < 1.0:
            raise ValueError(
                "need min_step >= 1, min_trials >= 1, neighbours >= 1 and 0 <= min_gain < 1; "
                f"got {min_step=}, {min_trials=}, {neighbours=}, {min_gain=}"
            )
        self.objectives = list(objectives)
        self.finished = finished
        self.min_step = min_step
        self.min_trials = min_trials
        self.min_gain = min_gain
        self.reference = reference
        self.neighbours = neighbours

    def observe(self, number: int, step: float, metrics: Mapping[str, float]) -> bool:
        """True if the trial should go on."""
        if step < self.min_step:
            return True
        done = [
            t
            for t in study_front.feasible_complete(self.finished())
            if not t.user_attrs.get(records.REJECTED)
        ]
        if len(done) < self.min_trials:
            return True
        finals = signs(self.objectives) * np.array([t.values for t in done], dtype=float)
        bound = np.array(
            [
                self._optimistic(objective, step, metrics, done, finals[:, i])
                for i, objective in enumerate(self.objectives)
            ]
        )
        if np.any(np.all(finals < bound, axis=1)):
            return False
        return self.min_gain == 0.0 or self._adds_enough(bound, finals)

    def _optimistic(
        self,
        objective: Objective,
        step: float,
        metrics: Mapping[str, float],
        done: Sequence[FrozenTrial],
        finals: np.ndarray,
    ) -> float:
        """The lowest final loss this trial could still reach."""
        direction = sign(objective.direction)
        if objective.metric not in metrics:
            return float(finals.min())
        current = direction * float(metrics[objective.metric])
        then = [
            (k, direction * earlier)
            for k, trial in enumerate(done)
            if (earlier := _reported_at(trial, objective.metric, step)) is not None
        ]
        if not then:  # never reported during training: known before it, exact
            return current
        nearest = sorted(then, key=lambda pair: abs(pair[1] - current))[: self.neighbours]
        return current - max(0.0, max(earlier - finals[k] for k, earlier in nearest))

    def _adds_enough(self, bound: np.ndarray, finals: np.ndarray) -> bool:
        """Whether the bound adds at least ``min_gain`` of the finished trials' hypervolume."""
        reference = self.reference()
        if reference is None:
            return True
        ref_loss = signs(self.objectives) * np.array(reference.values, dtype=float)
        before = pareto.volume(finals, ref_loss)
        after = pareto.volume(np.vstack([finals, bound]), ref_loss)
        return before == 0.0 or after - before >= self.min_gain * before


def combine(*rules: Decision) -> Decision:
    """A trial goes on only if every rule lets it (each rule sees every report)."""

    def decide(number: int, step: float, metrics: Mapping[str, float]) -> bool:
        verdicts = [rule(number, step, metrics) for rule in rules]
        return all(verdicts)

    return decide


class Scheduler:
    """The driver's early-stopping rule: answers every report of every trial.

    Built once per search by :meth:`from_recipe`, its rungs rebuilt from the reports stored
    with earlier trials, so a resumed search ranks like the one that was stopped.
    """

    def __init__(self, decide: Decision) -> None:
        self._decide = decide

    def on_report(self, report: Report) -> bool:
        """True if the trial goes on."""
        return self._decide(report.number, report.step, report.metrics)

    @classmethod
    def from_recipe(
        cls,
        section: EarlyStoppingSection,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint],
        study: optuna.Study,
    ) -> Scheduler:
        rules: list[Decision] = []
        if "pareto" in section.method:
            pruner = ParetoPruner(
                objectives,
                lambda: study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                section.min_step,
                section.min_trials,
                section.min_gain,
                lambda: study_front.fixed_reference(study, objectives, constraints, store=False),
            )
            rules.append(pruner.observe)
        if "successive_halving" in section.method:
            halving = SuccessiveHalving(objectives, section.min_step, section.eta)
            finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
            # Reports as the driver saw them: with what was known before training (final
            # metrics hold those values too), so replayed rungs rank like live ones.
            halving.replay(
                (
                    t.number,
                    [
                        {**t.user_attrs.get(records.METRICS, {}), **entry}
                        for entry in t.user_attrs.get(records.HISTORY, [])
                    ],
                )
                for t in finished
            )
            rules.insert(0, halving.observe)
        return cls(rules[0] if len(rules) == 1 else combine(*rules))


def _reported_at(trial: FrozenTrial, metric: str, step: float) -> float | None:
    """The trial's own report of ``metric`` at the last step <= ``step`` (None: never)."""
    reports = [
        entry
        for entry in trial.user_attrs.get(records.HISTORY, [])
        if metric in entry and entry["step"] <= step
    ]
    return float(max(reports, key=lambda e: e["step"])[metric]) if reports else None


def rank(points: Mapping[int, Sequence[float]]) -> list[int]:
    """Trial numbers best first (``points``: trial number -> losses): by non-dominated front,
    then within a front by hypervolume contribution (:func:`effsearch.objectives.pareto.rank`)."""
    numbers = list(points)
    order = pareto.rank(np.array([points[n] for n in numbers], dtype=float))
    return [numbers[i] for i in order]
