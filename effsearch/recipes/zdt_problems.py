"""Bring-your-own-workload example: standard multi-objective test problems as entrypoint tasks.

ZDT1, ZDT2, ZDT3 (Zitzler, Deb, Thiele 2000; two objectives) and DTLZ2 (Deb et al. 2002;
three objectives), exactly as ``botorch.test_functions.multi_objective`` defines them: every
objective minimized over ``config["x"]["x0"] ... ["x{n-1}"]`` in [0, 1]. Their Pareto fronts
and the hypervolume of those fronts are known, which makes them the usual yardstick for a
multi-objective optimizer (``benchmarks/optimizers.py``). Any function with this shape works
as a task: ``f(config) -> dict[str, float]`` or ``f(config, ctx)``.
"""

from __future__ import annotations

from typing import Any

NOISE_BASE = 0.02
NOISE_SLOPE = 0.1


def zdt1(config: dict[str, Any]) -> dict[str, float]:
    """Convex front ``f2 = 1 - sqrt(f1)``."""
    return _evaluate("ZDT1", config)


def zdt2(config: dict[str, Any]) -> dict[str, float]:
    """Concave front ``f2 = 1 - f1**2``."""
    return _evaluate("ZDT2", config)


def zdt3(config: dict[str, Any]) -> dict[str, float]:
    """Front in five disconnected pieces."""
    return _evaluate("ZDT3", config)


def dtlz2(config: dict[str, Any]) -> dict[str, float]:
    """Three objectives; the front is the positive octant of the unit sphere."""
    return _evaluate("DTLZ2", config, num_objectives=3)


def _evaluate(problem: str, config: dict[str, Any], **options: Any) -> dict[str, float]:
    import torch
    from botorch.test_functions import multi_objective

    xs = [config["x"][f"x{i}"] for i in range(len(config["x"]))]
    function = getattr(multi_objective, problem)(dim=len(xs), **options)
    values = function.evaluate_true(torch.tensor([xs], dtype=torch.float64))[0]
    return {f"f{i + 1}": float(v) for i, v in enumerate(values)}


def noisy_zdt1(config: dict[str, Any], ctx: Any) -> dict[str, float]:
    """ZDT1 measured with noise (see :func:`_noisy`)."""
    return _noisy(_evaluate("ZDT1", config), config, ctx)


def noisy_dtlz2(config: dict[str, Any], ctx: Any) -> dict[str, float]:
    """DTLZ2 measured with noise (see :func:`_noisy`)."""
    return _noisy(_evaluate("DTLZ2", config, num_objectives=3), config, ctx)


def _noisy(true: dict[str, float], config: dict[str, Any], ctx: Any) -> dict[str, float]:
    """A synthetic noisy measurement, as a benchmark of noise-aware optimizers needs: each
    objective plus Gaussian noise whose standard deviation grows with ``x0`` (0.02 at x0 = 0,
    0.12 at x0 = 1: heteroscedastic, like latency on a busy machine), reported as ``f<i>_se``;
    the noise-free values are reported as ``f<i>_true`` for scoring only. Seeded by the run's
    seed and the trial number."""
    import numpy as np

    sigma = NOISE_BASE + NOISE_SLOPE * float(config["x"]["x0"])
    rng = np.random.default_rng([ctx.seed, ctx.trial_number])
    measured: dict[str, float] = {}
    for name, value in true.items():
        measured[name] = value + sigma * float(rng.standard_normal())
        measured[f"{name}_se"] = sigma
        measured[f"{name}_true"] = value
    return measured
