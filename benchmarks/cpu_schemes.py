"""Quantization schemes side by side on the CPU: the real all-MiniLM-L6-v2, same inputs, one run.

Latency with effsearch's meter (1 torch thread), serialized size, and how often each scheme's
prediction matches the fp32 model's on 400 BBC News texts (a numerics check: the head is
untrained, so accuracy means nothing here).

    python benchmarks/cpu_schemes.py
"""

from __future__ import annotations

import copy
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from effsearch.objectives import meters
from effsearch.tasks.hf_text import HFTextClassification
from effsearch.transforms import quantization

SCHEMES = ("none", "bf16", "fp16", "int8_dynamic", "int8_dynamic_fbgemm", "int8_weight_only")


def main() -> None:
    torch.set_num_threads(1)
    task = HFTextClassification(max_length=64, train_samples=16, test_samples=400)
    base = task.pretrained.eval()
    batch = {k: v[:16] for k, v in task.test_inputs.items()}
    with torch.inference_mode():
        reference = base(**task.test_inputs).logits.argmax(-1)
    rows = []
    for scheme in SCHEMES:
        model = quantization.apply(copy.deepcopy(base), {"scheme": scheme}).model
        with torch.inference_mode():
            predictions = model(**task.test_inputs).logits.argmax(-1)
        timing = meters.latency(lambda m=model: m(**batch), 16, 5, 30)
        rows.append(
            {
                "scheme": scheme,
                "latency_ms": round(timing["latency_ms"], 2),
                "latency_iqr_ms": round(timing["latency_iqr_ms"], 2),
                "size_mb": round(meters.size(model)["size_mb"], 2),
                "agreement_with_fp32": round(meters.agreement(predictions, reference), 4),
            }
        )
    fp32 = rows[0]["latency_ms"]
    for row in rows:
        row["speedup_vs_fp32"] = round(fp32 / row["latency_ms"], 2)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
