"""Ray executor: each trial is a Ray task with its own resources; the driver alone decides.

``execution: {executor: ray, address: HOST:PORT | auto, trial_resources: {cpu: N, gpu: N}}``
joins an existing cluster; without an address a local Ray starts with ``workers`` x ``cpu``
CPUs and stops with the search. At most ``workers`` trials run at once.

The driver builds the task once (data loaded, base model weights read) and puts it in Ray's
object store; each worker process fetches it once, not once per trial. A trial on a GPU holds
whole GPUs (``trial_resources.gpu`` is a whole number; the recipe check refuses fractions, which
would let two trials time on one GPU); its record names the Ray node, the GPU ids Ray gave it
and the device's UUID. With GPUs per trial, at most as many trials are in flight as the
cluster's GPUs hold (``workers`` caps it further): one trial per GPU at a time on a host with
several, the rest wait in the driver, not in Ray's queue.

A trial whose worker process or node dies is submitted again, at most ``RETRIES`` times, and
each retry is written into the trial's notes; Ray's own task retries are off, so a retry is
never silent and a trial never counts twice. A trial past ``trial_timeout_s`` (counted from
submission, plus ``START_GRACE_S`` for Ray to start a worker) is cancelled, its worker killed,
and fails with that reason.

Reports (early stopping) travel through a small Ray actor, the mailbox: a trial posts its
report and waits for the driver's answer; the driver takes the posted reports at each ``poll``,
answers them with the runner's ``on_report`` and posts the answers back. Ray is imported here
only: ``import effsearch`` must work where Ray is not installed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effsearch.errors import ExecutorError
from effsearch.registry import register
from effsearch.search.executors.base import (
    THREAD_ENV_VARS,
    Executor,
    OnReport,
    Report,
    Status,
    TrialJob,
    TrialOutcome,
    keep_going,
)
from effsearch.search.executors.logs import trial_log
from effsearch.search.trial import run_trial
from effsearch.tasks import build_task, task_key

if TYPE_CHECKING:
    from effsearch.recipe.schema import ExecutionSection

RETRIES = 2
"""How many times a trial whose worker or node died is submitted again."""
START_GRACE_S = 30.0
"""Added to ``trial_timeout_s``: the driver cannot see when Ray actually starts a task, and a
fresh worker (after a killed one, or on a new node) spends seconds importing torch."""
ANSWER_POLL_S = 0.02
"""How often a trial that posted a report asks the mailbox for the driver's answer."""


class _Mailbox:
    """Reports from trials to the driver and answers back (a Ray actor; see the module doc)."""

    def __init__(self) -> None:
        self._posted: list[tuple[int, Report]] = []
        self._answers: dict[int, bool] = {}
        self._tickets = 0

    def post(self, report: Report) -> int:
        self._tickets += 1
        self._posted.append((self._tickets, report))
        return self._tickets

    def take(self) -> list[tuple[int, Report]]:
        posted, self._posted = self._posted, []
        return posted

    def answer(self, answers: list[tuple[int, bool]]) -> None:
        self._answers.update(answers)

    def answer_to(self, ticket: int) -> bool | None:
        return self._answers.pop(ticket, None)


def _ask_mailbox(mailbox: Any) -> OnReport:
    """In the trial: post each report and wait for the driver's answer."""
    import ray

    def ask(report: Report) -> bool:
        ticket = ray.get(mailbox.post.remote(report))
        while (answer := ray.get(mailbox.answer_to.remote(ticket))) is None:
            time.sleep(ANSWER_POLL_S)
        return bool(answer)

    return ask


def _run_on_ray(job: TrialJob, shared: list[Any], mailbox: list[Any]) -> TrialOutcome:
    """The Ray task: one trial, on whatever node Ray placed it.

    ``shared`` holds, when the driver could build it, a reference to the task in the object
    store (in a list, so Ray passes the reference instead of resolving it on every call): a
    worker process fetches it once and reuses it for its later trials. ``mailbox`` holds the
    mailbox actor when the driver answers reports.
    """
    import ray

    Path(job.trial_dir).mkdir(parents=True, exist_ok=True)
    with trial_log(job.trial_dir):
        if shared:
            with contextlib.suppress(Exception):  # then run_trial builds it here, or says why not
                build_task(job.task, load=lambda: ray.get(shared[0]))
        outcome = run_trial(job, _ask_mailbox(mailbox[0]) if mailbox else None)
    context = ray.get_runtime_context()
    outcome.measured_on |= {
        "ray_node": context.get_node_id(),
        "ray_gpu_ids": ",".join(str(i) for i in ray.get_gpu_ids()),
        "task_inputs": f"object store {shared[0].hex()}" if shared else "loaded by the worker",
    }
    return outcome


@dataclass
class _Flight:
    job: TrialJob
    submitted: float = field(default_factory=time.monotonic)
    notes: list[str] = field(default_factory=list)


