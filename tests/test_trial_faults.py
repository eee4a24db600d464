"""Trials that misbehave are FAILED with their reason and the search goes on; what they return
never reaches the optimizer."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from optuna.trial import TrialState
from test_pareto import Quiet

from effsearch.recipe import load_recipe
from effsearch.search import records
from effsearch.search.rundir import RunDir
from effsearch.search.runner import Runner


def test_nan_and_inf_results_are_failed_and_never_told_to_the_optimizer(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = load_recipe(
        write_recipe(entrypoint="nan_above_half", budget={"trials": 16}, optimizer={"name": "tpe"})
    )
    study = Runner(recipe, RunDir(tmp_path / "run"), Quiet()).run(resume=False).study

    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and len(study.trials) == 16
    reasons = {t.user_attrs[records.FAIL_REASON] for t in failed}
    assert reasons <= {
        "TaskError: metric 'f1' is nan (must be finite)",
        "TaskError: metric 'f2' is inf (must be finite)",
    }, reasons
    told = [v for t in study.trials if t.values is not None for v in t.values]
    assert told and all(math.isfinite(v) for v in told)


def test_a_trial_printing_megabytes_is_kept_in_its_log_and_the_search_goes_on(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = load_recipe(
        write_recipe(
            entrypoint="floods_stdout",
            budget={"trials": 2},
            execution={"executor": "local", "workers": 1, "trial_timeout_s": 120},
        )
    )
    study = Runner(recipe, RunDir(tmp_path / "run"), Quiet()).run(resume=False).study

    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    log = tmp_path / "run" / "trials" / "0" / "log.txt"
    assert log.stat().st_size >= 8 * 2**20


def test_a_trial_that_allocates_without_end_fails_at_its_memory_cap_and_the_search_goes_on(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = load_recipe(
        write_recipe(
            entrypoint="allocates",
            budget={"trials": 6},
            execution={
                "executor": "local",
                "workers": 1,
                "trial_timeout_s": 120,
                "trial_memory_mb": 1024,
            },
        )
    )
    study = Runner(recipe, RunDir(tmp_path / "run"), Quiet()).run(resume=False).study

    states = {t.number: t.state for t in study.trials}
    runaway = [t for t in study.trials if t.params["params.x0"] > 0.5]
    assert runaway and len(runaway) < 6
    for trial in runaway:
        assert states[trial.number] == TrialState.FAIL
        assert trial.user_attrs[records.FAIL_REASON] == (
            "MemoryError: the trial needed more than execution.trial_memory_mb = 1024 MB"
        )
    # the same worker ran the others, its memory and cap restored
    assert all(
        s == TrialState.COMPLETE for n, s in states.items() if n not in {t.number for t in runaway}
    )
