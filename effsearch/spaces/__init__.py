"""Knobs grouped by technique. Each module declares ``KNOBS``; built-in tasks apply them."""

from __future__ import annotations

from effsearch.spaces import architecture, pruning, quantization, training
from effsearch.spaces.knobs import Knob, KnobDecl, SearchSpace

FAMILIES: dict[str, tuple[KnobDecl, ...]] = {
    "architecture": architecture.KNOBS,
    "pruning": pruning.KNOBS,
    "quantization": quantization.KNOBS,
    "training": training.KNOBS,
}
"""Technique group -> the knobs it declares, in the order they are sampled."""

__all__ = ["FAMILIES", "Knob", "KnobDecl", "SearchSpace"]
