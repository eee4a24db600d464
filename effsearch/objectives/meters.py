"""Meters: hardware cost of a model as plain numbers with units in their names.

Every timing records the device, torch thread count, torch version and the repeat statistics
it came from. Estimated numbers say so in their name (``_est``).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import statistics
import sys
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from effsearch.errors import TaskError
from effsearch.objectives import noise
from effsearch.objectives.slots import device_key

if TYPE_CHECKING:
    from effsearch.tasks.base import TrialContext

#: Assumed power of one busy CPU core; this machine has no RAPL counters to read.
CPU_WATTS_PER_THREAD_EST = 10.0
#: Least time the NVML energy counter is read over (it refreshes every few tens of ms).
NVML_WINDOW_S = 0.5
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def latency(
    forward: Callable[[], Any], batch_size: int, warmup: int, repeats: int, device: str = "cpu"
) -> dict[str, float]:
    """Wall-clock time of ``forward()`` (one batch of ``batch_size`` inputs).

    Median over ``repeats`` timed calls after ``warmup`` untimed ones, plus p90, min and the
    interquartile range; on CUDA each call is timed with CUDA events.
    """
    cuda = device.startswith("cuda")
    times_ms: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            forward()
        if cuda:
            torch.cuda.synchronize(device)
        for _ in range(repeats):
            if cuda:
                start_event = torch.cuda.Event(enable_timing=True)
                end_event = torch.cuda.Event(enable_timing=True)
                start_event.record()
                forward()
                end_event.record()
                end_event.synchronize()
                times_ms.append(start_event.elapsed_time(end_event))
            else:
                start = time.perf_counter_ns()
                forward()
                times_ms.append((time.perf_counter_ns() - start) / 1e6)
    times_ms.sort()
    quartiles = statistics.quantiles(times_ms, n=4) if len(times_ms) > 1 else [times_ms[0]] * 3
    median = statistics.median(times_ms)
    throughput = batch_size / (median / 1000.0) if median > 0 else 0.0
    se_ms = noise.median_se(quartiles[2] - quartiles[0], repeats)
    return {
        "latency_ms": median,
        "latency_p50_ms": median,
        "latency_p90_ms": _percentile(times_ms, 0.9),
        "latency_min_ms": times_ms[0],
        "latency_iqr_ms": quartiles[2] - quartiles[0],
        "latency_se_ms": se_ms,
        "latency_repeats": float(repeats),
        "latency_batch_size": float(batch_size),
        "throughput_per_s": throughput,
        "throughput_se_per_s": throughput * se_ms / median if median > 0 else 0.0,
        "torch_threads": float(torch.get_num_threads()),
    }


def energy(
    forward: Callable[[], Any], latency_ms: float, repeats: int, device: str, threads: int
) -> tuple[dict[str, float], str]:
    """Energy of one forward batch: NVML counters on NVIDIA GPUs, else a labelled estimate.

    Returns the metrics and a note saying how they were obtained.
    """
    if device.startswith("cuda"):
        measured = _nvml_energy_j(forward, repeats, device)
        if measured is None:
            return {}, "energy_j: not measured (NVML gave no energy reading for this GPU)"
        return {"energy_j": measured}, (
            f"energy_j: NVML total-energy counter over at least {NVML_WINDOW_S:g} s of calls"
        )
    estimate = latency_ms / 1000.0 * CPU_WATTS_PER_THREAD_EST * threads
    note = (
        f"energy_j_est is an estimate: latency x {CPU_WATTS_PER_THREAD_EST:g} W per busy thread "
        "(no energy counters readable on this CPU)"
    )
    return {"energy_j_est": estimate}, note


def _nvml_energy_j(forward: Callable[[], Any], repeats: int, device: str) -> float | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        # NVML numbers GPUs ignoring CUDA_VISIBLE_DEVICES: find the trial's GPU by its UUID
        handle = pynvml.nvmlDeviceGetHandleByUUID(device_key(device))
        calls = 0
        with torch.inference_mode():
            torch.cuda.synchronize(device)
            start_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            started = time.perf_counter()
            # The counter is refreshed every few tens of ms: a short window reads 0. Run at
            # least `repeats` calls and NVML_WINDOW_S seconds of them.
            while calls < repeats or time.perf_counter() - started < NVML_WINDOW_S:
                forward()
                calls += 1
                if calls % 10 == 0:
                    torch.cuda.synchronize(device)
            torch.cuda.synchronize(device)
            end_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        if end_mj <= start_mj:
            return None  # the counter did not move: no reading (the caller says not measured)
        return float(end_mj - start_mj) / 1000.0 / calls
    except pynvml.NVMLError:
        return None


def peak_memory(
    forward: Callable[[], Any], device: str, model: nn.Module | None = None
) -> dict[str, float]:
    """Peak memory while running ``forward()`` once.

    ``peak_memory_mb`` is what the model itself takes: on CUDA ``max_memory_allocated`` (its
    weights and activations on the device, a KV cache included); on the CPU the bytes of its
    weights (its state dict, as stored in memory) plus the peak of the tensors ``forward``
    holds at once (torch's profiler follows every allocation and free). The process's figure,
    runtime and libraries included, is ``process_peak_rss_mb`` (``VmHWM`` after a reset
    through ``/proc/self/clear_refs``); it barely tells models apart.
    """
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
        with torch.inference_mode():
            forward()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) / 1e6
        return {"peak_memory_mb": peak, "gpu_peak_memory_mb": peak}
    metrics: dict[str, float] = {}
    if model is not None:
        weights_mb = _serialized_mb(model.state_dict())
        metrics["peak_memory_mb"] = weights_mb + _peak_tensor_bytes(forward) / 1e6
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return metrics
    with torch.inference_mode():
        forward()
    process_peak = _status_mb("VmHWM:")
    if process_peak is not None:
        metrics["process_peak_rss_mb"] = process_peak
    return metrics


def rss_growth_mb(forward: Callable[[], Any]) -> float | None:
    """The most resident memory ``forward()`` adds to the process at once: ``VmHWM`` (reset
    through ``/proc/self/clear_refs``) minus ``VmRSS`` before the call. For runtimes that
    allocate outside torch (ONNX Runtime); None where ``/proc`` cannot tell."""
    _release_free_heap()
    try:
        _CLEAR_REFS.write_text("5")
        before = _status_mb("VmRSS:")
        with torch.inference_mode():
            forward()
        peak = _status_mb("VmHWM:")
    except OSError:
        return None
    if before is None or peak is None:
        return None
    return max(0.0, peak - before)


def _release_free_heap() -> None:
    """Hand memory malloc holds but nobody uses back to the OS (glibc ``malloc_trim``), so
    that what a forward allocates shows as resident growth instead of reusing pages an
    earlier step left resident; nothing where there is no glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _status_mb(field_name: str) -> float | None:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field_name):
            return int(line.split()[1]) * 1024 / 1e6
    return None


