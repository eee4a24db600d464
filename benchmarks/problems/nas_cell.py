"""A synthetic categorical NAS problem in the shape of NAS-Bench-201, as an entrypoint task.

A cell is a DAG of four nodes; each of its six edges (0-1, 0-2, 1-2, 0-3, 1-3, 2-3) carries
one of five operations (``none``, ``skip``, ``conv1x1``, ``conv3x3``, ``pool``), and the
network has ``channels`` in {8, 16, 32} (``nas_cell``: 5^6 x 3 = 46,875 configurations, all
categorical). ``nas_cell_mixed`` adds what a training recipe adds: a learning rate (float, log
scale, an optimum that shifts with the operations) and ``epochs`` (int, diminishing returns).

Objectives, both minimized: ``error`` and ``params_k``. The error is *synthetic* (no network is
trained): a cell with no path of operations from input to output sits at chance; otherwise
error falls with the capacity along its paths, skips help deep paths, and fixed random
per-(edge, op) and pairwise-edge terms (seeded, so the problem is the same on every run) make
it non-additive, as measured NAS tables are. Parameters are counted as a real cell's would be.
Because every categorical configuration can be enumerated, the true Pareto front and its
hypervolume are exact (:func:`true_front`).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np

EDGES = ("e01", "e02", "e12", "e03", "e13", "e23")
OPS = ("none", "skip", "conv1x1", "conv3x3", "pool")
CHANNELS = (8, 16, 32)
PATHS = (("e03",), ("e01", "e13"), ("e02", "e23"), ("e01", "e12", "e23"))
CAPACITY = {"none": 0.0, "skip": 0.0, "conv1x1": 0.55, "conv3x3": 1.0, "pool": 0.15}
WEIGHTS_PER_CHANNEL2 = {"none": 0, "skip": 0, "conv1x1": 1, "conv3x3": 9, "pool": 0}
CHANCE_ERROR = 0.9
FLOOR_ERROR = 0.05
LR_RANGE = (1e-4, 1.0)
EPOCHS_RANGE = (1, 50)
REFERENCE = (0.25, 10.0)
"""Reference point (error, params_k): where a deployment would look (error under 25 %, under
10 k weights). Against the front's whole range (0.6, 50) random search reached 0.91 of the
true hypervolume in 50 evaluations, leaving nothing to tell optimizers apart; here 0.60."""


@functools.cache
def _terms() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(201)
    unary = rng.normal(0.0, 0.06, (len(EDGES), len(OPS)))
    pairwise = rng.normal(0.0, 0.03, (len(EDGES), len(EDGES), len(OPS), len(OPS)))
    return unary, np.triu(pairwise.transpose(2, 3, 0, 1), k=1).transpose(2, 3, 0, 1)


def errors(ops: np.ndarray, channels: np.ndarray) -> np.ndarray:
    """Best-case error (at the best learning rate, fully trained) of ``n`` cells: ``ops`` is
    ``n x 6`` operation indices (``OPS``) in ``EDGES`` order, ``channels`` has length ``n``."""
    capacity_of = np.array([CAPACITY[o] for o in OPS])
    none, skip = OPS.index("none"), OPS.index("skip")
    has_skip = (ops == skip).any(axis=1)
    capacity = np.zeros(len(ops))
    any_alive = np.zeros(len(ops), dtype=bool)
    for path in PATHS:
        columns = [EDGES.index(e) for e in path]
        alive = (ops[:, columns] != none).all(axis=1)
        convs = capacity_of[ops[:, columns]].sum(axis=1)
        depth_bonus = 0.25 * (len(path) - 1) * convs
        # a skip anywhere in the cell eases training of a deep path (residual)
        residual = 0.2 * convs * has_skip if len(path) > 1 else 0.0
        capacity += alive * (convs + depth_bonus + residual)
        any_alive |= alive
    capacity *= 0.55 + 0.45 * np.log2(channels / 4) / np.log2(8)
    unary, pairwise = _terms()
    edge = np.arange(len(EDGES))
    interaction = unary[edge, ops].sum(axis=1) + pairwise[
        edge[:, None], edge[None, :], ops[:, :, None], ops[:, None, :]
    ].sum(axis=(1, 2))
    error = FLOOR_ERROR + (CHANCE_ERROR - FLOOR_ERROR) * np.exp(-capacity / 2.5)
    error *= np.exp(interaction)
    return np.where(any_alive, np.minimum(error, CHANCE_ERROR), CHANCE_ERROR)


def cell_error(ops: dict[str, str], channels: int) -> float:
    """Best-case error of one cell (``EDGES`` -> operation name)."""
    index = np.array([[OPS.index(ops[e]) for e in EDGES]])
    return float(errors(index, np.array([channels]))[0])


def params_k(ops: dict[str, str], channels: int) -> float:
    """Thousands of weights: each conv edge's kernels plus a classifier head."""
    conv = sum(WEIGHTS_PER_CHANNEL2[ops[e]] for e in EDGES) * channels * channels
    return (conv + channels * 10 + 27 * channels) / 1000.0


