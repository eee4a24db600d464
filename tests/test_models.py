"""Model adapters on tiny configs of every supported architecture (built here, no download):
each transform applied by role, shapes shrunk as claimed, the pruned config reloads in
transformers, outputs equal to the parent where the transform keeps them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from effsearch.errors import TaskError
from effsearch.models import layouts, surgery

VOCAB = 97


def tiny(model_type: str) -> nn.Module:
    """A tiny model of ``model_type`` with random weights (seeded)."""
    import transformers as tf

    torch.manual_seed(0)
    common = {"vocab_size": VOCAB}
    configs: dict[str, Callable[[], Any]] = {
        "llama": lambda: tf.LlamaConfig(
            hidden_size=32,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=48,
            num_hidden_layers=3,
            **common,
        ),
        "qwen2": lambda: tf.Qwen2Config(
            hidden_size=32,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=48,
            num_hidden_layers=3,
            **common,
        ),
        "mistral": lambda: tf.MistralConfig(
            hidden_size=32,
            num_attention_heads=4,
            num_key_value_heads=1,
            intermediate_size=48,
            num_hidden_layers=3,
            **common,
        ),
        "gpt2": lambda: tf.GPT2Config(
            n_embd=32, n_head=4, n_layer=3, n_inner=48, n_positions=64, **common
        ),
        "opt": lambda: tf.OPTConfig(
            hidden_size=32,
            num_attention_heads=4,
            ffn_dim=48,
            num_hidden_layers=3,
            word_embed_proj_dim=32,
            max_position_embeddings=64,
            **common,
        ),
        "bert": lambda: tf.BertConfig(
            hidden_size=32,
            num_attention_heads=4,
            intermediate_size=48,
            num_hidden_layers=3,
            **common,
        ),
        "distilbert": lambda: tf.DistilBertConfig(
            dim=32, n_heads=4, hidden_dim=48, n_layers=3, **common
        ),
    }
    config = configs[model_type]()
    layout = layouts.layout_of_type(model_type)
    cls = tf.AutoModelForCausalLM if layout.kind == "decoder" else tf.AutoModel
    return cls.from_config(config).eval()


DECODERS = ["llama", "qwen2", "mistral", "gpt2", "opt"]
ALL = [*DECODERS, "bert", "distilbert"]
IDS = torch.tensor([[1, 5, 9, 13, 2, 7, 11, 3]])


def output(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        out = model(input_ids=IDS)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def reloaded(model: nn.Module, folder: Path) -> nn.Module:
    import transformers as tf

    model.save_pretrained(folder)
    kind = layouts.layout_of_type(model.config.model_type).kind
    cls = tf.AutoModelForCausalLM if kind == "decoder" else tf.AutoModel
    return cls.from_pretrained(folder).eval()


@pytest.mark.parametrize("model_type", ALL)
def test_every_family_finds_its_blocks_and_parts(model_type: str) -> None:
    model = tiny(model_type)
    layout = layouts.layout_of_type(model_type)
    blocks = surgery.find_blocks(model, layout)
    assert len(blocks) == 3
    for part in (*layout.projections, *layout.ffn_in, layout.ffn_out, layout.attention):
        blocks.layers[0].get_submodule(part)  # raises if the layout is wrong


@pytest.mark.parametrize("model_type", ALL)
def test_ffn_pruning_shrinks_every_block_and_the_config_reloads(
    model_type: str, tmp_path: Path
) -> None:
    model = tiny(model_type)
    layout = layouts.layout_of_type(model_type)
    before = sum(p.numel() for p in model.parameters())

    removed = surgery.prune_ffn(model, layout, 0.5)

    assert removed == 3 * 24
    for block in surgery.find_blocks(model, layout).layers:
        for part in layout.ffn_in:
            weight = block.get_submodule(part).weight
            assert (weight.shape[1] if layout.conv1d else weight.shape[0]) == 24
    assert sum(p.numel() for p in model.parameters()) < before
    assert torch.allclose(output(reloaded(model, tmp_path)), output(model), atol=1e-5)


@pytest.mark.parametrize("model_type", ALL)
def test_head_pruning_removes_whole_kv_groups_and_the_model_still_runs(model_type: str) -> None:
    model = tiny(model_type)
    layout = layouts.layout_of_type(model_type)
    heads, kv_heads, size = surgery.head_counts(model, layout)

    removed = surgery.prune_heads(model, layout, 0.5)

    group = heads // kv_heads
    kept_groups = kv_heads - min(kv_heads - 1, round(0.5 * kv_heads))
    assert removed == (kv_heads - kept_groups) * group * 3
    after_heads, after_kv, after_size = surgery.head_counts(model, layout)
    assert (after_heads, after_kv, after_size) == (kept_groups * group, kept_groups, size)
    assert output(model).shape[-1] == (VOCAB if layout.kind == "decoder" else 32)


@pytest.mark.parametrize("model_type", ["llama", "qwen2", "mistral"])
def test_head_pruned_grouped_query_models_reload_from_their_config(
    model_type: str, tmp_path: Path
) -> None:
    model = tiny(model_type)
    layout = layouts.layout_of_type(model_type)
    surgery.prune_heads(model, layout, 0.5)

    again = reloaded(model, tmp_path)

    assert torch.allclose(output(again), output(model), atol=1e-5)


@pytest.mark.parametrize("model_type", ALL)
def test_removing_a_head_group_that_does_nothing_keeps_the_outputs(model_type: str) -> None:
    """Zero every weight of the group pruning will remove: the pruned model computes what the
    parent does (the transform keeps the function where it should)."""
    model = tiny(model_type)
    layout = layouts.layout_of_type(model_type)
    heads, kv_heads, size = surgery.head_counts(model, layout)
    group = heads // kv_heads
    q_rows, kv_rows = slice(0, group * size), slice(0, size)  # the first key-value group
    with torch.no_grad():
        for block in surgery.find_blocks(model, layout).layers:
            out = block.get_submodule(layout.attn_out)
            if layout.fused_qkv:
                fused = block.get_submodule(layout.fused_qkv).weight
                width = heads * size
                for start, rows in ((0, q_rows), (width, kv_rows), (2 * width, kv_rows)):
                    fused[:, start + rows.start : start + rows.stop] = 0.0
                out.weight[q_rows, :] = 0.0
                continue
            for part, rows in (
                (layout.query, q_rows),
                (layout.key, kv_rows),
                (layout.value, kv_rows),
            ):
                linear = block.get_submodule(part)
                linear.weight[rows] = 0.0
                if linear.bias is not None:
                    linear.bias[rows] = 0.0
            out.weight[:, q_rows] = 0.0
    parent = output(model)
    fraction = 1.0 / kv_heads if kv_heads > 1 else 0.0
    if fraction == 0.0:
        pytest.skip("one key-value group: nothing to prune")

    surgery.prune_heads(model, layout, fraction)

    assert torch.allclose(output(model), parent, atol=1e-5)


@pytest.mark.parametrize("model_type", ALL)
def test_dropping_layers_keeps_the_bottom_ones_and_reloads(model_type: str, tmp_path: Path) -> None:
    model = tiny(model_type)
    layout = layouts.layout_of_type(model_type)

    assert surgery.drop_top_layers(model, layout, 2) == 1
    assert getattr(model.config, layout.config_layers) == 1
    assert torch.allclose(output(reloaded(model, tmp_path)), output(model), atol=1e-5)


@pytest.mark.parametrize("model_type", ALL)
@pytest.mark.parametrize("role", ["attention", "mlp", "attention_mlp"])
def test_peft_targets_by_role_name_real_modules_and_lora_applies(
    model_type: str, role: str
) -> None:
    import peft

    model = tiny(model_type)
    layout = layouts.layout_of_type(model_type)
    targets = surgery.peft_targets(model, layout, role, [1, 2])
    names = dict(model.named_modules())
    assert targets and all(t in names for t in targets)
    assert all(".0." not in t.split(surgery.find_blocks(model, layout).path)[1] for t in targets)

    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=targets))

    assert output(wrapped).shape == output(model).shape


def test_an_unknown_architecture_is_named_with_the_supported_ones(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "mamba"}')

    with pytest.raises(TaskError) as info:
        layouts.layout_of_folder(tmp_path, kind="decoder")

    assert "'mamba'" in str(info.value)
    assert "llama" in str(info.value) and "gpt2" in str(info.value)


def test_peft_targets_by_explicit_names_match_the_end_of_module_names() -> None:
    model = tiny("llama")
    layout = layouts.layout_of_type("llama")

    targets = surgery.peft_targets(model, layout, "modules:q_proj,mlp.down_proj", [2])

    assert targets == ["model.layers.2.self_attn.q_proj", "model.layers.2.mlp.down_proj"]
    with pytest.raises(TaskError, match="no module named 'c_attn' in a llama block"):
        surgery.peft_targets(model, layout, "modules:c_attn", [2])


def test_a_recipe_may_name_peft_modules_but_not_nonsense(tmp_path: Path) -> None:
    from effsearch.errors import RecipeError
    from effsearch.recipe import load_recipe

    def recipe(target: str) -> Path:
        path = tmp_path / "r.yaml"
        path.write_text(
            "name: t\ntask: {builtin: causal-lm}\n"
            f"space: {{peft: {{target: {{choice: [attention, '{target}']}}}}}}\n"
            "objectives: [{metric: perplexity, direction: minimize}]\nbudget: {trials: 2}\n"
        )
        return path

    assert load_recipe(recipe("modules:q_proj,v_proj")).space.searched
    with pytest.raises(RecipeError, match=r"'everything' is not a choice of peft\.target"):
        load_recipe(recipe("everything"))


def test_qlora_trains_on_an_int8_base_and_merges_into_float_weights() -> None:
    from effsearch.transforms import peft as adapting

    model = tiny("llama")
    layout = layouts.layout_of_type("llama")
    adapted = adapting.apply(
        model, {"method": "qlora", "r": 2, "target": "attention"}, layout, None
    )
    q_proj = adapted.model.base_model.model.model.layers[0].self_attn.q_proj
    assert type(q_proj.base_layer.weight).__name__.startswith("Int8")  # a quantized base
    optimizer = torch.optim.AdamW([p for p in adapted.model.parameters() if p.requires_grad])
    loss = adapted.model(input_ids=IDS, labels=IDS).loss
    loss.backward()
    optimizer.step()
    trained = output(adapted.model)

    merged = adapting.merge(adapted.model)

    assert isinstance(merged.model.layers[0].self_attn.q_proj.weight, nn.Parameter)
    assert merged.model.layers[0].self_attn.q_proj.weight.dtype == torch.float32
    assert torch.allclose(output(merged), trained, atol=1e-4)  # the merge keeps the function


@pytest.mark.parametrize("model_type", ALL)
def test_embeddings_and_heads_are_found_by_role(model_type: str) -> None:
    model = tiny(model_type)
    layout = layouts.layout_of_type(model_type)

    embeddings = surgery.part(model, layout, "embeddings")
    head = surgery.part(model, layout, "head")

    assert embeddings and all(
        isinstance(model.get_submodule(n), nn.Embedding) or "embed_positions" in n
        for n in embeddings
    )
    if layout.kind == "decoder":
        assert head == ["lm_head"]
        assert model.get_submodule("lm_head").out_features == VOCAB
    else:
        assert head == []
