"""Where a task's uncompressed baseline lies in a recipe's search space."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.distributions import CategoricalDistribution, IntDistribution

from effsearch.spaces.knobs import KnobDecl, SearchSpace


def baseline_params(
    space: SearchSpace,
    baseline: Mapping[str, Mapping[str, Any]],
    families: Mapping[str, tuple[KnobDecl, ...]],
) -> dict[str, Any] | None:
    """Optuna parameters of the task's uncompressed configuration inside ``space``.

    Groups the task names in ``baseline`` take those values; any other searched knob takes its
    declared default, clipped into the recipe's range. None if a baseline value is not in range.
    """
    values: dict[str, Any] = {}
    for knob in space.knobs:
        if not knob.is_active(values):
            continue
        if knob.group in baseline and knob.name in baseline[knob.group]:
            value = baseline[knob.group][knob.name]
        elif knob.searched:
            decl = {d.name: d for d in families.get(knob.group, ())}.get(knob.name)
            if decl is None:
                return None
            value = _clip(decl.default, knob.distribution)
        else:
            value = knob.fixed
        if knob.searched:
            if not _in_space(value, knob.distribution):
                return None
        elif value != knob.fixed:
            return None
        values[knob.full_name] = value
    return {k.full_name: values[k.full_name] for k in space.searched if k.full_name in values}


def _in_space(value: Any, distribution: Any) -> bool:
    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    return bool(distribution.low <= value <= distribution.high)


def _clip(value: Any, distribution: Any) -> Any:
    low = getattr(distribution, "low", None)
    high = getattr(distribution, "high", None)
    if low is None or high is None:
        return value
    clipped = min(max(value, low), high)
    return int(clipped) if isinstance(distribution, IntDistribution) else clipped
