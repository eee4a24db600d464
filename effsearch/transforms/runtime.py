"""Runtime engines: the trial's pruned model quantized and converted for the engine it is
measured and deployed on (``runtime.engine``).

- ``eager``: the torch module, quantized by ``transforms.quantization``.
- ``compile``: the same module through ``torch.compile`` (inductor) with static shapes: one
  graph per input shape, as a fixed-batch deployment runs it. The first call of each shape
  compiles it (seconds to a minute on a CPU).
- ``onnxruntime``: the float model exported by torch's ONNX exporter (dynamo) with a dynamic
  batch dimension, quantized by ONNX Runtime's own tools where the scheme asks, and run by an
  ``InferenceSession`` on the trial's threads. ``int8_dynamic``: ``quantize_dynamic``, int8
  MatMul/Gemm weights (convolutions stay float, as with torch: ONNX Runtime's ConvInteger was
  8x slower than float here); ``int8_static``: ``quantize_static``, QDQ format, every supported
  op, activations calibrated on training inputs.

The model an engine produces is called like the torch module it came from (an ONNX Runtime
graph returns its first output, a Hugging Face model's logits, as a tensor), so a task's
prediction and timing code runs on every engine.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from effsearch.errors import TaskError
from effsearch.spaces.runtime import ONNX_FILE, config_incompatibility, engine_of
from effsearch.transforms import pruning, quantization

EXPORT_BATCH = 3  # traced with this batch; the batch dimension is exported dynamic


@dataclass
class Deployed:
    """A model on its engine.

    ``model`` is called like the torch module it came from. ``quantized`` is that torch module
    (eager and compile; None on onnxruntime, whose model is ``onnx_file``). ``memory_model``
    (onnxruntime) runs the same graph without ONNX Runtime's memory arena, so that the memory a
    forward takes shows in the process's resident memory.
    """

    engine: str
    model: nn.Module
    input_dtype: torch.dtype
    runs_on: str
    """What ran it, for the trial's ``measured_on`` ("onnxruntime 1.32.0 CPUExecutionProvider")."""
    build_s: float = 0.0
    note: str = ""
    quantized: quantization.Quantized | None = None
    onnx_file: Path | None = None
    memory_model: nn.Module | None = None


def deploy(
    model: nn.Module,
    config: Mapping[str, Mapping[str, Any]],
    device: str,
    threads: int,
    example: Any,
    folder: Path,
    calibration: Sequence[Any] = (),
) -> Deployed:
    """Quantize the pruned float ``model`` as ``config`` says and put it on its engine.

    ``example`` is one input (a tensor, or a dict of keyword tensors) to trace with;
    ``calibration`` a few batches of training inputs (``int8_static`` only); ``folder`` an
    empty folder for the engine's files. ``model`` may be changed. Raises TaskError when the
    engine cannot run this model, with the reason.
    """
    problem = config_incompatibility(config)
    if problem:
        raise TaskError(problem)
    engine = engine_of(config)
    quant_cfg = config.get("quantization", {})
    scheme = str(quant_cfg.get("scheme", "none"))
    pruning_method = str(config.get("pruning", {}).get("method", "none"))
    if engine == "onnxruntime":
        return _onnxruntime(model.eval(), scheme, device, threads, example, folder, calibration)
    quantized = quantization.apply(model, quant_cfg, device)
    if pruning_method == "semi_structured_24":
        pruning.to_semi_structured(quantized.model)
    if engine == "eager":
        return Deployed(
            "eager",
            quantized.model,
            quantized.input_dtype,
            "torch eager",
            note=quantized.note,
            quantized=quantized,
        )
    compiled: nn.Module = torch.compile(quantized.model, dynamic=False)  # type: ignore[assignment]
    return Deployed(
        "compile",
        compiled,
        quantized.input_dtype,
        f"torch.compile (inductor, static shapes), torch {torch.__version__}",
        note=quantized.note,
        quantized=quantized,
    )


class OnnxRuntimeModel(nn.Module):
    """An ONNX Runtime session called like the torch module it was exported from: tensors in
    (positional, or keywords named as the graph's inputs), the first output back as a tensor
    (a Hugging Face model's logits, not its output object)."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]

    def feed(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The session's inputs for a call with these arguments (numpy arrays)."""
        if kwargs:
            missing = [n for n in self.input_names if n not in kwargs]
            if missing:
                raise TaskError(f"the ONNX graph needs inputs {missing}; got {sorted(kwargs)}")
            return {n: _numpy(kwargs[n]) for n in self.input_names}
        return {n: _numpy(a) for n, a in zip(self.input_names, args, strict=True)}

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return torch.from_numpy(self.session.run(None, self.feed(*args, **kwargs))[0])


def _numpy(value: Any) -> Any:
    tensor = value.detach().cpu()
    return (tensor.float() if tensor.is_floating_point() else tensor).numpy()


