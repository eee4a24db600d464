"""The runner: the only loop, and the only writer of the study.

Order of one search (``Runner.run``):
1. Take the run directory's driver lock and the study's lease; open the study (create or
   re-open); build the :class:`~effsearch.search.plan.Plan` (sampler, stop criteria, executor,
   early-stopping scheduler).
2. Recover: trials a dead driver left RUNNING are failed (``interrupted``) and their parameters
   re-enqueued, so no finished trial is lost and none runs twice. A fresh run adds the
   ``warm_start`` runs' trials (``warm_start.py``) and enqueues the task's baseline
   (uncompressed) configuration first when the recipe allows it.
3. Loop: ask the sampler for configurations while the executor has free slots and no stop
   criterion is met (the cost predictor, when on, may reject one before it runs); poll the
   executor, answering each intermediate report with the
   scheduler's verdict; record each outcome (``tell.record``); update the view.
4. On Ctrl-C/SIGTERM: cancel trials in flight, record them as interrupted and re-enqueue them.
5. At the end, write ``pareto.json`` (every way of running a search leaves it) and hand
   the run's summary to the view.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from types import FrameType

import optuna

from effsearch.errors import ResumeError
from effsearch.objectives.slots import device_slots
from effsearch.recipe.resume import check_resumable
from effsearch.recipe.schema import Recipe
from effsearch.search import artifacts, records, study_front, tell, warm_start
from effsearch.search import plan as planning
from effsearch.search import storage as storage_mod
from effsearch.search.budget import Progress
from effsearch.search.executors.base import Executor, Report, TrialOutcome
from effsearch.search.lease import DriverLease
from effsearch.search.rundir import RunDir
from effsearch.search.study import open_study, recover, resumed_line
from effsearch.search.summary import RunSummary
from effsearch.search.view import View

POLL_S = 0.2


@dataclass
class SessionResult:
    """How one session of a search (a run, or a resume) ended."""

    study: optuna.Study
    interrupted: bool = False
    recovered: int = 0
    completed_now: int = 0
    failed_now: int = 0
    optimizer_reason: str = ""


class Runner:
    """Runs one search session; see the module docstring for the order of events."""

    def __init__(self, recipe: Recipe, run_dir: RunDir, view: View | None = None) -> None:
        self.recipe = recipe
        self.run_dir = run_dir
        self.view = view if view is not None else View()
        self._pending: dict[int, optuna.Trial] = {}
        self._launched: dict[int, float] = {}  # trial number -> time.monotonic() at launch
        self._stop_signal: str | None = None

    def run(self, resume: bool) -> SessionResult:
        """Run until a stop criterion is met or a stop signal arrives."""
        storage_mod.quiet_optuna()
        recipe = self.recipe
        if self.run_dir.exists() and not resume:
            raise ResumeError(
                f"{self.run_dir.path} already holds a run; continue it with "
                f"'effsearch resume {self.run_dir.path}', or pass --run-dir for a new one"
            )
        # before anything is written: a bad warm_start run is a user error (exit 2)
        earlier = [] if self.run_dir.exists() else warm_start.read_runs(recipe)
        with self.run_dir.driver_lock(), contextlib.ExitStack() as held:
            if resume and self.run_dir.exists():
                frozen = self.run_dir.frozen_recipe(import_entrypoint=False)
                check_resumable(frozen.data, recipe.data)
            torn = 0 if recipe.storage else storage_mod.drop_torn_tail(self.run_dir.path)
            study = open_study(recipe, self.run_dir)
            if torn:
                self.view.message(
                    f"dropped an unfinished last journal record ({torn} bytes) that an "
                    "interrupted write left; no finished trial was in it"
                )
            # the study may live in shared storage, reachable from other run directories
            held.enter_context(DriverLease(study).held())
            plan = planning.build(recipe, study)
            self.run_dir.freeze(recipe)
            result = SessionResult(study=study, optimizer_reason=plan.choice.reason)
            had_trials = bool(study.trials)
            result.recovered = recover(study)
            if had_trials:
                self.view.message(resumed_line(recipe.name, study))
            else:
                if earlier:
                    here = warm_start.this_machine(recipe.execution.device)
                    self.view.message(warm_start.carry(study, recipe, earlier, here).line())
                self._enqueue_baseline(study)
            executor = plan.start_executor()
            try:
                with self._signals():
                    self._loop(study, plan, executor, result)
            finally:
                self.view.stop()
                if self._pending:
                    for outcome in executor.cancel_all(self._interrupt_reason()):
                        self._record(study, outcome, result, interrupted=True)
                executor.close()
                study.set_user_attr(records.STUDY_WALL_S, plan.wall.used_s())
            summary = RunSummary.from_study(recipe, study)
            summary.write_pareto(self.run_dir)
            result.interrupted = self._stop_signal is not None
            self.view.finished(summary, self.run_dir.path, result.interrupted)
            return result

    # ------------------------------------------------------------------------- the loop
    def _loop(
        self, study: optuna.Study, plan: planning.Plan, executor: Executor, result: SessionResult
    ) -> None:
        counted = records.counted_trials(study.get_trials(deepcopy=False))
        tracker = study_front.HypervolumeTracker(
            study, self.recipe.objectives, self.recipe.constraints
        )
        self.view.start(study, total=self.recipe.budget.trials, counted=counted)
        on_report = plan.scheduler.on_report if plan.scheduler is not None else _go_on
        ended_early = False
        while self._stop_signal is None:
            while executor.free_slots() > 0 and self._stop_signal is None and not ended_early:
                progress = Progress(study, counted, self._running_s(), tracker.history)
                if any(c.met(progress) for c in plan.criteria):
                    break
                counted += self._launch(study, plan, executor)
            if not self._pending:
                break
            outcomes = executor.poll(POLL_S, on_report)
            for outcome in outcomes:
                self._record(study, outcome, result, interrupted=False)
                counted += 1
            if outcomes:
                study.set_user_attr(records.STUDY_WALL_S, plan.wall.used_s())
                if self.recipe.execution.keep_artifacts == "pareto":
                    artifacts.keep_front_only(
                        self.run_dir.path / "trials",
                        study.get_trials(deepcopy=False),
                        self.recipe.objectives,
                    )
                volume = tracker.update(len(outcomes))
                if volume is not None:
                    self.view.hypervolume(volume)
                if not ended_early:
                    progress = Progress(study, counted, self._running_s(), tracker.history)
                    why = next(
                        (r for c in plan.criteria if c.early and (r := c.met(progress))), None
                    )
                    if why:
                        ended_early = True
                        study.set_user_attr(records.STUDY_STOPPED_EARLY, why)
                        self.view.message(f"stopping early: {why}; finishing the trials in flight")
            self.view.tick(running=sorted(self._pending))

    def _launch(self, study: optuna.Study, plan: planning.Plan, executor: Executor) -> int:
        """Ask for a configuration and start it; returns 1 when it was told at once instead
        (rejected by the cost predictor: it counts as finished), else 0."""
        started = time.perf_counter()
        with self._suggestion_slot(plan):
            trial = study.ask()
            config = self.recipe.space.suggest(trial)
            verdict = (
                plan.predictor.verdict(study.get_trials(deepcopy=False), trial.params, trial.number)
                if plan.predictor is not None
                else None
            )
        trial.set_user_attr(records.SUGGEST_S, round(time.perf_counter() - started, 4))
        trial.set_user_attr(records.CONFIG, config)
        if verdict is not None and verdict.predictions:
            trial.set_user_attr(records.PREDICTED_COSTS, [p.as_dict() for p in verdict.predictions])
            if verdict.recheck:
                trial.set_user_attr(records.PREDICTION_RECHECK, True)
            if verdict.reject:
                recipe = self.recipe
                told = tell.record_prediction_rejection(
                    study, trial, verdict, recipe.objectives, recipe.constraints
                )
                self.view.trial_rejected(trial.number, told.reason)
                return 1
        trial_dir = self.run_dir.trial_dir(trial.number)
        trial_dir.mkdir(parents=True, exist_ok=True)
        self._pending[trial.number] = trial
        self._launched[trial.number] = time.monotonic()
        executor.submit(plan.job(trial.number, config, self.run_dir.path))
        self.view.trial_started(trial.number, config)
        return 0

    def _running_s(self) -> list[float]:
        now = time.monotonic()
        return [now - self._launched[n] for n in self._pending]

    @staticmethod
    def _suggestion_slot(plan: planning.Plan) -> AbstractContextManager[None]:
        """A model-based optimizer computes for seconds in the driver: on a CPU device that
        is a step like any other, so it must not run inside another trial's timing."""
        if not plan.sampler_shares_device:
            return nullcontext()
        return device_slots("cpu").compute()

    def _record(
        self, study: optuna.Study, outcome: TrialOutcome, result: SessionResult, interrupted: bool
    ) -> None:
        trial = self._pending.pop(outcome.number)
        self._launched.pop(outcome.number, None)
        recipe = self.recipe
        told = tell.record(
            study, trial, outcome, recipe.objectives, recipe.constraints, interrupted
        )
        trial_dir = self.run_dir.trial_dir(outcome.number)
        if told.kind == "stopped":
            self.view.trial_stopped(outcome.number, told.reason)
        elif told.kind == "complete":
            result.completed_now += 1
            self.view.trial_completed(study, outcome.number, list(told.values))
        elif told.kind == "rejected":
            result.completed_now += 1
            self.view.trial_failed(outcome.number, told.reason, trial_dir)
        else:
            result.failed_now += 1 if told.kind == "failed" else 0
            self.view.trial_failed(outcome.number, told.reason, trial_dir)

    def _enqueue_baseline(self, study: optuna.Study) -> None:
        params = planning.baseline(self.recipe)
        if params is False:
            return
        if params is None:
            self.view.message(
                "no baseline trial: the uncompressed configuration lies outside the space"
            )
            return
        assert isinstance(params, dict)
        study.enqueue_trial(params, user_attrs={records.BASELINE: True})

    # ------------------------------------------------------------------------- signals
    def _interrupt_reason(self) -> str:
        return f"interrupted by {self._stop_signal or 'an error in the driver'} (re-run on resume)"

    @contextmanager
    def _signals(self) -> Iterator[None]:
        def stop(signum: int, frame: FrameType | None) -> None:
            self._stop_signal = signal.Signals(signum).name
            # A second Ctrl-C stops at once (an inline trial cannot be cancelled otherwise).
            signal.signal(signal.SIGINT, signal.default_int_handler)

        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, stop)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _go_on(report: Report) -> bool:
    return True
