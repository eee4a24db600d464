"""Bring-your-own-workload example: the ZDT1 benchmark as an entrypoint task.

ZDT1 (Zitzler, Deb, Thiele 2000) has a known Pareto front f2 = 1 - sqrt(f1) at g = 1; it is the
usual sanity check for a multi-objective optimizer. Any function with this shape works:
``f(config) -> dict[str, float]`` or ``f(config, ctx)``.
"""

from __future__ import annotations

import math
from typing import Any


def zdt1(config: dict[str, Any]) -> dict[str, float]:
    """Minimize both ``f1`` and ``f2`` over ``config["x"]["x0"] ... ["x{n-1}"]`` in [0, 1]."""
    xs = [config["x"][name] for name in sorted(config["x"], key=lambda n: int(n[1:]))]
    f1 = xs[0]
    g = 1.0 + 9.0 * sum(xs[1:]) / (len(xs) - 1)
    f2 = g * (1.0 - math.sqrt(f1 / g))
    return {"f1": f1, "f2": f2}
