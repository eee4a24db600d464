"""Runtime engines side by side on this CPU: the same models on torch eager, torch.compile and
ONNX Runtime, each float and int8, converted by effsearch's own code (``transforms.runtime``)
and timed by its meter, interleaved in one run.

Models: the real all-MiniLM-L6-v2 (BBC News texts, 64 tokens, batch 16: the text-lora recipe's
measure batch) and the digits CNN at full width and depth (batch 32: the quickstart's). The
MiniLM head is untrained and the CNN is trained for 5 epochs; "agreement" is how often a
configuration's predicted class matches eager fp32's on the held-out inputs (a numerics check).
Rounds interleave every configuration (round-robin, ``--rounds`` times ``--repeats`` timed calls
after warm-up), and a configuration's latency is the median of its round medians, so load on
this shared machine hits all of them alike. One torch / ONNX Runtime thread.

    .venv/bin/python benchmarks/engines.py --out benchmarks/results/engines-cpu.jsonl
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from torch import nn

from effsearch.errors import TaskError
from effsearch.objectives import meters
from effsearch.transforms import runtime

CONFIGS = (
    ("eager", "none"),
    ("eager", "int8_dynamic"),
    ("eager", "int8_dynamic_fbgemm"),
    ("compile", "none"),
    ("compile", "int8_dynamic"),
    ("onnxruntime", "none"),
    ("onnxruntime", "int8_dynamic"),
    ("onnxruntime", "int8_static"),
)


def minilm() -> dict[str, Any]:
    from effsearch.tasks.hf_text import HFTextClassification

    task = HFTextClassification(max_length=64, train_samples=64, test_samples=400)
    batch = {k: v[:16] for k, v in task.test_inputs.items()}
    return {
        "name": "all-MiniLM-L6-v2 (batch 16 x 64 tokens)",
        "model": task.pretrained.eval(),
        "batch": batch,
        "batch_size": 16,
        "inputs": task.test_inputs,
        "example": {k: v[:1] for k, v in batch.items()},
        "calibration": task._calibration(torch.device("cpu")),
        "call": lambda m, x: m(**x),
    }


def digits() -> dict[str, Any]:
    from effsearch.tasks.digits_cnn import build_model, load_split

    train_x, train_y, val_x, *_ = load_split()
    torch.manual_seed(0)
    model = build_model(1.0, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(5):
        for index in torch.randperm(len(train_x)).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(train_x[index]), train_y[index]).backward()
            optimizer.step()
    return {
        "name": "digits CNN, width 1, depth 3 (batch 32)",
        "model": model.eval(),
        "batch": val_x[:32],
        "batch_size": 32,
        "inputs": val_x,
        "example": val_x[:1],
        "calibration": list(train_x[:256].split(32)),
        "call": lambda m, x: m(x),
    }


def predictions(call: Callable[[Any, Any], Any], model: Any, inputs: Any) -> torch.Tensor:
    with torch.inference_mode():
        if isinstance(inputs, dict):
            chunks = [
                call(model, {k: v[i : i + 64] for k, v in inputs.items()})
                for i in range(0, len(next(iter(inputs.values()))), 64)
            ]
        else:
            chunks = [call(model, inputs[i : i + 64]) for i in range(0, len(inputs), 64)]
    return torch.cat([getattr(c, "logits", c) for c in chunks]).argmax(-1)


def bench(workload: dict[str, Any], rounds: int, repeats: int, folder: Path) -> list[dict]:
    call, batch = workload["call"], workload["batch"]
    reference = predictions(call, workload["model"], workload["inputs"])
    contenders: list[dict[str, Any]] = []
    for engine, scheme in CONFIGS:
        row: dict[str, Any] = {"model": workload["name"], "engine": engine, "scheme": scheme}
        config = {"runtime": {"engine": engine}, "quantization": {"scheme": scheme}}
        where = folder / f"{len(contenders)}"
        where.mkdir(parents=True)
        started = time.perf_counter()
        try:
            deployed = runtime.deploy(
                copy.deepcopy(workload["model"]),
                config,
                "cpu",
                1,
                workload["example"],
                where,
                workload["calibration"],
            )
            with torch.inference_mode():
                call(deployed.model, batch)  # compile: builds the measure batch's graph
            row["build_s"] = round(time.perf_counter() - started, 2)
            agreed = predictions(call, deployed.model, workload["inputs"]) == reference
            row["agreement_with_eager_fp32"] = round(float(agreed.float().mean()), 4)
            row["size_mb"] = round(
                deployed.onnx_file.stat().st_size / 1e6
                if deployed.onnx_file is not None
                else meters.size(deployed.quantized.model)["size_mb"],  # type: ignore[union-attr]
                3,
            )
        except (TaskError, RuntimeError) as exc:
            row["error"] = str(exc)[:200]
            contenders.append({"row": row})
            continue
        contenders.append(
            {"row": row, "run": lambda m=deployed.model: call(m, batch), "medians": []}
        )
    timed = [c for c in contenders if "run" in c]
    for _ in range(rounds):
        for contender in timed:
            timing = meters.latency(contender["run"], workload["batch_size"], 3, repeats)
            contender["medians"].append(timing["latency_ms"])
    base = statistics.median(timed[0]["medians"])
    rows = []
    for contender in contenders:
        row = contender["row"]
        if "medians" in contender:
            latency = statistics.median(contender["medians"])
            row["latency_ms"] = round(latency, 3)
            row["round_medians_ms"] = [round(m, 3) for m in contender["medians"]]
            row["speedup_vs_eager_fp32"] = round(base / latency, 2)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["digits", "minilm"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    machine = {
        "machine": platform.processor() or platform.machine(),
        "cpu": meters.provenance("cpu")["device_name"],
        "torch": torch.__version__,
        "threads": 1,
    }
    lines = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            workload = {"digits": digits, "minilm": minilm}[name]()
            for row in bench(workload, args.rounds, args.repeats, Path(scratch) / name):
                row |= machine
                print(json.dumps(row), flush=True)
                lines.append(json.dumps(row))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
