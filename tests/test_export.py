"""Export: the bundle of a finished search's trial loads into a runnable model that reproduces
the trial's accuracy and size, whichever pruning and quantization it used."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from optuna.trial import TrialState, create_trial
from typer.testing import CliRunner, Result

import effsearch
from effsearch.cli import app
from effsearch.errors import ArgumentError
from effsearch.recipe import ObjectiveSection
from effsearch.report.bundle import read_bundle
from effsearch.search import records, study_front
from effsearch.search.rundir import RunDir
from effsearch.search.study import load_study

SCHEMES = ["none", "bf16", "int8_dynamic", "int8_dynamic_fbgemm"]


def cli(*args: str | Path) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished digits-cnn search: one trial per quantization scheme, pruned in turn."""
    folder = tmp_path_factory.mktemp("export")
    document = {
        "name": "export-test",
        "seed": 0,
        "task": {"builtin": "digits-cnn"},
        "space": {
            "architecture": {"width_mult": {"float": [0.25, 0.5]}, "depth": {"int": [1, 2]}},
            "pruning": {"method": {"choice": ["magnitude", "channel"]}, "sparsity": 0.6},
            "quantization": {"scheme": {"choice": SCHEMES}},
            "training": {"epochs": 2, "batch_size": 128},
        },
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "size_mb", "direction": "minimize"},
        ],
        "measure": {"batch_size": 8, "warmup": 1, "repeats": 3},
        "optimizer": {"name": "random"},
        "execution": {"executor": "inline", "workers": 1},
        "baseline": False,
        "budget": {"trials": 8},
    }
    recipe = folder / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(document))
    result = cli("run", recipe, "--run-dir", folder / "run")
    assert result.exit_code == 0, result.output
    return folder / "run"


def test_the_knee_bundle_reproduces_the_trials_accuracy_and_size(
    run_dir: Path, tmp_path: Path
) -> None:
    result = cli("export", run_dir, "--pick", "knee", "--out", tmp_path / "bundle")
    assert result.exit_code == 0, result.output

    bundle = read_bundle(tmp_path / "bundle")
    trial = load_study(RunDir(run_dir))[1].trials[bundle["trial"]]
    recorded = trial.user_attrs[records.METRICS]
    assert effsearch.evaluate_bundle(tmp_path / "bundle")["accuracy"] == pytest.approx(
        recorded["accuracy"], abs=0.01
    )
    # the model file is the state dict size_mb counted, byte for byte
    assert (tmp_path / "bundle" / "model.pt").stat().st_size == round(recorded["size_mb"] * 1e6)
    # the knee is on the Pareto set, whose models the run keeps: nothing is trained again
    assert "kept when it ran (execution.keep_artifacts): not re-trained" in result.output
    assert bundle["rebuilt"]["metrics"] is None
    assert bundle["config"] == trial.user_attrs[records.CONFIG]
    assert bundle["provenance"]["seed"] == 0 and bundle["provenance"]["torch"]


def test_every_scheme_loads_into_a_runnable_model(run_dir: Path, tmp_path: Path) -> None:
    trials = load_study(RunDir(run_dir))[1].trials
    seen = set()
    for trial in trials:
        scheme = trial.user_attrs[records.CONFIG]["quantization"]["scheme"]
        if trial.state != TrialState.COMPLETE or scheme in seen:
            continue
        seen.add(scheme)
        out = tmp_path / scheme
        assert cli("export", run_dir, "--trial", trial.number, "--out", out).exit_code == 0

        model = effsearch.load_bundle(out)
        dtype = getattr(torch, read_bundle(out)["model"]["input_dtype"])
        with torch.inference_mode():
            logits = model(torch.rand(3, 1, 8, 8).to(dtype))
        assert logits.shape == (3, 10)
        recorded = trial.user_attrs[records.METRICS]["accuracy"]
        assert effsearch.evaluate_bundle(out)["accuracy"] == pytest.approx(recorded, abs=0.01)
    assert len(seen) >= 3, f"the fixture's search should cover most schemes, got {seen}"


