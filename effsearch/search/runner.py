"""The runner: the only loop, and the only writer of the study.

Order of one search (``Runner.run``):
1. Take the run directory's driver lock; open the study (create or re-open).
2. Recover: trials a dead driver left RUNNING are failed (``interrupted``) and their parameters
   re-enqueued, so no finished trial is lost and none runs twice. A fresh run enqueues the
   task's baseline (uncompressed) configuration first when the recipe allows it.
3. Loop: ask the sampler for configurations while the executor has free slots and budget is
   left; poll finished outcomes; tell the study the objective values and constraint
   violations, record every metric on the trial; update the view.
4. On Ctrl-C/SIGTERM: cancel trials in flight, record them as interrupted and re-enqueue them,
   and report how to resume.
"""

from __future__ import annotations

import contextlib
import signal
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from effsearch.errors import ResumeError
from effsearch.recipe import RESUMABLE_FIELDS, Recipe, differences
from effsearch.search import early_stopping, pareto, records, stopped_view
from effsearch.search import storage as storage_mod
from effsearch.search.executors import Executor, TrialJob, TrialOutcome, make_executor
from effsearch.search.executors.base import Decide, device_slots
from effsearch.search.lease import DriverLease
from effsearch.search.optimizers import OptimizerRequest, make_sampler
from effsearch.search.rundir import RunDir
from effsearch.spaces.knobs import KnobDecl
from effsearch.tasks import task_class

if TYPE_CHECKING:
    from effsearch.report.live import View

POLL_S = 0.2


@dataclass
class RunResult:
    """How a search ended."""

    study: optuna.Study
    interrupted: bool = False
    recovered: int = 0
    completed_now: int = 0
    failed_now: int = 0
    optimizer_reason: str = ""


@dataclass
class Budget:
    """The recipe's budget as the loop checks it: counts, wall seconds, steps, compute seconds."""

    trials: int | None
    wall_s: float | None
    wall_used_before_s: float
    steps: int | None = None
    compute_s: float | None = None
    started: float = field(default_factory=time.monotonic)

    def wall_used_s(self) -> float:
        return self.wall_used_before_s + time.monotonic() - self.started

    def allows(self, counted: int, running_s: Sequence[float], study: optuna.Study) -> bool:
        """Whether one more trial may start; ``running_s``: how long each trial in flight has
        been running."""
        in_flight = len(running_s)
        if self.trials is not None and counted + in_flight >= self.trials:
            return False
        # one more trial only if it fits even when it runs all the way
        if self.steps is not None and self.steps_committed(study, in_flight + 1) > self.steps:
            return False
        if self.compute_s is not None and self.compute_committed_s(study, running_s) > (
            self.compute_s
        ):
            return False
        return not (self.wall_s is not None and self.wall_used_s() >= self.wall_s)

    @staticmethod
    def steps_committed(study: optuna.Study, in_flight: int) -> float:
        """Steps finished trials ran, plus, per trial in flight, the most a finished one ran
        (it may go the whole way)."""
        finished = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state.is_finished() and not t.user_attrs.get(records.INTERRUPTED)
        ]
        steps = [records.trial_steps(t) for t in finished]
        return sum(steps) + in_flight * max(steps, default=0.0)

    @staticmethod
    def compute_committed_s(study: optuna.Study, running_s: Sequence[float]) -> float:
        """Seconds finished trials ran (interrupted ones too: they used the machine), plus
        what the trials in flight and one more are expected to take: at least the median
        duration of the trials that ran to the end."""
        finished = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state.is_finished() and records.DURATION in t.user_attrs
        ]
        spent = sum(float(t.user_attrs[records.DURATION]) for t in finished)
        whole = [
            float(t.user_attrs[records.DURATION])
            for t in finished
            if t.state == TrialState.COMPLETE and not t.user_attrs.get(records.REJECTED)
        ]
        typical = statistics.median(whole) if whole else 0.0
        return spent + sum(max(s, typical) for s in running_s) + typical


