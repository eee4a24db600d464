"""The task interface: a workload that turns one configuration into a dict of metrics.

Call order, in a worker process: the executor builds the task once per process from its
:class:`TaskSpec` (``build_task``), then calls :meth:`Task.run` once per trial with the nested
configuration and a :class:`TrialContext`. ``run`` returns plain floats keyed by metric name,
units in the names (``latency_ms``, ``size_mb``). It may raise: the executor turns any exception
into a FAILED trial with the reason, and the search goes on.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from effsearch.errors import TaskError
from effsearch.objectives.metrics import MetricInfo

if TYPE_CHECKING:
    from torch import nn

    from effsearch.objectives.slots import DeviceSlots
    from effsearch.spaces.knobs import KnobDecl
    from effsearch.transforms.quantization import Quantized

Config = Mapping[str, Mapping[str, Any]]
Metrics = dict[str, float]


class StopTrial(BaseException):
    """Raised inside ``TrialContext.report`` when the search stops this trial early.

    A BaseException, so a task's own ``except Exception`` does not swallow it.
    """


class MeasureSettings(BaseModel):
    """How hardware cost is measured: batch size of the timed input, warm-up and timed repeats.

    Also the schema of the recipe's ``measure`` section."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    batch_size: int = Field(32, ge=1, le=65536)
    warmup: int = Field(5, ge=0, le=100_000)
    repeats: int = Field(30, ge=1, le=1_000_000)
    devices: list[Annotated[str, Field(pattern=r"^(cpu|cuda(:\d+)?)$")]] | None = Field(
        None, min_length=1
    )
    """Measure each candidate on each of these devices (metrics named ``latency_ms@cuda``);
    None: on ``execution.device`` only, with plain names."""


@dataclass
class TrialContext:
    """What a task may know about the trial it runs.

    ``report(step, metrics)`` records intermediate metrics (per epoch, say); they are kept with
    the trial.
    """

    trial_number: int
    seed: int
    device: str = "cpu"
    threads: int = 1
    measure: MeasureSettings = field(default_factory=MeasureSettings)
    trial_dir: Path | None = None
    measure_before_training: bool = False
    """Whether :meth:`Task.precheck` should also time the untrained model (early stopping
    ranks on it, or a constraint on latency can reject before training)."""
    history: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    on_report: Callable[[int, Mapping[str, float]], None] | None = None
    slots: DeviceSlots | None = None
    artifact: Quantized | None = None
    """The compressed model as it was measured (set by the built-in tasks' shared pipeline;
    ``effsearch export`` saves it)."""
    example_input: Any = None
    """One input of the artifact (a tensor, or a dict of keyword tensors), for exporters."""
    measured_on: dict[str, str] = field(default_factory=dict)
    """What else measured this trial (the runtime engine), added to the trial's record of
    where it was measured."""
    export_dir: Path | None = None
    """Set by ``effsearch export``: a task writes there what a deployment needs besides the
    measured model (hf-text-classification: the trained PEFT adapter, in peft's format)."""

    def compute_slot(self) -> AbstractContextManager[None]:
        """Wrap each unit of heavy work (a training step, an eval batch) in this.

        It lets a measurement on the same device wait until no trial is mid-step.
        """
        return self.slots.compute() if self.slots is not None else nullcontext()

    def measure_slot(self) -> AbstractContextManager[None]:
        """Time things inside this: no other trial on the device is computing meanwhile."""
        return self.slots.measure() if self.slots is not None else nullcontext()

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record intermediate ``metrics`` at ``step`` (an epoch, a number of samples, ...).

        With early stopping on, this may raise :class:`StopTrial`: let it propagate.
        """
        entry = {"step": float(step), **{k: float(v) for k, v in metrics.items()}}
        self.history.append(entry)
        if self.on_report is not None:
            self.on_report(step, metrics)

    def note(self, text: str) -> None:
        """Record a caveat about this trial's numbers (e.g. what a counter could not see)."""
        if text not in self.notes:
            self.notes.append(text)


ADAPTER_FOLDER = "adapter"
"""Where, in an export, a task writes the trained PEFT adapter (peft's own format)."""


@dataclass(frozen=True)
class HFExport:
    """What :meth:`Task.export_hf` wrote: the ``transformers`` Auto class that loads it, the
    weight file, and caveats."""

    auto_class: str
    weights_file: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    """How to build a task: the recipe's ``task`` section plus the folder the recipe came from."""

    builtin: str | None = None
    entrypoint: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    recipe_dir: str = "."
    cache_dir: str | None = None
    """Where a task may keep what it builds once per run (a trained base model): the run
    directory's ``cache/``; None outside a run."""


