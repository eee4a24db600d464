"""Searches on Ray through the command line: a local Ray started for the run and resume, the
session's cluster (``--address``), and a GPU trial holding a whole GPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner, Result

from effsearch.cli import app
from effsearch.search import records
from effsearch.search.rundir import RunDir
from effsearch.search.study import load_study

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


def digits_recipe(tmp_path: Path, **execution: Any) -> Path:
    """A small digits-cnn search on Ray: one epoch per trial, 4 trials."""
    document = {
        "name": "digits-on-ray",
        "seed": 0,
        "task": {"builtin": "digits-cnn"},
        "space": {
            "architecture": {"width_mult": {"float": [0.125, 0.5]}, "depth": 1},
            "training": {"epochs": 1},
        },
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms", "direction": "minimize"},
        ],
        "measure": {"batch_size": 8, "warmup": 1, "repeats": 3},
        "optimizer": {"name": "random"},
        "execution": {"executor": "ray", "workers": 2, **execution},
        "budget": {"trials": 4},
    }
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_the_task_goes_to_the_object_store_once_for_the_whole_search(
    ray_cluster: str, tmp_path: Path
) -> None:
    recipe = digits_recipe(tmp_path)

    result = cli("run", recipe, "--run-dir", tmp_path / "run", "--address", ray_cluster)
    assert result.exit_code == 0, result.output

    trials = load_study(RunDir(tmp_path / "run"))[1].trials
    where = [t.user_attrs[records.MEASURED_ON] for t in trials]
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    # every trial read the one object the driver put (data loaded once, by the driver)
    (inputs,) = {w["task_inputs"] for w in where}
    assert inputs.startswith("object store ")
    assert all(w["ray_node"] for w in where)


@pytest.mark.gpu
def test_a_gpu_trial_on_ray_holds_a_whole_gpu_and_names_it(tmp_path: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    recipe = digits_recipe(tmp_path, device="cuda", trial_resources={"gpu": 1})

    result = cli("run", recipe, "--run-dir", tmp_path / "run")
    assert result.exit_code == 0, result.output

    trials = load_study(RunDir(tmp_path / "run"))[1].trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    for trial in trials:
        where = trial.user_attrs[records.MEASURED_ON]
        assert len(where["ray_gpu_ids"].split(",")) == 1  # one whole GPU, Ray's choice
        assert where["device_uuid"].startswith("GPU-")
        assert where["device_name"] == torch.cuda.get_device_name(0)
        # the model really ran there: memory was allocated on the GPU while it was timed
        assert trial.user_attrs[records.METRICS]["gpu_peak_memory_mb"] > 0
        assert trial.user_attrs[records.METRICS]["energy_j"] > 0  # NVML read a real amount
