"""What a run found, as rich tables and summary lines (the data: ``effsearch.search.summary``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from effsearch.objectives.metrics import unit_of
from effsearch.recipe import Recipe
from effsearch.search import records
from effsearch.search.study_front import pareto_front
from effsearch.search.summary import RunSummary, trial_config
from effsearch.search.warm_start import Carried
from effsearch.spaces.knobs import Knob


def pareto_table(
    recipe: Recipe, study: optuna.Study, title: str = "Pareto set", limit: int | None = None
) -> Table:
    """The Pareto set, one row per trial: objectives first, then the searched knobs."""
    front = pareto_front(study.get_trials(deepcopy=False), recipe.objectives)
    first = recipe.objectives[0]
    front.sort(key=lambda t: t.values[0], reverse=first.direction == "maximize")
    shown = front[:limit] if limit else front
    finished = sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())
    table = Table(
        title=f"{title} ({len(front)} of {finished} finished trials)", title_justify="left"
    )
    table.add_column("trial", justify="right")
    tested = test_metrics(recipe, front)
    for objective in recipe.objectives:
        arrow = "↑" if objective.direction == "maximize" else "↓"
        unit = unit_of(objective.metric)
        table.add_column(
            f"{objective.metric}{f' ({unit})' if unit else ''} {arrow}", justify="right"
        )
        if objective.metric in tested:
            table.add_column(f"test_{objective.metric}", justify="right", style="dim")
    knobs = list(recipe.space.searched)
    for _knob, header in zip(knobs, short_names(knobs), strict=True):
        table.add_column(header, justify="left")
    for trial in shown:
        config = trial_config(recipe, trial)
        label = str(trial.number) + (" base" if trial.user_attrs.get(records.BASELINE) else "")
        carried = trial.user_attrs.get(records.WARM_START_FROM)
        if carried:
            label += f" (was {carried['trial']})"
        row = [label]
        metrics = trial.user_attrs.get(records.METRICS, {})
        for objective, value in zip(recipe.objectives, trial.values, strict=True):
            row.append(format_value(value))
            if objective.metric in tested:
                row.append(format_value(metrics.get(f"test_{objective.metric}", "–")))
        row += [format_value(config.get(k.group, {}).get(k.name, "–")) for k in knobs]
        table.add_row(*row)
    notes = []
    if limit and len(front) > limit:
        notes.append(f"… {len(front) - limit} more: effsearch show")
    if any(records.WARM_START_FROM in t.user_attrs for t in shown):
        notes.append("(was N): carried over by warm start from trial N of an earlier run")
    if notes:
        table.caption = "; ".join(notes)
    return table


def test_metrics(recipe: Recipe, trials: Sequence[FrozenTrial]) -> set[str]:
    """Objectives the trials also measured on the test split (``test_<metric>``): shown next
    to the validation figure the optimizer saw, never optimized."""
    return {
        o.metric
        for o in recipe.objectives
        if any(f"test_{o.metric}" in t.user_attrs.get(records.METRICS, {}) for t in trials)
    }


def short_names(knobs: Sequence[Knob]) -> list[str]:
    """Knob names without their group where that is still unambiguous."""
    bare = [k.name for k in knobs]
    return [k.name if bare.count(k.name) == 1 else k.full_name for k in knobs]


def summary_lines(summary: RunSummary) -> list[str]:
    """The run in a few lines: counts, optimizer, hypervolume, baseline, constraints, stop."""
    counts = summary.counts
    parts = [f"{counts.get(state, 0)} {state.lower()}" for state in ("COMPLETE", "FAIL")]
    if counts.get("PRUNED"):
        parts.append(f"{counts['PRUNED']} stopped early")
    if counts.get("interrupted"):
        parts.append(f"{counts['interrupted']} of them interrupted (re-run)")
    lines = [f"{summary.recipe.name}: {len(summary.trials)} trials ({', '.join(parts)})"]
    optimizer = summary.optimizer
    if optimizer:
        lines.append(f"optimizer: {optimizer.get('name', '?')} ({optimizer.get('reason', '')})")
    if summary.reference is not None and summary.hypervolume is not None:
        point = ", ".join(format_value(v) for v in summary.reference.values)
        lines.append(
            f"hypervolume {summary.hypervolume:.4g} (reference point [{point}], "
            f"{summary.reference.source})"
        )
    if summary.warm_start:
        lines.append(Carried(**summary.warm_start).line())
    if summary.cost_predictor:
        lines.append(predictor_line(summary.cost_predictor))
    baseline = baseline_line(summary)
    if baseline:
        lines.append(baseline)
    lines += constraint_lines(summary)
    lines += confirmed_lines(summary)
    for gap in summary.within_noise():
        a, b = gap["trials"]
        lines.append(
            f"{gap['metric']}: trials {a} and {b} differ by {format_value(gap['difference'])}, "
            f"less than its measurement spread ({format_value(gap['spread'])}, IQR of the "
            "repeats): not a difference to rely on"
        )
    if summary.stopped_early:
        lines.append(f"stopped early: {summary.stopped_early}")
    return lines


def predictor_line(found: dict[str, Any]) -> str:
    """What the cost predictor did: rank correlation, rejections, compute saved, rechecks."""
    correlations = ", ".join(
        f"{metric} {rho:.2f}" if rho is not None else f"{metric} n/a"
        for metric, rho in found["rank_correlation"].items()
    )
    saved_s = format_value(found["compute_saved_s_est"])
    line = (
        f"cost predictor: {found['predicted']} trials ran with a prediction (rank correlation "
        f"with the measured value: {correlations or 'none yet'}); {found['rejected']} "
        f"configurations rejected by prediction, about {saved_s} s saved (estimated: "
        "each at the median time of a rejection before training, else of a trial)"
    )
    if found["rechecks"]:
        line += (
            f"; {found['rechecks']} would-be rejections run to check, {found['false_rejections']} "
            "of them met every constraint (false rejections)"
        )
    return line


def confirmed_lines(summary: RunSummary) -> list[str]:
    """One line per confirmed front member: how often it stays on the front, its figures."""
    lines = []
    first = summary.recipe.objectives[0].metric
    for number, confirmed in summary.confirmed.items():
        shaky = " (shaky: on the front by the luck of the seed?)"
        mean = confirmed.metrics_mean.get(first)
        spread = confirmed.metrics_std.get(first)
        figures = (
            f"; {first} {format_value(mean)} ± {format_value(spread)}"
            if mean is not None and spread is not None
            else ""
        )
        lines.append(
            f"trial {number} confirmed on {len(confirmed.seeds)} seeds: on the front in "
            f"{confirmed.pareto_probability:.0%} of resamples"
            f"{shaky if confirmed.pareto_probability < 0.5 else ''}{figures}"
        )
    return lines


def baseline_line(summary: RunSummary) -> str | None:
    """How the baseline (uncompressed) trial scored, and the best cost improvement over it."""
    base, objectives, front = summary.baseline, summary.recipe.objectives, summary.pareto
    if base is None:
        return None
    parts = [f"{o.metric} {format_value(v)}" for o, v in zip(objectives, base.values, strict=True)]
    line = f"baseline (trial {base.number}, uncompressed fp32): " + ", ".join(parts)
    gains = []
    for i, objective in enumerate(objectives):
        if objective.direction != "minimize" or base.values[i] <= 0 or not front:
            continue
        best = min(t.values[i] for t in front)
        if best > 0:
            gains.append(f"{objective.metric} {base.values[i] / best:.1f}x lower")
    if gains:
        line += "; best on the Pareto set: " + ", ".join(gains)
    return line


def constraint_lines(summary: RunSummary) -> list[str]:
    """Per constraint, how many trials that ran to the end meet it."""
    done = [
        t
        for t in summary.trials
        if t.state == TrialState.COMPLETE and not t.user_attrs.get(records.REJECTED)
    ]
    lines = []
    for constraint in summary.recipe.constraints:
        values = [t.user_attrs.get(records.METRICS, {}).get(constraint.metric) for t in done]
        met = sum(1 for v in values if v is not None and constraint.violation(float(v)) <= 0)
        lines.append(f"constraint {constraint}: met by {met} of {len(done)} finished trials")
    rejected = [
        t
        for t in summary.trials
        if t.user_attrs.get(records.REJECTED)
        and records.REJECTED_BY_PREDICTION not in t.user_attrs  # the predictor's line says those
    ]
    if rejected:
        # before any trial has values to impute, a rejection can only be told as failed
        failed = sum(1 for t in rejected if t.state == TrialState.FAIL)
        lines.append(
            f"{len(rejected)} configurations rejected before training (a constraint on "
            "size, params, FLOPs or untrained latency, or an engine that cannot run them)"
            + (
                f"; {failed} of them recorded as failed (no trial had finished yet whose "
                "values could stand in for theirs)"
                if failed
                else ""
            )
        )
    return lines


def print_summary(console: Console, summary: RunSummary, run_dir: Path) -> None:
    """What ``show`` prints, and ``run`` at its end: counts, the Pareto set, the rest."""
    lines = summary_lines(summary)
    console.print(lines[0], markup=False)
    console.print(pareto_table(summary.recipe, summary.study))
    for line in lines[1:]:
        console.print(line, markup=False)
    failures = failures_table(summary.study)
    if failures is not None:
        console.print(failures)
    console.print(f"details: effsearch show {run_dir} --json", markup=False)


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
