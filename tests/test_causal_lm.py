"""The causal-lm task on tiny decoder folders of each family, made here with transformers (no
download): one recipe searching LoRA rank and targets, layer dropping, head/FFN pruning and
quantization jointly runs to the end on each, and every trial records what the task promises."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import effsearch
from effsearch.cli import app

SENTENCE = (
    "market shares rose as the bank cut rates while the team won the final match and "
    "the film drew crowds to the festival where the minister spoke about new taxes"
)
WORDS = SENTENCE.split(" ")
LABELS = ("business", "sport")


def texts(count: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [
        {
            "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 40))),
            "label": LABELS[i % 2],
        }
        for i in range(count)
    ]


def tokenizer(folder: Path, corpus: list[str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<eos>", "<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>")
    fast.save_pretrained(folder)
    return fast


def decoder_folder(root: Path, model_type: str) -> Path:
    """A tiny randomly initialised decoder of ``model_type`` with its tokenizer."""
    import torch
    import transformers as tf

    folder = root / model_type
    tok = tokenizer(folder, [t["text"] for t in texts(60)])
    common = {
        "vocab_size": len(tok),
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    configs: dict[str, Callable[[], Any]] = {
        "llama": lambda: tf.LlamaConfig(
            hidden_size=32,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=48,
            num_hidden_layers=3,
            max_position_embeddings=128,
            bos_token_id=None,
            **common,
        ),
        "qwen2": lambda: tf.Qwen2Config(
            hidden_size=32,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=48,
            num_hidden_layers=3,
            max_position_embeddings=128,
            bos_token_id=None,
            **common,
        ),
        "gpt2": lambda: tf.GPT2Config(
            n_embd=32,
            n_head=4,
            n_layer=3,
            n_inner=48,
            n_positions=128,
            bos_token_id=tok.eos_token_id,
            **common,
        ),
    }
    torch.manual_seed(0)
    tf.AutoModelForCausalLM.from_config(configs[model_type]()).save_pretrained(folder)
    return folder


def recipe(folder: Path, model: Path, trials: int = 6, **changes: Any) -> Path:
    data = folder / "texts.jsonl"
    data.write_text("\n".join(json.dumps(t) for t in texts(40)) + "\n")
    document: dict[str, Any] = {
        "name": f"lm-{model.name}",
        "task": {
            "builtin": "causal-lm",
            "options": {
                "model": str(model),
                "dataset": str(data),
                "max_length": 32,
                "train_samples": 24,
                "test_samples": 8,
                "prompt_tokens": 8,
                "decode_tokens": 8,
            },
        },
        "space": {
            "architecture": {"drop_layers": {"int": [0, 2]}},
            "peft": {
                "method": {"choice": ["lora", "qlora"]},
                "r": {"int": [2, 8]},
                "target": {"choice": ["attention", "mlp", "attention_mlp"]},
            },
            "training": {"lr": 1e-3, "epochs": 1, "batch_size": 8},
            "pruning": {
                "method": {"choice": ["none", "heads", "ffn", "heads_ffn"]},
                "sparsity": {"float": [0.3, 0.5]},
            },
            "quantization": {
                "scheme": {"choice": ["none", "bf16", "int8_dynamic", "int8_weight_only"]}
            },
        },
        "objectives": [
            {"metric": "perplexity", "direction": "minimize"},
            {"metric": "decode_tokens_per_s", "direction": "maximize"},
        ],
        "optimizer": {"name": "random"},
        "measure": {"batch_size": 2, "warmup": 0, "repeats": 2},
        "execution": {"executor": "inline"},
        "budget": {"trials": trials},
        **changes,
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["llama", "qwen2", "gpt2"])
def test_one_recipe_searches_every_family_jointly_and_records_the_promised_metrics(
    model_type: str, tmp_path: Path
) -> None:
    model = decoder_folder(tmp_path, model_type)

    result = effsearch.run(recipe(tmp_path, model, trials=8), run_dir=tmp_path / "run")

    assert [t.state for t in result.trials] == ["COMPLETE"] * 8, [t.metrics for t in result.trials]
    promised = {
        "perplexity",
        "prefill_ms",
        "decode_tokens_per_s",
        "size_mb",
        "peak_memory_mb",
        "params",
        "agreement",
        "accuracy",
    }
    for trial in result.trials:
        assert promised <= set(trial.metrics), promised - set(trial.metrics)
        assert trial.metrics["perplexity"] > 1
    # the transforms did shrink what they claim to
    sizes = {t.metrics["size_mb"] for t in result.trials}
    layers = {t.metrics["decoder_layers"] for t in result.trials}
    assert len(sizes) > 1 and min(layers) < 3
    baseline = result.trials[0]
    assert baseline.metrics["agreement"] == 1.0  # uncompressed: predicts as its parent
    assert {t.params["peft"]["method"] for t in result.trials} == {"lora", "qlora"}


def test_a_model_of_an_unknown_architecture_is_refused_by_validate(tmp_path: Path) -> None:
    model = tmp_path / "mamba"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "mamba", "hidden_size": 16}')

    result = CliRunner().invoke(app, ["validate", str(recipe(tmp_path, model))])

    assert result.exit_code == 2
    assert "model_type 'mamba' is not a supported decoder architecture" in result.output
    assert "llama" in result.output and "Traceback" not in result.output


def test_an_encoder_folder_is_not_a_decoder(tmp_path: Path) -> None:
    model = tmp_path / "bert"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}')

    result = CliRunner().invoke(app, ["validate", str(recipe(tmp_path, model))])

    assert result.exit_code == 2
    assert "'bert' is not a supported decoder architecture" in result.output


@pytest.mark.slow
def test_plain_text_without_labels_gives_no_accuracy(tmp_path: Path) -> None:
    model = decoder_folder(tmp_path, "llama")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(t["text"] for t in texts(30)))
    path = recipe(tmp_path, model, trials=2)
    document = yaml.safe_load(path.read_text())
    document["task"]["options"]["dataset"] = str(corpus)
    path.write_text(yaml.safe_dump(document))

    result = effsearch.run(path, run_dir=tmp_path / "run")

    assert [t.state for t in result.trials] == ["COMPLETE"] * 2
    assert all("accuracy" not in t.metrics and t.metrics["perplexity"] > 1 for t in result.trials)


@pytest.mark.slow
def test_the_builtin_decoder_is_a_llama_trained_once_and_cached(tmp_path: Path) -> None:
    """builtin:bbc-llama: no PyPI package ships a small pretrained decoder, so it is trained
    here on BBC News (training side only) and kept in the cache for every later trial."""
    import time

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from effsearch.models import layouts
    from effsearch.tasks import lm_builtin

    folder = lm_builtin.folder(tmp_path)
    record = json.loads((folder / "effsearch-training.json").read_text())
    started = time.perf_counter()
    again = lm_builtin.folder(tmp_path)

    assert again == folder and time.perf_counter() - started < 1.0  # cached: not trained again
    assert layouts.layout_of_folder(folder).family == "llama"
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # GQA
    assert len(tokenizer) == model.config.vocab_size
    assert record["final_loss"] < 7.0  # it learnt something (uniform would be ln 2048 = 7.6)
