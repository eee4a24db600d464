"""Optimizer names -> Optuna samplers.

Every factory takes an :class:`OptimizerRequest` and returns a seeded sampler that reads
constraints from ``trial.set_constraint`` (Optuna 5). ``auto`` picks one of the others and says
why; the runner stores that choice with the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from effsearch.errors import UserInputError
from effsearch.registry import lookup, register
from effsearch.spaces.knobs import SearchSpace


@dataclass(frozen=True)
class OptimizerRequest:
    """What an optimizer may depend on."""

    seed: int
    n_objectives: int
    space: SearchSpace
    workers: int
    trials: int | None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Choice:
    """The sampler to use, and why (``auto`` explains itself; explicit names say so)."""

    name: str
    sampler: optuna.samplers.BaseSampler
    reason: str


Factory = Callable[[OptimizerRequest], optuna.samplers.BaseSampler]


def make_sampler(name: str, request: OptimizerRequest) -> Choice:
    """Build the sampler registered as ``name`` (resolving ``auto``)."""
    if name == "auto":
        chosen, reason = _auto_choice(request)
        return Choice(chosen, _build(chosen, request), f"auto chose {chosen}: {reason}")
    return Choice(name, _build(name, request), "named in the recipe")


def _build(name: str, request: OptimizerRequest) -> optuna.samplers.BaseSampler:
    factory: Factory = lookup("optimizer", name)
    try:
        return factory(request)
    except TypeError as exc:
        raise UserInputError(
            f"optimizer.options do not fit optimizer {name!r}: {exc}. "
            "They are passed to the Optuna sampler as keyword arguments."
        ) from exc


def _auto_choice(request: OptimizerRequest) -> tuple[str, str]:
    conditional = any(k.when for k in request.space.searched)
    if request.n_objectives > 3:
        return "nsga3", f"{request.n_objectives} objectives: reference-point NSGA-III keeps spread"
    if conditional or request.workers > 1:
        why = []
        if conditional:
            why.append("the space has conditional knobs")
        if request.workers > 1:
            why.append(f"{request.workers} parallel workers (constant liar avoids duplicates)")
        return "tpe", " and ".join(why) + "; multivariate grouped TPE handles both"
    return "tpe", "small sequential budget; multivariate TPE is cheap and sample-efficient"


@register("optimizer", "auto")
def _auto(request: OptimizerRequest) -> optuna.samplers.BaseSampler:
    return _build(_auto_choice(request)[0], request)


@register("optimizer", "random")
def _random(request: OptimizerRequest) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=request.seed, **request.options)


@register("optimizer", "tpe")
def _tpe(request: OptimizerRequest) -> optuna.samplers.BaseSampler:
    options = {
        "multivariate": True,
        "group": True,  # conditional knobs: model each active subspace jointly
        "constant_liar": request.workers > 1,
        "n_startup_trials": 10,
        **request.options,
    }
    return optuna.samplers.TPESampler(seed=request.seed, **options)


@register("optimizer", "nsga2")
def _nsga2(request: OptimizerRequest) -> optuna.samplers.BaseSampler:
    options = {"population_size": _population(request), **request.options}
    return optuna.samplers.NSGAIISampler(seed=request.seed, **options)


@register("optimizer", "nsga2_dynamic")
def _nsga2_dynamic(request: OptimizerRequest) -> optuna.samplers.BaseSampler:
    from effsearch.search.dynamic_nsga2 import DynamicNSGAIISampler

    mu = _population(request)
    options = {"mu": mu, "tau": max(4, mu // 2), **request.options}
    return DynamicNSGAIISampler(seed=request.seed, **options)


@register("optimizer", "nsga3")
def _nsga3(request: OptimizerRequest) -> optuna.samplers.BaseSampler:
    options = {"population_size": _population(request), **request.options}
    return optuna.samplers.NSGAIIISampler(seed=request.seed, **options)


@register("optimizer", "gp")
def _gp(request: OptimizerRequest) -> optuna.samplers.BaseSampler:
    # Conditional knobs are sampled independently by design; one warning per trial is noise.
    options = {"warn_independent_sampling": False, **request.options}
    return optuna.samplers.GPSampler(seed=request.seed, **options)


def _population(request: OptimizerRequest) -> int:
    # Optuna's default of 50 leaves a 40-trial budget in random sampling; aim for >= 4 generations.
    if request.trials is None:
        return 50
    return max(4, min(50, request.trials // 4))
