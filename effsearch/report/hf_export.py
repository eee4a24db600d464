"""``effsearch export --format hf``: the trial's model as a standard Hugging Face folder.

The task writes it (:meth:`Task.export_hf`: ``save_pretrained`` of the model, its config
carrying the dropped layers and pruned widths, safetensors weights, the tokenizer's files);
then the folder is loaded back with ``transformers``' Auto class alone and must compute what
the trial's model computes on the bundle's example input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from effsearch.errors import TaskError
from effsearch.recipe.schema import Recipe
from effsearch.transforms.quantization import Quantized
from effsearch.transforms.runtime import repeat_batch

CHECK_BATCH = 3


def write_hf(
    recipe: Recipe, artifact: Quantized, example: Any, out: Path, notes: list[str]
) -> dict[str, Any]:
    """Write the Hugging Face folder into ``out`` and check it; what ``config.yaml`` records."""
    import torch
    import transformers

    from effsearch.tasks import build_task

    task = build_task(recipe.task_spec)  # the instance that rebuilt the trial (per process)
    written = task.export_hf(artifact.model, out)
    notes.extend(written.notes)
    loader = getattr(transformers, written.auto_class)
    reloaded = loader.from_pretrained(out, dtype=artifact.input_dtype).eval()
    batch = repeat_batch(example, CHECK_BATCH, artifact.input_dtype)
    with torch.inference_mode():
        expected = artifact.model(**{k: v.cpu() for k, v in batch.items()})
        got = reloaded(**{k: v.cpu() for k, v in batch.items()})
    difference = float((got.logits.float() - expected.logits.float()).abs().max())
    if difference > 1e-3 * max(1.0, float(expected.logits.float().abs().max())):
        raise TaskError(
            f"the Hugging Face folder does not compute what the trial's model computes (max "
            f"difference {difference:.3g}); export it with --format torch"
        )
    weights = out / written.weights_file
    return {
        "file": written.weights_file,
        "format": f"Hugging Face (save_pretrained): transformers.{written.auto_class}"
        ".from_pretrained(bundle) loads it, AutoTokenizer.from_pretrained(bundle) its tokenizer",
        "auto_class": written.auto_class,
        "input_dtype": str(artifact.input_dtype).removeprefix("torch."),
        "bytes": weights.stat().st_size,
        "max_abs_difference_vs_trial_model": difference,
    }
