"""Non-domination, fronts, hypervolume and the knee of points given as losses.

Every function takes losses (smaller is better; see :mod:`effsearch.objectives.goals` for the
one direction convention), an array of shape ``n x k`` (n points, k objectives). This is the
only place that decides what dominates what and the only one that calls Optuna's hypervolume
code. A leaf: it imports nothing of effsearch.
"""

from __future__ import annotations

import numpy as np
from optuna._hypervolume import compute_hypervolume


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether loss vector ``a`` dominates ``b``: no worse anywhere, better somewhere."""
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated_mask(losses: np.ndarray) -> np.ndarray:
    """Boolean mask (shape ``n``) of the rows no other row dominates; equal rows all stay."""
    points = np.asarray(losses, dtype=float)
    if points.size == 0:
        return np.zeros(len(points), dtype=bool)
    no_worse = np.all(points[:, None, :] <= points[None, :, :], axis=2)  # [j, i]: j <= i
    better = np.any(points[:, None, :] < points[None, :, :], axis=2)
    dominated = np.any(no_worse & better, axis=0)
    return ~dominated


def fronts(losses: np.ndarray) -> list[list[int]]:
    """Non-dominated sorting: row indices front by front, the first front first."""
    points = np.asarray(losses, dtype=float)
    remaining = np.arange(len(points))
    out: list[list[int]] = []
    while len(remaining):
        mask = non_dominated_mask(points[remaining])
        out.append([int(i) for i in remaining[mask]])
        remaining = remaining[~mask]
    return out


def volume(losses: np.ndarray, ref_loss: np.ndarray) -> float:
    """Hypervolume of ``losses`` up to ``ref_loss`` (shape ``k``); points outside the
    reference box add nothing."""
    points = np.asarray(losses, dtype=float).reshape(-1, len(ref_loss))
    inside = points[np.all(points <= ref_loss, axis=1)]
    return (
        float(compute_hypervolume(inside, np.asarray(ref_loss, dtype=float)))
        if len(inside)
        else 0.0
    )


def contributions(front: np.ndarray, ref_loss: np.ndarray) -> np.ndarray:
    """What the hypervolume of ``front`` loses without each point (shape ``n``)."""
    total = volume(front, ref_loss)
    return np.array(
        [total - volume(np.delete(front, i, axis=0), ref_loss) for i in range(len(front))]
    )


def rank(losses: np.ndarray) -> list[int]:
    """Row indices best first: by non-dominated front, then within a front by hypervolume
    contribution (SMS-EMOA's rule; the reference lies just beyond the worst value of each
    objective among the rows). Ties keep row order."""
    points = np.asarray(losses, dtype=float)
    reference = points.max(axis=0) + 0.1 * np.ptp(points, axis=0) + 1e-9
    order: list[int] = []
    for front in fronts(points):
        gain = contributions(points[front], reference)
        order += [front[k] for k in np.argsort(-gain, kind="stable")]
    return order


def knee_index(losses: np.ndarray) -> int:
    """The row closest to the ideal point once every objective is scaled to [0, 1] over the
    rows (Euclidean distance; ties go to the first row)."""
    points = np.asarray(losses, dtype=float)
    span = np.ptp(points, axis=0)
    scaled = (points - points.min(axis=0)) / np.where(span > 0, span, 1.0)
    return int(np.argmin(np.linalg.norm(scaled, axis=1)))
