"""Pruning knobs: what a recipe may search (how they prune: effsearch.transforms.pruning)."""

from __future__ import annotations

from effsearch.spaces.knobs import KnobDecl

PRUNING_METHODS = ("magnitude", "channel", "heads", "ffn", "heads_ffn", "semi_structured_24")

METHOD = KnobDecl.choice(
    "method",
    ("none", *PRUNING_METHODS),
    "none",
    "what to remove",
    devices={"semi_structured_24": ("cuda",)},
)
SPARSITY = KnobDecl.float(
    "sparsity",
    0.0,
    0.95,
    0.5,
    "fraction of weights, channels, heads or FFN neurons removed per layer (2:4 ignores it)",
    when={"method": PRUNING_METHODS},
)
FINETUNE_EPOCHS = KnobDecl.int(
    "finetune_epochs",
    0,
    100,
    0,
    "recovery training after pruning (magnitude keeps pruned weights at zero)",
    when={"method": PRUNING_METHODS},
    log_ok=False,
)

KNOBS = (METHOD, SPARSITY, FINETUNE_EPOCHS)


def knobs(*methods: str) -> tuple[KnobDecl, ...]:
    """The pruning knobs of a task that supports ``methods`` (besides ``none``)."""
    return (METHOD.restrict("none", *methods), SPARSITY, FINETUNE_EPOCHS)