def _peak_tensor_bytes(forward: Callable[[], Any]) -> float:
    """The most bytes of CPU tensors ``forward()`` allocates and holds at one time."""
    from torch.profiler import ProfilerActivity, profile

    # no_grad, not inference_mode: torchao's quantized tensors under the profiler in
    # inference mode fail ("Cannot set version_counter for inference tensor")
    with (
        warnings.catch_warnings(),
        _stderr_silenced(),
        torch.no_grad(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        warnings.simplefilter("ignore")
        forward()
    events = sorted(
        (e for e in prof.events() if e.self_cpu_memory_usage),
        key=lambda e: (e.time_range.start, e.id),
    )
    held = peak = 0
    for event in events:
        held += event.self_cpu_memory_usage
        peak = max(peak, held)
    return float(peak)


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Mute file descriptor 2: torch's profiler (kineto) writes "profiler_start/stop" lines
    there from C++ on every use, which Python's redirection does not reach."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def params(model: nn.Module) -> dict[str, float]:
    """Parameter count and how many of them are non-zero (unstructured sparsity shows here)."""
    total = 0
    nonzero = 0
    for tensor in model.parameters():
        total += tensor.numel()
        nonzero += int(torch.count_nonzero(tensor).item())
    return {"params": float(total), "nonzero_params": float(nonzero)}


def size(model: nn.Module, sparse: bool = False) -> dict[str, float]:
    """Bytes of the serialized state dict, the artifact that would be deployed (1 MB = 1e6 B).

    With ``sparse``, every float weight matrix that is smaller in CSR form (int32 indices) is
    stored that way, as a sparse-aware deployment would; ``size_dense_mb`` is the plain size.
    """
    dense_mb = _serialized_mb(model.state_dict())
    if not sparse:
        return {"size_mb": dense_mb}
    return {"size_mb": _serialized_mb(deployable_state(model)), "size_dense_mb": dense_mb}


def deployable_state(model: nn.Module) -> dict[str, Any]:
    """The state dict as :func:`size` counts it with ``sparse``: each float weight matrix in
    CSR form where that is smaller. Keeps the state dict's metadata (quantized modules need
    its version to load). ``effsearch export`` saves exactly this."""
    state = model.state_dict()
    compact: dict[str, Any] = OrderedDict((k, _maybe_csr(v)) for k, v in state.items())
    compact._metadata = getattr(state, "_metadata", None)  # type: ignore[attr-defined]
    return compact


def serialized_state(state: dict[str, Any]) -> bytes:
    """``torch.save`` bytes of ``state`` (a file written from them is exactly this long; saving
    to a path instead would name the archive after the file), without torch's chatter about
    sparse CSR being in beta (we only store it)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(state, buffer)
    return buffer.getvalue()


def _serialized_mb(state: dict[str, Any]) -> float:
    return len(serialized_state(state)) / 1e6


def _maybe_csr(tensor: Any) -> Any:
    if type(tensor) is not torch.Tensor and not isinstance(tensor, nn.Parameter):
        return tensor  # quantized tensor subclasses stay as they are
    if tensor.dim() != 2 or not tensor.is_floating_point():
        return tensor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta": we only store it
        csr = tensor.detach().to_sparse_csr()
        packed = torch.sparse_csr_tensor(
            csr.crow_indices().to(torch.int32),
            csr.col_indices().to(torch.int32),
            csr.values(),
            size=tensor.shape,
        )
    dense_bytes = tensor.numel() * tensor.element_size()
    sparse_bytes = packed.values().numel() * tensor.element_size() + 4 * (
        packed.col_indices().numel() + packed.crow_indices().numel()
    )
    return packed if sparse_bytes < dense_bytes else tensor


def flops(model: nn.Module, example_input: Any, batch_size: int) -> dict[str, float]:
    """Forward FLOPs per sample as torch's FlopCounterMode counts them.

    The counter sees shapes, not values: it ignores unstructured zeros and counts 0 for
    quantized modules, so call it on the float model (after structured pruning, before
    quantization); quantization changes the precision of these FLOPs, not their number.
    ``example_input`` is a tensor or a dict of keyword tensors holding ``batch_size`` samples.
    """
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        if isinstance(example_input, dict):
            model(**example_input)
        else:
            model(example_input)
    return {"flops": counter.get_total_flops() / batch_size}


def warm_up() -> None:
    """Pay the one-off costs of the first measurement (FlopCounterMode imports torch._dynamo:
    1.5 s here) now, so they do not land in whichever trial happens to come first."""
    flops(nn.Linear(1, 1), torch.zeros(1, 1), batch_size=1)


def agreement(predictions: torch.Tensor, parent_predictions: torch.Tensor) -> float:
    """Fraction of inputs on which a compressed model predicts what its parent predicted."""
    return float((predictions == parent_predictions).float().mean())


def fraction_correct(
    name: str, predictions: torch.Tensor, labels: torch.Tensor
) -> dict[str, float]:
    """``{name: share of predictions equal to labels, name_se: its binomial standard error}``
    (independent examples: accuracy over a split, agreement over its inputs)."""
    fraction = float((predictions == labels).float().mean())
    return {name: fraction, f"{name}_se": noise.binomial_se(fraction, labels.numel())}


def provenance(device: str) -> dict[str, str]:
    """What measured: device, its name (and a GPU's UUID), torch version (strings)."""
    if not device.startswith("cuda"):
        return {"device": device, "device_name": _cpu_name(), "torch_version": torch.__version__}
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "not set")
        raise TaskError(
            f"execution.device is {device!r} but this worker sees no CUDA device (torch "
            f"{torch.__version__}, CUDA_VISIBLE_DEVICES={visible}); run it where a GPU and a "
            "CUDA build of torch are, or use device: cpu"
        )
    properties = torch.cuda.get_device_properties(device)
    return {
        "device": device,
        "device_name": properties.name,
        # which physical GPU, whatever CUDA_VISIBLE_DEVICES renumbered (Ray does)
        "device_uuid": device_key(device),
        "torch_version": torch.__version__,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def measure_model(
    forward: Callable[[], Any], batch_size: int, ctx: TrialContext, model: nn.Module | None = None
) -> dict[str, float]:
    """Latency, throughput, energy and peak memory of ``forward()``, timed alone on the device.

    Runs inside the context's measurement slot, so other trials on the device pause their
    steps meanwhile; ``measure_wait_s`` is how long it waited for them.
    """
    waited = time.perf_counter()
    with ctx.measure_slot():
        waited = time.perf_counter() - waited
        metrics = latency(forward, batch_size, ctx.measure.warmup, ctx.measure.repeats, ctx.device)
        used, note = energy(
            forward, metrics["latency_ms"], ctx.measure.repeats, ctx.device, ctx.threads
        )
        metrics |= used
        metrics |= peak_memory(forward, ctx.device, model)
    ctx.note(note)
    metrics["measure_wait_s"] = waited
    return metrics
