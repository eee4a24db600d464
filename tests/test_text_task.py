"""Transformer techniques on a tiny BERT built from a config (no download): each transform does
what it claims, and the hf-text-classification task runs end to end on a local model folder."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

from effsearch.errors import RecipeError
from effsearch.models import surgery
from effsearch.models.layouts import BERT
from effsearch.objectives import meters
from effsearch.recipe import load_recipe
from effsearch.tasks.base import MeasureSettings, TrialContext
from effsearch.tasks.hf_text import HFTextClassification
from effsearch.transforms import peft, pruning, quantization

HIDDEN, HEADS, LAYERS, FFN = 32, 4, 3, 64
TINY_MEASURE = MeasureSettings(batch_size=4, warmup=1, repeats=3)
WORDS = {
    0: "goal match team player score league cup coach",
    1: "market shares profit bank economy growth trade price",
    2: "film music actor award show star band movie",
}


def tiny_bert(num_labels: int = 3) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        max_position_embeddings=32,
        num_labels=num_labels,
    )
    return BertForSequenceClassification(config).eval()


def inputs(batch: int = 2, length: int = 8) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 64, (batch, length), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        return model(**batch).logits


# ----------------------------------------------------------------------------- structure
def test_drop_top_layers_keeps_the_bottom_ones():
    model = tiny_bert()
    bottom = model.bert.encoder.layer[0]
    assert surgery.drop_top_layers(model, BERT, 2) == 1
    assert list(model.bert.encoder.layer) == [bottom]
    assert model.config.num_hidden_layers == 1
    assert logits(model, inputs()).shape == (2, 3)


def test_dropping_every_layer_keeps_one():
    model = tiny_bert()
    assert surgery.drop_top_layers(model, BERT, 99) == 1


def test_prune_heads_removes_whole_heads_and_the_model_still_runs():
    model = tiny_bert()
    removed = surgery.prune_heads(model, BERT, 0.5)
    assert removed == LAYERS * HEADS // 2
    attention = model.bert.encoder.layer[0].attention
    assert attention.self.query.out_features == HIDDEN // 2
    assert attention.output.dense.in_features == HIDDEN // 2
    assert attention.self.num_attention_heads == HEADS // 2
    assert logits(model, inputs()).shape == (2, 3)


def test_pruning_no_heads_changes_nothing():
    model = tiny_bert()
    before = logits(model, inputs())
    surgery.prune_heads(model, BERT, 0.0)
    assert torch.equal(logits(model, inputs()), before)


def test_prune_heads_keeps_exactly_the_strongest_heads_outputs():
    # Zeroing a head's value rows makes it contribute nothing: removing it must not change
    # the output, and its low L1 norm makes it the first to go.
    model = tiny_bert()
    head_size = HIDDEN // HEADS
    for layer in model.bert.encoder.layer:
        layer.attention.self.value.weight.data[:head_size] = 0
        layer.attention.self.value.bias.data[:head_size] = 0
        layer.attention.self.query.weight.data[:head_size] = 0
        layer.attention.self.key.weight.data[:head_size] = 0
        layer.attention.output.dense.weight.data[:, :head_size] = 0
    before = logits(model, inputs())
    surgery.prune_heads(model, BERT, 0.25)
    assert torch.allclose(logits(model, inputs()), before, atol=1e-5)


def test_prune_ffn_shrinks_the_intermediate_layer():
    model = tiny_bert()
    flops_before = meters.flops(model, inputs(1), batch_size=1)["flops"]
    assert surgery.prune_ffn(model, BERT, 0.5) == LAYERS * FFN // 2
    layer = model.bert.encoder.layer[0]
    assert layer.intermediate.dense.out_features == FFN // 2
    assert layer.output.dense.in_features == FFN // 2
    assert meters.flops(model, inputs(1), batch_size=1)["flops"] < flops_before


def test_a_model_without_bert_blocks_is_a_clear_error():
    with pytest.raises(Exception, match="has no bert blocks"):
        surgery.find_blocks(torch.nn.Sequential(torch.nn.Linear(2, 2)), BERT)


def test_two_of_four_mask_keeps_the_two_largest_of_every_four():
    weight = torch.tensor([[4.0, -1.0, 0.5, -3.0, 1.0, 2.0, -5.0, 0.1]])
    mask = pruning._two_of_four(weight)
    assert mask.tolist() == [[1, 0, 0, 1, 0, 1, 1, 0]]


def test_semi_structured_pruning_zeroes_half_of_every_encoder_linear():
    model = tiny_bert()
    pruning.apply(model, {"method": "semi_structured_24"})
    pruning.finalize(model)
    query = model.bert.encoder.layer[0].attention.self.query.weight
    assert float((query == 0).float().mean()) == pytest.approx(0.5)
    assert float((model.classifier.weight == 0).float().mean()) == 0  # the head is kept


def test_semi_structured_kernels_refuse_a_cpu_float_model():
    model = tiny_bert()
    pruning.apply(model, {"method": "semi_structured_24"})
    pruning.finalize(model)
    with pytest.raises(ValueError, match="bf16 or fp16"):
        pruning.to_semi_structured(model)


# ----------------------------------------------------------------------------- peft
@pytest.mark.parametrize("method", ["lora", "dora", "ia3", "loha", "lokr"])
def test_adapter_trains_few_weights_and_merges_to_the_same_function(method):
    model = tiny_bert()
    total = sum(p.numel() for p in model.parameters())
    config = {
        "method": method,
        "r": 2,
        "alpha": 4.0,
        "dropout": 0.0,
        "target": "attention_mlp",
        "adapted_fraction": 1.0,
    }
    adapted = peft.apply(model, config, BERT, head="classifier")
    assert 0 < adapted.trainable_params < 0.5 * total
    trainable = [p for p in adapted.model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.5)
    loss = adapted.model(**inputs(), labels=torch.tensor([0, 1])).loss
    loss.backward()
    optimizer.step()
    adapted.model.eval()
    before = logits(adapted.model, inputs())
    merged = peft.merge(adapted.model)
    assert isinstance(merged, BertForSequenceClassification)
    assert torch.allclose(logits(merged, inputs()), before, atol=1e-4)


def test_adapted_fraction_places_adapters_in_the_top_layers_only():
    model = tiny_bert()
    config = {
        "method": "lora",
        "r": 2,
        "alpha": 4.0,
        "dropout": 0.0,
        "target": "attention",
        "adapted_fraction": 0.3,
    }
    adapted = peft.apply(model, config, BERT, head="classifier")
    names = [n for n, p in adapted.model.named_parameters() if p.requires_grad and "lora_" in n]
    assert names and all(".layer.2." in n for n in names)


def test_head_only_and_full_fine_tuning_count_trainable_weights():
    head = peft.apply(tiny_bert(), {"method": "head_only"}, BERT, head="classifier")
    assert head.trainable_params == HIDDEN * 3 + 3
    full = peft.apply(tiny_bert(), {"method": "full"}, BERT, head="classifier")
    assert full.trainable_params == sum(p.numel() for p in tiny_bert().parameters())


@pytest.mark.parametrize(("scheme", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_half_precision_halves_the_transformer(scheme, dtype):
    model = tiny_bert()
    dense = meters.size(model)["size_mb"]
    quantized = quantization.apply(model, {"scheme": scheme})
    assert next(quantized.model.parameters()).dtype == dtype
    # half the bytes per weight; torch.save's per-tensor overhead weighs on a model this small
    assert meters.size(quantized.model)["size_mb"] < 0.6 * dense


@pytest.mark.parametrize("scheme", ["int8_dynamic", "int8_dynamic_fbgemm", "int8_weight_only"])
def test_int8_schemes_keep_transformer_outputs_close(scheme):
    model = tiny_bert()
    before = logits(model, inputs())
    quantized = quantization.apply(model, {"scheme": scheme})
    after = logits(quantized.model, inputs())
    assert torch.allclose(after, before, atol=0.05)


# ----------------------------------------------------------------------------- the task
@pytest.fixture(scope="module")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny BERT saved as a Hugging Face folder with its tokenizer, and a 3-topic CSV."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += sorted({w for text in WORDS.values() for w in text.split()})
    BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)}).save_pretrained(folder)
    tiny_bert().save_pretrained(folder)
    rows = random.Random(0)
    data = folder / "topics.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "topic"])
        for i in range(90):
            label = i % 3
            words = WORDS[label].split()
            writer.writerow([" ".join(rows.choice(words) for _ in range(6)), f"topic{label}"])
    return folder, data


def test_text_task_runs_every_stage_on_a_local_model(local_model):
    folder, data = local_model
    task = HFTextClassification(
        model=str(folder),
        dataset=str(data),
        text_column="text",
        label_column="topic",
        max_length=8,
        train_samples=None,
    )
    config = {
        "architecture": {"drop_layers": 1},
        "peft": {"method": "full"},
        "training": {"lr": 3e-3, "epochs": 3, "batch_size": 8},
        "pruning": {"method": "heads_ffn", "sparsity": 0.25, "finetune_epochs": 1},
        "quantization": {"scheme": "int8_dynamic_fbgemm"},
    }
    ctx = TrialContext(trial_number=0, seed=0, measure=TINY_MEASURE)
    metrics = task.run(config, ctx)
    assert metrics["encoder_layers"] == LAYERS - 1
    assert metrics["params"] < metrics["trainable_params"]  # full fine-tuning, then pruning
    assert metrics["accuracy"] > 0.6  # the topics are separable by their words
    assert 0 <= metrics["agreement"] <= 1
    assert metrics["latency_ms"] > 0 and metrics["throughput_per_s"] > 0
    assert metrics["process_peak_rss_mb"] > metrics["peak_memory_mb"] > 0
    assert metrics["energy_j_est"] > 0
    assert [h["step"] for h in ctx.history] == [1.0, 2.0, 3.0, 4.0]  # 3 epochs + 1 recovery


def test_text_task_options_are_checked_before_running(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: t\ntask: {builtin: hf-text-classification, options: {model: ./missing, "
        "dataset: ./nope.csv}}\nspace: {architecture: {drop_layers: {int: [0, 1]}}}\n"
        "objectives: [{metric: accuracy, direction: maximize}]\nbudget: {trials: 2}\n"
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe)
    text = str(caught.value)
    assert "is not a Hugging Face model folder" in text
    assert "nope.csv': no such file" in text


def test_jsonl_datasets_load_with_their_own_columns(tmp_path):
    from effsearch.tasks import text_data

    path = tmp_path / "reviews.jsonl"
    rows = [{"body": f"text {i}", "stars": "good" if i % 2 else "bad"} for i in range(40)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    data = text_data.load(
        str(path),
        str(tmp_path),
        text_column="body",
        label_column="stars",
        train_samples=20,
        test_samples=8,
    )
    assert data.label_names == ("bad", "good")
    assert len(data.train_texts) == 20 and len(data.test_texts) == 8
    assert sorted(set(data.train_labels)) == [0, 1]


def test_a_dataset_without_the_named_column_says_which_columns_it_has(tmp_path):
    from effsearch.errors import TaskError
    from effsearch.tasks import text_data

    path = tmp_path / "d.csv"
    path.write_text("body,stars\nhello,1\nworld,2\n")
    with pytest.raises(TaskError, match="no column 'text' \\(columns: body, stars\\)"):
        text_data.load(str(path), str(tmp_path))


def test_bbc_news_labels_are_the_sorted_category_names():
    from effsearch.tasks import text_data

    data = text_data.load(text_data.BBC_NEWS, ".", train_samples=50, test_samples=25)
    assert data.label_names == ("business", "entertainment", "politics", "sports", "tech")


def test_cuda_only_pruning_is_refused_for_a_cpu_recipe(tmp_path, local_model):
    folder, data = local_model
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: t\ntask: {{builtin: hf-text-classification, options: {{model: {folder}, "
        f"dataset: {data}, text_column: text, label_column: topic}}}}\n"
        "space: {pruning: {method: {choice: [none, semi_structured_24]}}}\n"
        "objectives: [{metric: accuracy, direction: maximize}]\nbudget: {trials: 2}\n"
    )
    with pytest.raises(RecipeError, match="'semi_structured_24' runs on cuda only"):
        load_recipe(recipe)


def tiny_text_task(local_model: tuple[Path, Path]) -> HFTextClassification:
    folder, data = local_model
    return HFTextClassification(
        model=str(folder),
        dataset=str(data),
        text_column="text",
        label_column="topic",
        max_length=8,
        train_samples=None,
    )


LORA = {
    "method": "lora",
    "r": 2,
    "alpha": 4.0,
    "dropout": 0.0,
    "target": "attention",
    "adapted_fraction": 1.0,
}


def pruned_lora_config(scheme: str = "bf16", lr: float = 1e-3) -> dict:
    """LoRA, one layer dropped, heads and FFN pruned by half, then ``scheme``."""
    return {
        "architecture": {"drop_layers": 1},
        "peft": LORA,
        "training": {"lr": lr, "epochs": 1, "batch_size": 8},
        "pruning": {"method": "heads_ffn", "sparsity": 0.5, "finetune_epochs": 0},
        "quantization": {"scheme": scheme},
    }


def test_text_precheck_gives_the_deployed_size_without_training(local_model):
    task = tiny_text_task(local_model)
    config = pruned_lora_config()
    ctx = TrialContext(trial_number=0, seed=0, measure=TINY_MEASURE)
    early = task.precheck(config, ctx)
    measured = task.run(config, ctx)
    for name in ("params", "flops", "size_mb"):
        assert early[name] == pytest.approx(measured[name], rel=1e-6), name


@pytest.mark.parametrize("scheme", ["none", "bf16", "int8_dynamic", "int8_dynamic_fbgemm"])
def test_a_saved_text_model_loads_into_its_skeleton_with_the_same_outputs(
    local_model, tmp_path, scheme
):
    """What export saves and load_bundle reads: LoRA merged, heads and FFN pruned, quantized."""
    from effsearch.report.bundle import load_state

    task = tiny_text_task(local_model)
    config = pruned_lora_config(scheme, lr=3e-3)
    ctx = TrialContext(trial_number=0, seed=0, measure=TINY_MEASURE)
    measured = task.run(config, ctx)
    path = tmp_path / "model.pt"
    path.write_bytes(meters.serialized_state(meters.deployable_state(ctx.artifact.model)))

    model = task.skeleton(config, "cpu").model
    model.load_state_dict(load_state(path, "cpu"), assign=True)

    assert path.stat().st_size == round(measured["size_mb"] * 1e6)
    batch = inputs()
    assert torch.equal(logits(model.eval(), batch), logits(ctx.artifact.model, batch))
    dtype = ctx.artifact.input_dtype
    assert task.evaluate(model, dtype, "cpu")["accuracy"] == pytest.approx(measured["accuracy"])


def test_an_export_also_gets_the_trained_adapter_in_peft_format(local_model, tmp_path):
    from peft import PeftModel

    task = tiny_text_task(local_model)
    config = {
        "architecture": {"drop_layers": 1},
        "peft": LORA,
        "training": {"lr": 3e-3, "epochs": 1, "batch_size": 8},
        "pruning": {"method": "none"},
        "quantization": {"scheme": "none"},
    }
    ctx = TrialContext(trial_number=0, seed=0, measure=TINY_MEASURE, export_dir=tmp_path)
    task.run(config, ctx)

    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    base = task._fresh_model()
    surgery.drop_top_layers(base, BERT, 1)
    adapted = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    batch = inputs()
    # the adapter on the base computes what the measured (merged) model computes
    assert torch.allclose(logits(adapted, batch), logits(ctx.artifact.model, batch), atol=1e-5)