@register("executor", "ray")
class RayExecutor(Executor):
    """Trials as Ray tasks (see the module docstring)."""

    own_options = ("address", "trial_resources", "max_concurrent")

    @classmethod
    def check_execution(cls, execution: ExecutionSection) -> list[tuple[Sequence[str], str]]:
        problems: list[tuple[Sequence[str], str]] = []
        if execution.max_concurrent not in (None, execution.workers):
            problems.append(
                (
                    ("max_concurrent",),
                    f"is {execution.max_concurrent} but execution.workers is "
                    f"{execution.workers}; both say how many trials run at once: keep one",
                )
            )
        # A GPU trial on Ray must hold whole GPUs, picked by Ray: a fraction of a GPU would
        # let two trials time their models on one device at once.
        gpu = execution.trial_resources.gpu if execution.trial_resources else 0.0
        if execution.device.startswith("cuda"):
            if execution.device != "cuda":
                problems.append(
                    (
                        ("device",),
                        f"is {execution.device!r}, but on Ray the trial runs on the GPU Ray "
                        "gives it; use device: cuda",
                    )
                )
            if gpu < 1 or gpu != int(gpu):
                problems.append(
                    (
                        ("trial_resources", "gpu"),
                        f"must be a whole number of GPUs (1, 2, ...) when device is cuda (got "
                        f"{gpu:g}): each trial measures on GPUs it holds alone; fractional Ray "
                        "GPUs are shared",
                    )
                )
        elif gpu:
            problems.append(
                (
                    ("trial_resources", "gpu"),
                    f"asks for {gpu:g} GPU per trial, but execution.device is "
                    f"{execution.device!r}; set device: cuda, or remove trial_resources.gpu",
                )
            )
        return problems

    @classmethod
    def from_execution(cls, execution: ExecutionSection) -> Executor:
        resources = execution.trial_resources
        return cls(
            workers=execution.workers,
            trial_timeout_s=execution.trial_timeout_s,
            threads=execution.threads_per_trial,
            address=execution.address,
            cpus_per_trial=resources.cpu if resources is not None else None,
            gpus_per_trial=resources.gpu if resources is not None else 0.0,
        )

    def __init__(
        self,
        workers: int = 2,
        trial_timeout_s: float = 600.0,
        threads: int = 1,
        address: str | None = None,
        cpus_per_trial: float | None = None,
        gpus_per_trial: float = 0.0,
    ) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local cluster of our own
        import ray

        self._ray = ray
        self.workers = workers
        self.timeout_s = trial_timeout_s
        cpus = float(cpus_per_trial if cpus_per_trial is not None else threads)
        # The driver's import path travels with the trials (entrypoint modules, the package);
        # thread pools are pinned before torch loads in the worker.
        env = {k: str(threads) for k in THREAD_ENV_VARS} | {
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        self._owns_ray = False
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, include_dashboard=False, log_to_driver=False)
                else:
                    # GPUs as Ray detects them: a trial asking for one waits for a free one.
                    # "local": a Ray of our own, even where `ray start` left a cluster running
                    ray.init(
                        address="local",
                        num_cpus=max(1, round(workers * cpus)),
                        include_dashboard=False,
                        log_to_driver=False,
                    )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = address or "a local Ray"
                raise ExecutorError(f"cannot start or join Ray at {where}: {exc}") from exc
            self._owns_ray = True
        if gpus_per_trial > 0:
            self.workers = min(workers, self._gpu_slots(gpus_per_trial, address))
        self._task = ray.remote(_run_on_ray).options(
            num_cpus=cpus,
            num_gpus=gpus_per_trial,
            max_retries=0,  # we retry ourselves, and record it
            runtime_env={"env_vars": env},
        )
        self._flights: dict[Any, _Flight] = {}
        self._shared: dict[str, list[Any]] = {}  # task key -> [object ref] or [] (not shared)
        self._mailbox: list[Any] = []  # [the mailbox actor] once a job wants answered reports

    def _gpu_slots(self, gpus_per_trial: float, address: str | None) -> int:
        """How many trials the cluster's GPUs hold at once: trials beyond that would only wait
        in Ray's queue, their timeout running, while the optimizer could still propose them
        knowing more."""
        gpus = float(self._ray.cluster_resources().get("GPU", 0.0))
        slots = int(gpus // gpus_per_trial)
        if slots < 1:
            where = f"the Ray cluster at {address}" if address else "the local Ray"
            raise ExecutorError(
                f"trials ask for {gpus_per_trial:g} GPU each (execution.trial_resources.gpu), "
                f"but {where} has {gpus:g} GPUs; start Ray where the GPUs are visible "
                "(check CUDA_VISIBLE_DEVICES and `ray status`), or use device: cpu"
            )
        return slots

    # ------------------------------------------------------------------ Executor
    def free_slots(self) -> int:
        return self.workers - len(self._flights)

    def submit(self, job: TrialJob) -> None:
        self._launch(_Flight(job))

    def _launch(self, flight: _Flight) -> None:
        flight.submitted = time.monotonic()
        mailbox = self._mailbox_for(flight.job)
        ref = self._task.remote(flight.job, self._shared_task(flight.job), mailbox)
        self._flights[ref] = flight

    def _mailbox_for(self, job: TrialJob) -> list[Any]:
        if not job.reports_answered:
            return []
        if not self._mailbox:
            actor = self._ray.remote(num_cpus=0, max_restarts=0)(_Mailbox)
            self._mailbox = [actor.remote()]
        return self._mailbox

    def _answer_reports(self, on_report: OnReport) -> None:
        if not self._mailbox:
            return
        posted = self._ray.get(self._mailbox[0].take.remote())
        if posted:
            answers = [(ticket, bool(on_report(report))) for ticket, report in posted]
            self._mailbox[0].answer.remote(answers)

    def _shared_task(self, job: TrialJob) -> list[Any]:
        """A built-in task, built once here (data loaded, pretrained weights read) and put in
        the object store once per search; [] if it cannot be built or sent, and then each
        worker builds its own (and a failure is recorded per trial)."""
        key = task_key(job.task)
        if job.task.builtin is None:
            return []  # an entrypoint's module holds its own data; nothing to share
        if key not in self._shared:
            try:
                self._shared[key] = [self._ray.put(build_task(job.task))]
            except Exception:  # any failure is the trial's to report, not the driver's
                self._shared[key] = []
        return self._shared[key]

    def poll(self, timeout_s: float, on_report: OnReport = keep_going) -> list[TrialOutcome]:
        if not self._flights:
            return []
        ray = self._ray
        wait_s = max(0.0, min(timeout_s, self._next_deadline() - time.monotonic()))
        until = time.monotonic() + wait_s
        while True:  # short waits, so that reports are answered while trials wait for them
            self._answer_reports(on_report)
            left = until - time.monotonic()
            slice_s = max(0.0, min(left, 0.05)) if self._mailbox else max(0.0, left)
            ready, _ = ray.wait(list(self._flights), num_returns=1, timeout=slice_s)
            if ready or left <= 0:
                break
        if ready:  # collect everything else that is done too
            ready, _ = ray.wait(list(self._flights), num_returns=len(self._flights), timeout=0)
        outcomes = [o for ref in ready if (o := self._collect(ref)) is not None]
        now = time.monotonic()
        for ref, flight in list(self._flights.items()):
            if now > flight.submitted + self.timeout_s + START_GRACE_S:
                outcomes.append(
                    self._cancel(
                        ref,
                        f"timed out after {self.timeout_s:g} s (execution.trial_timeout_s); "
                        "its Ray worker was killed",
                    )
                )
        return outcomes

    def cancel_all(self, reason: str) -> list[TrialOutcome]:
        return [self._cancel(ref, reason) for ref in list(self._flights)]

    def close(self) -> None:
        for actor in self._mailbox:
            with contextlib.suppress(Exception):
                self._ray.kill(actor)
        self._mailbox = []
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()

    # ------------------------------------------------------------------ helpers
    def _next_deadline(self) -> float:
        return min(f.submitted + self.timeout_s + START_GRACE_S for f in self._flights.values())

    def _collect(self, ref: Any) -> TrialOutcome | None:
        """The outcome of a finished task; None when it was resubmitted after a crash."""
        ray = self._ray
        flight = self._flights.pop(ref)
        try:
            outcome: TrialOutcome = ray.get(ref)
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
            what = (
                "its node died"
                if isinstance(exc, ray.exceptions.NodeDiedError)
                else ("its Ray worker process died")
            )
            if len(flight.notes) < RETRIES:
                flight.notes.append(f"attempt {len(flight.notes) + 1} lost: {what}; retried")
                self._launch(flight)
                return None
            return self._failed(flight, f"{what}, {RETRIES + 1} attempts in all")
        except ray.exceptions.RayError as exc:
            return self._failed(flight, f"Ray could not run the trial: {_first_line(exc)}")
        outcome.notes = [*flight.notes, *outcome.notes]
        return outcome

    def _cancel(self, ref: Any, reason: str) -> TrialOutcome:
        flight = self._flights.pop(ref)
        self._ray.cancel(ref, force=True)
        return self._failed(flight, reason)

    @staticmethod
    def _failed(flight: _Flight, reason: str) -> TrialOutcome:
        return TrialOutcome(
            number=flight.job.number,
            status=Status.FAILED,
            reason=reason,
            duration_s=time.monotonic() - flight.submitted,
            notes=list(flight.notes),
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
