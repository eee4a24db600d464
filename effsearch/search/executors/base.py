"""The executor interface: executors start trials, relay their reports, deliver outcomes.

Call order (the runner is the only caller): ``submit`` while ``free_slots() > 0``, then
``poll(timeout_s, on_report)`` to collect finished outcomes, repeated; ``cancel_all`` on
interrupt; ``close`` at the end.

Guarantees: every submitted job comes back exactly once as a :class:`TrialOutcome`, from
``poll`` or ``cancel_all``; an exception, a NaN, a crash, a kill or a timeout in a trial is an
outcome with status FAILED and a reason, never an exception in the driver. A trial's
intermediate reports reach the driver through ``on_report`` during ``poll``, in the order the
trial made them; the trial waits for the answer (go on, or stop), so a stopped trial trains no
further step. Executors decide nothing: the answer is the driver's.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from effsearch.objectives.goals import Constraint
from effsearch.tasks.base import MeasureSettings, TaskSpec

if TYPE_CHECKING:
    from effsearch.recipe.schema import ExecutionSection

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""Thread-pool sizes a trial process must see before torch loads (every executor pins them)."""


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
    reports_answered: bool = False
    """Whether the driver answers the trial's reports (early stopping is on)."""
    memory_mb: int | None = None  # execution.trial_memory_mb
    keep_artifact: bool = False
    """Save the measured model in ``trial_dir/artifact/`` (``search/artifacts.py``)."""
    export_dir: str | None = None
    """Set by ``effsearch export``: the task writes what a deployment needs there, and the
    outcome carries the measured model (only in the process that ran it)."""


class Status(enum.Enum):
    """How a trial ended."""

    COMPLETE = "complete"
    FAILED = "failed"
    REJECTED = "rejected"
    """It broke a constraint on metrics known before training: nothing was trained."""
    STOPPED = "stopped"
    """The driver stopped it early at a report; its metrics are those of its last report."""


@dataclass
class TrialOutcome:
    """What came back from one trial.

    ``measured_on`` says where: host, device name, torch version, threads. For a REJECTED
    trial ``metrics`` holds what was known before training; for a STOPPED one, its last
    report plus what was known before training.
    """

    number: int
    status: Status = Status.COMPLETE
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    duration_s: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measured_on: dict[str, str] = field(default_factory=dict)
    artifact: Any = None
    """The measured model (``Quantized``) and ``example_input``: set only for an export."""
    example_input: Any = None

    @property
    def ok(self) -> bool:
        return self.status == Status.COMPLETE


@dataclass(frozen=True)
class Report:
    """An intermediate report of a running trial: metrics at a step (an epoch, say), together
    with what was known before training (size, params, FLOPs), so cost objectives can rank
    trials at every step."""

    number: int
    step: float
    metrics: Mapping[str, float]


OnReport = Callable[[Report], bool]
"""The driver's answer to a report: True to let the trial go on, False to stop it."""


def keep_going(report: Report) -> bool:
    """The answer when nobody decides: every trial goes on."""
    return True


class Executor(ABC):
    """Runs trials; see the module docstring for the call order and guarantees."""

    #: ``execution`` keys only this executor reads; a recipe naming another executor may not
    #: set them
    own_options: ClassVar[tuple[str, ...]] = ()
    #: runs trials in the driver's own process (and thread), one at a time
    in_process: ClassVar[bool] = False

    @classmethod
    def check_execution(cls, execution: ExecutionSection) -> list[tuple[Sequence[str], str]]:
        """Problems with the recipe's ``execution`` section for this executor: (path within
        ``execution``, message). Found when the recipe is validated."""
        return []

    @classmethod
    def from_execution(cls, execution: ExecutionSection) -> Executor:
        """Start the executor as the recipe's ``execution`` section says."""
        return cls(
            workers=execution.workers,
            trial_timeout_s=execution.trial_timeout_s,
            threads=execution.threads_per_trial,
        )

    @abstractmethod
    def __init__(self, workers: int, trial_timeout_s: float, threads: int) -> None: ...

    @abstractmethod
    def free_slots(self) -> int:
        """How many more jobs can be submitted now."""

    @abstractmethod
    def submit(self, job: TrialJob) -> None:
        """Start ``job``. Only called while ``free_slots() > 0``."""

    @abstractmethod
    def poll(self, timeout_s: float, on_report: OnReport = keep_going) -> list[TrialOutcome]:
        """Outcomes finished since the last call, waiting up to ``timeout_s`` for the first;
        reports that arrive meanwhile are answered by ``on_report``."""

    @abstractmethod
    def cancel_all(self, reason: str) -> list[TrialOutcome]:
        """Stop every trial in flight; each becomes a failed outcome with ``reason``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers and other resources."""
