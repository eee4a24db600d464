"""Knobs grouped by technique: each module declares its knobs and applies them to a model.

Built-in tasks pick the knobs they support (``Task.families``).
"""

from __future__ import annotations

from effsearch.spaces.knobs import Knob, KnobDecl, SearchSpace

__all__ = ["Knob", "KnobDecl", "SearchSpace"]
