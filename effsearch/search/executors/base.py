"""The executor interface: runs trials somewhere, reports outcomes back to the driver.

Call order (the runner is the only caller): ``submit`` while ``free_slots() > 0``, then ``poll``
to collect finished outcomes, repeated; ``cancel_all`` on interrupt; ``close`` at the end.
Guarantees: every submitted job comes back exactly once as a :class:`TrialOutcome`, from
``poll`` or ``cancel_all``; an exception, a NaN, a crash, a kill or a timeout in a trial is
an outcome with ``ok=False`` and a reason, never an exception in the driver.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import socket
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effsearch.objectives.metrics import EARLY_HARDWARE_METRICS
from effsearch.objectives.slots import DeviceSlots
from effsearch.recipe import Constraint
from effsearch.search.executors.limits import memory_cap
from effsearch.tasks.base import MeasureSettings, StopTrial, TaskSpec, TrialContext


@dataclass(frozen=True)
class TrialJob:
    """Everything a worker needs to run one trial (picklable)."""

    number: int
    config: Mapping[str, Mapping[str, Any]]
    task: TaskSpec
    seed: int
    threads: int
    measure: MeasureSettings
    trial_dir: str
    device: str = "cpu"
    constraints: tuple[Constraint, ...] = ()
    early_stopping: bool = False
    memory_mb: int | None = None  # execution.trial_memory_mb


@dataclass
class TrialOutcome:
    """What came back from one trial.

    ``measured_on`` says where: host, device name, torch version, threads. ``rejected`` means
    the configuration broke a constraint on metrics known before training (``metrics`` holds
    those), so nothing was trained.
    """

    number: int
    ok: bool
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    duration_s: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measured_on: dict[str, str] = field(default_factory=dict)
    rejected: bool = False
    stopped: bool = False


THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""Thread-pool sizes a trial process must see before torch loads (every executor pins them)."""

Decide = Callable[[int, float, Mapping[str, float]], bool]
"""``decide(trial number, step, metrics) -> go on?``: the driver's early-stopping rule."""


class Executor(ABC):
    """Runs trials; see the module docstring for the call order and guarantees."""

    @abstractmethod
    def free_slots(self) -> int:
        """How many more jobs can be submitted now."""

    @abstractmethod
    def submit(self, job: TrialJob) -> None:
        """Start ``job``. Only called while ``free_slots() > 0``."""

    @abstractmethod
    def poll(self, timeout_s: float) -> list[TrialOutcome]:
        """Outcomes finished since the last call, waiting up to ``timeout_s`` for the first."""

    @abstractmethod
    def running(self) -> list[int]:
        """Numbers of trials in flight."""

    @abstractmethod
    def cancel_all(self, reason: str) -> list[TrialOutcome]:
        """Stop every trial in flight; each becomes a failed outcome with ``reason``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers and other resources."""


def prepare(job: TrialJob) -> None:
    """Load what every trial of ``job``'s task shares (data, models, lazy imports) before the
    trial's clock starts. A failure here is left for :func:`run_job` to record."""
    from effsearch.objectives.meters import warm_up
    from effsearch.tasks import build_task

    with contextlib.suppress(Exception):
        build_task(job.task)
        warm_up()


