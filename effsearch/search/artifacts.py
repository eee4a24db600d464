"""Trials' kept models (``execution.keep_artifacts``): what a worker saves after measuring a
trial, and which of them the driver keeps.

A kept artifact is the folder ``trials/<n>/artifact/``: the model as it was measured
(``model.pt``, the torch state dict ``size_mb`` counts, or ``model.onnx``, the graph an
onnxruntime trial ran), ``example_input.pt`` (one validation input) and what the task wrote for
a deployment (a PEFT adapter, a tokenizer's files). ``pareto`` keeps a trial's artifact while
the trial is on the run's Pareto set (feasible, non-dominated) and deletes it when it leaves;
``all`` keeps every one; ``none`` saves none. ``effsearch export`` copies a kept artifact
instead of re-training the trial.
"""

from __future__ import annotations

import shutil
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial

from effsearch.objectives.goals import Objective
from effsearch.search import study_front

ARTIFACT_FOLDER = "artifact"
MODEL_FILE = "model.pt"
EXAMPLE_FILE = "example_input.pt"
"""One real input of the model (from the task's validation data), as ``{name: tensor}`` (a
model called with one positional tensor: ``{"input": tensor}``)."""
KEEP_MODES = ("none", "pareto", "all")


def save(folder: Path, artifact: Any, example: Any) -> None:
    """Write a measured torch model (``Quantized``; None when the task ran an ONNX graph, which
    the pipeline already copied here) and its example input into ``folder``."""
    from effsearch.objectives.meters import deployable_state, serialized_state

    folder.mkdir(parents=True, exist_ok=True)
    if artifact is not None:
        (folder / MODEL_FILE).write_bytes(serialized_state(deployable_state(artifact.model)))
    if example is not None:
        save_example(example, folder / EXAMPLE_FILE)


def save_example(example: Any, path: Path) -> None:
    """``example`` (a tensor, or a dict of keyword tensors) as ``{name: tensor}``."""
    import torch

    tensors = example if isinstance(example, dict) else {"input": example}
    torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, path)


def kept(trial_dir: Path) -> Path | None:
    """The trial's kept artifact folder, if it holds a model."""
    folder = trial_dir / ARTIFACT_FOLDER
    has_model = (folder / MODEL_FILE).is_file() or (folder / "model.onnx").is_file()
    return folder if has_model else None


def keep_front_only(
    trials_dir: Path, trials: Sequence[FrozenTrial], objectives: Sequence[Objective]
) -> list[int]:
    """Delete the artifacts of finished trials that are not on the Pareto set (a trial still
    running may be writing its own); the numbers deleted."""
    front = {t.number for t in study_front.pareto_front(trials, objectives)}
    finished = {t.number for t in trials if t.state.is_finished()}
    deleted = []
    for folder in sorted(trials_dir.glob(f"*/{ARTIFACT_FOLDER}")):
        number = int(folder.parent.name) if folder.parent.name.isdigit() else None
        if number is not None and number in finished and number not in front:
            shutil.rmtree(folder, ignore_errors=True)
            deleted.append(number)
    return deleted


def load_state(path: Path, device: str) -> dict[str, Any]:
    """A saved ``deployable_state``, ready for ``load_state_dict``: weights only (no code runs;
    torchao's quantized tensor classes allowed), CSR matrices dense again, the state dict's
    metadata kept (quantized modules read their format version from it)."""
    import torch

    from effsearch.transforms.quantization import safe_load_globals

    allowed: list[Any] = safe_load_globals()
    with torch.serialization.safe_globals(allowed), warnings.catch_warnings():
        # torch.ao's packed int8 weights still go through TypedStorage when loaded
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
        state = torch.load(path, map_location=device, weights_only=True)
    dense: dict[str, Any] = OrderedDict(
        (k, v.to_dense() if _is_csr(v) else v) for k, v in state.items()
    )
    dense._metadata = getattr(state, "_metadata", None)  # type: ignore[attr-defined]
    return dense


def _is_csr(value: Any) -> bool:
    import torch

    return isinstance(value, torch.Tensor) and value.layout == torch.sparse_csr
