"""PEFT knobs: adapter method, rank, scaling, targets and placement (how they apply:
effsearch.transforms.peft). ``qlora`` trains LoRA on an int8 weight-only base (QLoRA-style)."""

from __future__ import annotations

from effsearch.spaces.knobs import KnobDecl

ADAPTERS = ("lora", "dora", "ia3", "loha", "lokr", "qlora")
RANKED = ("lora", "dora", "loha", "lokr", "qlora")

METHOD = KnobDecl.choice(
    "method", (*ADAPTERS, "head_only", "full"), "lora", "how the pretrained weights are adapted"
)
R = KnobDecl.int("r", 1, 256, 8, "adapter rank", when={"method": RANKED})
ALPHA = KnobDecl.float(
    "alpha", 0.5, 1024.0, 16.0, "adapter scaling (alpha / r)", when={"method": RANKED}
)
DROPOUT = KnobDecl.float(
    "dropout", 0.0, 0.5, 0.05, "dropout on the adapter path", when={"method": RANKED}
)
TARGET = KnobDecl.choice(
    "target",
    ("attention", "attention_mlp", "mlp"),
    "attention",
    "adapted modules, by role (attention projections, those and the FFN, the FFN) or by name",
    when={"method": ADAPTERS},
    open_choice=r"modules:[\w.]+(,[\w.]+)*|modules:NAME,NAME (module names inside a block)",
)
ADAPTED_FRACTION = KnobDecl.float(
    "adapted_fraction",
    0.05,
    1.0,
    1.0,
    "share of the top encoder layers that get adapters",
    when={"method": ADAPTERS},
)

KNOBS = (METHOD, R, ALPHA, DROPOUT, TARGET, ADAPTED_FRACTION)