def test_picks_by_best_objective_and_by_a_limit(run_dir: Path, tmp_path: Path) -> None:
    study = load_study(RunDir(run_dir))[1]
    feasible = study_front.feasible_complete(study.trials)
    smallest = min(feasible, key=lambda t: t.values[1])
    limit = sorted(t.values[1] for t in feasible)[len(feasible) // 2]

    best = cli("export", run_dir, "--pick", "best:size_mb", "--out", tmp_path / "best")
    within = cli("export", run_dir, "--pick", f"size_mb <= {limit}", "--out", tmp_path / "limit")

    assert best.exit_code == 0 and within.exit_code == 0, best.output + within.output
    assert read_bundle(tmp_path / "best")["trial"] == smallest.number
    assert read_bundle(tmp_path / "limit")["metrics"]["size_mb"] <= limit


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--pick", "knee", "--trial", "0"], "give exactly one of --trial N or --pick"),
        ([], "give exactly one of --trial N or --pick"),
        (["--pick", "best:latency_ms"], "'latency_ms' is not an objective of this run"),
        (["--pick", "fastest"], "expected knee, best:<objective> or a limit"),
        (["--pick", "size_mb <= 0"], "no feasible complete trial has size_mb <= 0"),
        (["--trial", "99"], "--trial 99: the run has trials 0 to 7"),
    ],
)
def test_bad_export_arguments_exit_2_with_what_to_do(
    run_dir: Path, tmp_path: Path, args: list[str], phrase: str
) -> None:
    result = cli("export", run_dir, *args, "--out", tmp_path / "bundle")

    assert result.exit_code == 2, result.output
    assert phrase in result.output
    assert not (tmp_path / "bundle").exists()


def test_export_never_writes_into_a_folder_that_holds_files(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "mine.txt").write_text("keep me")

    result = cli("export", run_dir, "--pick", "knee", "--out", tmp_path / "bundle")

    assert result.exit_code == 2
    assert "exists and is not an empty folder" in result.output
    assert [p.name for p in (tmp_path / "bundle").iterdir()] == ["mine.txt"]


def test_an_entrypoint_bundle_holds_the_configuration_only(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = write_recipe(budget={"trials": 3})
    assert cli("run", recipe, "--run-dir", tmp_path / "run").exit_code == 0
    before = set(tmp_path.parent.rglob("*"))

    result = cli("export", tmp_path / "run", "--trial", "1", "--out", tmp_path / "bundle")

    assert result.exit_code == 0, result.output
    written = set(tmp_path.parent.rglob("*")) - before
    bundle = tmp_path / "bundle"
    assert written == {bundle, bundle / "config.yaml", bundle / "README.md"}
    assert "the task handed over no model" in result.output
    assert set(read_bundle(tmp_path / "bundle")["config"]["params"]) == {"x0", "x1", "x2"}
    with pytest.raises(ArgumentError, match="the bundle holds no model"):
        effsearch.load_bundle(tmp_path / "bundle")


def test_the_knee_is_the_front_point_nearest_the_ideal_once_scaled():
    objectives = (
        ObjectiveSection(metric="accuracy", direction="maximize"),
        ObjectiveSection(metric="latency_ms", direction="minimize"),
    )
    # in ms and in accuracy the balanced point is trial 2 only once both axes are scaled
    front = [
        create_trial(values=[0.99, 100.0]),
        create_trial(values=[0.90, 1.0]),
        create_trial(values=[0.98, 20.0]),
    ]
    for number, trial in enumerate(front):
        trial.number = number

    assert study_front.knee(front, objectives).number == 2


def _trial_with_scheme(run_dir: Path, scheme: str) -> int:
    trials = load_study(RunDir(run_dir))[1].trials
    return next(
        t.number
        for t in trials
        if t.state == TrialState.COMPLETE
        and t.user_attrs[records.CONFIG]["quantization"]["scheme"] == scheme
    )


def test_a_float_model_also_exports_to_onnx_with_a_dynamic_batch(
    run_dir: Path, tmp_path: Path
) -> None:
    import numpy as np
    import onnxruntime

    number = _trial_with_scheme(run_dir, "none")
    result = cli("export", run_dir, "--trial", number, "--out", tmp_path / "b", "--format", "onnx")

    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(tmp_path / "b" / "model.onnx"))
    images = torch.rand(7, 1, 8, 8)
    (got,) = session.run(None, {session.get_inputs()[0].name: images.numpy()})
    with torch.inference_mode():
        expected = effsearch.load_bundle(tmp_path / "b")(images).numpy()
    assert np.allclose(got, expected, atol=1e-5)
    assert read_bundle(tmp_path / "b")["onnx"]["max_abs_difference_vs_torch"] < 1e-4


def test_an_int8_model_says_why_there_is_no_onnx_and_keeps_the_rest(
    run_dir: Path, tmp_path: Path
) -> None:
    number = _trial_with_scheme(run_dir, "int8_dynamic_fbgemm")
    result = cli("export", run_dir, "--trial", number, "--out", tmp_path / "b", "--format", "onnx")

    assert result.exit_code == 1
    assert "cannot be exported to ONNX" in result.output
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "README.md",
        "config.yaml",
        "example_input.pt",
        "model.pt",
    ]
