"""Meters: hardware cost of a model as plain numbers with units in their names.

Every timing records the torch thread count and the repeat statistics it came from.
"""

from __future__ import annotations

import io
import statistics
import time
import warnings

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def latency(
    model: nn.Module, example_input: torch.Tensor, warmup: int, repeats: int
) -> dict[str, float]:
    """Wall-clock time of one forward pass on ``example_input`` (``batch x ...``).

    Median over ``repeats`` timed passes after ``warmup`` untimed ones, plus p90, min and the
    interquartile range, so the spread of the repeats travels with the number.
    """
    times_ms: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(example_input)
        for _ in range(repeats):
            start = time.perf_counter_ns()
            model(example_input)
            times_ms.append((time.perf_counter_ns() - start) / 1e6)
    times_ms.sort()
    quartiles = statistics.quantiles(times_ms, n=4) if len(times_ms) > 1 else [times_ms[0]] * 3
    return {
        "latency_ms": statistics.median(times_ms),
        "latency_p90_ms": _percentile(times_ms, 0.9),
        "latency_min_ms": times_ms[0],
        "latency_iqr_ms": quartiles[2] - quartiles[0],
        "latency_repeats": float(repeats),
        "latency_batch_size": float(example_input.shape[0]),
        "torch_threads": float(torch.get_num_threads()),
    }


def params(model: nn.Module) -> dict[str, float]:
    """Parameter count and how many of them are non-zero (unstructured sparsity shows here)."""
    total = 0
    nonzero = 0
    for tensor in model.parameters():
        total += tensor.numel()
        nonzero += int(torch.count_nonzero(tensor).item())
    return {"params": float(total), "nonzero_params": float(nonzero)}


def size(model: nn.Module) -> dict[str, float]:
    """Bytes of the serialized state dict, the artifact that would be deployed (1 MB = 1e6 B)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(model.state_dict(), buffer)
    return {"size_mb": buffer.getbuffer().nbytes / 1e6}


def flops(model: nn.Module, example_input: torch.Tensor) -> dict[str, float]:
    """Forward FLOPs per sample as torch's FlopCounterMode counts them.

    The counter sees shapes, not values: it ignores unstructured zeros and counts 0 for
    torch.ao quantized modules, so call it on the float model (after channel pruning, before
    quantization); quantization changes the precision of these FLOPs, not their number.
    """
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(example_input)
    return {"flops": counter.get_total_flops() / example_input.shape[0]}


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]