def run_job(job: TrialJob, decide: Decide | None = None) -> TrialOutcome:
    """Run ``job`` in this process and turn whatever happens into an outcome.

    Shared by every executor, so a trial behaves the same inline, in a worker process or on Ray.
    ``decide`` answers the trial's intermediate reports (early stopping).
    """
    import torch

    from effsearch.objectives.meters import provenance
    from effsearch.tasks import build_task

    torch.set_num_threads(job.threads)
    start = time.perf_counter()
    ctx = TrialContext(
        trial_number=job.number,
        seed=job.seed,
        device=job.device,
        threads=job.threads,
        measure=job.measure,
        trial_dir=Path(job.trial_dir),
        slots=device_slots(job.device),
    )
    known_early: dict[str, float] = {}
    if job.early_stopping and decide is not None:
        ctx.on_report = _stopper(job.number, decide, known_early)
    outcome = TrialOutcome(number=job.number, ok=True, history=ctx.history, notes=ctx.notes)
    try:
        with memory_cap(job.memory_mb):
            outcome.measured_on = {
                **provenance(job.device),
                "host": socket.gethostname(),
                "torch_threads": str(job.threads),
            }
            task = build_task(job.task)
            # Only when it can decide something: a constraint or a rung on what it knows.
            wanted = ctx.on_report is not None or any(
                c.metric in task.early_metrics for c in job.constraints
            )
            ctx.measure_before_training = ctx.on_report is not None or any(
                c.metric in EARLY_HARDWARE_METRICS for c in job.constraints
            )
            early = check_metrics(task.precheck(job.config, ctx)) if wanted else {}
            known_early.update(early)
            broken = [
                c for c in job.constraints if c.metric in early and c.violation(early[c.metric]) > 0
            ]
            if broken:
                outcome.ok, outcome.rejected, outcome.metrics = False, True, early
                outcome.reason = "rejected before training: " + "; ".join(
                    f"{c.metric} = {early[c.metric]:.4g} breaks {c}" for c in broken
                )
            else:
                outcome.metrics = check_metrics(task.run(job.config, ctx))
    except StopTrial:
        last = dict(ctx.history[-1]) if ctx.history else {}
        step = last.pop("step", 0.0)
        outcome.ok, outcome.stopped, outcome.metrics = False, True, {**known_early, **last}
        outcome.reason = f"stopped early at step {step:g} (early_stopping)"
    except (Exception, SystemExit) as exc:  # a trial may fail in any way; it is recorded
        with contextlib.suppress(OSError):  # into its log, unless that is what failed
            traceback.print_exc()
        outcome.ok = False
        outcome.reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, MemoryError) and job.memory_mb:
            outcome.reason = (
                f"MemoryError: the trial needed more than execution.trial_memory_mb = "
                f"{job.memory_mb} MB"
            )
    outcome.duration_s = time.perf_counter() - start
    return outcome


def _stopper(
    number: int, decide: Decide, known_early: Mapping[str, float]
) -> Callable[[int, Mapping[str, float]], None]:
    """Reports as the driver sees them: what the task reports, plus what was known before
    training (size, params, FLOPs), so cost objectives rank trials at every rung."""

    def on_report(step: int, metrics: Mapping[str, float]) -> None:
        if not decide(number, float(step), {**known_early, **metrics}):
            raise StopTrial

    return on_report


_SLOTS: dict[str, DeviceSlots] = {}


def device_slots(device: str) -> DeviceSlots:
    """This process's handle on the device's measurement slots (one per device)."""
    if device not in _SLOTS:
        _SLOTS[device] = DeviceSlots(device)
    return _SLOTS[device]


def check_metrics(raw: object) -> dict[str, float]:
    """The task's result as finite floats, or a TaskError naming what is wrong.

    Numbers are Python/NumPy reals or one-element tensors; bools and numeric text are refused
    (they are almost always a bug in the task, not a measurement).
    """
    from effsearch.errors import TaskError

    if not isinstance(raw, Mapping):
        raise TaskError(f"the task must return a dict of metrics, got {type(raw).__name__}")
    metrics: dict[str, float] = {}
    for name, value in raw.items():
        if not isinstance(name, str):
            raise TaskError(f"metric names must be strings, got {name!r}")
        number = _as_number(value)
        if number is None:
            shown = repr(value)[:60]
            raise TaskError(f"metric {name!r} must be a number, got {type(value).__name__} {shown}")
        if not math.isfinite(number):
            raise TaskError(f"metric {name!r} is {number} (must be finite)")
        metrics[name] = number
    return metrics


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)  # numpy and torch scalars / one-element tensors
    if callable(item) and getattr(value, "dtype", None) is not None:
        try:
            inner = item()
        except (TypeError, ValueError, RuntimeError):
            return None
        return _as_number(inner)
    return None