def resumed_line(name: str, study: optuna.Study) -> str:
    """``resumed 'x': 37 complete, 2 interrupted (re-running), 1 failed``."""
    trials = study.get_trials(deepcopy=False)
    complete = sum(1 for t in trials if t.state == TrialState.COMPLETE)
    requeued = sum(
        1 for t in trials if t.state == TrialState.WAITING and records.RETRY_OF in t.user_attrs
    )
    failed = sum(
        1
        for t in trials
        if t.state == TrialState.FAIL and not t.user_attrs.get(records.INTERRUPTED)
    )
    return (
        f"resumed {name!r}: {complete} complete, {requeued} interrupted (re-running), "
        f"{failed} failed"
    )


def session_seed(seed: int, trials_so_far: int) -> int:
    """The sampler seed for a (re)started search.

    A fresh run uses the recipe's seed. A resumed one must not replay the random stream that
    proposed the trials it already has, so the seed moves on with the number of trials.
    """
    if trials_so_far == 0:
        return seed
    return (seed * 1_000_003 + trials_so_far) % 2**32


def open_study(recipe: Recipe, run_dir: RunDir) -> optuna.Study:
    """Create or re-open the run's study in its storage (the runner sets its sampler)."""
    storage_mod.quiet_optuna()
    storage = storage_mod.open_storage(recipe.storage, run_dir.path)
    study = optuna.create_study(
        storage=storage,
        study_name=recipe.name,
        directions=[o.direction for o in recipe.objectives],
        load_if_exists=True,
    )
    fingerprint = study.user_attrs.get(records.STUDY_FINGERPRINT)
    if fingerprint is None:
        study.set_metric_names([o.metric for o in recipe.objectives])
        study.set_user_attr(records.STUDY_FINGERPRINT, recipe.fingerprint())
    elif fingerprint != recipe.fingerprint():
        raise ResumeError(
            f"the study {recipe.name!r} in {storage_mod.describe(recipe.storage, run_dir.path)} "
            "was made by a different recipe (task, space, objectives, constraints or measure "
            "differ); use another name or storage"
        )
    return study


def load_study(run_dir: RunDir) -> tuple[Recipe, optuna.Study]:
    """Re-open a finished or running run for reading (show, export)."""
    recipe = run_dir.frozen_recipe(import_entrypoint=False)
    storage_mod.quiet_optuna()
    storage = storage_mod.open_storage(recipe.storage, run_dir.path)
    try:
        study = optuna.load_study(study_name=recipe.name, storage=storage)
    except KeyError:
        raise ResumeError(
            f"{run_dir.path} has no study named {recipe.name!r} yet; run it with: "
            f"effsearch resume {run_dir.path}"
        ) from None
    return recipe, study


def check_resumable(frozen: Recipe, recipe: Recipe) -> None:
    """Refuse a recipe whose changes would change what finished trials mean."""
    old = {k: v for k, v in frozen.data.items() if k not in RESUMABLE_FIELDS}
    new = {k: v for k, v in recipe.data.items() if k not in RESUMABLE_FIELDS}
    changed = differences(old, new)
    if changed:
        raise ResumeError(
            f"the recipe changed since this run started, in: {', '.join(changed)}. Finished "
            f"trials would no longer match it. Only {', '.join(RESUMABLE_FIELDS)} may change on "
            "resume; start a new run with another --run-dir (or name) instead"
        )


class _HypervolumeTracker:
    """The run's hypervolume after each finished trial, against its fixed reference point."""

    def __init__(self, recipe: Recipe, study: optuna.Study) -> None:
        self.recipe = recipe
        self.study = study
        self.reference = pareto.fixed_reference(
            study, recipe.objectives, recipe.constraints, store=True
        )
        trials = study.get_trials(deepcopy=False)
        self.history = [
            h["hypervolume"]
            for h in pareto.hypervolume_history(trials, recipe.objectives, self.reference)
        ]

    def update(self, finished: int) -> float | None:
        """Record ``finished`` more finished trials; the hypervolume now (None: no reference)."""
        if self.reference is None:
            self.reference = pareto.fixed_reference(
                self.study, self.recipe.objectives, self.recipe.constraints, store=True
            )
        trials = self.study.get_trials(deepcopy=False)
        volume = pareto.hypervolume(trials, self.recipe.objectives, self.reference)
        if volume is not None:
            self.history.extend([volume] * finished)
        return volume

    def stall_reason(self) -> str | None:
        rule = self.recipe.budget.stop_when_stalled
        if rule is None:
            return None
        history = [{"hypervolume": v} for v in self.history]
        if not pareto.stalled(history, rule.trials, rule.min_improvement):
            return None
        return (
            f"the hypervolume rose by less than {rule.min_improvement:.2%} over the last "
            f"{rule.trials} finished trials (budget.stop_when_stalled)"
        )


