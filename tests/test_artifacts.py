"""Kept models (``execution.keep_artifacts``): a run keeps the measured model of each Pareto-set
member while it is on the front (all of them, or none, if asked), and export copies a kept
model instead of training the trial again; a rebuild that differs beyond the noise says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from effsearch.cli import app
from effsearch.report.export import beyond_noise
from effsearch.search import records, trial
from effsearch.search.rundir import RunDir
from effsearch.search.study import load_study


def cli(*args: str | Path) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])


def digits_run(folder: Path, keep: str) -> Path:
    document = {
        "name": f"keep-{keep}",
        "seed": 0,
        "task": {"builtin": "digits-cnn"},
        "space": {
            "architecture": {"width_mult": {"float": [0.25, 1.0]}, "depth": {"int": [1, 2]}},
            "quantization": {"scheme": {"choice": ["none", "int8_dynamic_fbgemm"]}},
            "training": {"epochs": 2, "batch_size": 128},
        },
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "size_mb", "direction": "minimize"},
        ],
        "measure": {"batch_size": 8, "warmup": 1, "repeats": 3},
        "optimizer": {"name": "random"},
        "execution": {"executor": "local", "workers": 2, "keep_artifacts": keep},
        "budget": {"trials": 8},
    }
    recipe = folder / f"{keep}.yaml"
    recipe.write_text(yaml.safe_dump(document))
    result = cli("run", recipe, "--run-dir", folder / keep)
    assert result.exit_code == 0, result.output
    return folder / keep


def kept_numbers(run: Path) -> set[int]:
    return {int(p.parent.name) for p in (run / "trials").glob("*/artifact")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keep")
    return {keep: digits_run(folder, keep) for keep in ("pareto", "all", "none")}


def test_pareto_keeps_exactly_the_front_members_models(runs: dict[str, Path]) -> None:
    front = json.loads(cli("show", runs["pareto"], "--json").output)["pareto"]

    assert kept_numbers(runs["pareto"]) == set(front)
    for number in front:
        folder = runs["pareto"] / "trials" / str(number) / "artifact"
        assert (folder / "model.pt").is_file() and (folder / "example_input.pt").is_file()


def test_all_keeps_every_finished_trials_model_and_none_keeps_none(
    runs: dict[str, Path],
) -> None:
    _, study = load_study(RunDir(runs["all"]))
    finished = {t.number for t in study.trials if "size_mb" in t.user_attrs[records.METRICS]}

    assert kept_numbers(runs["all"]) == finished
    assert kept_numbers(runs["none"]) == set()


def test_export_copies_a_kept_model_without_training_again(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("export trained the trial again")

    monkeypatch.setattr(trial, "run_trial", no_training)
    number = min(kept_numbers(runs["pareto"]))

    result = cli("export", runs["pareto"], "--trial", number, "--out", tmp_path / "b")

    assert result.exit_code == 0, result.output
    assert "not re-trained" in result.output
    kept_model = runs["pareto"] / "trials" / str(number) / "artifact" / "model.pt"
    assert (tmp_path / "b" / "model.pt").read_bytes() == kept_model.read_bytes()


def test_a_trial_that_left_the_front_is_rebuilt_and_says_so(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    _, study = load_study(RunDir(runs["pareto"]))
    gone = next(
        t.number
        for t in study.trials
        if "size_mb" in t.user_attrs[records.METRICS]
        and t.number not in kept_numbers(runs["pareto"])
    )

    result = cli("export", runs["pareto"], "--trial", gone, "--out", tmp_path / "b")

    assert result.exit_code == 0, result.output
    assert "rebuilt by running the trial's configuration again" in result.output
    assert "in the trial" in result.output and "rebuilt" in result.output


def test_a_rebuild_beyond_the_noise_is_a_warning_with_both_numbers() -> None:
    trial_metrics = {"latency_ms": 2.0, "latency_se_ms": 0.05, "size_mb": 0.5}

    close = beyond_noise("latency_ms", trial_metrics, {"latency_ms": 2.1, "latency_se_ms": 0.05})
    far = beyond_noise("latency_ms", trial_metrics, {"latency_ms": 3.0, "latency_se_ms": 0.05})
    size = beyond_noise("size_mb", trial_metrics, {"size_mb": 0.51})
    unknown = beyond_noise("train_time_s", {"train_time_s": 1.0}, {"train_time_s": 9.0})

    assert close == ""
    assert far.startswith("rebuilt 3 vs 2 in the trial") and "noise" in far
    assert size.startswith("rebuilt 0.51 vs 0.5")  # size is exact: any difference is news
    assert unknown == ""  # no standard error recorded: nothing to judge by
