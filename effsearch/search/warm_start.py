"""Warm start: a new search begins with what earlier runs of the same task found.

``warm_start: {runs: [RUN_DIR, ...]}`` in a recipe. When the run's study is new, the finished
trials of each earlier run whose configuration lies in this recipe's space are added to it,
each run's Pareto set first:

- a trial whose objective and constraint metrics all carry over is added as a finished trial
  marked ``warm_start_from`` (run, trial number, which metrics carried). It does not count
  toward the budget; the optimizer, the Pareto set and the hypervolume see it.
- Metrics that follow from the configuration alone (size, parameter counts, FLOPs:
  ``objectives/noise.EXACT``) always carry. Measured ones (accuracy, latency, ...) carry only
  when the earlier trial was measured on the same kind of device, device model, torch version
  and effsearch version as this machine's.
- A Pareto member whose measured metrics cannot carry is queued to run again first instead
  (it counts toward the budget: it is a new measurement).

The run records what it did on the study (``effsearch_warm_start``); ``show`` prints it and
``show --json`` has it as ``warm_start``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from effsearch.errors import UserInputError
from effsearch.objectives import noise
from effsearch.recipe.schema import Recipe
from effsearch.search import records
from effsearch.search.rundir import RunDir
from effsearch.search.study import load_study
from effsearch.search.study_front import pareto_front
from effsearch.search.summary import trial_config
from effsearch.version import __version__

SAME_MACHINE_KEYS = ("device", "device_name", "torch_version")
"""What ``measured_on`` must share with this machine for a measured metric to carry over."""


@dataclass(frozen=True)
class EarlierRun:
    """One run named in ``warm_start.runs``, read."""

    path: Path
    recipe: Recipe
    study: optuna.Study
    effsearch_version: str


@dataclass
class Carried:
    """What a warm start did; stored on the study as ``effsearch_warm_start``."""

    runs: list[str]
    carried: int = 0
    requeued: int = 0
    outside_space: int = 0
    duplicates: int = 0
    not_carried_metrics: dict[str, str] = field(default_factory=dict)
    """Metric -> why its measured values did not carry (device or versions differ)."""

    def line(self) -> str:
        parts = [f"{self.carried} finished trials carried over from {', '.join(self.runs)}"]
        if self.requeued:
            parts.append(f"{self.requeued} Pareto members queued to be measured again here")
        if self.outside_space:
            parts.append(f"{self.outside_space} outside this recipe's space left out")
        if self.not_carried_metrics:
            why = "; ".join(f"{m}: {r}" for m, r in sorted(self.not_carried_metrics.items()))
            parts.append(f"measured metrics not carried ({why})")
        return "warm start: " + ", ".join(parts)


def read_runs(recipe: Recipe) -> list[EarlierRun]:
    """The runs of ``recipe.warm_start``, each checked to be a run of the same task.

    Raises :class:`UserInputError` naming every run that is not (exit code 2)."""
    if recipe.warm_start is None:
        return []
    problems: list[str] = []
    found: list[EarlierRun] = []
    for given in recipe.warm_start.runs:
        path = Path(given) if Path(given).is_absolute() else Path(recipe.recipe_dir) / given
        run_dir = RunDir(path)
        if not run_dir.exists():
            problems.append(
                f"warm_start.runs: {given!r} ({path}) is not an effsearch run directory "
                "(no recipe.yaml); name the --run-dir of an earlier run"
            )
            continue
        earlier, study = load_study(run_dir)
        if earlier.task != recipe.task:
            problems.append(
                f"warm_start.runs: {given!r} searched another task ({_task_text(earlier)}); "
                f"this recipe searches {_task_text(recipe)}: only runs of the same task and "
                "options can seed it"
            )
            continue
        version = run_dir.meta().get("effsearch_version", "unknown")
        found.append(EarlierRun(path, earlier, study, version))
    if problems:
        raise UserInputError("\n".join(problems))
    return found


def carry(
    study: optuna.Study,
    recipe: Recipe,
    runs: Sequence[EarlierRun],
    here: Mapping[str, str],
) -> Carried:
    """Add the earlier runs' trials to a new ``study`` (see the module docstring).

    ``here`` is this machine's ``measured_on`` (device, device_name, torch_version)."""
    outcome = Carried(runs=[str(r.path) for r in runs])
    needed = [o.metric for o in recipe.objectives] + [c.metric for c in recipe.constraints]
    seen: set[str] = set()
    for run in runs:
        finished = [
            t
            for t in run.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if records.REJECTED not in t.user_attrs
        ]
        front = {t.number for t in pareto_front(finished, run.recipe.objectives)}
        for trial in sorted(finished, key=lambda t: (t.number not in front, t.number)):
            config = trial_config(run.recipe, trial)
            params = _params_in(recipe, config)
            if params is None:
                outcome.outside_space += 1
                continue
            key = repr(sorted(params.items()))
            if key in seen:
                outcome.duplicates += 1
                continue
            seen.add(key)
            metrics = trial.user_attrs.get(records.METRICS, {})
            refused = _refusals(trial, run, here, needed)
            outcome.not_carried_metrics |= refused
            if all(m in metrics for m in needed) and not refused:
                _add(study, recipe, run, trial, config, params, metrics, needed)
                outcome.carried += 1
            elif trial.number in front:
                study.enqueue_trial(
                    params,
                    user_attrs={
                        records.WARM_START_REQUEUED: {"run": str(run.path), "trial": trial.number}
                    },
                )
                outcome.requeued += 1
    study.set_user_attr(records.STUDY_WARM_START, vars(outcome))
    return outcome