class Runner:
    """Runs one search; see the module docstring for the order of events."""

    def __init__(self, recipe: Recipe, run_dir: RunDir, view: View) -> None:
        self.recipe = recipe
        self.run_dir = run_dir
        self.view = view
        self._pending: dict[int, optuna.Trial] = {}
        self._launched: dict[int, float] = {}  # trial number -> time.monotonic() at launch
        self._stop_signal: str | None = None

    def run(self, resume: bool) -> RunResult:
        """Run until the budget is spent or a stop signal arrives."""
        storage_mod.quiet_optuna()
        recipe = self.recipe
        if self.run_dir.exists() and not resume:
            raise ResumeError(
                f"{self.run_dir.path} already holds a run; continue it with "
                f"'effsearch resume {self.run_dir.path}', or pass --run-dir for a new one"
            )
        with self.run_dir.driver_lock(), contextlib.ExitStack() as held:
            if resume and self.run_dir.exists():
                check_resumable(self.run_dir.frozen_recipe(import_entrypoint=False), recipe)
            torn = 0 if recipe.storage else storage_mod.drop_torn_tail(self.run_dir.path)
            study = open_study(recipe, self.run_dir)
            if torn:
                self.view.message(
                    f"dropped an unfinished last journal record ({torn} bytes) that an "
                    "interrupted write left; no finished trial was in it"
                )
            # the study may live in shared storage, reachable from other run directories
            held.enter_context(DriverLease(study).held())
            request = OptimizerRequest(
                seed=session_seed(recipe.seed, len(study.trials)),
                n_objectives=len(recipe.objectives),
                space=recipe.space,
                workers=recipe.execution.workers if recipe.execution.executor != "inline" else 1,
                trials=recipe.budget.trials,
                options=recipe.optimizer.options,
                objectives=recipe.objectives,
                constraints=recipe.constraints,
                typical_trial_s=_typical_trial_s(recipe),
            )
            choice = make_sampler(recipe.optimizer.name, request)
            study.sampler = choice.sampler
            if recipe.early_stopping is not None:
                study.sampler = stopped_view.SeesStoppedTrials(
                    choice.sampler, stopped_view.last_values(recipe.objectives, recipe.constraints)
                )
            self.run_dir.freeze(recipe)
            study.set_user_attr(
                records.STUDY_OPTIMIZER, {"name": choice.name, "reason": choice.reason}
            )
            result = RunResult(study=study, optimizer_reason=choice.reason)
            had_trials = bool(study.trials)
            result.recovered = self._recover(study)
            if had_trials:
                self.view.message(resumed_line(recipe.name, study))
            else:
                self._enqueue_baseline(study)
            budget = Budget(
                trials=recipe.budget.trials,
                wall_s=recipe.budget.wall_minutes * 60 if recipe.budget.wall_minutes else None,
                wall_used_before_s=float(study.user_attrs.get(records.STUDY_WALL_S, 0.0)),
                steps=recipe.budget.steps,
                compute_s=(recipe.budget.compute_minutes or 0) * 60 or None,
            )
            executor = make_executor(
                recipe.execution.executor,
                workers=recipe.execution.workers,
                trial_timeout_s=recipe.execution.trial_timeout_s,
                threads=recipe.execution.threads_per_trial,
                decide=self._early_stopping(study),
                **_executor_options(recipe),
            )
            try:
                with self._signals():
                    self._loop(study, executor, budget, result)
            finally:
                self.view.stop()
                if self._pending:
                    for outcome in executor.cancel_all(self._interrupt_reason()):
                        self._record(study, outcome, result, interrupted=True)
                executor.close()
                study.set_user_attr(records.STUDY_WALL_S, budget.wall_used_s())
            result.interrupted = self._stop_signal is not None
            return result

    # ------------------------------------------------------------------------- the loop
    def _loop(
        self, study: optuna.Study, executor: Executor, budget: Budget, result: RunResult
    ) -> None:
        trials = study.get_trials(deepcopy=False)
        counted = records.counted_trials(trials)
        tracker = _HypervolumeTracker(self.recipe, study)
        self.view.start(study, total=budget.trials, counted=counted)
        stalled = False
        while self._stop_signal is None:
            while (
                executor.free_slots() > 0
                and budget.allows(counted, self._running_s(), study)
                and self._stop_signal is None
                and not stalled
            ):
                self._launch(study, executor)
            if not self._pending:
                break
            outcomes = executor.poll(POLL_S)
            for outcome in outcomes:
                self._record(study, outcome, result, interrupted=False)
                counted += 1
            if outcomes:
                study.set_user_attr(records.STUDY_WALL_S, budget.wall_used_s())
                volume = tracker.update(len(outcomes))
                if volume is not None:
                    self.view.hypervolume(volume)
                why = tracker.stall_reason() or _unreported_steps(study, budget)
                if why and not stalled:
                    stalled = True
                    study.set_user_attr(records.STUDY_STOPPED_EARLY, why)
                    self.view.message(f"stopping early: {why}; finishing the trials in flight")
            self.view.tick(running=sorted(self._pending))

    def _launch(self, study: optuna.Study, executor: Executor) -> None:
        started = time.perf_counter()
        with self._suggestion_slot():
            trial = study.ask()
            config = self.recipe.space.suggest(trial)
        trial.set_user_attr(records.SUGGEST_S, round(time.perf_counter() - started, 4))
        trial.set_user_attr(records.CONFIG, config)
        trial_dir = self.run_dir.trial_dir(trial.number)
        trial_dir.mkdir(parents=True, exist_ok=True)
        job = TrialJob(
            number=trial.number,
            config=config,
            task=self.recipe.task_spec,
            seed=self.recipe.seed,
            threads=self.recipe.execution.threads_per_trial,
            measure=self.recipe.measure_settings,
            trial_dir=str(trial_dir),
            device=self.recipe.execution.device,
            constraints=self.recipe.constraints,
            early_stopping=self.recipe.early_stopping is not None,
            memory_mb=self.recipe.execution.trial_memory_mb,
        )
        self._pending[trial.number] = trial
        self._launched[trial.number] = time.monotonic()
        executor.submit(job)
        self.view.trial_started(trial.number, config)

    def _running_s(self) -> list[float]:
        now = time.monotonic()
        return [now - self._launched[n] for n in self._pending]

    def _suggestion_slot(self) -> AbstractContextManager[None]:
        """A model-based optimizer computes for seconds in the driver: on a CPU device that
        is a step like any other, so it must not run inside another trial's timing."""
        execution = self.recipe.execution
        if execution.executor == "inline" or execution.device != "cpu":
            return nullcontext()
        return device_slots("cpu").compute()

    def _record(
        self, study: optuna.Study, outcome: TrialOutcome, result: RunResult, interrupted: bool
    ) -> None:
        trial = self._pending.pop(outcome.number)
        self._launched.pop(outcome.number, None)
        trial.set_user_attr(records.METRICS, outcome.metrics)
        trial.set_user_attr(records.DURATION, round(outcome.duration_s, 3))
        if outcome.history:
            trial.set_user_attr(records.HISTORY, outcome.history)
        if outcome.notes:
            trial.set_user_attr(records.NOTES, outcome.notes)
        if outcome.measured_on:
            trial.set_user_attr(records.MEASURED_ON, outcome.measured_on)
        if outcome.stopped:
            trial.set_user_attr(records.STOPPED, outcome.reason)
            study.tell(trial, state=TrialState.PRUNED)
            self.view.trial_stopped(outcome.number, outcome.reason)
            return
        if outcome.rejected and self._tell_rejected(study, trial, outcome):
            result.completed_now += 1
            self.view.trial_failed(
                outcome.number, outcome.reason, self.run_dir.trial_dir(outcome.number)
            )
            return
        reason = outcome.reason if not outcome.ok else self._missing_metric(outcome.metrics)
        if reason:
            self._fail(study, trial, reason, interrupted=interrupted)
            result.failed_now += 0 if interrupted else 1
            self.view.trial_failed(outcome.number, reason, self.run_dir.trial_dir(outcome.number))
            return
        for constraint in self.recipe.constraints:
            trial.set_constraint(
                str(constraint), constraint.violation(outcome.metrics[constraint.metric])
            )
        values = [outcome.metrics[o.metric] for o in self.recipe.objectives]
        study.tell(trial, values)
        result.completed_now += 1
        self.view.trial_completed(study, outcome.number, values)

    def _early_stopping(self, study: optuna.Study) -> Decide | None:
        """The early-stopping rule, its rungs rebuilt from the reports of earlier trials."""
        rule = self.recipe.early_stopping
        if rule is None:
            return None
        rules: list[early_stopping.Decision] = []
        if "pareto" in rule.method:
            pruner = early_stopping.ParetoPruner(
                self.recipe.objectives,
                lambda: study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                rule.min_step,
                rule.min_trials,
                rule.min_gain,
                lambda: pareto.fixed_reference(
                    study, self.recipe.objectives, self.recipe.constraints, store=False
                ),
            )
            rules.append(pruner.observe)
        if "successive_halving" not in rule.method:
            return rules[0]
        halving = early_stopping.SuccessiveHalving(self.recipe.objectives, rule.min_step, rule.eta)
        finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        # Reports as the driver saw them: with what was known before training (final metrics
        # hold those values too), so replayed rungs rank like live ones.
        halving.replay(
            (
                t.number,
                [
                    {**t.user_attrs.get(records.METRICS, {}), **entry}
                    for entry in t.user_attrs.get(records.HISTORY, [])
                ],
            )
            for t in finished
        )
        return early_stopping.combine(halving.observe, *rules)

    def _tell_rejected(
        self, study: optuna.Study, trial: optuna.Trial, outcome: TrialOutcome
    ) -> bool:
        """Tell the optimizer about a configuration rejected before training.

        It is recorded as an infeasible COMPLETE trial (its constraint violations as measured
        before training; constraints on metrics not measured count as met) with imputed
        objective values: the worst each objective has reached so far. Samplers that model
        constraints learn to avoid the region; the trial can never be on the Pareto set.
        Returns False (record it as failed instead) while no trial has values to impute from.
        """
        worst = self._worst_values(study)
        if worst is None:
            return False
        trial.set_user_attr(records.REJECTED, outcome.reason)
        for constraint in self.recipe.constraints:
            value = outcome.metrics.get(constraint.metric)
            trial.set_constraint(
                str(constraint), constraint.violation(value) if value is not None else 0.0
            )
        study.tell(trial, worst)
        return True

    def _worst_values(self, study: optuna.Study) -> list[float] | None:
        measured = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if records.REJECTED not in t.user_attrs
        ]
        if not measured:
            return None
        worst = []
        for i, objective in enumerate(self.recipe.objectives):
            column = [t.values[i] for t in measured]
            worst.append(max(column) if objective.direction == "minimize" else min(column))
        return worst

    def _missing_metric(self, metrics: Mapping[str, float]) -> str:
        needed = [o.metric for o in self.recipe.objectives] + [
            c.metric for c in self.recipe.constraints
        ]
        missing = [m for m in dict.fromkeys(needed) if m not in metrics]
        if not missing:
            return ""
        got = ", ".join(sorted(metrics)) or "nothing"
        return f"the task returned no {', '.join(map(repr, missing))} (it returned: {got})"

    def _fail(
        self, study: optuna.Study, trial: optuna.Trial, reason: str, interrupted: bool
    ) -> None:
        trial.set_user_attr(records.FAIL_REASON, reason)
        if interrupted:
            trial.set_user_attr(records.INTERRUPTED, True)
            self._reenqueue(study, trial.number, trial.params, trial.user_attrs)
        study.tell(trial, state=TrialState.FAIL)

    # ------------------------------------------------------------------------- recovery
    def _recover(self, study: optuna.Study) -> int:
        """Fail and re-enqueue trials a dead driver left RUNNING; return how many."""
        stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for frozen in stale:
            trial = optuna.Trial(study, frozen._trial_id)
            # A driver killed between ask and suggest leaves a trial with no configuration:
            # nothing ran, so there is nothing to re-run (a queued one keeps its fixed params).
            params = frozen.params or frozen.system_attrs.get("fixed_params", {})
            why = "re-run on resume" if params else "it had no configuration yet; not re-run"
            trial.set_user_attr(
                records.FAIL_REASON,
                f"interrupted: the driver stopped before the trial finished ({why})",
            )
            trial.set_user_attr(records.INTERRUPTED, True)
            if params:
                self._reenqueue(study, frozen.number, params, frozen.user_attrs)
            study.tell(frozen.number, state=TrialState.FAIL)
        return len(stale)

    @staticmethod
    def _reenqueue(
        study: optuna.Study, number: int, params: Mapping[str, Any], user_attrs: Mapping[str, Any]
    ) -> None:
        attrs: dict[str, Any] = {records.RETRY_OF: number}
        if user_attrs.get(records.BASELINE):
            attrs[records.BASELINE] = True
        study.enqueue_trial(dict(params), user_attrs=attrs)

    def _enqueue_baseline(self, study: optuna.Study) -> None:
        cls = task_class(self.recipe.task_spec)
        if not self.recipe.baseline or cls is None or cls.baseline is None:
            return
        params = baseline_params(self.recipe, cls.baseline, cls.families or {})
        if params is None:
            self.view.message(
                "no baseline trial: the uncompressed configuration lies outside the space"
            )
            return
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


