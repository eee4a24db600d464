"""What a search optimizes: objectives with their directions, and constraints.

One convention for directions, used everywhere: an objective's *loss* is ``sign * value`` with
``sign`` +1 for a minimized and -1 for a maximized objective, so smaller losses are better
(Optuna's hypervolume and every non-domination test here work on losses). This module is a
leaf: it imports nothing of effsearch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

Direction = Literal["maximize", "minimize"]


class Objective(BaseModel):
    """One objective; ``ref`` is its hypervolume reference value (the worst value that counts).

    It is also the schema of one entry of a recipe's ``objectives`` list.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    metric: str
    direction: Direction
    ref: float | None = None


def sign(direction: Any) -> float:
    """+1 for ``minimize``, -1 for ``maximize`` (also Optuna's ``StudyDirection`` members)."""
    name = str(getattr(direction, "name", direction)).lower()
    if name not in ("minimize", "maximize"):
        raise ValueError(f"a direction is 'maximize' or 'minimize', got {direction!r}")
    return 1.0 if name == "minimize" else -1.0


def signs(directions: Iterable[Any]) -> np.ndarray:
    """Signs of objectives (or of bare directions): ``loss = sign * value``. Shape ``k``."""
    return np.array([sign(getattr(d, "direction", d)) for d in directions], dtype=float)


def losses(values: Any, objectives: Sequence[Any]) -> np.ndarray:
    """Objective values as losses; ``values``: ``n x k`` (or ``k``) in the objectives' units."""
    return np.asarray(values, dtype=float) * signs(objectives)


def worst(values: Any, objectives: Sequence[Any]) -> list[float]:
    """Per objective, the worst of ``values`` (``n x k``, n >= 1), in the objectives' units."""
    loss = losses(values, objectives)
    return [float(v) for v in loss.max(axis=0) * signs(objectives)]


@dataclass(frozen=True)
class Constraint:
    """``metric <= limit`` or ``metric >= limit``; feasible when :meth:`violation` <= 0."""

    metric: str
    op: Literal["<=", ">="]
    limit: float

    def violation(self, value: float) -> float:
        return value - self.limit if self.op == "<=" else self.limit - value

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"


# a metric name may end in @device (latency_ms@cuda:1: measured on that device)
_CONSTRAINT = re.compile(
    r"^\s*([A-Za-z_][\w.]*(?:@(?:cpu|cuda(?::\d+)?))?)\s*(<=|>=|<|>|==|=)\s*(\S+)\s*$"
)


def parse_constraint(text: str) -> Constraint:
    """Parse ``"metric <= 5"`` / ``"metric >= 0.9"``; ValueError with the reason if malformed."""
    match = _CONSTRAINT.match(text)
    if not match:
        raise ValueError(f"must look like 'metric <= number' or 'metric >= number' (got {text!r})")
    metric, op, number = match.groups()
    if op not in ("<=", ">="):
        raise ValueError(f"use <= or >= (got {op!r} in {text!r})")
    try:
        limit = float(number)
    except ValueError:
        raise ValueError(f"the limit must be a number (got {number!r} in {text!r})") from None
    if not math.isfinite(limit):
        raise ValueError(f"the limit must be finite (got {number!r})")
    return Constraint(metric, op, limit)  # type: ignore[arg-type]
