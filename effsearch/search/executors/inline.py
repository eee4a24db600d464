"""Inline executor: runs each trial in the driver process, one at a time (debugging, tests).

It cannot survive a trial that crashes the interpreter and does not enforce
``trial_timeout_s``; use ``local`` for that.
"""

from __future__ import annotations

from effsearch.registry import register
from effsearch.search.executors.base import Decide, Executor, TrialJob, TrialOutcome, run_job
from effsearch.search.executors.logs import trial_log


@register("executor", "inline")
class InlineExecutor(Executor):
    def __init__(
        self,
        workers: int = 1,
        trial_timeout_s: float = 0.0,
        threads: int = 1,
        decide: Decide | None = None,
    ) -> None:
        self._done: list[TrialOutcome] = []
        self._decide = decide

    def free_slots(self) -> int:
        return 0 if self._done else 1

    def submit(self, job: TrialJob) -> None:
        with trial_log(job.trial_dir):
            self._done.append(run_job(job, self._decide))

    def poll(self, timeout_s: float) -> list[TrialOutcome]:
        done, self._done = self._done, []
        return done

    def running(self) -> list[int]:
        return []

    def cancel_all(self, reason: str) -> list[TrialOutcome]:
        return self.poll(0.0)