def to_onnx(model: nn.Module, batch: Any, path: Path) -> None:
    """Export ``model`` called on ``batch`` (a tensor, or a dict of keyword tensors) to
    ``path`` with torch's exporter, every input's first dimension dynamic ("batch"), weights
    inside the one file. Raises TaskError with the exporter's first line when it cannot."""
    if isinstance(batch, dict):
        args: tuple[Any, ...] = ()
        kwargs: dict[str, Any] | None = batch
        dynamic: Any = {name: {0: "batch"} for name in batch}
    else:
        args, kwargs, dynamic = (batch,), None, ({0: "batch"},)
    try:
        with _quiet():
            torch.onnx.export(
                model,
                args,
                str(path),
                kwargs=kwargs,
                dynamo=True,
                dynamic_shapes=dynamic,
                external_data=False,
            )
    except Exception as exc:  # the exporter raises many kinds
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".data").unlink(missing_ok=True)
        raise TaskError(
            f"torch's ONNX exporter cannot convert this model ({_first_line(exc)})"
        ) from None


def repeat_batch(example: Any, count: int, dtype: torch.dtype = torch.float32) -> Any:
    """``count`` copies of a one-example input along the batch dimension (floats in ``dtype``)."""
    if isinstance(example, dict):
        return {k: repeat_batch(v, count, dtype) for k, v in example.items()}
    repeated = example.repeat(count, *([1] * (example.dim() - 1)))
    return repeated.to(dtype) if repeated.is_floating_point() else repeated


def session(path: Path, threads: int, arena: bool = True) -> Any:
    """An ONNX Runtime CPU session on ``threads`` threads (needs the ``onnx`` extra)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = arena
    options.log_severity_level = 3  # errors only: its warnings are not news per trial
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnxruntime_runs_on(threads: int) -> str:
    """What runs an ONNX graph here, as a trial's ``measured_on.engine`` says it."""
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider, {threads} threads"


def _onnxruntime(
    model: nn.Module,
    scheme: str,
    device: str,
    threads: int,
    example: Any,
    folder: Path,
    calibration: Sequence[Any],
) -> Deployed:
    try:
        import onnxruntime  # noqa: F401 - only whether it is installed
    except ImportError:
        raise TaskError(
            "runtime.engine onnxruntime needs onnx, onnxscript and onnxruntime: "
            "pip install 'effsearch[onnx]'"
        ) from None
    if device != "cpu":
        raise TaskError(f"runtime.engine onnxruntime runs on the CPU here, not {device}")
    started = time.perf_counter()
    batch = repeat_batch(example, EXPORT_BATCH)
    float_file = folder / "float.onnx"
    to_onnx(model, batch, float_file)
    path = folder / ONNX_FILE
    note = f"onnxruntime: exported by torch.onnx (dynamo), {scheme}"
    try:
        if scheme == "none":
            float_file.rename(path)
        else:
            note = _quantize(float_file, path, scheme, calibration, threads)
        deployed_model = OnnxRuntimeModel(session(path, threads))
        memory_model = OnnxRuntimeModel(session(path, threads, arena=False))
    except TaskError:
        raise
    except Exception as exc:  # onnxruntime's quantizer and loader raise many kinds
        raise TaskError(f"onnxruntime cannot run this model ({_first_line(exc)})") from None
    return Deployed(
        "onnxruntime",
        deployed_model,
        torch.float32,
        onnxruntime_runs_on(threads),
        build_s=time.perf_counter() - started,
        note=note,
        onnx_file=path,
        memory_model=memory_model,
    )


def _quantize(
    source: Path,
    target: Path,
    scheme: str,
    calibration: Sequence[Any],
    threads: int,
) -> str:
    """ONNX Runtime's own int8 quantization of ``source`` into ``target``; the trial's note."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = source.with_name("prepared.onnx")
    with _quiet():
        quant_pre_process(str(source), str(prepared))
        if scheme == "int8_dynamic":
            quantize_dynamic(
                str(prepared),
                str(target),
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul", "Gemm"],
            )
            return "int8_dynamic: onnxruntime quantize_dynamic, int8 MatMul/Gemm weights"
        if not calibration:
            raise TaskError("int8_static needs calibration inputs, and this task gives none")
        graph = OnnxRuntimeModel(session(prepared, threads))
        feeds = [
            graph.feed(**batch) if isinstance(batch, dict) else graph.feed(batch)
            for batch in calibration
        ]

        class Feeds(CalibrationDataReader):
            def __init__(self) -> None:
                self.left = iter(feeds)

            def get_next(self) -> dict[str, Any] | None:
                return next(self.left, None)

        quantize_static(
            str(prepared),
            str(target),
            Feeds(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    examples = sum(_batch_len(b) for b in calibration)
    return (
        f"int8_static: onnxruntime quantize_static (QDQ, per-channel int8 weights, uint8 "
        f"activations calibrated by min/max on {examples} training inputs)"
    )


def _batch_len(batch: Any) -> int:
    first = next(iter(batch.values())) if isinstance(batch, dict) else batch
    return int(first.shape[0])


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # the exporter colours its text
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


@contextlib.contextmanager
def _quiet() -> Any:
    # The exporter prints progress and that torchvision's ops are skipped; onnxruntime's
    # quantizer advises through the root logger. A trial's log needs none of it.
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)