@dataclass(frozen=True)
class TaskInfo:
    """What a built-in task declares, importable without torch: its knobs, metrics, options.

    ``implementation`` (``"module:Class"``) names the :class:`Task` that runs it; it is imported
    only when a trial (or an export) builds the task, so reading and validating recipes never
    loads torch.
    """

    name: str
    summary: str
    implementation: str
    #: technique group (``architecture``, ``pruning``, ...) -> the knobs of it this task applies,
    #: in sampling order
    families: Mapping[str, tuple[KnobDecl, ...]]
    #: metrics the task measures
    metrics: tuple[MetricInfo, ...]
    #: the ``task.options`` keys it accepts
    options: tuple[str, ...] = ()
    #: fixed technique settings that make the reference model (uncompressed fp32), if any
    baseline: Config | None = None
    #: metrics :meth:`Task.precheck` returns (known before training)
    early_metrics: frozenset[str] = frozenset()
    #: seconds a trial typically takes on a CPU, when the task knows (``auto`` weighs a model-
    #: based optimizer's seconds per suggestion against it); None: unknown, assumed expensive
    typical_trial_s: float | None = None
    #: whether ``measure.devices`` can time its models on several devices (the shared pipeline)
    measures_devices: bool = False
    #: what ``effsearch export --format`` can write for it (``hf``: :meth:`Task.export_hf`)
    export_formats: tuple[str, ...] = ("torch", "onnx")
    #: problems with ``options`` found without running anything (missing files, ...)
    check_options: Callable[[Mapping[str, Any], str], list[str]] | None = None

    def option_problems(self, options: Mapping[str, Any], recipe_dir: str) -> list[str]:
        """Unknown option names (with a "did you mean"), then what :attr:`check_options`
        finds in the others."""
        import difflib

        problems = []
        for name in sorted(set(options) - set(self.options)):
            close = difflib.get_close_matches(name, self.options, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            problems.append(
                f"task {self.name!r} has no option {name!r}.{hint} Options: "
                f"{', '.join(self.options) or 'none'}"
            )
        known = {k: v for k, v in options.items() if k in self.options}
        return problems + (self.check_options(known, recipe_dir) if self.check_options else [])

    def values(self, config: Config, group: str) -> dict[str, Any]:
        """Every knob of ``group`` this task declares, as ``config`` sets it or its default."""
        given = config.get(group, {})
        return {d.name: given.get(d.name, d.default) for d in self.families[group]}

    def load(self) -> type[Task]:
        """The implementing class (imports it, and with it torch)."""
        module_name, _, attr = self.implementation.partition(":")
        cls: type[Task] = getattr(importlib.import_module(module_name), attr)
        return cls


class Task(ABC):
    """A workload: one configuration in, a dict of metrics out. Built-in tasks set ``info``."""

    info: ClassVar[TaskInfo | None] = None

    @classmethod
    def create(cls, spec: TaskSpec) -> Task:
        """Build the task from a spec (once per worker process)."""
        return cls(**dict(spec.options))

    @property
    def early_metrics(self) -> frozenset[str]:
        """What :meth:`precheck` returns."""
        return self.info.early_metrics if self.info is not None else frozenset()

    def precheck(self, config: Config, ctx: TrialContext) -> Metrics:
        """Metrics that follow from the configuration alone (size, params, FLOPs of the built,
        untrained model; with ``ctx.measure_before_training`` also its measured latency),
        computed before ``run``; a trial that breaks a constraint on them is rejected without
        training. The default knows none."""
        return {}

    @abstractmethod
    def run(self, config: Config, ctx: TrialContext) -> Metrics:
        """Build, train, compress and measure one configuration; return its metrics."""

    def skeleton(self, config: Config, device: str) -> Quantized:
        """The compressed model of ``config`` with untrained weights: the structure an exported
        bundle's weights load into (pruned shapes and quantized formats do not depend on the
        weights' values)."""
        raise TaskError(f"task {type(self).__name__} cannot rebuild a model from a bundle")

    def save_preprocessing(self, folder: Path) -> None:
        """Write into an export's ``folder`` what turns raw inputs into the model's (a
        tokenizer's files); nothing by default."""
        return None

    def export_hf(self, model: nn.Module, folder: Path) -> HFExport:
        """Write ``model`` (a float model as a trial of this task left it: adapters merged,
        layers dropped, pruned) into ``folder`` as a standard Hugging Face folder that
        ``transformers`` alone loads (``save_pretrained``: config with the pruned shapes,
        safetensors weights, tokenizer files). Tasks whose model is no Hugging Face model
        cannot."""
        raise TaskError(
            f"task {type(self).__name__}'s model is not a Hugging Face model; export it with "
            "--format torch or onnx"
        )

    def evaluate(self, model: nn.Module, input_dtype: Any, device: str) -> Metrics:
        """The task's quality metrics (accuracy, ...) of a finished model on its held-out data."""
        raise TaskError(f"task {type(self).__name__} cannot evaluate a model from a bundle")
