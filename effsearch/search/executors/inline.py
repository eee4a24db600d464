"""Inline executor: runs each trial in the driver's process, one at a time (debugging, tests).

A submitted trial runs at the next ``poll``, in the driver's thread, so its reports are
answered by the driver's ``on_report`` as they come. It cannot survive a trial that crashes
the interpreter and does not enforce ``trial_timeout_s``; use ``local`` for that.
"""

from __future__ import annotations

from effsearch.registry import register
from effsearch.search.executors.base import (
    Executor,
    OnReport,
    Status,
    TrialJob,
    TrialOutcome,
    keep_going,
)
from effsearch.search.executors.logs import trial_log
from effsearch.search.trial import run_trial


@register("executor", "inline")
class InlineExecutor(Executor):
    """One trial at a time, in this process."""

    in_process = True

    def __init__(self, workers: int = 1, trial_timeout_s: float = 0.0, threads: int = 1) -> None:
        self._queued: list[TrialJob] = []

    def free_slots(self) -> int:
        return 0 if self._queued else 1

    def submit(self, job: TrialJob) -> None:
        self._queued.append(job)

    def poll(self, timeout_s: float, on_report: OnReport = keep_going) -> list[TrialOutcome]:
        outcomes = []
        while self._queued:
            job = self._queued.pop(0)
            with trial_log(job.trial_dir):
                outcomes.append(run_trial(job, on_report))
        return outcomes

    def cancel_all(self, reason: str) -> list[TrialOutcome]:
        cancelled = [
            TrialOutcome(number=job.number, status=Status.FAILED, reason=reason)
            for job in self._queued
        ]
        self._queued = []
        return cancelled
