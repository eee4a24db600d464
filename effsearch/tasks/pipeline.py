"""The half of a trial every built-in task shares: from a trained model to its metrics.

Order: predictions of the trained, uncompressed parent -> prune (+ recovery fine-tune) ->
params and FLOPs of the float model -> quantize and convert for the runtime engine
(``transforms.runtime``: eager, torch.compile, ONNX Runtime) -> accuracy and agreement with
the parent, on the engine's outputs -> latency, throughput, energy, memory (alone on the
device, on the engine) -> size of what the engine runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from effsearch.errors import TaskError
from effsearch.objectives import meters
from effsearch.objectives.metrics import DEVICE_METRICS, EARLY_HARDWARE_METRICS, on_device
from effsearch.objectives.slots import device_slots
from effsearch.spaces.runtime import ONNX_FILE
from effsearch.tasks.base import Config, TrialContext
from effsearch.transforms import pruning, runtime

if TYPE_CHECKING:
    from effsearch.models.layouts import Layout


@dataclass(frozen=True)
class Workload:
    """What the shared half needs from a task.

    ``predict(model, input_dtype)`` gives the predicted label of every validation example
    (what the optimizer sees); ``test_predict`` the same on the test split (only reported);
    ``recover(model, epochs)`` fine-tunes a pruned model and returns its last training loss;
    ``forward(model, input_dtype)`` returns a call that runs one measure batch.
    """

    predict: Callable[[nn.Module, torch.dtype], torch.Tensor]
    labels: torch.Tensor
    recover: Callable[[nn.Module, int], float]
    forward: Callable[[nn.Module, torch.dtype], Callable[[], Any]]
    one_input: Any  # one example (a tensor, or a dict of keyword tensors) for FLOPs and pruning
    layout: Layout | None = None
    test_predict: Callable[[nn.Module, torch.dtype], torch.Tensor] | None = None
    """Predictions on the test split: read only for reporting (``test_accuracy``)."""
    test_labels: torch.Tensor | None = None
    calibration: Sequence[Any] = ()
    """A few batches of training inputs (tensors or dicts of keyword tensors) that ONNX
    Runtime's static int8 quantization calibrates activation ranges on."""


def deployed_cost(
    deployed: runtime.Deployed,
    forward: Callable[[nn.Module, torch.dtype], Callable[[], Any]],
    ctx: TrialContext,
    before_training: bool = False,
    one_input: Any = None,
) -> dict[str, float]:
    """Latency, throughput, energy, memory and size of a model on its engine (before training:
    only what ``untrained_cost`` keeps), and which engine ran it (``ctx.measured_on``).

    torch.compile compiles the measure batch's graph on its first call: that call is timed as
    ``engine_build_s`` and kept out of the latency (on onnxruntime ``engine_build_s`` is the
    export and quantization). ONNX Runtime allocates outside torch, so its ``peak_memory_mb`` is
    the ONNX file's bytes plus the resident memory a forward adds (on a session without its
    memory arena, which would keep an earlier call's memory).

    With ``measure.devices`` the model is timed on each device in turn, on batches of
    ``one_input`` (one validation input), each device inside its own measurement slot, and
    every device-dependent metric is named for its device (``latency_ms@cuda``).
    """
    ctx.measured_on["engine"] = deployed.runs_on
    if not ctx.measure.devices:
        run = forward(deployed.model, deployed.input_dtype)
        memory_run = (
            forward(deployed.memory_model, deployed.input_dtype)
            if deployed.memory_model is not None
            else None
        )
        return _timed(deployed, run, memory_run, ctx, before_training) | _size(deployed)
    if one_input is None:
        raise TaskError("measure.devices needs one input of the model to time it elsewhere")
    metrics: dict[str, float] = {}
    try:
        for device in ctx.measure.devices:
            where = meters.provenance(device)  # a device this worker lacks: said here, clearly
            placed = _placed(deployed, device)
            batch = runtime.repeat_batch(one_input, ctx.measure.batch_size, deployed.input_dtype)
            batch = _to(batch, device)
            there = dataclasses.replace(
                ctx,
                device=device,
                slots=ctx.slots if device == ctx.device else device_slots(device),
                measured_on={},
            )
            timed = _call(placed, batch)
            assert timed is not None
            measured = _timed(
                deployed,
                timed,
                _call(deployed.memory_model, batch),
                there,
                before_training,
            )
            metrics |= {
                on_device(k, device) if k in DEVICE_METRICS else k: v for k, v in measured.items()
            }
            ctx.measured_on[on_device("device_name", device)] = where["device_name"]
            for note in there.notes:
                ctx.note(note)
    finally:
        _placed(deployed, ctx.device)
    return metrics | _size(deployed)


