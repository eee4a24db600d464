"""What a run found, as data (``show --json``) and as rich tables; read from the study alone."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from effsearch.objectives.metrics import unit_of
from effsearch.recipe import Recipe
from effsearch.search import records
from effsearch.search.pareto import (
    fixed_reference,
    hypervolume,
    hypervolume_history,
    is_feasible,
    pareto_front,
)
from effsearch.spaces.knobs import Knob


def trial_config(recipe: Recipe, trial: FrozenTrial) -> dict[str, Any]:
    """The nested configuration of a trial (including fixed knobs)."""
    config = trial.user_attrs.get(records.CONFIG)
    if config is None:
        # A queued (WAITING) trial has no params yet; Optuna keeps the ones it will run with.
        params = trial.params or trial.system_attrs.get("fixed_params", {})
        config = recipe.space.config_from_params(params)
    return dict(config)


def trial_record(recipe: Recipe, trial: FrozenTrial) -> dict[str, Any]:
    """One trial as ``show --json`` prints it."""
    complete = trial.state == TrialState.COMPLETE
    record: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.name,
        "params": trial_config(recipe, trial),
        "values": list(trial.values) if complete and trial.values is not None else None,
        "metrics": dict(trial.user_attrs.get(records.METRICS, {})),
        "feasible": is_feasible(trial) if complete else None,
        "constraints": dict(trial.constraints),
        "baseline": bool(trial.user_attrs.get(records.BASELINE, False)),
        "duration_s": trial.user_attrs.get(records.DURATION),
        "suggest_s": trial.user_attrs.get(records.SUGGEST_S),
    }
    if trial.state == TrialState.FAIL:
        record["fail_reason"] = trial.user_attrs.get(records.FAIL_REASON, "unknown")
    for key in (
        records.RETRY_OF,
        records.NOTES,
        records.MEASURED_ON,
        records.REJECTED,
        records.STOPPED,
        records.HISTORY,
    ):
        if key in trial.user_attrs:
            record[key] = trial.user_attrs[key]
    return record


def show_document(recipe: Recipe, study: optuna.Study) -> dict[str, Any]:
    """The ``show --json`` document (DESIGN.md, public contract)."""
    trials = study.get_trials(deepcopy=False)
    reference = fixed_reference(study, recipe.objectives, recipe.constraints, store=False)
    optimizer = study.user_attrs.get(records.STUDY_OPTIMIZER, {})
    return {
        "name": recipe.name,
        "objectives": [{"name": o.metric, "direction": o.direction} for o in recipe.objectives],
        "constraints": [str(c) for c in recipe.constraints],
        "optimizer": optimizer,
        "trials": [trial_record(recipe, t) for t in trials],
        "pareto": [t.number for t in pareto_front(study)],
        "hypervolume": hypervolume(trials, recipe.objectives, reference),
        "reference_point": reference.values if reference else None,
        "reference_point_source": reference.source if reference else None,
        "hypervolume_history": hypervolume_history(trials, recipe.objectives, reference),
        "stopped_early": study.user_attrs.get(records.STUDY_STOPPED_EARLY),
    }


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state name, plus ``interrupted`` (failed by a stop, re-run later)."""
    out: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        out[trial.state.name] = out.get(trial.state.name, 0) + 1
        if trial.user_attrs.get(records.INTERRUPTED):
            out["interrupted"] = out.get("interrupted", 0) + 1
    return out


def pareto_table(
    recipe: Recipe, study: optuna.Study, title: str = "Pareto set", limit: int | None = None
) -> Table:
    """The Pareto set, one row per trial: objectives first, then the searched knobs."""
    front = pareto_front(study)
    first = recipe.objectives[0]
    front.sort(key=lambda t: t.values[0], reverse=first.direction == "maximize")
    shown = front[:limit] if limit else front
    finished = sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())
    table = Table(
        title=f"{title} ({len(front)} of {finished} finished trials)", title_justify="left"
    )
    table.add_column("trial", justify="right")
    for objective in recipe.objectives:
        arrow = "↑" if objective.direction == "maximize" else "↓"
        unit = unit_of(objective.metric)
        table.add_column(
            f"{objective.metric}{f' ({unit})' if unit else ''} {arrow}", justify="right"
        )
    knobs = list(recipe.space.searched)
    for _knob, header in zip(knobs, short_names(knobs), strict=True):
        table.add_column(header, justify="left")
    for trial in shown:
        config = trial_config(recipe, trial)
        label = str(trial.number) + (" base" if trial.user_attrs.get(records.BASELINE) else "")
        row = [label] + [format_value(v) for v in trial.values]
        row += [format_value(config.get(k.group, {}).get(k.name, "–")) for k in knobs]
        table.add_row(*row)
    if limit and len(front) > limit:
        table.caption = f"… {len(front) - limit} more: effsearch show"
    return table


def short_names(knobs: Sequence[Knob]) -> list[str]:
    """Knob names without their group where that is still unambiguous."""
    bare = [k.name for k in knobs]
    return [k.name if bare.count(k.name) == 1 else k.full_name for k in knobs]


def baseline_line(recipe: Recipe, study: optuna.Study) -> str | None:
    """How the baseline (uncompressed) trial scored, and the best cost improvement over it."""
    base = next(
        (
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get(records.BASELINE)
        ),
        None,
    )
    if base is None:
        return None
    parts = [
        f"{o.metric} {format_value(v)}" for o, v in zip(recipe.objectives, base.values, strict=True)
    ]
    line = f"baseline (trial {base.number}, uncompressed fp32): " + ", ".join(parts)
    front = pareto_front(study)
    gains = []
    for i, objective in enumerate(recipe.objectives):
        if objective.direction != "minimize" or base.values[i] <= 0 or not front:
            continue
        best = min(t.values[i] for t in front)
        if best > 0:
            gains.append(f"{objective.metric} {base.values[i] / best:.1f}x lower")
    if gains:
        line += "; best on the Pareto set: " + ", ".join(gains)
    return line


def constraint_lines(recipe: Recipe, study: optuna.Study) -> list[str]:
    """Per constraint, how many trials that ran to the end meet it."""
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not t.user_attrs.get(records.REJECTED)
    ]
    lines = []
    for constraint in recipe.constraints:
        values = [t.user_attrs.get(records.METRICS, {}).get(constraint.metric) for t in done]
        met = sum(1 for v in values if v is not None and constraint.violation(float(v)) <= 0)
        lines.append(f"constraint {constraint}: met by {met} of {len(done)} finished trials")
    rejected = sum(
        1 for t in study.get_trials(deepcopy=False) if t.user_attrs.get(records.REJECTED)
    )
    if rejected:
        lines.append(
            f"{rejected} configurations rejected before training (a constraint on "
            "size, params, FLOPs or untrained latency)"
        )
    return lines


def failures_table(study: optuna.Study, limit: int = 10) -> Table | None:
    failed = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if not t.user_attrs.get(records.INTERRUPTED)
    ]
    if not failed:
        return None
    table = Table(title=f"Failed trials ({len(failed)})", title_justify="left")
    table.add_column("trial", justify="right")
    table.add_column("reason")
    for trial in failed[-limit:]:
        table.add_row(str(trial.number), str(trial.user_attrs.get(records.FAIL_REASON, "unknown")))
    return table


def format_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (
        math.isfinite(value) and value == int(value) and abs(value) >= 1e3
    ):
        return f"{int(value):,}"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 0.01:
        return f"{value:.4g}"
    return f"{value:.3g}"