def _add(
    study: optuna.Study,
    recipe: Recipe,
    run: EarlierRun,
    trial: FrozenTrial,
    config: dict[str, Any],
    params: dict[str, Any],
    metrics: Mapping[str, float],
    needed: Sequence[str],
) -> None:
    distributions = {
        k.full_name: k.distribution for k in recipe.space.searched if k.distribution is not None
    }
    study.add_trial(
        optuna.trial.create_trial(
            params=params,
            distributions={name: distributions[name] for name in params},
            values=[float(metrics[o.metric]) for o in recipe.objectives],
            constraints={str(c): c.violation(float(metrics[c.metric])) for c in recipe.constraints},
            user_attrs={
                records.CONFIG: config,
                records.METRICS: dict(metrics),
                records.MEASURED_ON: dict(trial.user_attrs.get(records.MEASURED_ON, {})),
                records.WARM_START_FROM: {
                    "run": str(run.path),
                    "trial": trial.number,
                    "carried": sorted(needed),
                },
            },
        )
    )


def this_machine(device: str) -> dict[str, str]:
    """``measured_on``'s machine keys for ``device`` here (only the device kind when this
    process cannot see it, e.g. a driver without the GPU its Ray workers have)."""
    from effsearch.errors import TaskError
    from effsearch.objectives.meters import provenance

    try:
        return provenance(device)
    except TaskError:
        return {"device": device}


def _refusals(
    trial: FrozenTrial, run: EarlierRun, here: Mapping[str, str], needed: Sequence[str]
) -> dict[str, str]:
    """Measured metrics of ``trial`` that may not carry to this machine, with why."""
    measured_on = trial.user_attrs.get(records.MEASURED_ON, {})
    differences = [
        f"{key} {measured_on.get(key)!r} there, {here.get(key)!r} here"
        for key in SAME_MACHINE_KEYS
        if str(measured_on.get(key)) != str(here.get(key))
    ]
    if run.effsearch_version != __version__:
        differences.append(f"effsearch {run.effsearch_version} there, {__version__} here")
    if not differences:
        return {}
    return {m: "; ".join(differences) for m in needed if m not in noise.EXACT}


def _params_in(recipe: Recipe, config: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The Optuna parameters of ``config`` in ``recipe``'s space, or None if it is not a
    configuration of that space (a value out of range, a fixed knob that differs, a knob the
    space does not have)."""
    space = recipe.space
    params = space.flat_params(config)
    for knob in space.searched:
        if knob.full_name in params and not _within(knob.distribution, params[knob.full_name]):
            return None
    rebuilt = space.config_from_params(params)
    present = {g: dict(v) for g, v in config.items() if v}
    return params if {g: v for g, v in rebuilt.items() if v} == present else None


def _within(distribution: BaseDistribution | None, value: Any) -> bool:
    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    if isinstance(distribution, (FloatDistribution, IntDistribution)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not distribution.low <= value <= distribution.high:
            return False
        step = distribution.step
        if step is None:
            return True
        steps = (value - distribution.low) / step
        return math.isclose(steps, round(steps), abs_tol=1e-9)
    return False


def _task_text(recipe: Recipe) -> str:
    task = recipe.task
    name = f"builtin {task.builtin}" if task.builtin else f"entrypoint {task.entrypoint}"
    return f"{name} with options {dict(task.options)}" if task.options else name