def _timed(
    deployed: runtime.Deployed,
    run: Callable[[], Any],
    memory_run: Callable[[], Any] | None,
    ctx: TrialContext,
    before_training: bool,
) -> dict[str, float]:
    """What :func:`deployed_cost` measures on ``ctx.device``, size aside."""
    if before_training:
        return untrained_cost(run, ctx)
    build_s = deployed.build_s
    if deployed.engine == "compile":
        started = time.perf_counter()
        with ctx.compute_slot(), torch.inference_mode():
            run()
        build_s += time.perf_counter() - started
    torch_model = deployed.quantized.model if deployed.quantized is not None else None
    metrics = meters.measure_model(run, ctx.measure.batch_size, ctx, torch_model)
    if memory_run is not None and deployed.onnx_file is not None:
        grown = meters.rss_growth_mb(memory_run)
        if grown is not None:
            metrics["peak_memory_mb"] = deployed.onnx_file.stat().st_size / 1e6 + grown
            ctx.note(
                "peak_memory_mb on onnxruntime: the ONNX file's bytes plus the resident memory "
                "one forward adds (ONNX Runtime allocates outside torch's view)"
            )
    if deployed.engine != "eager":
        metrics["engine_build_s"] = build_s
    return metrics


def _placed(deployed: runtime.Deployed, device: str) -> nn.Module:
    """The deployed model, moved to ``device`` (ONNX Runtime graphs run on the CPU here)."""
    if deployed.quantized is None:
        if device != "cpu":
            raise TaskError(f"runtime.engine onnxruntime runs on the cpu here, not {device}")
        return deployed.model
    deployed.quantized.model.to(device)
    return deployed.model


def _to(batch: Any, device: str) -> Any:
    if isinstance(batch, dict):
        return {k: v.to(device) for k, v in batch.items()}
    return batch.to(device)


def _call(model: nn.Module | None, batch: Any) -> Callable[[], Any] | None:
    if model is None:
        return None
    if isinstance(batch, dict):
        return lambda: model(**batch)
    return lambda: model(batch)


def _size(deployed: runtime.Deployed) -> dict[str, float]:
    if deployed.onnx_file is not None:
        return {"size_mb": deployed.onnx_file.stat().st_size / 1e6}
    assert deployed.quantized is not None
    return meters.size(deployed.quantized.model, sparse=True)


def untrained_deployed_cost(
    model: nn.Module,
    config: Config,
    ctx: TrialContext,
    forward: Callable[[nn.Module, torch.dtype], Callable[[], Any]],
    one_input: Any,
    calibration: Sequence[Any] = (),
) -> dict[str, float]:
    """What a precheck knows of the untrained, pruned float ``model`` once it is quantized and
    on its engine: its size, and its latency when the trial asks (``untrained_cost``)."""
    with engine_folder(ctx) as folder:
        deployed = runtime.deploy(
            model, config, ctx.device, ctx.threads, one_input, folder, calibration
        )
        return deployed_cost(deployed, forward, ctx, before_training=True, one_input=one_input)


@contextlib.contextmanager
def engine_folder(ctx: TrialContext) -> Iterator[Path]:
    """A folder for the engine's files (an ONNX graph), removed when the trial is measured."""
    where = ctx.trial_dir if ctx.trial_dir is not None and ctx.trial_dir.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="engine-", dir=where) as folder:
        yield Path(folder)


