"""Multi-objective early stopping: asynchronous successive halving ranked by non-domination.

Optuna's pruners refuse multi-objective studies, so this is ours. Rungs sit at steps
``min_step * eta**k``. The first time a trial reports at or past a rung, its reported values of
the objectives (those it reports: accuracy per epoch, say) are recorded there, and it goes on
only if it ranks in the top ``1/eta`` of every trial recorded at that rung so far. Ranking:
non-dominated sorting, ties in a front broken by crowding distance (boundary points first).
With fewer than ``eta`` trials at a rung, everyone goes on. Decisions are made in the driver;
the state is rebuilt on resume from the intermediate reports stored with finished trials.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from effsearch.recipe import ObjectiveSection


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


def rank(points: Mapping[int, Sequence[float]]) -> list[int]:
    """Trial numbers best first: by non-dominated front, then by crowding distance."""
    numbers = list(points)
    losses = np.array([points[n] for n in numbers], dtype=float)
    order: list[int] = []
    remaining = list(range(len(numbers)))
    while remaining:
        front = [
            i
            for i in remaining
            if not any(_dominates(losses[j], losses[i]) for j in remaining if j != i)
        ]
        crowding = _crowding(losses[front])
        order += [front[k] for k in np.argsort(-crowding, kind="stable")]
        remaining = [i for i in remaining if i not in front]
    return [numbers[i] for i in order]


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def _crowding(front: np.ndarray) -> np.ndarray:
    count, dims = front.shape
    distance = np.zeros(count)
    if count <= 2:
        return np.full(count, np.inf)
    for d in range(dims):
        order = np.argsort(front[:, d], kind="stable")
        span = front[order[-1], d] - front[order[0], d]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span == 0:
            continue
        for k in range(1, count - 1):
            distance[order[k]] += (front[order[k + 1], d] - front[order[k - 1], d]) / span
    return distance
