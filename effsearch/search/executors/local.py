"""Local executor: a pool of worker processes on this machine.

Each worker is a spawned Python process that runs one trial at a time and is reused (imports
and the task's data load once per worker). A trial that crashes its worker (segfault, OOM kill,
``os._exit``) or runs past ``trial_timeout_s`` becomes a failed outcome with the reason; the
worker is replaced and the search goes on.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

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
from effsearch.search.trial import prepare, run_trial

STARTUP_LIMIT_S = 300.0  # a worker that cannot even start a trial in this time is stuck


def _worker_main(conn: Connection, threads: int) -> None:
    # Children must not die on the Ctrl-C or SIGTERM sent to the whole process group: the
    # driver records their trials as interrupted and stops them itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import torch

    torch.set_num_threads(threads)
    try:
        while True:
            job = conn.recv()
            if job is None:
                return
            with trial_log(job.trial_dir):
                # The trial's clock starts now, not while this process was still importing or
                # loading the task's data.
                prepare(job)
                conn.send(("started", job.number))
                outcome = run_trial(job, _ask_driver(conn))
            conn.send(("done", outcome))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the driver is gone; nobody is left to tell


def _ask_driver(conn: Connection) -> OnReport:
    """Send a report to the driver and wait for its answer (the driver alone decides)."""

    def ask(report: Report) -> bool:
        conn.send(("report", report))
        _, go_on = conn.recv()
        return bool(go_on)

    return ask


@contextlib.contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Start a worker without it importing the driver's ``__main__``.

    multiprocessing's spawn re-runs the main script in every child, so a search started from a
    user's script (``effsearch.run(...)`` at top level, without an ``if __name__ ==
    "__main__"`` guard) would start itself again in each worker. Workers need nothing from
    ``__main__`` (their target and jobs live in effsearch), so it is hidden while one starts.
    """
    main = sys.modules["__main__"]
    had_file = hasattr(main, "__file__")
    saved = getattr(main, "__file__", None), getattr(main, "__spec__", None)
    if had_file:
        del main.__file__
    main.__spec__ = None
    try:
        yield
    finally:
        if had_file:
            main.__file__ = saved[0]
        main.__spec__ = saved[1]


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    job: TrialJob | None = None
    submitted: float = 0.0
    started: float | None = None

    def deadline(self, timeout_s: float) -> float:
        if self.started is None:
            return self.submitted + STARTUP_LIMIT_S
        return self.started + timeout_s


@register("executor", "local")
class LocalExecutor(Executor):
    """``workers`` processes, each with ``threads`` torch threads, one trial at a time each."""

    def __init__(self, workers: int = 2, trial_timeout_s: float = 600.0, threads: int = 1) -> None:
        self.timeout_s = trial_timeout_s
        self.threads = threads
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = [self._spawn() for _ in range(workers)]

    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe()
        saved = {k: os.environ.get(k) for k in THREAD_ENV_VARS}
        # Thread pools size themselves at import; the child must see the pin before torch loads.
        os.environ.update({k: str(self.threads) for k in THREAD_ENV_VARS})
        try:
            process = self._context.Process(
                target=_worker_main, args=(child, self.threads), daemon=True
            )
            with _main_not_rerun():
                process.start()
        except OSError as exc:
            raise ExecutorError(f"cannot start a worker process: {exc}") from exc
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        child.close()
        return _Worker(process, parent)

    def free_slots(self) -> int:
        return sum(1 for w in self._workers if w.job is None)

    def submit(self, job: TrialJob) -> None:
        worker = next(w for w in self._workers if w.job is None)
        if not worker.process.is_alive():
            self._replace(worker)
            worker = next(w for w in self._workers if w.job is None)
        worker.conn.send(job)
        worker.job = job
        worker.submitted = time.monotonic()
        worker.started = None

    def poll(self, timeout_s: float, on_report: OnReport = keep_going) -> list[TrialOutcome]:
        busy = [w for w in self._workers if w.job is not None]
        if not busy:
            return []
        deadline = min(w.deadline(self.timeout_s) for w in busy)
        wait_s = max(0.0, min(timeout_s, deadline - time.monotonic()))
        handles: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
        ready = set(wait(handles, timeout=wait_s))
        outcomes: list[TrialOutcome] = []
        for worker in busy:
            outcome = self._read(worker, on_report) if worker.conn in ready else None
            if outcome is None and worker.job is not None:
                if worker.process.sentinel in ready and not worker.conn.poll():
                    outcome = self._died(worker)
                elif time.monotonic() > worker.deadline(self.timeout_s):
                    outcome = self._stop(worker, self._late_reason(worker))
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def _read(self, worker: _Worker, on_report: OnReport) -> TrialOutcome | None:
        """Drain the worker's messages; its outcome if the trial finished."""
        try:
            while worker.conn.poll():
                kind, payload = worker.conn.recv()
                if kind == "started":
                    worker.started = time.monotonic()
                elif kind == "report":
                    worker.conn.send(("go", on_report(payload)))
                else:
                    worker.job = None
                    outcome: TrialOutcome = payload
                    return outcome
        except (EOFError, OSError):
            return self._died(worker)
        return None

    def _late_reason(self, worker: _Worker) -> str:
        if worker.started is None:
            return f"the worker did not start the trial within {STARTUP_LIMIT_S:g} s; it was killed"
        return (
            f"timed out after {self.timeout_s:g} s (execution.trial_timeout_s); "
            "the worker was killed"
        )

    def cancel_all(self, reason: str) -> list[TrialOutcome]:
        return [self._stop(w, reason, respawn=False) for w in self._workers if w.job is not None]

    def close(self) -> None:
        for worker in self._workers:
            if worker.process.is_alive():
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
        for worker in self._workers:
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=2)
            if not worker.conn.closed:
                worker.conn.close()

    def _died(self, worker: _Worker) -> TrialOutcome:
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        if code is not None and code < 0:
            how = f"killed by {signal.Signals(-code).name}"
            if -code == signal.SIGKILL:
                how += " (out of memory, or killed from outside)"
        else:
            how = f"exited with code {code}"
        return self._stop(worker, f"worker process died: {how}")

    def _stop(self, worker: _Worker, reason: str, respawn: bool = True) -> TrialOutcome:
        assert worker.job is not None
        outcome = TrialOutcome(
            number=worker.job.number,
            status=Status.FAILED,
            reason=reason,
            duration_s=time.monotonic() - (worker.started or worker.submitted),
        )
        worker.job = None
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        if respawn:
            self._replace(worker)
        return outcome

    def _replace(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(timeout=5)
        worker.conn.close()
        index = self._workers.index(worker)
        self._workers[index] = self._spawn()
