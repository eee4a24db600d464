"""``measure.devices``: each candidate is timed on each listed device, its device-dependent
metrics named per device (``latency_ms@cpu``), which objectives and constraints name; what a
listed device cannot run, or a plain name that no longer exists, is refused at validate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner, Result

from effsearch.cli import app
from effsearch.objectives import noise
from effsearch.objectives.goals import parse_constraint
from effsearch.objectives.metrics import split_device, unit_of
from effsearch.search.executors.base import Status, TrialJob
from effsearch.search.trial import run_trial
from effsearch.tasks.base import MeasureSettings, TaskSpec


def cli(*args: str | Path) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])


def recipe(folder: Path, **changes: Any) -> Path:
    document: dict[str, Any] = {
        "name": "devices",
        "task": {"builtin": "digits-cnn"},
        "space": {
            "architecture": {"width_mult": {"float": [0.25, 1.0]}},
            "quantization": {"scheme": {"choice": ["none", "int8_dynamic"]}},
        },
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms@cpu", "direction": "minimize"},
        ],
        "constraints": ["latency_ms@cpu <= 50"],
        "measure": {"devices": ["cpu"]},
        "budget": {"trials": 2},
    }
    document.update(changes)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_objectives_and_constraints_name_a_metric_per_device(tmp_path: Path) -> None:
    result = cli("validate", recipe(tmp_path))

    assert result.exit_code == 0, result.output
    assert "minimize latency_ms@cpu" in result.output


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"objectives": [{"metric": "latency_ms", "direction": "minimize"}]},
            "'latency_ms' is measured on each of measure.devices, so name the device: "
            "latency_ms@cpu",
        ),
        (
            {
                "measure": {"devices": ["cpu", "cuda"]},
                "space": {"quantization": {"scheme": {"choice": ["int8_dynamic_fbgemm"]}}},
            },
            "'int8_dynamic_fbgemm' runs on cpu only, and this recipe also measures on cuda",
        ),
        (
            {
                "measure": {"devices": ["cpu", "cuda"]},
                "space": {"runtime": {"engine": {"choice": ["eager", "onnxruntime"]}}},
            },
            "'onnxruntime' runs on cpu only",
        ),
        ({"measure": {"devices": ["cpu", "cpu"]}}, "names cpu more than once"),
        ({"measure": {"devices": ["tpu"]}}, "measure.devices"),
        (
            {
                "task": {"entrypoint": "toy:evaluate"},
                "space": {"params": {"x": {"float": [0, 1]}}},
                "objectives": [{"metric": "f1", "direction": "minimize"}],
                "constraints": [],
            },
            "an entrypoint task measures on execution.device only",
        ),
    ],
    ids=[
        "plain-name",
        "cpu-only-scheme",
        "cpu-only-engine",
        "twice",
        "tpu",
        "entrypoint",
    ],
)
def test_what_cannot_be_measured_per_device_is_refused(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    (tmp_path / "toy.py").write_text("def evaluate(config):\n    return {'f1': 1.0}\n")
    result = cli("validate", recipe(tmp_path, **changes))

    assert result.exit_code == 2
    assert message in result.output


def _job(tmp_path: Path, devices: list[str], constraints: tuple[Any, ...] = ()) -> TrialJob:
    return TrialJob(
        number=0,
        config={
            "architecture": {"width_mult": 0.25, "depth": 1},
            "training": {"epochs": 1, "batch_size": 128},
        },
        task=TaskSpec(builtin="digits-cnn"),
        seed=0,
        threads=1,
        measure=MeasureSettings(batch_size=8, warmup=1, repeats=3, devices=devices),
        trial_dir=str(tmp_path),
        constraints=constraints,
    )


def test_a_trial_is_timed_on_each_listed_device_and_says_where(tmp_path: Path) -> None:
    outcome = run_trial(_job(tmp_path, ["cpu"]))

    assert outcome.ok, outcome.reason
    metrics = outcome.metrics
    assert metrics["latency_ms@cpu"] > 0 and metrics["latency_se_ms@cpu"] >= 0
    assert "peak_memory_mb@cpu" in metrics and "throughput_per_s@cpu" in metrics
    assert "latency_ms" not in metrics  # only the per-device names exist
    assert metrics["size_mb"] > 0  # the same on every device: one plain name
    assert outcome.measured_on["device_name@cpu"]


def test_a_per_device_constraint_rejects_before_training(tmp_path: Path) -> None:
    limit = parse_constraint("latency_ms@cpu <= 0.000001")

    outcome = run_trial(_job(tmp_path, ["cpu"], (limit,)))

    assert outcome.status == Status.REJECTED
    assert "latency_ms@cpu" in outcome.reason
    assert not outcome.history


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_listed_device_this_worker_lacks_fails_the_trial_saying_so(tmp_path: Path) -> None:
    outcome = run_trial(_job(tmp_path, ["cpu", "cuda"]))

    assert outcome.status == Status.FAILED
    assert "'cuda'" in outcome.reason and "sees no CUDA device" in outcome.reason


def test_per_device_names_keep_their_unit_and_noise() -> None:
    metrics = {"latency_ms@cuda": 2.0, "latency_se_ms@cuda": 0.1, "size_mb": 1.0}

    assert split_device("latency_ms@cuda:1") == ("latency_ms", "cuda:1")
    assert unit_of("latency_ms@cuda") == "ms"
    assert noise.variance("latency_ms@cuda", metrics) == pytest.approx(0.01)
    assert noise.variance("size_mb@cpu", metrics) == 0.0  # exact wherever it is counted
