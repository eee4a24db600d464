"""How noisy a trial's measurement of a metric is: the variance a model-based optimizer gives it.

A metric's standard error comes from the trial's own record: the metric named in
:data:`STANDARD_ERRORS` (the latency median's from its timed repeats, accuracy's binomial one
from the number of validation examples), or ``<metric>_se`` when a task reports one (an
entrypoint may report ``f1_se`` beside ``f1``). Metrics that follow from the configuration
alone (size, parameter counts, FLOPs) are exact. Anything else is unknown: the optimizer then
learns that metric's noise from the data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from effsearch.objectives.metrics import on_device, split_device

STANDARD_ERRORS = {
    "latency_ms": "latency_se_ms",
    "latency_p50_ms": "latency_se_ms",
    "throughput_per_s": "throughput_se_per_s",
    "accuracy": "accuracy_se",
    "accuracy_delta": "accuracy_se",
    "agreement": "agreement_se",
}
"""Metric -> the metric that holds the standard error of its measurement."""

EXACT = frozenset(
    {"params", "nonzero_params", "size_mb", "size_dense_mb", "flops", "trainable_params"}
)
"""Metrics that are a function of the configuration: the same on every seed and machine."""

MEDIAN_SE_PER_SIGMA = math.sqrt(math.pi / 2)
"""The standard error of a sample median is sqrt(pi/2) x sigma / sqrt(n) (normal samples)."""
IQR_PER_SIGMA = 1.349
"""The interquartile range of a normal distribution in standard deviations."""


def variance(metric: str, metrics: Mapping[str, float]) -> float | None:
    """The variance of a trial's measured ``metric`` (its squared standard error), 0.0 for an
    exact metric, None when the trial's record does not tell. A metric measured on a named
    device (``latency_ms@cuda``) reads that device's error (``latency_se_ms@cuda``)."""
    base, device = split_device(metric)
    se_name = STANDARD_ERRORS.get(base, f"{base}_se")
    se_name = on_device(se_name, device) if device else se_name
    se = metrics.get(se_name)
    if se is not None and math.isfinite(se):
        return float(se) ** 2
    if base in EXACT:
        return 0.0
    return None


def median_se(iqr: float, repeats: int) -> float:
    """Standard error of the median of ``repeats`` timings whose interquartile range is ``iqr``
    (sigma estimated robustly as IQR / 1.349, so one slow outlier does not inflate it)."""
    return MEDIAN_SE_PER_SIGMA * (iqr / IQR_PER_SIGMA) / math.sqrt(max(repeats, 1))


def binomial_se(fraction: float, examples: int) -> float:
    """Standard error of a fraction of ``examples`` (accuracy, agreement). The fraction is
    smoothed as (k + 1) / (n + 2), so 100 % on a small split still has an error."""
    if examples <= 0:
        return float("nan")
    smoothed = (fraction * examples + 1) / (examples + 2)
    return math.sqrt(smoothed * (1 - smoothed) / examples)
