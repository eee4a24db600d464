"""Do the CUDA-only kernels (torchao int4 weight-only, 2:4 semi-structured sparsity) run, agree
with the dense model, and pay off? Measured on a MiniLM-shaped BERT with random weights, so it
needs no checkpoint: it checks numerics and speed, not task accuracy.

    python benchmarks/gpu/cuda_kernels.py      (on a CUDA machine; prints one JSON line per variant)
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

from effsearch.objectives import meters
from effsearch.transforms import pruning, quantization

CONFIG = Path(__file__).with_name("minilm_config.json")


def main() -> None:
    torch.manual_seed(0)
    config = BertConfig.from_json_file(str(CONFIG))
    config.num_labels = 5
    base = BertForSequenceClassification(config).eval().cuda()
    ids = torch.randint(1000, 20000, (64, 128), device="cuda")
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.inference_mode():
        reference = base(**batch).logits.float()
    variants = {
        "fp32": ({"method": "none"}, "none"),
        "bf16": ({"method": "none"}, "bf16"),
        "2:4 masked, dense bf16": ({"method": "semi_structured_24"}, "bf16"),
        "2:4 semi-structured kernels, bf16": ({"method": "semi_structured_24"}, "bf16"),
        # last: a crash inside its kernel leaves the CUDA context unusable for what follows
        "int4_weight_only (bf16 activations)": ({"method": "none"}, "int4_weight_only"),
    }
    print(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__}))
    for name, (prune, scheme) in variants.items():
        model = copy.deepcopy(base)
        row: dict[str, object] = {"variant": name}
        try:
            pruning.apply(model, prune)
            pruning.finalize(model)
            with torch.inference_mode():
                masked = model(**batch).logits.float()
            if scheme == "int4_weight_only":
                model = model.to(torch.bfloat16)  # torchao int4 kernels take bf16 activations
            quantized = quantization.apply(model, {"scheme": scheme}, "cuda").model
            if "kernels" in name:
                row["converted_layers"] = pruning.to_semi_structured(quantized)
            with torch.inference_mode():
                out = quantized(**batch).logits.float()
            row["max_abs_diff_vs_dense_parent"] = float((out - masked).abs().max())
            row["argmax_agreement_vs_fp32"] = float(
                (out.argmax(-1) == reference.argmax(-1)).float().mean()
            )
            row |= {
                k: round(v, 4)
                for k, v in meters.latency(
                    lambda m=quantized: m(**batch), 64, 10, 100, "cuda"
                ).items()
                if k in ("latency_ms", "latency_p90_ms")
            }
            row["size_mb"] = round(meters.size(quantized)["size_mb"], 2)
        except Exception as exc:  # a kernel this stack cannot run is a result too
            row["error"] = f"{type(exc).__name__}: {exc}"[:300]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
