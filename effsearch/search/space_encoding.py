"""A search space as points of the unit cube, for model-based optimizers.

Each searched knob takes one column in [0, 1] (floats and ints, on a log scale where the knob
is log) or one column per choice (one-hot). A knob that is inactive in a configuration (its
condition does not hold) is imputed: 0.5 for a numeric column, all zeros for a choice. Every
point an optimizer proposes is made *canonical* (decoded to a valid configuration, its
conditions resolved, and encoded again), so the model only ever sees points that stand for
configurations a trial can run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from effsearch.spaces.knobs import Knob, SearchSpace

INACTIVE_NUMERIC = 0.5


@dataclass(frozen=True)
class _Column:
    knob: Knob
    start: int
    width: int


class SpaceEncoding:
    """Encode, decode and sample the searched knobs of ``space`` in the unit cube."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.columns: list[_Column] = []
        width = 0
        for knob in space.searched:
            size = (
                len(knob.distribution.choices)
                if isinstance(knob.distribution, CategoricalDistribution)
                else 1
            )
            self.columns.append(_Column(knob, width, size))
            width += size
        self.dims = width

    # ------------------------------------------------------------------ values <-> rows
    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """The row of stored parameters (``group.knob`` -> value); absent knobs are imputed."""
        row = np.zeros(self.dims)
        for column in self.columns:
            name = column.knob.full_name
            if name not in params:
                if column.width == 1:
                    row[column.start] = INACTIVE_NUMERIC
                continue
            row[column.start : column.start + column.width] = _encode_value(
                column.knob, params[name]
            )
        return row

    def decode(self, row: np.ndarray) -> dict[str, Any]:
        """Parameters of the *active* knobs of the configuration nearest to ``row``."""
        values: dict[str, Any] = {}
        params: dict[str, Any] = {}
        by_name = {c.knob.full_name: c for c in self.columns}
        for knob in self.space.knobs:
            if not knob.is_active(values):
                continue
            if not knob.searched:
                values[knob.full_name] = knob.fixed
                continue
            column = by_name[knob.full_name]
            value = _decode_value(knob, row[column.start : column.start + column.width])
            values[knob.full_name] = params[knob.full_name] = value
        return params

    def canonical(self, rows: np.ndarray) -> np.ndarray:
        """Each row replaced by the encoding of the configuration it decodes to."""
        return np.array([self.encode(self.decode(row)) for row in rows]).reshape(-1, self.dims)

    # ------------------------------------------------------------------ proposals
    def perturb(self, rows: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
        """Canonical neighbours of ``rows``: Gaussian steps of ``scale`` on numeric columns,
        and each choice redrawn with probability ``scale``."""
        out = rows.copy()
        for column in self.columns:
            cols = slice(column.start, column.start + column.width)
            if column.width == 1 and not isinstance(
                column.knob.distribution, CategoricalDistribution
            ):
                out[:, cols] = np.clip(
                    out[:, cols] + rng.normal(0.0, scale, (len(out), 1)), 0.0, 1.0
                )
                continue
            redraw = rng.random(len(out)) < scale
            picks = rng.integers(0, column.width, int(redraw.sum()))
            block = np.zeros((int(redraw.sum()), column.width))
            block[np.arange(len(picks)), picks] = 1.0
            out[redraw, cols] = block
        return self.canonical(out)

    def model_inputs(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` as a categorical kernel reads them: each choice knob one column holding its
        choice's index (the choice count when the knob is inactive: a category of its own),
        numeric columns as they are. Column order: :attr:`model_categorical`, then numeric."""
        out = np.zeros((len(rows), len(self.columns)))
        for k, column in enumerate(self._model_order):
            block = rows[:, column.start : column.start + column.width]
            if isinstance(column.knob.distribution, CategoricalDistribution):
                active = block.max(axis=1) > 0
                out[:, k] = np.where(active, block.argmax(axis=1), column.width)
            else:
                out[:, k] = block[:, 0]
        return out

    @property
    def model_categorical(self) -> list[int]:
        """Columns of :meth:`model_inputs` that hold choice indices."""
        return [
            k
            for k, column in enumerate(self._model_order)
            if isinstance(column.knob.distribution, CategoricalDistribution)
        ]

    @property
    def _model_order(self) -> list[_Column]:
        return sorted(
            self.columns,
            key=lambda c: not isinstance(c.knob.distribution, CategoricalDistribution),
        )

    def from_unit(self, points: np.ndarray) -> np.ndarray:
        """Canonical rows from points of the unit cube with one coordinate per knob (a Sobol
        sequence, say): a choice knob's coordinate picks its choice uniformly."""
        rows = np.zeros((len(points), self.dims))
        for k, column in enumerate(self.columns):
            if isinstance(column.knob.distribution, CategoricalDistribution):
                picks = np.minimum((points[:, k] * column.width).astype(int), column.width - 1)
                rows[np.arange(len(points)), column.start + picks] = 1.0
            else:
                rows[:, column.start] = points[:, k]
        return self.canonical(rows)

    @property
    def n_knobs(self) -> int:
        return len(self.columns)


def _encode_value(knob: Knob, value: Any) -> np.ndarray:
    dist = knob.distribution
    if isinstance(dist, CategoricalDistribution):
        onehot = np.zeros(len(dist.choices))
        onehot[dist.choices.index(value)] = 1.0
        return onehot
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    low, high, v = float(dist.low), float(dist.high), float(value)
    if high == low:
        return np.array([0.0])
    if dist.log:
        return np.array([(math.log(v) - math.log(low)) / (math.log(high) - math.log(low))])
    return np.array([(v - low) / (high - low)])


def _decode_value(knob: Knob, cells: Sequence[float] | np.ndarray) -> Any:
    dist = knob.distribution
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(np.argmax(cells))]
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    unit = min(max(float(cells[0]), 0.0), 1.0)
    low, high = float(dist.low), float(dist.high)
    if dist.log:
        value = math.exp(math.log(low) + unit * (math.log(high) - math.log(low)))
    else:
        value = low + unit * (high - low)
    if isinstance(dist, IntDistribution):
        step = dist.step
        return int(min(high, max(low, low + round((value - low) / step) * step)))
    if dist.step is not None:
        steps = math.floor((high - low) / dist.step + 1e-9)
        k = min(steps, max(0, round((value - low) / dist.step)))
        return float(min(high, low + k * dist.step))
    return float(min(high, max(low, value)))