def nas_cell(config: dict[str, Any]) -> dict[str, float]:
    """Categorical: six edge operations and the channel count."""
    ops = {e: config["cell"][e] for e in EDGES}
    channels = int(config["cell"]["channels"])
    return {"error": cell_error(ops, channels), "params_k": params_k(ops, channels)}


def nas_cell_mixed(config: dict[str, Any]) -> dict[str, float]:
    """Mixed: the categorical cell plus ``train.lr`` (log) and ``train.epochs`` (int). The
    error rises with the distance (in decades) of lr from the cell's best one, which is lower
    for cells with more conv3x3 edges, and falls with epochs as 1 - exp(-epochs / 8)."""
    ops = {e: config["cell"][e] for e in EDGES}
    channels = int(config["cell"]["channels"])
    best = cell_error(ops, channels)
    lr, epochs = float(config["train"]["lr"]), int(config["train"]["epochs"])
    best_lr = 10 ** (-1.0 - 0.25 * sum(ops[e] == "conv3x3" for e in EDGES))
    lr_penalty = 0.08 * math.log10(lr / best_lr) ** 2
    under_trained = math.exp(-epochs / 8.0)
    error = best + lr_penalty + (CHANCE_ERROR - best) * under_trained
    return {"error": float(min(CHANCE_ERROR, error)), "params_k": params_k(ops, channels)}


def space(mixed: bool) -> dict[str, Any]:
    """The recipe ``space`` of either problem."""
    cell: dict[str, Any] = {e: {"choice": list(OPS)} for e in EDGES}
    cell["channels"] = {"choice": list(CHANNELS)}
    groups: dict[str, Any] = {"cell": cell}
    if mixed:
        groups["train"] = {
            "lr": {"float": list(LR_RANGE), "log": True},
            "epochs": {"int": list(EPOCHS_RANGE)},
        }
    return groups


@functools.cache
def true_front() -> np.ndarray:
    """The non-dominated (best error, params_k) of every categorical configuration: the front
    of both problems (the mixed one reaches it at each cell's best lr and the most epochs,
    less an exp(-50 / 8) = 0.2 % under-training term, ignored here)."""
    from effsearch.objectives.pareto import non_dominated_mask

    combos = np.array(list(itertools.product(range(len(OPS)), repeat=len(EDGES))))
    ops = np.repeat(combos, len(CHANNELS), axis=0)
    channels = np.tile(np.array(CHANNELS), len(combos))
    weights = np.array([WEIGHTS_PER_CHANNEL2[o] for o in OPS])[ops].sum(axis=1)
    params = (weights * channels**2 + channels * 10 + 27 * channels) / 1000.0
    values = np.unique(np.column_stack([errors(ops, channels), params]), axis=0)
    # sorted by error: only a point cheaper than every more accurate one can be on the front
    # (a sweep first; the generic O(n^2) routine then sees a few dozen points)
    cheapest_before = np.minimum.accumulate(np.concatenate([[np.inf], values[:-1, 1]]))
    values = values[values[:, 1] < cheapest_before]
    return values[non_dominated_mask(values)]


def max_hypervolume() -> float:
    from effsearch.objectives.pareto import volume

    return float(volume(true_front(), np.array(REFERENCE)))
