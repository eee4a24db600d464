"""Where each transformer architecture keeps its parts, by role (torch-free).

One :class:`Layout` per family says, for a Hugging Face ``model_type``, where the blocks are and,
inside a block, the attention projections, the FFN, and which config fields count heads,
key-value heads, layers and FFN width. Transforms apply by role through it
(:mod:`effsearch.models.surgery`): PEFT targets named ``attention``, ``mlp`` or
``attention_mlp``, head and FFN pruning that physically shrinks the layers (grouped-query
attention pruned a whole key-value group at a time), layer dropping.

``layout_of_folder`` reads a model folder's ``config.json`` only, so a recipe naming a model
whose architecture no layout knows is refused by ``effsearch validate`` before any trial.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from effsearch.errors import TaskError


@dataclass(frozen=True)
class Layout:
    """The parts of one architecture family, as dotted paths (``blocks`` from the model's
    top, the rest from inside one block)."""

    family: str
    kind: Literal["encoder", "decoder"]
    model_types: tuple[str, ...]
    blocks: tuple[str, ...]
    """Candidate paths of the block list; the first that exists in a model is used (the same
    architecture nests differently under a task head: ``model.layers`` vs ``layers``)."""
    attention: str
    """The module that holds the head counts (``num_heads``, ``num_key_value_groups``, ...)."""
    query: str | None
    key: str | None
    value: str | None
    attn_out: str
    ffn_in: tuple[str, ...]
    """The FFN's input projections (two for gated FFNs: gate and up)."""
    ffn_out: str
    config_layers: str
    config_heads: str
    config_ffn: str
    embeddings: tuple[str, ...]
    """Token (and position) embedding tables, as name endings (the model's top varies)."""
    head: str | None
    """The output head's name ending (a decoder's ``lm_head``); None for bare encoders."""
    config_kv_heads: str | None = None
    fused_qkv: str | None = None
    """GPT-2's one Conv1D that computes query, key and value side by side."""
    conv1d: bool = False
    """Weights stored ``in x out`` (GPT-2's Conv1D) instead of ``out x in``."""
    config_keeps_head_size: bool = False
    """Whether the config can say "fewer heads of the same size" (a ``head_dim`` field), so a
    head-pruned model reloads with ``from_pretrained``; elsewhere it loads from a bundle's
    state dict into the pruned structure."""

    @property
    def projections(self) -> tuple[str, ...]:
        """Every Linear of the attention (query, key, value or the fused one, output)."""
        qkv = (self.fused_qkv,) if self.fused_qkv else (self.query, self.key, self.value)
        return (*[p for p in qkv if p], self.attn_out)


BERT = Layout(
    family="bert",
    kind="encoder",
    model_types=("bert", "roberta", "xlm-roberta", "electra", "camembert"),
    blocks=("encoder.layer",),
    attention="attention.self",
    query="attention.self.query",
    key="attention.self.key",
    value="attention.self.value",
    attn_out="attention.output.dense",
    ffn_in=("intermediate.dense",),
    ffn_out="output.dense",
    config_layers="num_hidden_layers",
    config_heads="num_attention_heads",
    config_ffn="intermediate_size",
    embeddings=("embeddings.word_embeddings", "embeddings.position_embeddings"),
    head=None,
)
DISTILBERT = Layout(
    family="distilbert",
    kind="encoder",
    model_types=("distilbert",),
    blocks=("transformer.layer",),
    attention="attention",
    query="attention.q_lin",
    key="attention.k_lin",
    value="attention.v_lin",
    attn_out="attention.out_lin",
    ffn_in=("ffn.lin1",),
    ffn_out="ffn.lin2",
    config_layers="n_layers",
    config_heads="n_heads",
    config_ffn="hidden_dim",
    embeddings=("embeddings.word_embeddings", "embeddings.position_embeddings"),
    head=None,
)
LLAMA = Layout(
    family="llama",
    kind="decoder",
    model_types=("llama", "qwen2", "mistral"),
    blocks=("model.layers", "layers"),
    attention="self_attn",
    query="self_attn.q_proj",
    key="self_attn.k_proj",
    value="self_attn.v_proj",
    attn_out="self_attn.o_proj",
    ffn_in=("mlp.gate_proj", "mlp.up_proj"),
    ffn_out="mlp.down_proj",
    config_layers="num_hidden_layers",
    config_heads="num_attention_heads",
    config_kv_heads="num_key_value_heads",
    config_ffn="intermediate_size",
    config_keeps_head_size=True,
    embeddings=("embed_tokens",),
    head="lm_head",
)
GPT2 = Layout(
    family="gpt2",
    kind="decoder",
    model_types=("gpt2",),
    blocks=("transformer.h", "h"),
    attention="attn",
    query=None,
    key=None,
    value=None,
    fused_qkv="attn.c_attn",
    attn_out="attn.c_proj",
    ffn_in=("mlp.c_fc",),
    ffn_out="mlp.c_proj",
    config_layers="n_layer",
    config_heads="n_head",
    config_ffn="n_inner",
    conv1d=True,
    embeddings=("wte", "wpe"),
    head="lm_head",
)
OPT = Layout(
    family="opt",
    kind="decoder",
    model_types=("opt",),
    blocks=("model.decoder.layers", "decoder.layers"),
    attention="self_attn",
    query="self_attn.q_proj",
    key="self_attn.k_proj",
    value="self_attn.v_proj",
    attn_out="self_attn.out_proj",
    ffn_in=("fc1",),
    ffn_out="fc2",
    config_layers="num_hidden_layers",
    config_heads="num_attention_heads",
    config_ffn="ffn_dim",
    embeddings=("embed_tokens", "embed_positions"),
    head="lm_head",
)

LAYOUTS: tuple[Layout, ...] = (BERT, DISTILBERT, LLAMA, GPT2, OPT)


def supported(kind: str | None = None) -> list[str]:
    """The ``model_type`` values a layout knows (of one kind, encoder or decoder, if given)."""
    return [t for layout in LAYOUTS if kind in (None, layout.kind) for t in layout.model_types]


def layout_of_type(model_type: str, kind: str | None = None) -> Layout:
    """The layout of ``model_type``; TaskError naming the supported types if none fits."""
    for layout in LAYOUTS:
        if model_type in layout.model_types and kind in (None, layout.kind):
            return layout
    what = f"{kind} " if kind else ""
    raise TaskError(
        f"model_type {model_type!r} is not a supported {what}architecture; supported: "
        f"{', '.join(supported(kind))}"
    )


def model_type_of_folder(folder: Path) -> str:
    """The ``model_type`` in a Hugging Face model folder's ``config.json``."""
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TaskError(
            f"{folder} is not a Hugging Face model folder ({path}: {exc}); give a local "
            "folder with config.json (nothing is downloaded)"
        ) from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if not isinstance(model_type, str):
        raise TaskError(f"{path} names no model_type")
    return model_type


def layout_of_folder(folder: Path, kind: str | None = None) -> Layout:
    """The layout of the model in ``folder`` (reads only its config.json)."""
    return layout_of_type(model_type_of_folder(folder), kind)
