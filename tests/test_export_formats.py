"""Bundles that load without effsearch: ``export --format hf`` of a text trial is a Hugging Face
folder that ``transformers`` alone loads, with the trial's dropped layers and pruned widths, and
predicts as the trial's model did; every bundle says in a README what it is and how to load it;
a PEFT adapter is kept only where it reproduces the trial."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from optuna.trial import FrozenTrial
from test_text_task import WORDS, tiny_bert
from typer.testing import CliRunner, Result

import effsearch
from effsearch.cli import app
from effsearch.report.bundle import read_bundle
from effsearch.search import records
from effsearch.search.rundir import RunDir
from effsearch.search.study import load_study

LOAD_ALONE = """
import json, sys, torch
from transformers import AutoModelForSequenceClassification
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1]).eval()
example = {k: v for k, v in torch.load(sys.argv[2]).items()}
with torch.inference_mode():
    logits = model(**example).logits
print(json.dumps({
    "layers": model.config.num_hidden_layers,
    "ffn": model.config.intermediate_size,
    "ffn_weight_rows": model.base_model.encoder.layer[0].intermediate.dense.weight.shape[0],
    "logits": logits.tolist(),
    "effsearch_imported": any(m.startswith("effsearch") for m in sys.modules),
}))
"""


def cli(*args: str | Path) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])


def export(run: Path, number: int, out: Path, *more: str) -> Result:
    return cli("export", run, "--trial", number, "--out", out, *more)


def text_recipe(folder: Path, task: dict[str, Any], space: dict[str, Any], trials: int) -> Path:
    document = {
        "name": "text-export",
        "seed": 0,
        "task": {"builtin": "hf-text-classification", **task},
        "space": space,
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms", "direction": "minimize"},
        ],
        "measure": {"batch_size": 4, "warmup": 1, "repeats": 3},
        "optimizer": {"name": "random"},
        "execution": {"executor": "inline", "workers": 1},
        "budget": {"trials": trials},
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished search over a tiny BERT (a local folder): LoRA, one layer dropped, pruned or
    not, int8 or not; the baseline first."""
    import csv
    import random

    from transformers import BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-text")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += sorted({w for text in WORDS.values() for w in text.split()})
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(folder / "m")
    tiny_bert().save_pretrained(folder / "m")
    draw = random.Random(0)
    with (folder / "topics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "topic"])
        for i in range(90):
            words = WORDS[i % 3].split()
            writer.writerow([" ".join(draw.choice(words) for _ in range(6)), f"topic{i % 3}"])
    recipe = text_recipe(
        folder,
        {
            "options": {
                "model": "m",
                "dataset": "topics.csv",
                "label_column": "topic",
                "max_length": 8,
                "train_samples": None,
            }
        },
        {
            "architecture": {"drop_layers": 1},
            "peft": {"method": "lora", "r": 4, "target": "attention_mlp"},
            "pruning": {"method": {"choice": ["none", "heads_ffn"]}, "sparsity": 0.5},
            "quantization": {"scheme": {"choice": ["none", "int8_dynamic_fbgemm"]}},
            "training": {"lr": 3e-3, "epochs": 3, "batch_size": 8},
        },
        trials=6,
    )
    result = cli("run", recipe, "--run-dir", folder / "run")
    assert result.exit_code == 0, result.output
    return folder / "run"


def finished(run: Path, pruning: str, scheme: str) -> FrozenTrial:
    _, study = load_study(RunDir(run))
    return next(
        t
        for t in study.trials
        if "latency_ms" in t.user_attrs.get(records.METRICS, {})
        and t.user_attrs[records.CONFIG]["pruning"]["method"] == pruning
        and t.user_attrs[records.CONFIG]["quantization"]["scheme"] == scheme
    )


def load_alone(bundle: Path) -> dict[str, Any]:
    """What a process that never imports effsearch sees of an hf bundle."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", LOAD_ALONE, str(bundle), str(bundle / "example_input.pt")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_pruned_text_trial_exports_as_a_folder_transformers_alone_loads(
    tiny_run: Path, tmp_path: Path
) -> None:
    trial = finished(tiny_run, "heads_ffn", "none")
    result = cli(
        "export", tiny_run, "--trial", trial.number, "--out", tmp_path / "b", "--format", "hf"
    )
    assert result.exit_code == 0, result.output

    seen = load_alone(tmp_path / "b")
    with torch.inference_mode():
        example = torch.load(tmp_path / "b" / "example_input.pt")
        in_effsearch = effsearch.load_bundle(tmp_path / "b")(**example).logits

    assert not seen["effsearch_imported"]
    assert seen["layers"] == 2  # three, one dropped
    assert seen["ffn"] == seen["ffn_weight_rows"] == 32  # 64, half pruned
    assert torch.allclose(torch.tensor(seen["logits"]), in_effsearch, atol=1e-5)
    evaluated = effsearch.evaluate_bundle(tmp_path / "b")
    assert evaluated["accuracy"] == pytest.approx(trial.user_attrs[records.METRICS]["accuracy"])
    assert "zero heads" in result.output  # BERT's config cannot say fewer heads of one size
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in (tmp_path / "b").iterdir()
    }


def test_an_int8_trial_is_refused_as_hf_before_anything_is_rebuilt(
    tiny_run: Path, tmp_path: Path
) -> None:
    trial = finished(tiny_run, "none", "int8_dynamic_fbgemm")

    result = cli(
        "export", tiny_run, "--trial", trial.number, "--out", tmp_path / "b", "--format", "hf"
    )

    assert result.exit_code == 2
    assert "quantized int8_dynamic_fbgemm" in result.output
    assert "--format torch" in result.output
    assert not (tmp_path / "b").exists()


def test_the_adapter_is_kept_only_where_it_reproduces_the_trial(
    tiny_run: Path, tmp_path: Path
) -> None:
    plain = finished(tiny_run, "none", "none")
    pruned = finished(tiny_run, "heads_ffn", "none")

    kept = export(tiny_run, plain.number, tmp_path / "plain")
    dropped = export(tiny_run, pruned.number, tmp_path / "pruned")

    assert kept.exit_code == 0 and dropped.exit_code == 0
    assert (tmp_path / "plain" / "adapter" / "adapter_config.json").is_file()
    assert read_bundle(tmp_path / "plain")["adapter"]["folder"] == "adapter"
    assert not (tmp_path / "pruned" / "adapter").exists()
    assert read_bundle(tmp_path / "pruned")["adapter"] is None
    assert "no adapter/: the trial changed the merged weights" in dropped.output


def test_every_bundle_has_a_readme_with_its_figures_and_how_to_load_it(
    tiny_run: Path, tmp_path: Path
) -> None:
    trial = finished(tiny_run, "heads_ffn", "none")
    for fmt in ("torch", "hf"):
        out = tmp_path / fmt
        assert (
            cli(
                "export", tiny_run, "--trial", trial.number, "--out", out, "--format", fmt
            ).exit_code
            == 0
        )
        text = (out / "README.md").read_text()

        assert f"# Trial {trial.number} of the effsearch run `text-export`" in text
        accuracy = trial.user_attrs[records.METRICS]["accuracy"]
        assert f"| accuracy | {accuracy:.4g} |" in text
        assert "effsearch bench" in text
        loader = (
            "AutoModelForSequenceClassification.from_pretrained"
            if fmt == "hf"
            else "effsearch.load_bundle"
        )
        assert loader in text


@pytest.mark.slow
def test_a_minilm_trial_with_layers_dropped_and_heads_and_ffn_pruned_loads_alone(
    tmp_path: Path,
) -> None:
    recipe = text_recipe(
        tmp_path,
        {"options": {"max_length": 32, "train_samples": 96, "test_samples": 80}},
        {
            "architecture": {"drop_layers": 2},
            "peft": {"method": "lora", "r": 8},
            "pruning": {"method": "heads_ffn", "sparsity": 0.5},
            "quantization": {"scheme": "none"},
            "training": {"epochs": {"int": [1, 2]}, "lr": 1e-3, "batch_size": 16},
        },
        trials=1,
    )
    assert cli("run", recipe, "--run-dir", tmp_path / "run").exit_code == 0
    _, study = load_study(RunDir(tmp_path / "run"))
    trial = study.trials[0]

    result = cli(
        "export", tmp_path / "run", "--trial", 0, "--out", tmp_path / "b", "--format", "hf"
    )
    assert result.exit_code == 0, result.output
    seen = load_alone(tmp_path / "b")

    assert not seen["effsearch_imported"]
    assert seen["layers"] == 4  # all-MiniLM-L6-v2 has 6
    assert seen["ffn"] == seen["ffn_weight_rows"] == 768  # 1536, half pruned
    evaluated = effsearch.evaluate_bundle(tmp_path / "b")
    assert evaluated["accuracy"] == pytest.approx(trial.user_attrs[records.METRICS]["accuracy"])
