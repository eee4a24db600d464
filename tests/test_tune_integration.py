"""effsearch as a Ray Tune searcher: a few real Tune trials, told to a durable effsearch study."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from effsearch.cli import app
from effsearch.errors import RecipeError
from effsearch.search.rundir import RunDir
from effsearch.search.study import load_study

pytestmark = pytest.mark.ray

RECIPE = {
    "name": "tune-toy",
    "seed": 0,
    "space": {"params": {"x0": {"float": [0.0, 1.0]}, "x1": {"float": [0.0, 1.0]}}},
    "objectives": [
        {"metric": "f1", "direction": "minimize"},
        {"metric": "f2", "direction": "minimize"},
    ],
    "constraints": ["f1 <= 0.8"],
    "optimizer": {"name": "tpe"},
}


def trainable(config: dict) -> None:
    from ray import tune

    x0, x1 = config["params"]["x0"], config["params"]["x1"]
    g = 1.0 + 9.0 * x1
    tune.report({"f1": x0, "f2": g * (1.0 - math.sqrt(x0 / g))})


def test_a_tune_run_is_driven_and_recorded_by_effsearch(ray_cluster: str, tmp_path: Path) -> None:
    import ray
    from ray import tune

    from effsearch.integrations.tune import EffsearchSearcher

    if ray.is_initialized():
        ray.shutdown()
    # Tune's workers import this module for the trainable
    paths = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    ray.init(
        address=ray_cluster,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": paths},
    )
    run_dir = tmp_path / "run"
    searcher = EffsearchSearcher(RECIPE, run_dir=run_dir, trials=6)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=6),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), verbose=0),
    )
    try:
        results = tuner.fit()
    finally:
        ray.shutdown()

    assert len(results) == 6
    _, study = load_study(RunDir(run_dir))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6
    assert RunDir(run_dir).pareto_path.is_file()  # every way of running a search leaves it
    for trial in study.trials:
        assert trial.values[0] == pytest.approx(trial.params["params.x0"])
        assert trial.constraints == {"f1 <= 0.8": trial.params["params.x0"] - 0.8}
    shown = CliRunner().invoke(app, ["show", str(run_dir)])
    assert shown.exit_code == 0, shown.output
    assert "Pareto set" in shown.output


def test_a_bad_searcher_recipe_lists_its_problems(tmp_path: Path) -> None:
    from effsearch.integrations.tune import EffsearchSearcher

    bad = {**RECIPE, "optimizer": {"name": "nsgaa2"}, "objectives": [{"metric": "f1"}]}
    with pytest.raises(RecipeError) as info:
        EffsearchSearcher(bad, run_dir=tmp_path / "run")

    text = str(info.value)
    assert "Did you mean 'nsga2'?" in text
    assert "direction" in text


def test_a_restored_searcher_leaves_no_trial_running_forever(tmp_path: Path) -> None:
    """Tune checkpoints the searcher and hands it back after a crash: the trials the dead Tune
    run had in flight never report, so the restored searcher fails them as interrupted and
    proposes their configurations again."""
    from effsearch.integrations.tune import EffsearchSearcher

    run_dir = tmp_path / "run"
    before = EffsearchSearcher(RECIPE, run_dir=run_dir, trials=6)
    done = before.suggest("a")
    assert done is not None
    before.on_trial_complete("a", {"f1": 0.5, "f2": 1.0})
    lost = [before.suggest(tid) for tid in ("b", "c")]  # in flight when Tune died
    before.save(str(tmp_path / "searcher.json"))
    del before  # the crash: nothing more is told

    after = EffsearchSearcher(RECIPE, run_dir=run_dir, trials=6)
    after.restore(str(tmp_path / "searcher.json"))

    trials = load_study(RunDir(run_dir))[1].trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert [t.state for t in trials[:3]] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL]
    assert all(t.user_attrs["interrupted"] for t in trials[1:3])
    again = [after.suggest(tid) for tid in ("d", "e")]
    assert sorted(map(str, again)) == sorted(map(str, lost))  # the lost ones run again
