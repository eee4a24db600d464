"""The text recipe's space (MiniLM on BBC News) made discrete and answered from real trials
recorded once (``benchmarks/record_lookup.py --problem text_lookup``): a tabular benchmark
of a real transformer-compression space, categorical and conditional.

Knobs (252 configurations), those of ``recipes/text-lora.yaml``: ``architecture.drop_layers``
in {0, 1, 2, 3}; ``peft.method`` in {lora, ia3} and, only for lora, ``peft.r`` in {4, 16};
``pruning.method`` in {none, heads, ffn, heads_ffn} and, only when pruning,
``pruning.sparsity`` in {0.25, 0.5}; ``quantization.scheme`` in {none, bf16, int8_dynamic}.
Fixed: LoRA alpha 2r on attention and MLP, learning rate 0.002.

Cheaper than the recipe, so that every configuration can be run here (a trial of the recipe
takes 50-170 s on this machine): 300 training texts for 2 epochs, 32 tokens, measured on
batches of 16 with 10 timed repeats. Each configuration's metrics are what its one real trial
measured: held-out ``accuracy`` (and its binomial standard error), ``latency_ms`` (and the
median's standard error), ``size_mb``, ``test_accuracy``.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DROPS = (0, 1, 2, 3)
ADAPTERS = ("lora", "ia3")
RANKS = (4, 16)
METHODS = ("none", "heads", "ffn", "heads_ffn")
SPARSITIES = (0.25, 0.5)
SCHEMES = ("none", "bf16", "int8_dynamic")
LR = 0.002
TASK = {
    "builtin": "hf-text-classification",
    "options": {
        "model": "builtin:all-minilm-l6-v2",
        "dataset": "builtin:bbc-news",
        "max_length": 32,
        "train_samples": 300,
        "test_samples": 400,
    },
}
"""The recipe's ``task`` section the recorded trials ran."""
MEASURE = {"batch_size": 16, "warmup": 3, "repeats": 10}
"""Their ``measure`` section."""
KEPT_METRICS = (
    "accuracy",
    "accuracy_se",
    "test_accuracy",
    "latency_ms",
    "latency_se_ms",
    "size_mb",
)
TABLE = Path(__file__).resolve().parent.parent / "results" / "text-lookup.jsonl"
OBJECTIVES = [
    {"metric": "accuracy", "direction": "maximize", "ref": 0.6},
    {"metric": "latency_ms", "direction": "minimize", "ref": 30.0},
    {"metric": "size_mb", "direction": "minimize", "ref": 50.0},
]
"""The text recipe's objectives; the reference point is where a deployment would look (60 %
accuracy on 5 topics, 30 ms per batch of 16, 50 MB): 28 of the 252 recorded configurations lie
inside it, as 64 of 480 do in the digits table (chosen after recording, before any search)."""


def grid() -> Iterator[dict[str, dict[str, Any]]]:
    """Every configuration, nested as the hf-text-classification task takes it."""
    adapters = [{"method": "lora", "r": r, "alpha": 2.0 * r} for r in RANKS] + [{"method": "ia3"}]
    prunings = [{"method": "none"}] + [
        {"method": m, "sparsity": s, "finetune_epochs": 0}
        for m, s in itertools.product(METHODS[1:], SPARSITIES)
    ]
    for drop, adapter, prune, scheme in itertools.product(DROPS, adapters, prunings, SCHEMES):
        yield {
            "architecture": {"drop_layers": drop},
            "peft": {**adapter, "dropout": 0.05, "target": "attention_mlp"},
            "training": {"lr": LR, "epochs": 2, "batch_size": 16},
            "pruning": dict(prune),
            "quantization": {"scheme": scheme},
        }


def space() -> dict[str, Any]:
    """The same configurations as an entrypoint recipe's space."""
    return {
        "architecture": {"drop_layers": {"choice": list(DROPS)}},
        "peft": {
            "method": {"choice": list(ADAPTERS)},
            "r": {"choice": list(RANKS), "when": {"method": ["lora"]}},
        },
        "pruning": {
            "method": {"choice": list(METHODS)},
            "sparsity": {"choice": list(SPARSITIES), "when": {"method": list(METHODS[1:])}},
        },
        "quantization": {"scheme": {"choice": list(SCHEMES)}},
    }


def key(config: dict[str, dict[str, Any]]) -> tuple[Any, ...]:
    """One configuration's identity, from the task's or the entrypoint's nesting."""
    peft, prune = config["peft"], config["pruning"]
    return (
        int(config["architecture"]["drop_layers"]),
        peft["method"],
        int(peft["r"]) if peft["method"] == "lora" else None,
        prune["method"],
        float(prune["sparsity"]) if prune["method"] != "none" else None,
        config["quantization"]["scheme"],
    )


@functools.cache
def table() -> dict[tuple[Any, ...], dict[str, float]]:
    """Configuration -> what its recorded trial measured (failed trials left out)."""
    rows = [json.loads(line) for line in TABLE.read_text().splitlines() if line.strip()]
    return {key(r["config"]): r["metrics"] for r in rows if r["ok"]}


def text_lookup(config: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The entrypoint: the recorded trial's metrics of ``config``."""
    found = table().get(key(config))
    if found is None:
        raise ValueError(f"no recorded trial for {key(config)} (it failed when recorded)")
    return dict(found)