def baseline_params(
    recipe: Recipe,
    baseline: Mapping[str, Mapping[str, Any]],
    families: Mapping[str, tuple[KnobDecl, ...]],
) -> dict[str, Any] | None:
    """Optuna parameters of the task's uncompressed configuration inside this space.

    Groups the task names in ``baseline`` take those values; any other searched knob takes its
    declared default, clipped into the recipe's range. None if a baseline value is not in range.
    """
    values: dict[str, Any] = {}
    for knob in recipe.space.knobs:
        if not knob.is_active(values):
            continue
        if knob.group in baseline and knob.name in baseline[knob.group]:
            value = baseline[knob.group][knob.name]
        elif knob.searched:
            decl = {d.name: d for d in families.get(knob.group, ())}.get(knob.name)
            if decl is None:
                return None
            value = _clip(decl.default, knob.distribution)
        else:
            value = knob.fixed
        if knob.searched:
            if not _in_space(value, knob.distribution):
                return None
        elif value != knob.fixed:
            return None
        values[knob.full_name] = value
    return {
        k.full_name: values[k.full_name] for k in recipe.space.searched if k.full_name in values
    }


def _in_space(value: Any, distribution: Any) -> bool:
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return value in distribution.choices
    return bool(distribution.low <= value <= distribution.high)


