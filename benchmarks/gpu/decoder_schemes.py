"""A decoder of realistic size through every quantization scheme and pruning level, on a GPU.

Builds a Llama-architecture model from a published config (Llama-3.2-1B's or Qwen2-0.5B's
shapes; random weights, since nothing can be downloaded there: speed and memory do not depend
on the weights' values) and applies effsearch's own transforms (``models.surgery`` for layer
dropping, head and FFN pruning; ``transforms.quantization`` for the schemes), then times it
with the causal-lm task's own meter (``tasks.causal_lm.time_generation``: prefill, greedy decode
with the KV cache, peak memory) and records the serialized size. One JSON line per
configuration on stdout.

    python benchmarks/gpu/decoder_schemes.py --config llama-1b --device cuda --batch 1
    python benchmarks/gpu/decoder_schemes.py --config tiny --device cpu   # a smoke run here
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch

from effsearch.models import layouts, surgery
from effsearch.objectives import meters
from effsearch.tasks.causal_lm import time_generation
from effsearch.transforms import quantization

CONFIGS: dict[str, dict[str, Any]] = {
    # published shapes (config.json of meta-llama/Llama-3.2-1B and Qwen/Qwen2-0.5B)
    "llama-1b": {
        "model_type": "llama",
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": True,
    },
    "qwen2-0.5b": {
        "model_type": "qwen2",
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": True,
    },
    "tiny": {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 1000,
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,
    },
}
SCHEMES = ("none", "bf16", "fp16", "int8_dynamic", "int8_weight_only", "int4_weight_only")
PRUNING = (
    ("dense", 0, None, 0.0),
    ("half the layers", 0.5, None, 0.0),
    ("heads 0.5", 0, "heads", 0.5),
    ("ffn 0.5", 0, "ffn", 0.5),
    ("half the layers + heads/ffn 0.5", 0.5, "heads_ffn", 0.5),
)


def build(name: str, device: str) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    shape = dict(CONFIGS[name])
    config = AutoConfig.for_model(shape.pop("model_type"), **shape)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval().to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="llama-1b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--schemes", nargs="*", default=list(SCHEMES))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU runs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    layout = layouts.layout_of_type(CONFIGS[args.config]["model_type"], "decoder")
    prompt = torch.randint(
        0,
        CONFIGS[args.config]["vocab_size"],
        (args.batch, args.prompt),
        generator=torch.Generator().manual_seed(0),
    )
    for label, drop_share, method, fraction in PRUNING:
        for scheme in args.schemes:
            if device_kind(args.device) not in quantization.SCHEME_DEVICES[scheme]:
                continue
            row: dict[str, Any] = {
                "config": args.config,
                "pruning": label,
                "scheme": scheme,
                "device": args.device,
                "batch": args.batch,
                "prompt_tokens": args.prompt,
                "new_tokens": args.new_tokens,
            }
            started = time.perf_counter()
            try:
                model = build(args.config, args.device)
                blocks = len(surgery.find_blocks(model, layout))
                surgery.drop_top_layers(model, layout, round(drop_share * blocks))
                if method in ("heads", "heads_ffn"):
                    surgery.prune_heads(model, layout, fraction)
                if method in ("ffn", "heads_ffn"):
                    surgery.prune_ffn(model, layout, fraction)
                row["params"] = meters.params(model)["params"]  # before: torchao counts none
                quantized = quantization.apply(model, {"scheme": scheme}, args.device)
                row |= time_generation(
                    quantized.model, prompt, args.new_tokens, args.warmup, args.repeats, args.device
                )
                row |= meters.size(quantized.model)
            except Exception as exc:  # a scheme the device cannot run is a row, not a crash
                row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
            row["seconds"] = round(time.perf_counter() - started, 1)
            print(json.dumps(row), flush=True)
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()


def device_kind(device: str) -> str:
    return device.split(":")[0]


if __name__ == "__main__":
    main()
