"""The image-classification task with a user's own ``module:function`` CNN on an image folder
(sklearn's digits written out as PNG files here): pruning, quantization and resolution knobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

import effsearch
from effsearch.cli import app

MODEL_CODE = """
from torch import nn


def small_cnn(num_classes):
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes),
    )
"""


def image_folder(root: Path, per_class: int = 30, classes: int = 4) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = root / "digits"
    for label in range(classes):
        (folder / f"class_{label}").mkdir(parents=True)
        picks = np.flatnonzero(digits.target == label)[:per_class]
        for i, index in enumerate(picks):
            pixels = (digits.images[index] * 255 / 16).astype(np.uint8)
            Image.fromarray(pixels).convert("RGB").save(folder / f"class_{label}" / f"{i}.png")
    return folder


def write_recipe(root: Path, **changes: Any) -> Path:
    (root / "my_models.py").write_text(MODEL_CODE)
    document: dict[str, Any] = {
        "name": "images",
        "task": {
            "builtin": "image-classification",
            "options": {
                "model": "my_models:small_cnn",
                "dataset": str(image_folder(root)),
                "image_size": 16,
            },
        },
        "space": {
            "architecture": {"resolution": {"int": [8, 16]}},
            "training": {"lr": 0.01, "epochs": 15, "batch_size": 16},
            "pruning": {
                "method": {"choice": ["none", "magnitude", "channel"]},
                "sparsity": {"float": [0.3, 0.6]},
            },
            "quantization": {"scheme": {"choice": ["none", "bf16", "int8_dynamic"]}},
        },
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms", "direction": "minimize"},
        ],
        "optimizer": {"name": "random"},
        "measure": {"batch_size": 8, "warmup": 1, "repeats": 3},
        "execution": {"executor": "inline"},
        "budget": {"trials": 8},
        **changes,
    }
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.slow
def test_a_users_cnn_on_an_image_folder_runs_its_budget_with_every_knob(tmp_path: Path) -> None:
    result = effsearch.run(write_recipe(tmp_path), run_dir=tmp_path / "run")

    assert [t.state for t in result.trials] == ["COMPLETE"] * 8
    for trial in result.trials:
        assert {"accuracy", "latency_ms", "size_mb", "params", "resolution"} <= set(trial.metrics)
        assert trial.metrics["resolution"] == trial.params["architecture"]["resolution"]
    channel = [t for t in result.trials if t.params["pruning"]["method"] == "channel"]
    whole = [t for t in result.trials if t.params["pruning"]["method"] == "none"]
    assert channel and whole  # the seeded random search tries both
    # channels removed physically: fewer parameters
    assert max(t.metrics["params"] for t in channel) < min(t.metrics["params"] for t in whole)
    assert max(t.metrics["accuracy"] for t in result.trials) > 0.5  # it learns the digits


def test_weights_that_do_not_fit_are_left_as_built_and_named(tmp_path: Path) -> None:
    from effsearch.tasks.image_classification import load_fitting, model_factory

    (tmp_path / "my_models.py").write_text(MODEL_CODE)
    build = model_factory("my_models:small_cnn", str(tmp_path))
    torch.save(build(3).state_dict(), tmp_path / "three.pt")  # a head for 3 classes
    model = build(10)

    skipped = load_fitting(model, tmp_path / "three.pt")

    assert skipped == ["6.bias", "6.weight"]
    assert torch.equal(model[0].weight, torch.load(tmp_path / "three.pt")["0.weight"])


def test_validate_names_what_is_wrong_with_the_options(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    document = yaml.safe_load(recipe.read_text())
    document["task"]["options"] |= {
        "model": "my_models:missing",
        "dataset": str(tmp_path / "no"),
        "weights": "nothing.pt",
    }
    recipe.write_text(yaml.safe_dump(document))

    result = CliRunner().invoke(app, ["validate", str(recipe)])

    assert result.exit_code == 2
    assert "has no attribute 'missing'" in result.output
    assert "one subfolder of images per class" in result.output
    assert "weights 'nothing.pt': no such file" in result.output