def _clip(value: Any, distribution: Any) -> Any:
    low = getattr(distribution, "low", None)
    high = getattr(distribution, "high", None)
    if low is None or high is None:
        return value
    clipped = min(max(value, low), high)
    return (
        int(clipped) if isinstance(distribution, optuna.distributions.IntDistribution) else clipped
    )


def _unreported_steps(study: optuna.Study, budget: Budget) -> str | None:
    """Why a ``budget.steps`` run cannot go on: its trials report no steps to count."""
    if budget.steps is None:
        return None
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    if len(finished) < 3 or any(records.trial_steps(t) for t in finished):
        return None
    return (
        f"budget.steps is {budget.steps} but {len(finished)} finished trials reported no steps "
        "(a task reports them with ctx.report(step, metrics)); set budget.trials instead"
    )


def _executor_options(recipe: Recipe) -> dict[str, Any]:
    """What only the chosen executor takes, from the recipe's ``execution`` section."""
    execution = recipe.execution
    if execution.executor != "ray":
        return {}
    resources = execution.trial_resources
    return {
        "address": execution.address,
        "cpus_per_trial": resources.cpu if resources is not None else None,
        "gpus_per_trial": resources.gpu if resources is not None else 0.0,
    }


def _typical_trial_s(recipe: Recipe) -> float | None:
    cls = task_class(recipe.task_spec)
    return cls.typical_trial_s if cls is not None else None
