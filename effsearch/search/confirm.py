"""Confirmation: re-run the Pareto set's members on more seeds, and say which points are solid.
(The figures: ``search/confirmations.py``.)

``effsearch confirm RUN_DIR --seeds K`` (or ``budget.confirm: {seeds: K}`` at the end of a
search) trains and measures each front member again on K seeds other than the search's. The
runs are trials of a second study in the run's storage (``<name>:confirm``), each tagged with
the member and the seed, so a stopped confirmation resumes without repeating a finished run.

For each confirmed member: the mean and standard deviation of every metric over its runs (the
search's own run included) and its **Pareto-membership probability**: the share of bootstrap
resamples (each member's runs resampled with replacement, their mean taken) in which the member
stays non-dominated among the confirmed members. A point on the front by the luck of one seed
shows a low probability.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

from effsearch.errors import ArgumentError
from effsearch.registry import lookup
from effsearch.search import tell
from effsearch.search.confirmations import MEMBER, SEED, Confirmed, seeds_for, summarize
from effsearch.search.executors.base import Executor, TrialJob
from effsearch.search.plan import trial_job
from effsearch.search.study import confirm_study
from effsearch.search.study_front import pareto_front
from effsearch.search.summary import trial_config

if TYPE_CHECKING:
    from effsearch.recipe.schema import Recipe
    from effsearch.search.rundir import RunDir


def chosen(recipe: Recipe, study: optuna.Study, top: str) -> list[FrozenTrial]:
    """The front members to confirm: ``pareto`` (all), or ``N``: the N best by the first
    objective."""
    front = pareto_front(study.get_trials(deepcopy=False), recipe.objectives)
    if top == "pareto":
        return front
    if not top.isdigit() or int(top) < 1:
        raise ArgumentError(f"--top: use pareto or a number of front members (got {top!r})")
    first = recipe.objectives[0]
    ordered = sorted(front, key=lambda t: t.values[0], reverse=first.direction == "maximize")
    return sorted(ordered[: int(top)], key=lambda t: t.number)


def run(
    recipe: Recipe, study: optuna.Study, run_dir: RunDir, seeds: int, top: str = "pareto"
) -> dict[int, Confirmed]:
    """Run every (member, seed) not confirmed yet; return every member's figures.

    The caller holds the run directory (no search runs meanwhile)."""
    if seeds < 1:
        raise ArgumentError(f"--seeds must be 1 or more (got {seeds})")
    members = chosen(recipe, study, top)
    extra = confirm_study(study, create=True)
    assert extra is not None
    _fail_leftovers(extra)
    done = {
        (t.user_attrs[MEMBER], t.user_attrs[SEED])
        for t in extra.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    }
    todo = [
        (m, s) for m in members for s in seeds_for(recipe.seed, seeds) if (m.number, s) not in done
    ]
    executor: Executor = lookup("executor", recipe.execution.executor).from_execution(
        recipe.execution
    )
    try:
        _execute(recipe, extra, run_dir.path, todo, executor)
    finally:
        executor.close()
    return summarize(recipe, study, extra, members)


def _execute(
    recipe: Recipe,
    extra: optuna.Study,
    run_dir: Path,
    todo: Sequence[tuple[FrozenTrial, int]],
    executor: Executor,
) -> None:
    queue = list(todo)
    pending: dict[int, optuna.Trial] = {}
    while queue or pending:
        while queue and executor.free_slots() > 0:
            member, seed = queue.pop(0)
            trial = extra.ask()
            trial.set_user_attr(MEMBER, member.number)
            trial.set_user_attr(SEED, seed)
            job: TrialJob = dataclasses.replace(
                trial_job(
                    recipe,
                    trial.number,
                    trial_config(recipe, member),
                    run_dir,
                    trial_dir=run_dir / "confirm" / f"{member.number}-seed-{seed}",
                    seed=seed,
                ),
                keep_artifact=False,  # a re-run on another seed is not what export ships
            )
            pending[trial.number] = trial
            executor.submit(job)
        for outcome in executor.poll(0.2):
            trial = pending.pop(outcome.number)
            tell.record(extra, trial, outcome, recipe.objectives, recipe.constraints)


def _fail_leftovers(extra: optuna.Study) -> None:
    """Confirmation runs a stopped ``confirm`` left RUNNING: failed, to be run again."""
    for frozen in extra.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        extra.tell(frozen.number, state=TrialState.FAIL)
