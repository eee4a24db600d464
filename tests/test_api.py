"""The Python API: effsearch.run / effsearch.load return one result object."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import effsearch
from effsearch.errors import ArgumentError, RecipeError
from effsearch.recipe import load_recipe


def test_run_returns_trials_pareto_hypervolume_and_the_study(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    result = effsearch.run(write_recipe(), run_dir=tmp_path / "run", trials=8)

    assert [t.number for t in result.trials] == list(range(8))
    assert all(t.state == "COMPLETE" for t in result.trials)
    assert set(result.trials[0].params["params"]) == {"x0", "x1", "x2"}
    assert result.trials[0].values == (
        result.trials[0].metrics["f1"],
        result.trials[0].metrics["f2"],
    )
    assert result.pareto and {t.number for t in result.pareto} <= {t.number for t in result.trials}
    assert result.hypervolume is not None and result.hypervolume > 0
    assert len(result.study.trials) == 8
    # the runner wrote pareto.json: the same Pareto set
    written = json.loads((tmp_path / "run" / "pareto.json").read_text())
    assert written["pareto"] == [t.number for t in result.pareto]


def test_load_gives_the_same_result_as_the_run(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    ran = effsearch.run(load_recipe(write_recipe()), run_dir=tmp_path / "run")

    loaded = effsearch.load(tmp_path / "run")

    assert loaded.pareto == ran.pareto
    assert loaded.trials == ran.trials
    assert loaded.hypervolume == ran.hypervolume
    assert loaded.session is None and not loaded.interrupted


def test_resume_through_the_api_keeps_finished_trials(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    first = effsearch.run(write_recipe(), run_dir=tmp_path / "run", trials=4)

    again = effsearch.api.resume(tmp_path / "run", trials=7)

    assert again.trials[:4] == first.trials
    assert len(again.trials) == 7


def test_bad_input_raises_the_user_input_errors(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    with pytest.raises(ArgumentError, match="unknown override trails"):
        effsearch.run(write_recipe(), run_dir=tmp_path / "run", trails=3)
    with pytest.raises(RecipeError, match="no such file"):
        effsearch.run(tmp_path / "missing.yaml")


@pytest.mark.slow
def test_a_script_without_a_main_guard_runs_local_workers_once(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    """Spawned workers must not re-run the user's script (multiprocessing's default would)."""
    recipe = write_recipe(execution={"executor": "local", "workers": 2, "trial_timeout_s": 60})
    script = tmp_path / "search.py"
    script.write_text(
        "import effsearch\n"
        f"result = effsearch.run({str(recipe)!r}, run_dir={str(tmp_path / 'run')!r})\n"
        "print('STATES', sorted({t.state for t in result.trials}), len(result.trials))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("STATES") == 1
    assert "STATES ['COMPLETE'] 6" in done.stdout
