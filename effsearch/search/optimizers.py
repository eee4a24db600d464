"""Optimizer names -> Optuna samplers.

Every factory takes an :class:`OptimizerRequest` and returns a seeded sampler that reads
constraints from ``trial.set_constraint`` (Optuna 5). ``auto`` picks one of the others and says
why; the runner stores that choice with the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from effsearch.errors import UserInputError
from effsearch.objectives import noise
from effsearch.objectives.goals import Constraint, Objective
from effsearch.registry import lookup, register
from effsearch.search import records, study_front
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
    objectives: Sequence[Objective] = ()
    constraints: Sequence[Constraint] = ()
    typical_trial_s: float | None = None
    """What the task says one trial costs (None: unknown, assumed expensive)."""
    """The recipe's objectives and constraints: they fix the run's reference point. Without
    them (a bare study), the objectives are the study's directions with no recipe bounds."""


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
    except (TypeError, ValueError) as exc:
        raise UserInputError(
            f"optimizer.options do not fit optimizer {name!r}: {exc}. "
            "They are passed to the sampler as keyword arguments."
        ) from exc


BOTORCH_MAX_TRIALS = 300
"""Above this budget a GP's cubic fit and the growing Pareto set cost more than they save."""
BOTORCH_MIN_TRIAL_S = 30.0
"""Below this many seconds per trial, botorch's 0.2-3 s per suggestion (on the driver's CPU,
next to the trials) costs more wall time than its better proposals save."""
BOTORCH_MAX_COLUMNS = 40
"""Above this many encoded dimensions (one-hot choices count each choice) a GP models poorly."""


def _auto_choice(request: OptimizerRequest) -> tuple[str, str]:
    """The rule behind ``auto``, from benchmarks/README.md ("Optimizers", "Noise-aware botorch",
    "Categorical and mixed spaces"): at 100 evaluations botorch reached the highest median
    hypervolume of every sampler tried on ZDT1-3 and DTLZ2, their noisy versions and the
    NAS-cell categorical and mixed spaces (5 seeds each); its seconds per suggestion grow with
    the trials and the Pareto set, hence the limits. On the digits recipe (2-second trials)
    multivariate TPE reached more hypervolume per minute of wall time than a GP."""
    conditional = any(k.when for k in request.space.searched)
    if request.n_objectives > 3:
        return "nsga3", f"{request.n_objectives} objectives: reference-point NSGA-III keeps spread"
    columns = _encoded_columns(request.space)
    cheap = request.typical_trial_s is not None and request.typical_trial_s < BOTORCH_MIN_TRIAL_S
    if (
        request.trials is not None
        and request.trials <= BOTORCH_MAX_TRIALS
        and columns <= BOTORCH_MAX_COLUMNS
        and not cheap
    ):
        return "botorch", (
            f"a budget of {request.trials} trials (<= {BOTORCH_MAX_TRIALS}), "
            f"{request.n_objectives} objectives and {columns} encoded dimensions: at 100 "
            "evaluations botorch reached the highest median hypervolume of the samplers "
            "benchmarked on continuous, noisy, categorical and mixed problems"
            + (", pending trials keep parallel workers apart" if request.workers > 1 else "")
        )
    why_not_gp = (
        f"trials of this task take about {request.typical_trial_s:g} s"
        if cheap
        else "no trial budget (wall-clock only)"
        if request.trials is None
        else f"{request.trials} trials"
        if request.trials > BOTORCH_MAX_TRIALS
        else f"{columns} encoded dimensions"
    )
    handles = ["costs milliseconds per trial"]
    if conditional:
        handles.append("models conditional knobs by group")
    if request.workers > 1:
        handles.append(f"keeps {request.workers} parallel workers apart (constant liar)")
    return "tpe", f"{why_not_gp}: a GP would cost more time than it saves; multivariate TPE " + (
        ", ".join(handles)
    )


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


@register("optimizer", "botorch")
def _botorch(request: OptimizerRequest) -> optuna.samplers.BaseSampler:
    from effsearch.search.botorch_sampler import BoTorchSampler

    def reference(study: optuna.Study) -> list[float] | None:
        objectives = list(request.objectives) or [
            Objective.model_validate({"metric": f"objective {i}", "direction": d.name.lower()})
            for i, d in enumerate(study.directions)
        ]
        found = study_front.fixed_reference(study, objectives, request.constraints, store=True)
        return found.values if found is not None else None

    options = {
        "n_startup_trials": max(study_front.infer_from(request.n_objectives), 10),
        **request.options,
    }
    return BoTorchSampler(
        request.space, reference, seed=request.seed, noise=_measured_noise(request), **options
    )


def _measured_noise(
    request: OptimizerRequest,
) -> Callable[[optuna.trial.FrozenTrial], tuple[list[float | None], dict[str, float | None]]]:
    """A trial's measurement variances, read from its recorded metrics (``objectives/noise``).
    A rejected trial's objective values are imputed, not measured: unknown."""

    def variances(
        trial: optuna.trial.FrozenTrial,
    ) -> tuple[list[float | None], dict[str, float | None]]:
        metrics = trial.user_attrs.get(records.METRICS, {})
        constraints = {str(c): noise.variance(c.metric, metrics) for c in request.constraints}
        if records.REJECTED in trial.user_attrs or not request.objectives:
            return [None] * request.n_objectives, constraints
        return [noise.variance(o.metric, metrics) for o in request.objectives], constraints

    return variances


def _encoded_columns(space: SearchSpace) -> int:
    return sum(
        len(k.distribution.choices)
        if isinstance(k.distribution, optuna.distributions.CategoricalDistribution)
        else 1
        for k in space.searched
    )


def _population(request: OptimizerRequest) -> int:
    # Optuna's default of 50 leaves a 40-trial budget in random sampling; aim for >= 4 generations.
    if request.trials is None:
        return 50
    return max(4, min(50, request.trials // 4))
