"""The ``README.md`` of an exported bundle: what it is, what its trial measured and where, and
a few lines that load it and predict in its format (torch, ONNX, Hugging Face)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

README_FILE = "README.md"
SHOWN_METRICS = (
    "accuracy",
    "test_accuracy",
    "agreement",
    "latency_ms",
    "throughput_per_s",
    "peak_memory_mb",
    "size_mb",
    "params",
    "flops",
    "perplexity",
    "tokens_per_s",
)


def write_readme(out: Path, document: dict[str, Any]) -> None:
    """Write ``out/README.md`` from the bundle's ``config.yaml`` document."""
    (out / README_FILE).write_text(readme(document), encoding="utf-8")


def readme(document: dict[str, Any]) -> str:
    """The README text (Markdown)."""
    trial, model = document["trial"], document.get("model")
    recipe = document.get("recipe", {})
    task = recipe.get("task", {})
    task_name = task.get("builtin") or task.get("entrypoint") or "a task"
    lines = [
        f"# Trial {trial} of the effsearch run `{recipe.get('name', '?')}`",
        "",
        f"Task: `{task_name}`. Exported by effsearch {document['provenance'].get('effsearch')} "
        f"from `{document['run']}`.",
        "",
        "Configuration: "
        + "; ".join(
            f"{group}: " + ", ".join(f"{k}={v}" for k, v in knobs.items())
            for group, knobs in document["config"].items()
            if knobs
        ),
        "",
        "## What the trial measured",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    metrics = document.get("metrics", {})
    objectives = [o["metric"] for o in recipe.get("objectives", [])]
    for name in dict.fromkeys([*objectives, *SHOWN_METRICS]):
        if name in metrics:
            lines.append(f"| {name} | {metrics[name]:.4g} |")
    where = document["provenance"].get("measured_on") or {}
    lines += [
        "",
        f"Measured on: {where_measured(where)}. Re-time it where you deploy it: "
        "`effsearch bench <this folder>`.",
        "",
        "## Load and predict",
        "",
        "`BUNDLE` below is this folder's path.",
        "",
    ]
    lines += (
        _usage(model, document)
        if model
        else [
            "This bundle holds the configuration only (its task returned metrics, no model): "
            "rebuild the model from `config.yaml`'s `config` with your own code."
        ]
    )
    notes = document.get("rebuilt", {}).get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def where_measured(measured_on: dict[str, str]) -> str:
    """``host, device name, engine, torch version, threads`` of a ``measured_on`` record."""
    labels = {
        "host": "{}",
        "device_name": "{}",
        "engine": "{}",
        "torch_version": "torch {}",
        "torch_threads": "{} torch threads",
    }
    parts = [label.format(measured_on[k]) for k, label in labels.items() if measured_on.get(k)]
    return ", ".join(parts) or "not recorded"


def _usage(model: dict[str, Any], document: dict[str, Any]) -> list[str]:
    example = _example_shapes(document)
    text = "input_ids" in example
    seq = example.get("input_ids", [1, 64])[-1]
    if model.get("auto_class"):
        return [
            "With `transformers` alone:",
            "```python",
            f"from transformers import {model['auto_class']}, AutoTokenizer",
            f'model = {model["auto_class"]}.from_pretrained("BUNDLE").eval()',
            'tokenizer = AutoTokenizer.from_pretrained("BUNDLE")',
            f'batch = tokenizer(["some text"], padding="max_length", max_length={seq}, '
            'truncation=True, return_tensors="pt")',
            "print(model.config.id2label[model(**batch).logits.argmax(-1).item()])",
            "```",
        ]
    if model["file"].endswith(".onnx"):
        names = list(model.get("inputs") or example)
        if text:
            return [
                "With `onnxruntime` (and the tokenizer's files here, read by `transformers`):",
                "```python",
                "import onnxruntime as ort",
                "from transformers import AutoTokenizer",
                'session = ort.InferenceSession("BUNDLE/model.onnx")',
                'tokenizer = AutoTokenizer.from_pretrained("BUNDLE")',
                f'batch = tokenizer(["some text"], padding="max_length", max_length={seq}, '
                'truncation=True, return_tensors="np")',
                f"logits = session.run(None, {{n: batch[n] for n in {names}}})[0]",
                "```",
            ]
        shape = [1, *next(iter(example.values()))[1:]] if example else ["batch", "..."]
        return [
            "With `onnxruntime` alone (float32 inputs, any batch size):",
            "```python",
            "import numpy as np, onnxruntime as ort",
            'session = ort.InferenceSession("BUNDLE/model.onnx")',
            f"x = np.zeros({tuple(shape)}, dtype=np.float32)  # your input, shaped like this",
            f'logits = session.run(None, {{"{names[0]}": x}})[0]',
            "print(logits.argmax(-1))",
            "```",
        ]
    dtype = model.get("input_dtype", "float32")
    call = "model(**example)" if len(example) > 1 or text else 'model(example["input"])'
    return [
        f"With effsearch and torch (float inputs in {dtype}):",
        "```python",
        "import effsearch, torch",
        'model = effsearch.load_bundle("BUNDLE")  # weights only; no pickled code runs',
        'example = torch.load("BUNDLE/example_input.pt")  # one real input: {name: tensor}',
        "with torch.inference_mode():",
        f"    print({call})",
        "```",
    ]


def _example_shapes(document: dict[str, Any]) -> dict[str, list[Any]]:
    model = document.get("model") or {}
    if model.get("inputs"):
        return dict(model["inputs"])
    return dict((document.get("example_input") or {}).get("shapes") or {})
