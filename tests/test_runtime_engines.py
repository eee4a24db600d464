"""Runtime engines: a trial's model converted to torch.compile or ONNX Runtime computes what its
torch model computes, is measured on that engine (which its record names), and an
onnxruntime trial's int8 graph exports as a bundle that runs without effsearch."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner, Result

from effsearch.cli import app
from effsearch.errors import TaskError
from effsearch.search import records
from effsearch.search.executors.base import Status, TrialJob
from effsearch.search.rundir import RunDir
from effsearch.search.study import load_study
from effsearch.search.trial import run_trial
from effsearch.spaces.runtime import incompatibility
from effsearch.tasks.base import MeasureSettings, TaskSpec
from effsearch.tasks.digits_cnn import build_model, load_split
from effsearch.transforms.runtime import Deployed, deploy

pytest.importorskip("onnxruntime")


def cli(*args: str | Path) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(
    ("engine", "scheme", "method", "runs"),
    [
        ("eager", "int8_dynamic", "none", True),
        ("compile", "bf16", "none", True),
        ("onnxruntime", "none", "channel", True),
        ("onnxruntime", "int8_dynamic", "magnitude", True),
        ("onnxruntime", "int8_static", "none", True),
        ("eager", "int8_static", "none", False),
        ("compile", "int8_static", "none", False),
        ("onnxruntime", "bf16", "none", False),
        ("onnxruntime", "int8_dynamic_fbgemm", "none", False),
        ("onnxruntime", "int4_weight_only", "none", False),
        ("onnxruntime", "none", "semi_structured_24", False),
    ],
)
def test_which_engine_runs_which_scheme_and_pruning(
    engine: str, scheme: str, method: str, runs: bool
) -> None:
    why = incompatibility(engine, scheme, method)

    assert (why == "") == runs
    if not runs:
        assert engine in why and (scheme in why or "2:4" in why)


def _model_and_images() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    train_x, _, val_x, *_ = load_split()
    return build_model(1.0, 1).eval(), train_x, val_x  # its Linear layers hold most weights


def _deploy(
    tmp_path: Path, engine: str, scheme: str = "none", calibration: Sequence[torch.Tensor] = ()
) -> Deployed:
    model, _, val_x = _model_and_images()
    config = {"runtime": {"engine": engine}, "quantization": {"scheme": scheme}}
    return deploy(model, config, "cpu", 1, val_x[:1], tmp_path, calibration)


@pytest.mark.parametrize(
    "engine", ["eager", "onnxruntime", pytest.param("compile", marks=pytest.mark.slow)]
)
def test_a_float_model_computes_the_same_logits_on_every_engine(
    tmp_path: Path, engine: str
) -> None:
    reference, _, val_x = _model_and_images()
    with torch.inference_mode():
        expected = reference(val_x)

    deployed = _deploy(tmp_path, engine)
    with torch.inference_mode():
        got = deployed.model(val_x)

    assert deployed.engine == engine
    assert torch.allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("scheme", ["int8_dynamic", "int8_static"])
def test_onnxruntime_int8_is_smaller_and_predicts_nearly_as_the_float_model(
    tmp_path: Path, scheme: str
) -> None:
    reference, train_x, val_x = _model_and_images()
    with torch.inference_mode():
        expected = reference(val_x).argmax(1)
    (tmp_path / "float").mkdir()
    (tmp_path / "int8").mkdir()
    float_graph = _deploy(tmp_path / "float", "onnxruntime")
    assert float_graph.onnx_file is not None

    deployed = _deploy(tmp_path / "int8", "onnxruntime", scheme, list(train_x[:64].split(16)))

    assert deployed.onnx_file is not None
    assert deployed.onnx_file.stat().st_size < 0.5 * float_graph.onnx_file.stat().st_size
    assert (deployed.model(val_x).argmax(1) == expected).float().mean() >= 0.9
    assert "onnxruntime quantize_" in deployed.note
    assert deployed.runs_on.startswith("onnxruntime ")


def test_int8_static_without_calibration_inputs_says_so(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="calibration"):
        _deploy(tmp_path, "onnxruntime", "int8_static")


def _job(tmp_path: Path, config: dict[str, Any], number: int = 0) -> TrialJob:
    (tmp_path / str(number)).mkdir(parents=True, exist_ok=True)
    return TrialJob(
        number=number,
        config={"training": {"epochs": 2, "batch_size": 128}, **config},
        task=TaskSpec(builtin="digits-cnn"),
        seed=0,
        threads=1,
        measure=MeasureSettings(batch_size=8, warmup=1, repeats=5),
        trial_dir=str(tmp_path / str(number)),
    )


def test_an_engine_that_cannot_run_the_scheme_is_rejected_before_training(
    tmp_path: Path,
) -> None:
    config = {"runtime": {"engine": "eager"}, "quantization": {"scheme": "int8_static"}}

    outcome = run_trial(_job(tmp_path, config))

    assert outcome.status == Status.REJECTED
    assert outcome.reason.startswith("rejected before training: quantization.scheme int8_static")
    assert not outcome.history  # nothing was trained


def test_an_onnxruntime_trial_is_measured_on_onnxruntime(tmp_path: Path) -> None:
    config = {
        "architecture": {"width_mult": 0.25, "depth": 2},
        "runtime": {"engine": "onnxruntime"},
        "quantization": {"scheme": "int8_dynamic"},
    }

    outcome = run_trial(_job(tmp_path, config))

    assert outcome.ok, outcome.reason
    metrics = outcome.metrics
    assert outcome.measured_on["engine"].startswith("onnxruntime ")
    assert metrics["latency_ms"] > 0 and metrics["engine_build_s"] > 0
    assert metrics["agreement"] >= 0.9  # the engine's predictions against the float parent's
    assert 0 < metrics["size_mb"] < 0.1
    assert metrics["peak_memory_mb"] >= metrics["size_mb"]
    assert not list((tmp_path / "0").iterdir()), "the engine's files are removed after the trial"


def test_validate_refuses_an_engine_that_can_run_nothing_in_the_space(tmp_path: Path) -> None:
    def recipe(scheme: object) -> Path:
        document = {
            "name": "engines",
            "task": {"builtin": "digits-cnn"},
            "space": {
                "quantization": {"scheme": scheme},
                "runtime": {"engine": {"choice": ["onnxruntime"]}},
                "architecture": {"depth": {"int": [1, 2]}},
            },
            "objectives": [{"metric": "accuracy", "direction": "maximize"}],
            "budget": {"trials": 2},
        }
        path = tmp_path / "recipe.yaml"
        path.write_text(yaml.safe_dump(document))
        return path

    refused = cli("validate", recipe({"choice": ["bf16", "int8_weight_only"]}))
    mixed = cli("validate", recipe({"choice": ["bf16", "int8_static"]}))

    assert refused.exit_code == 2
    assert "space.runtime.engine" in refused.output
    assert "runtime.engine onnxruntime cannot run quantization.scheme bf16" in refused.output
    assert mixed.exit_code == 0, mixed.output


@pytest.fixture(scope="module")
def engines_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished digits search over eager and onnxruntime, float and int8."""
    folder = tmp_path_factory.mktemp("engines")
    document = {
        "name": "engines",
        "seed": 0,
        "task": {"builtin": "digits-cnn"},
        "space": {
            "architecture": {"width_mult": {"float": [0.25, 0.5]}, "depth": 2},
            "quantization": {"scheme": {"choice": ["none", "int8_dynamic", "int8_static"]}},
            "runtime": {"engine": {"choice": ["eager", "onnxruntime"]}},
            "training": {"epochs": 3, "batch_size": 128},
        },
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms", "direction": "minimize"},
        ],
        "measure": {"batch_size": 8, "warmup": 1, "repeats": 5},
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


