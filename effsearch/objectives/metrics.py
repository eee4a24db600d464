"""What a metric is: its name, what it means, and its natural direction."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """A metric a task measures; ``direction`` is its natural one; ``devices`` where it exists."""

    name: str
    description: str
    direction: str = "minimize"
    devices: tuple[str, ...] = ("cpu", "cuda")


HARDWARE_METRICS = (
    MetricInfo("latency_ms", "median time of one forward pass of a measure batch"),
    MetricInfo("latency_p50_ms", "same as latency_ms"),
    MetricInfo("latency_p90_ms", "90th percentile of the timed repeats"),
    MetricInfo("latency_min_ms", "fastest timed repeat"),
    MetricInfo("latency_iqr_ms", "interquartile range of the timed repeats"),
    MetricInfo("latency_se_ms", "standard error of latency_ms (the median), from the IQR"),
    MetricInfo("latency_repeats", "number of timed repeats"),
    MetricInfo("latency_batch_size", "inputs per timed forward pass"),
    MetricInfo("throughput_per_s", "inputs per second at the measure batch size", "maximize"),
    MetricInfo("throughput_se_per_s", "standard error of throughput_per_s, from latency's"),
    MetricInfo("torch_threads", "torch intra-op threads while timing"),
    MetricInfo(
        "energy_j_est",
        "estimated energy of one measure batch: latency x power",
        "minimize",
        ("cpu",),
    ),
    MetricInfo("energy_j", "energy of one measure batch from NVML", "minimize", ("cuda",)),
    MetricInfo(
        "peak_memory_mb",
        "memory the model takes at inference: weights plus the peak of its activations",
    ),
    MetricInfo(
        "process_peak_rss_mb",
        "peak resident memory of the whole process during inference (runtime included)",
        "minimize",
        ("cpu",),
    ),
    MetricInfo(
        "gpu_peak_memory_mb", "peak CUDA memory allocated during inference", "minimize", ("cuda",)
    ),
    MetricInfo("measure_wait_s", "time spent waiting for other trials to leave the device"),
    MetricInfo(
        "engine_build_s",
        "runtime.engine compile or onnxruntime: seconds to compile the measure batch's graph, "
        "or to export and quantize the ONNX graph (absent on eager)",
    ),
)
MODEL_METRICS = (
    MetricInfo("params", "parameters of the deployed model"),
    MetricInfo("nonzero_params", "parameters that are not zero"),
    MetricInfo(
        "size_mb",
        "serialized deployed model (torch state dict, sparse layers as CSR if smaller; on "
        "onnxruntime the ONNX file)",
    ),
    MetricInfo("size_dense_mb", "serialized deployed model with every tensor stored dense"),
    MetricInfo("flops", "forward FLOPs per input, counted on the float model"),
    MetricInfo(
        "agreement",
        "fraction of held-out inputs predicted as the uncompressed parent did",
        "maximize",
    ),
    MetricInfo("accuracy_delta", "accuracy minus the uncompressed parent's accuracy", "maximize"),
    MetricInfo("train_time_s", "training plus recovery fine-tuning time"),
)

EARLY_HARDWARE_METRICS = frozenset(
    {
        "latency_ms",
        "latency_p50_ms",
        "latency_p90_ms",
        "latency_min_ms",
        "latency_iqr_ms",
        "latency_se_ms",
        "throughput_per_s",
        "throughput_se_per_s",
        "energy_j_est",
        "energy_j",
    }
)
"""What timing the untrained compressed model tells: the same kernels on the same shapes as
after training. A task may measure these before training (``measure_before_training``)."""


_SUFFIX_UNITS = {
    "_ms": "ms",
    "_mb": "MB",
    "_per_s": "per s",
    "_j_est": "J, estimated",
    "_j": "J",
    "_s": "s",
}
_NAMED_UNITS = {
    "accuracy": "fraction",
    "agreement": "fraction",
    "accuracy_delta": "fraction",
    "flops": "FLOPs per input",
    "params": "count",
    "nonzero_params": "count",
}


DEVICE_METRICS = frozenset(m.name for m in HARDWARE_METRICS)
"""What depends on the device a model runs on: with ``measure.devices`` each is recorded per
device, as ``<metric>@<device>``."""


def on_device(metric: str, device: str) -> str:
    """``latency_ms`` measured on ``cuda:1`` -> ``latency_ms@cuda:1``."""
    return f"{metric}@{device}"


def split_device(metric: str) -> tuple[str, str | None]:
    """``latency_ms@cuda`` -> (``latency_ms``, ``cuda``); a plain name -> (name, None)."""
    base, _, device = metric.partition("@")
    return base, device or None


def unit_of(metric: str) -> str:
    """The unit a metric's name carries (``latency_ms`` -> ms, also ``latency_ms@cuda``); ''
    when it names none."""
    metric = split_device(metric)[0]
    if metric in _NAMED_UNITS:
        return _NAMED_UNITS[metric]
    for suffix, unit in _SUFFIX_UNITS.items():
        if metric.endswith(suffix):
            return unit
    return ""
