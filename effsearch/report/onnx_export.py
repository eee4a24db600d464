"""ONNX in an exported bundle: the graph an onnxruntime trial ran, or ``--format onnx`` of a
torch trial's model where the model allows it.

A trial measured on ``runtime.engine: onnxruntime`` already ran an ONNX graph (float, or
quantized by ONNX Runtime's own int8 tools); the bundle holds that file. For a torch trial,
torch's exporter (``torch.onnx.export(dynamo=True)``) writes the measured model with a dynamic
batch dimension, then onnxruntime (CPU) must run the file and compute what torch computes.
Float models (pruned or not) export; torch's int8 kernels (torchao, torch.ao) do not (search
``runtime.engine: onnxruntime`` for int8 ONNX), and a bf16 graph does not run on onnxruntime's
CPU provider: those are refused with the reason. Needs the ``onnx`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from effsearch.errors import ArgumentError, TaskError
from effsearch.spaces.runtime import ONNX_FILE

BATCH = 3  # the check runs a batch of this size through the dynamic batch dimension


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ArgumentError(
            "ONNX needs onnx, onnxscript and onnxruntime: pip install 'effsearch[onnx]'"
        ) from None
    return onnxruntime


def describe_engine_graph(path: Path, example: Any) -> dict[str, Any]:
    """What ``config.yaml`` records of the ONNX graph an onnxruntime trial ran (after checking
    that onnxruntime loads it and runs a batch of ``BATCH`` through its dynamic batch)."""
    onnxruntime = _onnxruntime()
    from effsearch.transforms.runtime import OnnxRuntimeModel, repeat_batch, session

    graph = OnnxRuntimeModel(session(path, threads=1))
    batch = repeat_batch(example, BATCH)
    output = graph(**batch) if isinstance(batch, dict) else graph(batch)
    inputs = {
        i.name: [d if isinstance(d, int) else str(d) for d in i.shape]
        for i in graph.session.get_inputs()
    }
    return {
        "file": ONNX_FILE,
        "format": "ONNX, as the trial ran it on onnxruntime (quantized by ONNX Runtime where "
        "the scheme says); run it with onnxruntime.InferenceSession, no effsearch needed",
        "inputs": inputs,
        "output": f"{output.shape[-1]} scores per input (logits)",
        "input_dtype": "float32",
        "bytes": path.stat().st_size,
        "checked_with": f"onnxruntime {onnxruntime.__version__} CPU, batch of {BATCH}",
    }


def write_onnx(model: Any, example: Any, input_dtype: Any, out: Path) -> dict[str, Any]:
    """Write ``out/model.onnx`` from a torch trial's model and check it; what to record about
    it in ``config.yaml``."""
    onnxruntime = _onnxruntime()
    import torch

    from effsearch.transforms.runtime import OnnxRuntimeModel, repeat_batch, session, to_onnx

    batch = repeat_batch(example, BATCH, input_dtype)
    path = out / ONNX_FILE
    try:
        to_onnx(model, batch, path)
        graph = OnnxRuntimeModel(session(path, threads=1))
        got = graph(**batch) if isinstance(batch, dict) else graph(batch)
    except Exception as exc:  # the exporter and onnxruntime raise many kinds
        path.unlink(missing_ok=True)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TaskError(
            f"this model cannot be exported to ONNX ({first[:300]}); float models export; "
            "torch's int8 and bf16 do not (for an int8 ONNX model, search runtime.engine: "
            "onnxruntime, which quantizes with ONNX Runtime). The rest of the bundle is written."
        ) from None
    with torch.inference_mode():
        expected = model(**batch) if isinstance(batch, dict) else model(batch)
    expected = getattr(expected, "logits", expected)
    difference = float((got - expected.float().cpu()).abs().max())
    return {
        "file": ONNX_FILE,
        "bytes": path.stat().st_size,
        "dynamic_axes": "batch (dimension 0 of every input)",
        "checked_with": f"onnxruntime {onnxruntime.__version__} CPU, batch of {BATCH}",
        "max_abs_difference_vs_torch": difference,
    }