def test_a_search_over_engines_measures_each_trial_on_its_engine(engines_run: Path) -> None:
    _, study = load_study(RunDir(engines_run))
    ran = [t for t in study.trials if records.MEASURED_ON in t.user_attrs]

    engines = {
        t.user_attrs[records.CONFIG]["runtime"]["engine"]: t.user_attrs[records.MEASURED_ON][
            "engine"
        ]
        for t in ran
        if "latency_ms" in t.user_attrs[records.METRICS]
    }
    assert engines.get("eager") == "torch eager"
    assert engines.get("onnxruntime", "").startswith("onnxruntime ")
    rejected = [t for t in study.trials if t.user_attrs.get(records.REJECTED)]
    for trial in rejected:  # int8_static on eager
        assert trial.user_attrs[records.CONFIG]["runtime"]["engine"] == "eager"


def test_an_int8_onnxruntime_trial_exports_a_graph_that_runs_without_effsearch(
    engines_run: Path, tmp_path: Path
) -> None:
    _, study = load_study(RunDir(engines_run))
    trial = next(
        t
        for t in study.trials
        if records.MEASURED_ON in t.user_attrs
        and "latency_ms" in t.user_attrs[records.METRICS]
        and t.user_attrs[records.CONFIG]["runtime"]["engine"] == "onnxruntime"
        and t.user_attrs[records.CONFIG]["quantization"]["scheme"] != "none"
    )
    result = cli(
        "export", engines_run, "--trial", trial.number, "--out", tmp_path / "b", "--format", "onnx"
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "README.md",
        "config.yaml",
        "example_input.pt",
        "model.onnx",
    ]

    _, _, val_x, val_y, *_ = load_split()
    np.save(tmp_path / "images.npy", val_x.numpy())
    script = (
        "import sys, numpy as np, onnxruntime as ort\n"
        f"s = ort.InferenceSession({str(tmp_path / 'b' / 'model.onnx')!r})\n"
        f"x = np.load({str(tmp_path / 'images.npy')!r})\n"
        "print(' '.join(map(str, s.run(None, {s.get_inputs()[0].name: x})[0].argmax(1))))\n"
        "assert not any(m.startswith('effsearch') for m in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    predictions = torch.tensor([int(p) for p in done.stdout.split()])
    accuracy = float((predictions == val_y).float().mean())
    assert accuracy == pytest.approx(trial.user_attrs[records.METRICS]["accuracy"], abs=2 / 225)


def _finished_on(run: Path, engine: str) -> int:
    _, study = load_study(RunDir(run))
    return next(
        t.number
        for t in study.trials
        if records.MEASURED_ON in t.user_attrs
        and "latency_ms" in t.user_attrs[records.METRICS]
        and t.user_attrs[records.CONFIG]["runtime"]["engine"] == engine
    )


@pytest.mark.parametrize("engine", ["eager", "onnxruntime"])
def test_bench_times_a_bundle_here_beside_the_trials_figures(
    engines_run: Path, tmp_path: Path, engine: str
) -> None:
    number = _finished_on(engines_run, engine)
    _, study = load_study(RunDir(engines_run))
    recorded = study.trials[number].user_attrs[records.METRICS]
    assert cli("export", engines_run, "--trial", number, "--out", tmp_path / "b").exit_code == 0

    text = cli("bench", tmp_path / "b")
    as_json = cli("bench", tmp_path / "b", "--json", "--repeats", "7")

    assert text.exit_code == 0, text.output
    latency_line = next(line for line in text.output.splitlines() if "latency_ms " in line)
    assert f"{recorded['latency_ms']:.4g}" in latency_line
    assert "trial measured on:" in text.output and "here:" in text.output
    document = json.loads(as_json.output)
    assert document["recorded"]["latency_ms"] == recorded["latency_ms"]
    assert document["measured"]["latency_ms"] > 0
    assert document["measured"]["latency_repeats"] == 7
    assert document["measured"]["size_mb"] == pytest.approx(recorded["size_mb"])
    assert document["measured_on"]["engine"].split()[0] == (
        "torch" if engine == "eager" else "onnxruntime"
    )


def test_bench_of_a_bundle_without_an_example_input_says_how_to_get_one(
    engines_run: Path, tmp_path: Path
) -> None:
    number = _finished_on(engines_run, "eager")
    assert cli("export", engines_run, "--trial", number, "--out", tmp_path / "b").exit_code == 0
    (tmp_path / "b" / "example_input.pt").unlink()

    result = cli("bench", tmp_path / "b")

    assert result.exit_code == 2
    assert "export the trial again" in result.output


class _DataDependent(torch.nn.Module):
    """Branches in Python on a tensor's value: torch.export cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.sum()) > 0:
            return self.linear(x)
        return -self.linear(x)


def test_a_model_the_exporter_cannot_convert_fails_with_the_exporters_reason(
    tmp_path: Path,
) -> None:
    config = {"runtime": {"engine": "onnxruntime"}, "quantization": {"scheme": "int8_dynamic"}}

    with pytest.raises(TaskError, match="torch's ONNX exporter cannot convert this model"):
        deploy(_DataDependent(), config, "cpu", 1, torch.rand(1, 4), tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written is left
