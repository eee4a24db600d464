"""One trial, run in this process: the only code path from a job to an outcome.

Workers of every executor call :func:`run_trial`, and so does ``effsearch export`` when it
rebuilds a model: the same metric checks (finite numbers only), the precheck on metrics known
before training, the memory cap and the device's measurement slots apply everywhere.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import shutil
import socket
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path

from effsearch.errors import TaskError
from effsearch.objectives.metrics import EARLY_HARDWARE_METRICS, split_device
from effsearch.objectives.slots import device_slots
from effsearch.search import artifacts
from effsearch.search.executors.base import OnReport, Report, Status, TrialJob, TrialOutcome
from effsearch.search.executors.limits import memory_cap
from effsearch.spaces.runtime import config_incompatibility
from effsearch.tasks import build_task
from effsearch.tasks.base import Config, StopTrial, Task, TrialContext


def prepare(job: TrialJob) -> None:
    """Load what every trial of ``job``'s task shares (data, models, lazy imports) before the
    trial's clock starts. A failure here is left for :func:`run_trial` to record."""
    from effsearch.objectives.meters import warm_up

    with contextlib.suppress(Exception):
        build_task(job.task)
        warm_up()


def run_trial(job: TrialJob, on_report: OnReport | None = None) -> TrialOutcome:
    """Run ``job`` in this process and turn whatever happens into an outcome.

    ``on_report`` carries the trial's intermediate reports to the driver and returns its
    answer; it is used only when ``job.reports_answered``. A False answer stops the trial.
    """
    import torch

    from effsearch.objectives.meters import provenance

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
        export_dir=Path(job.export_dir) if job.export_dir else None,
    )
    keep = Path(job.trial_dir) / artifacts.ARTIFACT_FOLDER if job.keep_artifact else None
    if keep is not None:
        ctx.export_dir = keep  # the task writes what a deployment needs besides the model there
        keep.mkdir(parents=True, exist_ok=True)
    known_early: dict[str, float] = {}
    if job.reports_answered and on_report is not None:
        ctx.on_report = _relay(job.number, on_report, known_early)
    outcome = TrialOutcome(number=job.number, history=ctx.history, notes=ctx.notes)
    try:
        with memory_cap(job.memory_mb):
            outcome.measured_on = {
                **provenance(job.device),
                "host": socket.gethostname(),
                "torch_threads": str(job.threads),
            }
            task = build_task(job.task)
            # Only when it can decide something: a constraint or a rung on what it knows.
            constrained = [split_device(c.metric)[0] for c in job.constraints]
            wanted = ctx.on_report is not None or any(m in task.early_metrics for m in constrained)
            ctx.measure_before_training = ctx.on_report is not None or any(
                m in EARLY_HARDWARE_METRICS for m in constrained
            )
            unrunnable = _engine_cannot_run(task, job.config)
            if unrunnable:
                outcome.status = Status.REJECTED
                outcome.reason = f"rejected before training: {unrunnable}"
                return _ended(outcome, start, job, ctx)
            early = check_metrics(task.precheck(job.config, ctx)) if wanted else {}
            known_early.update(early)
            broken = [
                c for c in job.constraints if c.metric in early and c.violation(early[c.metric]) > 0
            ]
            if broken:
                outcome.status, outcome.metrics = Status.REJECTED, early
                outcome.reason = "rejected before training: " + "; ".join(
                    f"{c.metric} = {early[c.metric]:.4g} breaks {c}" for c in broken
                )
            else:
                outcome.metrics = check_metrics(task.run(job.config, ctx))
    except StopTrial:
        last = dict(ctx.history[-1]) if ctx.history else {}
        step = last.pop("step", 0.0)
        outcome.status, outcome.metrics = Status.STOPPED, {**known_early, **last}
        outcome.reason = f"stopped early at step {step:g} (early_stopping)"
    except (Exception, SystemExit) as exc:  # a trial may fail in any way; it is recorded
        with contextlib.suppress(OSError):  # into its log, unless that is what failed
            traceback.print_exc()
        outcome.status = Status.FAILED
        outcome.reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, MemoryError) and job.memory_mb:
            outcome.reason = (
                f"MemoryError: the trial needed more than execution.trial_memory_mb = "
                f"{job.memory_mb} MB"
            )
    return _ended(outcome, start, job, ctx)


def _ended(outcome: TrialOutcome, start: float, job: TrialJob, ctx: TrialContext) -> TrialOutcome:
    if job.keep_artifact:
        folder = Path(job.trial_dir) / artifacts.ARTIFACT_FOLDER
        try:
            if outcome.ok and (ctx.artifact is not None or ctx.example_input is not None):
                artifacts.save(folder, ctx.artifact, ctx.example_input)
            else:
                shutil.rmtree(folder, ignore_errors=True)  # nothing measured to keep
        except OSError as exc:  # a full disk costs the artifact, never the trial
            shutil.rmtree(folder, ignore_errors=True)
            outcome.notes.append(f"its model was not kept ({exc})")
    outcome.measured_on.update(ctx.measured_on)
    outcome.duration_s = time.perf_counter() - start
    if job.export_dir is not None:
        outcome.artifact, outcome.example_input = ctx.artifact, ctx.example_input
    return outcome


def _engine_cannot_run(task: Task, config: Config) -> str:
    """Why the configuration's runtime engine cannot run its quantization or pruning ('' if
    it can, or the task has no runtime knob): known before anything is built."""
    if task.info is None or "runtime" not in task.info.families:
        return ""
    return config_incompatibility(config)


def _relay(
    number: int, on_report: OnReport, known_early: Mapping[str, float]
) -> Callable[[int, Mapping[str, float]], None]:
    """Reports as the driver sees them: what the task reports, plus what was known before
    training (size, params, FLOPs), so cost objectives rank trials at every rung."""

    def report(step: int, metrics: Mapping[str, float]) -> None:
        if not on_report(Report(number, float(step), {**known_early, **metrics})):
            raise StopTrial

    return report


def check_metrics(raw: object) -> dict[str, float]:
    """The task's result as finite floats, or a TaskError naming what is wrong.

    Numbers are Python/NumPy reals or one-element tensors; bools and numeric text are refused
    (they are almost always a bug in the task, not a measurement).
    """
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
