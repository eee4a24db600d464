"""``effsearch export --format onnx``: the measured model as ONNX, where the model allows it.

torch's exporter (``torch.onnx.export(dynamo=True)``) with a dynamic batch dimension, then a
check that onnxruntime (CPU) runs the file and computes what torch computes. Float models
(pruned or not) export; int8 kernels (torchao, torch.ao) do not, and a bf16 graph does not run
on onnxruntime's CPU provider: those are refused with the reason. Needs the ``onnx`` extra.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path
from typing import Any

from effsearch.errors import ArgumentError, TaskError

ONNX_FILE = "model.onnx"
BATCH = 3  # the check runs a batch of this size through the dynamic batch dimension


def write_onnx(model: Any, example: Any, input_dtype: Any, out: Path) -> dict[str, Any]:
    """Write ``out/model.onnx`` and check it; what to record about it in ``config.yaml``."""
    try:
        import onnxruntime
    except ImportError:
        raise ArgumentError(
            "--format onnx needs onnx, onnxscript and onnxruntime: pip install 'effsearch[onnx]'"
        ) from None
    import torch

    batch = _repeat(example, BATCH, input_dtype)
    if isinstance(batch, dict):
        args: tuple[Any, ...] = ()
        kwargs = batch
        dynamic: Any = {name: {0: "batch"} for name in batch}
    else:
        args, kwargs, dynamic = (batch,), None, ({0: "batch"},)
    path = out / ONNX_FILE
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                args,
                str(path),
                kwargs=kwargs,
                dynamo=True,
                dynamic_shapes=dynamic,
                external_data=False,  # one file, weights inside
            )
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed_values = list(batch.values()) if isinstance(batch, dict) else [batch]
        feed = {
            spec.name: value.cpu().numpy()
            for spec, value in zip(session.get_inputs(), feed_values, strict=True)
        }
        got = session.run(None, feed)[0]
    except Exception as exc:  # the exporters and onnxruntime raise many kinds
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".data").unlink(missing_ok=True)
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # the exporter colours its text
        first = text.splitlines()[0] if text else type(exc).__name__
        raise TaskError(
            f"this model cannot be exported to ONNX ({type(exc).__name__}: {first[:300]}); "
            "float models export, int8 and bf16 ones do not. The rest of the bundle is written."
        ) from None
    with torch.inference_mode():
        expected = model(*args, **(kwargs or {}))
    expected = getattr(expected, "logits", expected)
    difference = float((torch.as_tensor(got) - expected.float().cpu()).abs().max())
    return {
        "file": ONNX_FILE,
        "bytes": path.stat().st_size,
        "dynamic_axes": "batch (dimension 0 of every input)",
        "checked_with": f"onnxruntime {onnxruntime.__version__} CPU, batch of {BATCH}",
        "max_abs_difference_vs_torch": difference,
    }


def _repeat(example: Any, count: int, dtype: Any) -> Any:
    """``count`` copies of a one-example input along the batch dimension (floats in ``dtype``)."""
    if isinstance(example, dict):
        return {k: _repeat(v, count, dtype) for k, v in example.items()}
    repeated = example.repeat(count, *([1] * (example.dim() - 1)))
    return repeated.to(dtype) if repeated.is_floating_point() else repeated
