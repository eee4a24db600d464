"""Open an exported bundle: the model as a runnable module, and the task's evaluation of it.

A bundle's model file holds weights only (``torch.load(weights_only=True)``: no code runs on
load). The structure they load into is rebuilt from the bundle's configuration by the task
(:meth:`Task.skeleton`: pruned shapes and quantized formats do not depend on the weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from effsearch.errors import ArgumentError
from effsearch.report.export import BUNDLE_VERSION, CONFIG_FILE
from effsearch.search.artifacts import MODEL_FILE, load_state
from effsearch.spaces.runtime import ONNX_FILE


def read_bundle(folder: str | Path) -> dict[str, Any]:
    """The bundle's ``config.yaml`` as a mapping (what it is, metrics, provenance, recipe)."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise ArgumentError(
            f"{folder} is not an effsearch bundle (no {CONFIG_FILE}); make one with: "
            "effsearch export RUN_DIR --pick knee --out DIR"
        )
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("effsearch_bundle") != BUNDLE_VERSION:
        raise ArgumentError(
            f"{path}: not a bundle this effsearch reads (expected effsearch_bundle: "
            f"{BUNDLE_VERSION})"
        )
    return document


def load_bundle(folder: str | Path, device: str = "cpu") -> Any:
    """The bundle's model, compressed as it was measured, in eval mode on ``device``.

    Its inputs take the dtype in ``config.yaml`` (``model.input_dtype``: bf16 models take bf16).
    A trial measured on onnxruntime loads as its ONNX graph in an ONNX Runtime session, called
    like the torch model (it returns logits).
    """
    model, _ = _load(folder, device)
    return model


def evaluate_bundle(folder: str | Path, device: str = "cpu") -> dict[str, float]:
    """Run the task's evaluation (held-out accuracy, ...) on the bundle's model."""
    import torch

    model, document = _load(folder, device)
    dtype = getattr(torch, document["model"]["input_dtype"])
    return dict(_task(document).evaluate(model, dtype, device))


def load_deployed(folder: str | Path, device: str, threads: int) -> tuple[Any, dict[str, Any]]:
    """The bundle's model on the engine its trial was measured on (a ``Deployed``: torch,
    compiled as the trial was, or an ONNX Runtime session on ``threads``), and its document."""
    import torch

    from effsearch.spaces.runtime import engine_of
    from effsearch.transforms.quantization import Quantized
    from effsearch.transforms.runtime import (
        Deployed,
        OnnxRuntimeModel,
        onnxruntime_runs_on,
        session,
    )

    model, document = _load(folder, device, threads)
    dtype = getattr(torch, document["model"]["input_dtype"])
    engine = engine_of(document["config"])
    if isinstance(model, OnnxRuntimeModel):
        path = Path(folder) / ONNX_FILE
        return Deployed(
            "onnxruntime",
            model,
            dtype,
            onnxruntime_runs_on(threads),
            onnx_file=path,
            memory_model=OnnxRuntimeModel(session(path, threads, arena=False)),
        ), document
    quantized = Quantized(model, dtype)
    if engine == "compile":
        compiled: Any = torch.compile(model, dynamic=False)
        runs_on = f"torch.compile (inductor, static shapes), torch {torch.__version__}"
        return Deployed("compile", compiled, dtype, runs_on, quantized=quantized), document
    return Deployed("eager", model, dtype, "torch eager", quantized=quantized), document


def _load(
    folder: str | Path, device: str, threads: int | None = None
) -> tuple[Any, dict[str, Any]]:
    document = read_bundle(folder)
    if not document.get("model"):
        raise ArgumentError(
            f"{folder}: the bundle holds no model (its task returned metrics only); "
            "rebuild it from config.yaml's configuration"
        )
    import torch

    if document["model"].get("auto_class"):  # --format hf: transformers alone loads it
        import transformers

        loader = getattr(transformers, document["model"]["auto_class"])
        dtype = getattr(torch, document["model"]["input_dtype"])
        return loader.from_pretrained(folder, dtype=dtype).to(device).eval(), document
    if document["model"]["file"] == ONNX_FILE:  # the graph an onnxruntime trial ran
        if device != "cpu":
            raise ArgumentError(f"{folder}: an onnxruntime bundle runs on the cpu, not {device}")
        from effsearch.transforms.runtime import OnnxRuntimeModel, session

        path = Path(folder) / ONNX_FILE
        return OnnxRuntimeModel(session(path, threads or torch.get_num_threads())), document
    # structural pruning traces the model with autograd, whatever mode the caller is in
    with torch.inference_mode(False), torch.enable_grad():
        model = _task(document).skeleton(document["config"], device).model
    model.load_state_dict(load_state(Path(folder) / MODEL_FILE, device), assign=True)
    return model.eval(), document


def _task(document: dict[str, Any]) -> Any:
    from effsearch.tasks import build_task
    from effsearch.tasks.base import TaskSpec

    task = document["recipe"]["task"]
    spec = TaskSpec(
        builtin=task.get("builtin"),
        entrypoint=task.get("entrypoint"),
        options=task.get("options") or {},
        recipe_dir=document["provenance"]["recipe_dir"],
    )
    return build_task(spec)
