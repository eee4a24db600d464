"""The quickstart's space (digits CNN) made discrete and answered from real trials recorded once
(``benchmarks/record_lookup.py --problem digits_lookup``): a tabular benchmark of a real
compression space, categorical and conditional, that optimizers can be compared on over many
seeds.

Knobs (480 configurations): ``arch.width_mult`` in {0.125, 0.25, 0.5, 1.0}, ``arch.depth`` in
{1, 2, 3}; ``pruning.method`` in {none, magnitude, channel} and, only when pruning,
``pruning.sparsity`` in {0.3, 0.6} (3 recovery epochs); ``quantization.scheme`` in {none, bf16,
int8_dynamic, int8_dynamic_fbgemm}; ``training.lr`` in {0.002, 0.006} (15 epochs, batch 64).
Each configuration's metrics are what its one real trial measured: held-out ``accuracy`` (and
its binomial standard error), ``latency_ms`` (and the median's standard error, from the timed
repeats), ``size_mb``, ``test_accuracy``; a noise-aware optimizer reads the standard errors.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WIDTHS = (0.125, 0.25, 0.5, 1.0)
DEPTHS = (1, 2, 3)
METHODS = ("none", "magnitude", "channel")
SPARSITIES = (0.3, 0.6)
SCHEMES = ("none", "bf16", "int8_dynamic", "int8_dynamic_fbgemm")
LRS = (0.002, 0.006)
KEPT_METRICS = (
    "accuracy",
    "accuracy_se",
    "test_accuracy",
    "latency_ms",
    "latency_se_ms",
    "size_mb",
)
TASK = {"builtin": "digits-cnn"}
"""The recipe's ``task`` section the recorded trials ran."""
MEASURE = {"batch_size": 32, "warmup": 10, "repeats": 50}
"""Their ``measure`` section: the quickstart's."""
TABLE = Path(__file__).resolve().parent.parent / "results" / "digits-lookup.jsonl"
OBJECTIVES = [
    {"metric": "accuracy", "direction": "maximize", "ref": 0.97},
    {"metric": "latency_ms", "direction": "minimize", "ref": 0.6},
    {"metric": "size_mb", "direction": "minimize", "ref": 0.2},
]
"""The quickstart's objectives; the reference point is where a deployment would look (97 %
accuracy, 0.6 ms, 0.2 MB: 64 of the 480 configurations inside). Against the quickstart
benchmark's loose box (90 %, 2 ms, 0.7 MB) random search reached 0.93 of the table's
hypervolume in 50 evaluations and every sampler 0.95-0.99, too close to tell apart; here random
reaches about 0.59 (30 draws)."""


def grid() -> Iterator[dict[str, dict[str, Any]]]:
    """Every configuration, nested as the digits-cnn task takes it."""
    prunings = [{"method": "none"}] + [
        {"method": m, "sparsity": s, "finetune_epochs": 3}
        for m, s in itertools.product(METHODS[1:], SPARSITIES)
    ]
    for width, depth, prune, scheme, lr in itertools.product(
        WIDTHS, DEPTHS, prunings, SCHEMES, LRS
    ):
        yield {
            "architecture": {"width_mult": width, "depth": depth},
            "pruning": dict(prune),
            "quantization": {"scheme": scheme},
            "training": {"lr": lr, "epochs": 15, "batch_size": 64},
        }


def space() -> dict[str, Any]:
    """The same configurations as an entrypoint recipe's space."""
    return {
        "arch": {"width_mult": {"choice": list(WIDTHS)}, "depth": {"choice": list(DEPTHS)}},
        "pruning": {
            "method": {"choice": list(METHODS)},
            "sparsity": {"choice": list(SPARSITIES), "when": {"method": list(METHODS[1:])}},
        },
        "quantization": {"scheme": {"choice": list(SCHEMES)}},
        "training": {"lr": {"choice": list(LRS)}},
    }


def key(config: dict[str, dict[str, Any]]) -> tuple[Any, ...]:
    """One configuration's identity, from the task's or the entrypoint's nesting."""
    arch = config.get("architecture") or config["arch"]
    prune = config["pruning"]
    sparsity = prune.get("sparsity") if prune["method"] != "none" else None
    return (
        float(arch["width_mult"]),
        int(arch["depth"]),
        prune["method"],
        sparsity,
        config["quantization"]["scheme"],
        float(config["training"]["lr"]),
    )


@functools.cache
def table() -> dict[tuple[Any, ...], dict[str, float]]:
    """Configuration -> what its recorded trial measured (failed trials left out)."""
    rows = [json.loads(line) for line in TABLE.read_text().splitlines() if line.strip()]
    return {key(r["config"]): r["metrics"] for r in rows if r["ok"]}


def digits_lookup(config: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The entrypoint: the recorded trial's metrics of ``config``."""
    found = table().get(key(config))
    if found is None:
        raise ValueError(f"no recorded trial for {key(config)} (it failed when recorded)")
    return dict(found)
