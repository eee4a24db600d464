"""Every quantization and pruning scheme on the same fine-tuned MiniLM, measured on a GPU.

Runs effsearch's own hf-text-classification trial for each configuration (so the numbers are
what a search would record): CUDA-event latency, NVML energy, peak CUDA memory, size, accuracy
and agreement with the uncompressed parent. One JSON line per configuration on stdout.

    python benchmarks/gpu/schemes.py --model .gpu/all-minilm-l6-v2-fp16 --device cuda
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from effsearch.search.trial import device_slots
from effsearch.tasks.base import MeasureSettings, TrialContext
from effsearch.tasks.hf_text import HFTextClassification

PEFT = {
    "method": "lora",
    "r": 16,
    "alpha": 32.0,
    "dropout": 0.05,
    "target": "attention",
    "adapted_fraction": 1.0,
}
TRAINING = {"lr": 2e-3, "epochs": 3, "batch_size": 16}
CONFIGS = [
    ("fp32", {"method": "none"}, "none"),
    ("bf16", {"method": "none"}, "bf16"),
    ("fp16", {"method": "none"}, "fp16"),
    ("int8_dynamic", {"method": "none"}, "int8_dynamic"),
    ("int8_weight_only", {"method": "none"}, "int8_weight_only"),
    ("int4_weight_only", {"method": "none"}, "int4_weight_only"),
    ("2:4 + bf16, no recovery", {"method": "semi_structured_24", "finetune_epochs": 0}, "bf16"),
    ("2:4 + bf16", {"method": "semi_structured_24", "finetune_epochs": 1}, "bf16"),
    ("2:4 + fp16", {"method": "semi_structured_24", "finetune_epochs": 1}, "fp16"),
    (
        "heads_ffn 0.5 + bf16",
        {"method": "heads_ffn", "sparsity": 0.5, "finetune_epochs": 1},
        "bf16",
    ),
]
KEEP = (
    "accuracy",
    "accuracy_unquantized",
    "agreement",
    "latency_ms",
    "latency_p90_ms",
    "latency_iqr_ms",
    "throughput_per_s",
    "energy_j",
    "energy_j_est",
    "gpu_peak_memory_mb",
    "size_mb",
    "params",
    "flops",
    "train_time_s",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(4)
    task = HFTextClassification(
        model=args.model, max_length=args.max_length, train_samples=800, test_samples=400
    )
    print(
        json.dumps(
            {
                "device_name": torch.cuda.get_device_name(args.device),
                "torch": torch.__version__,
                "batch_size": args.batch_size,
                "max_length": args.max_length,
            }
        ),
        flush=True,
    )
    for label, prune, scheme in CONFIGS:
        ctx = TrialContext(
            trial_number=0,
            seed=0,
            device=args.device,
            threads=4,
            measure=MeasureSettings(batch_size=args.batch_size, warmup=10, repeats=100),
            slots=device_slots(args.device),
        )
        config = {
            "architecture": {"drop_layers": 0},
            "peft": PEFT,
            "training": TRAINING,
            "pruning": prune,
            "quantization": {"scheme": scheme},
        }
        started = time.perf_counter()
        try:
            metrics = task.run(config, ctx)
            row = {k: round(v, 5) for k, v in metrics.items() if k in KEEP}
        except Exception as exc:  # a scheme this stack cannot run is a result too
            row = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        row |= {"config": label, "wall_s": round(time.perf_counter() - started, 1)}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
