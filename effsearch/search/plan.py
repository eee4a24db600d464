"""From a recipe to the parts one search runs with, built once: pymoo's problem + algorithm +
termination, Syne Tune's backend + scheduler.

A :class:`Plan` holds the sampler (``auto`` resolved), the stop criteria, the executor class
(started by :meth:`Plan.start_executor` from the recipe's ``execution`` section), the
early-stopping scheduler and the template of a trial's job. The runner loops over these and
never asks which executor or task it has.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna

from effsearch import builtins as builtins  # registers the built-in names
from effsearch.recipe.schema import Recipe
from effsearch.registry import lookup
from effsearch.search.budget import Criterion, WallClock, criteria
from effsearch.search.cost_predictor import CostPredictor
from effsearch.search.early_stopping import Scheduler
from effsearch.search.executors.base import Executor, TrialJob
from effsearch.search.optimizers import Choice
from effsearch.search.records import STUDY_WALL_S
from effsearch.search.rundir import RunDir
from effsearch.search.study import attach_sampler
from effsearch.spaces.baseline import baseline_params
from effsearch.tasks import task_info


@dataclass
class Plan:
    """The parts of one search session (see the module docstring)."""

    recipe: Recipe
    choice: Choice
    criteria: list[Criterion]
    wall: WallClock
    executor_class: type[Executor]
    scheduler: Scheduler | None
    predictor: CostPredictor | None = None

    def start_executor(self) -> Executor:
        return self.executor_class.from_execution(self.recipe.execution)

    def job(self, number: int, config: Any, run_dir: Path) -> TrialJob:
        return trial_job(self.recipe, number, config, run_dir)

    @property
    def sampler_shares_device(self) -> bool:
        """Whether the sampler's seconds of computing land on the device trials measure on
        (then it must hold the device's compute slot while it works)."""
        return not self.executor_class.in_process and self.recipe.execution.device == "cpu"


def build(recipe: Recipe, study: optuna.Study) -> Plan:
    """The plan of a search on ``study`` (its sampler is attached and recorded here)."""
    executor_class: type[Executor] = lookup("executor", recipe.execution.executor)
    workers = 1 if executor_class.in_process else recipe.execution.workers
    info = task_info(recipe.task_spec)
    choice = attach_sampler(study, recipe, workers, info.typical_trial_s if info else None)
    found, wall = criteria(recipe.budget, float(study.user_attrs.get(STUDY_WALL_S, 0.0)))
    scheduler = None
    if recipe.early_stopping is not None:
        scheduler = Scheduler.from_recipe(
            recipe.early_stopping, recipe.objectives, recipe.constraints, study
        )
    settings = recipe.optimizer.predict_costs
    predictor = (
        CostPredictor(
            recipe.space,
            recipe.constraints,
            confidence=settings.confidence,
            recheck_rate=settings.recheck_rate,
            min_trials=settings.min_trials,
            seed=recipe.seed,
        )
        if settings is not None and recipe.constraints
        else None
    )
    return Plan(recipe, choice, found, wall, executor_class, scheduler, predictor)


def trial_job(
    recipe: Recipe,
    number: int,
    config: Any,
    run_dir: Path,
    trial_dir: Path | None = None,
    export_dir: Path | None = None,
    seed: int | None = None,
) -> TrialJob:
    """The job of trial ``number`` as the recipe says; every caller builds jobs here (workers'
    trials and ``effsearch export``'s rebuild alike). ``trial_dir`` defaults to the run
    directory's ``trials/<number>``; the task may cache what it builds once in ``cache/``.
    ``seed`` replaces the recipe's (confirmation runs)."""
    execution = recipe.execution
    trial_dir = trial_dir if trial_dir is not None else RunDir(run_dir).trial_dir(number)
    return TrialJob(
        number=number,
        config=config,
        task=replace(recipe.task_spec, cache_dir=str(Path(run_dir).resolve() / "cache")),
        seed=recipe.seed if seed is None else seed,
        threads=execution.threads_per_trial,
        measure=recipe.measure_settings,
        trial_dir=str(trial_dir),
        device=execution.device,
        constraints=recipe.constraints,
        reports_answered=recipe.early_stopping is not None,
        memory_mb=execution.trial_memory_mb,
        export_dir=str(export_dir) if export_dir is not None else None,
        keep_artifact=export_dir is None and execution.keep_artifacts != "none",
    )


def baseline(recipe: Recipe) -> dict[str, Any] | bool | None:
    """Optuna parameters of the task's uncompressed configuration to run first; False when the
    recipe or task has none, None when it lies outside the space."""
    info = task_info(recipe.task_spec)
    if not recipe.baseline or info is None or info.baseline is None:
        return False
    return baseline_params(recipe.space, info.baseline, info.families)
