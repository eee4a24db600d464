"""The recipe ``effsearch init`` writes: the built-in quickstart recipe."""

from __future__ import annotations

from importlib import resources

STARTER_RECIPE = (
    resources.files("effsearch").joinpath("recipes/quickstart.yaml").read_text(encoding="utf-8")
)
