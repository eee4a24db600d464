"""Is latency_ms repeatable while other trials run? Alone vs. concurrent, with and without slots.

The same trained model is timed with effsearch's meter (median of `--repeats` passes) in
`--rounds` rounds under three conditions, one after the other in one run:
  alone        nothing else runs;
  busy+slots   `--others` processes train digits CNNs (1 thread each) the way effsearch trials
               do: every step inside the device's compute slot, so a measurement waits for
               them to leave the device (effsearch's design);
  busy-slots   the same load, but the trainers ignore the slots (what happens without them).
Prints the median latency of each condition and its ratio to `alone`.

    python benchmarks/measurement.py                      # digits CNN, batch 256
    python benchmarks/measurement.py --model minilm       # all-MiniLM-L6-v2, batch 16 x 64 tokens
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from effsearch.objectives import meters
from effsearch.objectives.slots import DeviceSlots
from effsearch.tasks.base import MeasureSettings, TrialContext


def trainer(use_slots: bool, slot_folder: str) -> None:
    """A stand-in trial: trains a digits CNN forever, one step per compute slot."""
    from effsearch.tasks.digits_cnn import build_model, load_split

    torch.set_num_threads(1)
    train_x, train_y, _, _ = load_split()
    model = build_model(1.0, 3)
    optimizer = torch.optim.Adam(model.parameters())
    slots = DeviceSlots("cpu", Path(slot_folder))
    step = 0
    while True:
        index = torch.randint(0, len(train_x), (64,))
        if use_slots:
            with slots.compute():
                _step(model, optimizer, train_x[index], train_y[index])
        else:
            _step(model, optimizer, train_x[index], train_y[index])
        step += 1


def _step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> None:
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def subject(name: str) -> tuple[torch.nn.Module, dict[str, torch.Tensor] | torch.Tensor, int]:
    """The model under test and its measure batch."""
    if name == "minilm":
        from effsearch.tasks.hf_text import HFTextClassification

        task = HFTextClassification(max_length=64, train_samples=32, test_samples=64)
        batch = {k: v[:16] for k, v in task.test_inputs.items()}
        return task.pretrained.eval(), batch, 16
    from effsearch.tasks.digits_cnn import build_model, load_split

    _, _, test_x, _ = load_split()
    batch_x = test_x.repeat(2, 1, 1, 1)[:256].contiguous()
    return build_model(1.0, 3).eval(), batch_x, 256


def measure(model: torch.nn.Module, batch: object, size: int, ctx: TrialContext) -> float:
    if isinstance(batch, dict):
        return meters.measure_model(lambda: model(**batch), size, ctx)["latency_ms"]
    return meters.measure_model(lambda: model(batch), size, ctx)["latency_ms"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["cnn", "minilm"], default="cnn")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--others", type=int, default=1, help="concurrent trainer processes")
    parser.add_argument("--trainer", choices=["slots", "noslots"], help=argparse.SUPPRESS)
    parser.add_argument("--slot-folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trainer:
        trainer(args.trainer == "slots", args.slot_folder)
        return

    torch.set_num_threads(1)
    slot_folder = tempfile.mkdtemp(prefix="effsearch-bench-slots-")
    model, batch, size = subject(args.model)
    ctx = TrialContext(
        trial_number=0,
        seed=0,
        measure=MeasureSettings(batch_size=size, warmup=10, repeats=args.repeats),
        slots=DeviceSlots("cpu", Path(slot_folder)),
    )
    results: dict[str, list[float]] = {}
    for condition in ("alone", "busy+slots", "busy-slots"):
        others = []
        if condition != "alone":
            mode = "slots" if condition == "busy+slots" else "noslots"
            others = [
                subprocess.Popen(
                    [sys.executable, __file__, "--trainer", mode, "--slot-folder", slot_folder]
                )
                for _ in range(args.others)
            ]
            time.sleep(4)  # let them import and start stepping
        try:
            results[condition] = [measure(model, batch, size, ctx) for _ in range(args.rounds)]
        finally:
            for process in others:
                process.kill()
                process.wait()
    alone = statistics.median(results["alone"])
    report = {
        "model": args.model,
        "batch_size": size,
        "repeats_per_round": args.repeats,
        "rounds": args.rounds,
        "concurrent_trainers": args.others,
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    for condition, values in results.items():
        median = statistics.median(values)
        report[condition] = {
            "median_latency_ms": round(median, 4),
            "rounds_ms": [round(v, 4) for v in values],
            "ratio_to_alone": round(median / alone, 3),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
