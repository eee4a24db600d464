"""Searches on Ray through the command line: a local Ray started for the run, and resume."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner, Result

from effsearch.cli import app
from effsearch.search import records
from effsearch.search.rundir import RunDir
from effsearch.search.runner import load_study

pytestmark = pytest.mark.ray


def cli(*args: str | Path) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])


def test_a_search_runs_on_ray_and_resumes_without_rerunning_finished_trials(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = write_recipe(execution={"executor": "ray", "workers": 2}, budget={"trials": 4})
    run_dir = tmp_path / "run"

    first = cli("run", recipe, "--run-dir", run_dir)
    assert first.exit_code == 0, first.output
    before = {t.number: t.datetime_complete for t in load_study(RunDir(run_dir))[1].trials}

    again = cli("resume", run_dir, "--trials", "6")
    assert again.exit_code == 0, again.output

    trials = load_study(RunDir(run_dir))[1].trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert {t.number: t.datetime_complete for t in trials[:4]} == before  # not run again
    hosts = {t.user_attrs[records.MEASURED_ON]["host"] for t in trials}
    assert len(hosts) == 1 and "" not in hosts


def test_address_needs_the_ray_executor(write_recipe: Callable[..., Path], tmp_path: Path) -> None:
    result = cli("run", write_recipe(), "--run-dir", tmp_path / "run", "--address", "auto")

    assert result.exit_code == 2
    assert "--address: only used by the ray executor" in result.output


def test_ray_only_settings_are_refused_for_other_executors(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = write_recipe(execution={"executor": "local", "address": "auto"})

    result = cli("validate", recipe)

    assert result.exit_code == 2
    assert "execution.address" in result.output
    assert "only used by executor: ray" in result.output
