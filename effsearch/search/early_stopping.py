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

import numpy as np
from optuna.trial import FrozenTrial

from effsearch.recipe import ObjectiveSection
from effsearch.search import pareto, records

Decision = Callable[[int, float, Mapping[str, float]], bool]


class SuccessiveHalving:
    """Decides, at each intermediate report, whether a trial continues."""

    def __init__(
        self, objectives: Sequence[ObjectiveSection], min_step: int = 1, eta: int = 3
    ) -> None:
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
            (1.0 if o.direction == "minimize" else -1.0) * float(metrics.get(o.metric, 0.0))
            if o.metric in metrics
            else 0.0
            for o in self.objectives
        ]


NEIGHBOURS = 5
"""Finished trials whose gains bound a running trial's: the nearest in value at its step."""


class ParetoPruner:
    """Stops a trial whose optimistic bound a finished trial dominates (see the module doc)."""

    def __init__(
        self,
        objectives: Sequence[ObjectiveSection],
        finished: Callable[[], Sequence[FrozenTrial]],
        min_step: int = 1,
        min_trials: int = 5,
        min_gain: float = 0.0,
        reference: Callable[[], pareto.Reference | None] = lambda: None,
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
            for t in pareto.feasible_complete(self.finished())
            if not t.user_attrs.get(records.REJECTED)
        ]
        if len(done) < self.min_trials:
            return True
        gains = -pareto.signs(self.objectives) * np.array([t.values for t in done], dtype=float)
        bound = np.array(
            [
                self._optimistic(objective, step, metrics, done, gains[:, i])
                for i, objective in enumerate(self.objectives)
            ]
        )
        if np.any(np.all(gains > bound, axis=1)):
            return False
        return self.min_gain == 0.0 or self._adds_enough(bound, gains)

    def _optimistic(
        self,
        objective: ObjectiveSection,
        step: float,
        metrics: Mapping[str, float],
        done: Sequence[FrozenTrial],
        finals: np.ndarray,
    ) -> float:
        """The best final value (as a gain: larger is better) this trial could still reach."""
        sign = 1.0 if objective.direction == "maximize" else -1.0
        if objective.metric not in metrics:
            return float(finals.max())
        current = sign * float(metrics[objective.metric])
        then = [
            (k, sign * earlier)
            for k, trial in enumerate(done)
            if (earlier := _reported_at(trial, objective.metric, step)) is not None
        ]
        if not then:  # never reported during training: known before it, exact
            return current
        nearest = sorted(then, key=lambda pair: abs(pair[1] - current))[: self.neighbours]
        return current + max(0.0, max(finals[k] - earlier for k, earlier in nearest))

    def _adds_enough(self, bound: np.ndarray, gains: np.ndarray) -> bool:
        """Whether the bound adds at least ``min_gain`` of the finished trials' hypervolume."""
        reference = self.reference()
        if reference is None:
            return True
        ref_loss = pareto.signs(self.objectives) * np.array(reference.values, dtype=float)
        before = pareto.volume(-gains, ref_loss)
        after = pareto.volume(-np.vstack([gains, bound]), ref_loss)
        return before == 0.0 or after - before >= self.min_gain * before


def combine(*rules: Decision) -> Decision:
    """A trial goes on only if every rule lets it (each rule sees every report)."""

    def decide(number: int, step: float, metrics: Mapping[str, float]) -> bool:
        verdicts = [rule(number, step, metrics) for rule in rules]
        return all(verdicts)

    return decide


def _reported_at(trial: FrozenTrial, metric: str, step: float) -> float | None:
    """The trial's own report of ``metric`` at the last step <= ``step`` (None: never)."""
    reports = [
        entry
        for entry in trial.user_attrs.get(records.HISTORY, [])
        if metric in entry and entry["step"] <= step
    ]
    return float(max(reports, key=lambda e: e["step"])[metric]) if reports else None


def rank(points: Mapping[int, Sequence[float]]) -> list[int]:
    """Trial numbers best first: by non-dominated front, then within a front by hypervolume
    contribution (what the front would lose without the point; the reference lies just beyond
    the worst value of each objective among ``points``)."""
    numbers = list(points)
    losses = np.array([points[n] for n in numbers], dtype=float)
    reference = losses.max(axis=0) + 0.1 * np.ptp(losses, axis=0) + 1e-9
    order: list[int] = []
    remaining = list(range(len(numbers)))
    while remaining:
        front = [
            i
            for i in remaining
            if not any(_dominates(losses[j], losses[i]) for j in remaining if j != i)
        ]
        contribution = _contributions(losses[front], reference)
        order += [front[k] for k in np.argsort(-contribution, kind="stable")]
        remaining = [i for i in remaining if i not in front]
    return [numbers[i] for i in order]


def _contributions(front: np.ndarray, ref_loss: np.ndarray) -> np.ndarray:
    total = pareto.volume(front, ref_loss)
    others = (np.delete(front, i, axis=0) for i in range(len(front)))
    return np.array([total - pareto.volume(rest, ref_loss) for rest in others])


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))
