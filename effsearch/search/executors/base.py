"""The executor interface: runs trials somewhere, reports outcomes back to the driver.

Call order (the runner is the only caller): ``submit`` while ``free_slots() > 0``, then ``poll``
to collect finished outcomes, repeated; ``cancel_all`` on interrupt; ``close`` at the end.
Guarantees: every submitted job comes back exactly once as a :class:`TrialOutcome`, from
``poll`` or ``cancel_all``; an exception, a NaN, a crash, a kill or a timeout in a trial is
an outcome with ``ok=False`` and a reason, never an exception in the driver.
"""

from __future__ import annotations

import math
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effsearch.tasks.base import MeasureSettings, TaskSpec, TrialContext


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


@dataclass
class TrialOutcome:
    """What came back from one trial."""

    number: int
    ok: bool
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    duration_s: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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


def run_job(job: TrialJob) -> TrialOutcome:
    """Run ``job`` in this process and turn whatever happens into an outcome.

    Shared by every executor, so a trial behaves the same inline, in a worker process or on Ray.
    """
    import torch

    from effsearch.tasks import build_task

    torch.set_num_threads(job.threads)
    start = time.perf_counter()
    ctx = TrialContext(
        trial_number=job.number,
        seed=job.seed,
        threads=job.threads,
        measure=job.measure,
        trial_dir=Path(job.trial_dir),
    )
    try:
        task = build_task(job.task)
        raw = task.run(job.config, ctx)
        metrics = check_metrics(raw)
    except Exception as exc:
        traceback.print_exc()
        return TrialOutcome(
            number=job.number,
            ok=False,
            reason=f"{type(exc).__name__}: {exc}",
            duration_s=time.perf_counter() - start,
            history=ctx.history,
            notes=ctx.notes,
        )
    return TrialOutcome(
        number=job.number,
        ok=True,
        metrics=metrics,
        duration_s=time.perf_counter() - start,
        history=ctx.history,
        notes=ctx.notes,
    )


def check_metrics(raw: object) -> dict[str, float]:
    """The task's result as finite floats, or a TaskError naming what is wrong."""
    from effsearch.errors import TaskError

    if not isinstance(raw, Mapping):
        raise TaskError(
            f"the task must return a dict of metrics, but returned {type(raw).__name__}"
        )
    metrics: dict[str, float] = {}
    for name, value in raw.items():
        if not isinstance(name, str):
            raise TaskError(f"metric names must be strings, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                value = float(value)  # numpy and torch scalars
            except (TypeError, ValueError):
                raise TaskError(
                    f"metric {name!r} must be a number, got {type(value).__name__} {value!r}"
                ) from None
        if not math.isfinite(value):
            raise TaskError(f"metric {name!r} is {value} (must be finite)")
        metrics[name] = float(value)
    return metrics