def untrained_cost(forward: Callable[[], Any], ctx: TrialContext) -> dict[str, float]:
    """Latency, throughput and energy of the compressed but untrained model, when the trial
    asks for them (``ctx.measure_before_training``): weights' values do not change which
    kernels run on which shapes. The trial's own figures are measured again after training."""
    if not ctx.measure_before_training:
        return {}
    measured = meters.measure_model(forward, ctx.measure.batch_size, ctx)
    ctx.note(
        "latency, throughput and energy were also timed on the untrained compressed model, "
        "before training (early stopping and constraints use them); the values recorded for a "
        "finished trial are timed after training"
    )
    return {k: v for k, v in measured.items() if k in EARLY_HARDWARE_METRICS}


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predictions == labels).float().mean())


def train_epochs(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    examples: int,
    batch_size: int,
    epochs: int,
    ctx: TrialContext,
    first_step: int,
    held_out_accuracy: Callable[[], float],
) -> float:
    """Seeded mini-batch training; returns the last epoch's mean loss.

    ``batch_loss(indices)`` is the loss of those training examples. Each step runs in the
    device's compute slot; after each epoch the held-out accuracy is reported at step
    ``first_step + epoch``.
    """
    generator = torch.Generator().manual_seed(ctx.seed)
    mean_loss = float("nan")
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(examples, generator=generator)
        total, seen = 0.0, 0
        for start in range(0, examples, batch_size):
            index = order[start : start + batch_size]
            with ctx.compute_slot():
                optimizer.zero_grad()
                loss = batch_loss(index)
                loss.backward()
                optimizer.step()
            total += loss.item() * len(index)
            seen += len(index)
        mean_loss = total / seen
        model.eval()
        ctx.report(
            first_step + epoch + 1, {"train_loss": mean_loss, "accuracy": held_out_accuracy()}
        )
    return mean_loss


def compress_and_measure(
    model: nn.Module,
    config: Config,
    ctx: TrialContext,
    work: Workload,
    started: float,
    loss: float,
) -> dict[str, float]:
    """Compress the trained ``model`` as ``config`` says and measure it; see the module doc.

    ``started`` is when training began (``time.perf_counter()``), ``loss`` its last loss.
    """
    prune_cfg = config.get("pruning", {})
    model.eval()
    parent = work.predict(model, torch.float32)
    pruning.apply(model, prune_cfg, work.one_input, work.layout)
    recovery_epochs = int(prune_cfg.get("finetune_epochs", 0))
    if recovery_epochs:
        loss = work.recover(model, recovery_epochs)
    pruning.finalize(model)
    model.eval()
    metrics: dict[str, float] = {
        "train_time_s": time.perf_counter() - started,
        "final_train_loss": loss,
    }
    metrics |= meters.params(model)
    metrics |= meters.flops(model, work.one_input, batch_size=1)
    metrics["accuracy_unquantized"] = accuracy(work.predict(model, torch.float32), work.labels)

    with engine_folder(ctx) as folder:
        deployed = runtime.deploy(
            model, config, ctx.device, ctx.threads, work.one_input, folder, work.calibration
        )
        if deployed.note:
            ctx.note(deployed.note)
        ctx.note("flops are counted on the float model and ignore unstructured zeros")
        predictions = work.predict(deployed.model, deployed.input_dtype)
        metrics |= meters.fraction_correct("accuracy", predictions, work.labels)
        metrics |= meters.fraction_correct("agreement", predictions, parent)
        metrics["accuracy_delta"] = metrics["accuracy"] - accuracy(parent, work.labels)
        if work.test_predict is not None and work.test_labels is not None:
            test = work.test_predict(deployed.model, deployed.input_dtype)
            metrics["test_accuracy"] = accuracy(test, work.test_labels)
        metrics |= deployed_cost(deployed, work.forward, ctx, one_input=work.one_input)
        if ctx.export_dir is not None and deployed.onnx_file is not None:
            shutil.copyfile(deployed.onnx_file, ctx.export_dir / ONNX_FILE)
    ctx.artifact, ctx.example_input = deployed.quantized, work.one_input
    return metrics
