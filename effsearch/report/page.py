"""``effsearch report``: one offline HTML page about a run.

What ran (the recipe, the optimizer and why), what it found (the plots, the Pareto set with
units, the baseline, the hypervolume, constraints and failures) and how to ship each Pareto
point (its ``effsearch export`` command). Everything is inlined: the page opens without a
network. Text from the run is escaped.
"""

from __future__ import annotations

import html
import shlex
from pathlib import Path

import optuna
from optuna.trial import TrialState

from effsearch.objectives.metrics import unit_of
from effsearch.recipe import Recipe
from effsearch.report import plots, results
from effsearch.search import records, study_front
from effsearch.search.rundir import RunDir
from effsearch.search.summary import RunSummary, trial_config

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
code, pre { background: #f6f6f6; padding: 0.1em 0.3em; }
pre { padding: 0.8em; overflow-x: auto; }
.summary { color: #444; }
"""


def report_html(run_dir: RunDir, recipe: Recipe, study: optuna.Study) -> str:
    """The whole page."""
    escape = html.escape
    summary = results.summary_lines(RunSummary.from_study(recipe, study))
    data = plots.collect(recipe, study)
    figures = plots.html_parts(data) if data.points else ["<p>No finished trial to plot yet.</p>"]
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>effsearch report: {escape(recipe.name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>effsearch report: {escape(recipe.name)}</h1>",
        f"<p class='summary'>run directory <code>{escape(str(run_dir.path))}</code></p>",
        "<ul class='summary'>" + "".join(f"<li>{escape(s)}</li>" for s in summary) + "</ul>",
        "<h2 id='pareto'>Pareto set</h2>",
        _pareto_table(run_dir, recipe, study),
        "<h2 id='plots'>Plots</h2>",
        *figures,
        _failures(study),
        "<h2 id='recipe'>Recipe</h2>",
        f"<pre>{escape(recipe.dump())}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _pareto_table(run_dir: RunDir, recipe: Recipe, study: optuna.Study) -> str:
    escape = html.escape
    front = study_front.pareto_front(study.get_trials(deepcopy=False), recipe.objectives)
    if not front:
        return "<p>No feasible trial has finished yet, so there is no Pareto set.</p>"
    first = recipe.objectives[0]
    front.sort(key=lambda t: t.values[0], reverse=first.direction == "maximize")
    knobs = list(recipe.space.searched)
    header = ["trial"]
    tested = results.test_metrics(recipe, front)
    for objective in recipe.objectives:
        unit = unit_of(objective.metric)
        arrow = "↑" if objective.direction == "maximize" else "↓"
        header.append(f"{objective.metric}{f' ({unit})' if unit else ''} {arrow}")
        if objective.metric in tested:
            header.append(f"test_{objective.metric}")
    header += [*results.short_names(knobs), "export"]
    rows = ["<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"]
    for trial in front:
        config = trial_config(recipe, trial)
        label = f"{trial.number}{' (baseline)' if trial.user_attrs.get(records.BASELINE) else ''}"
        command = shlex.join(
            ["effsearch", "export", str(run_dir.path), "--trial", str(trial.number), "--out",
             f"bundle-{trial.number}"]
        )  # fmt: skip
        cells = [f"<td>{escape(label)}</td>"]
        metrics = trial.user_attrs.get(records.METRICS, {})
        for objective, value in zip(recipe.objectives, trial.values, strict=True):
            cells.append(f"<td>{escape(results.format_value(value))}</td>")
            if objective.metric in tested:
                test = metrics.get(f"test_{objective.metric}", "–")
                cells.append(f"<td>{escape(results.format_value(test))}</td>")
        values = [config.get(k.group, {}).get(k.name, "–") for k in knobs]
        cells += [f"<td class='text'>{escape(results.format_value(v))}</td>" for v in values]
        cells.append(f"<td class='text'><code>{escape(command)}</code></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _failures(study: optuna.Study) -> str:
    failed = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if not t.user_attrs.get(records.INTERRUPTED)
    ]
    if not failed:
        return ""
    reasons: dict[str, list[int]] = {}
    for trial in failed:
        reason = str(trial.user_attrs.get(records.FAIL_REASON, "unknown"))
        reasons.setdefault(reason, []).append(trial.number)
    items = "".join(
        f"<li>{len(numbers)} x {html.escape(reason)} (trials "
        f"{', '.join(map(str, numbers[:20]))}{' ...' if len(numbers) > 20 else ''})</li>"
        for reason, numbers in sorted(reasons.items(), key=lambda kv: -len(kv[1]))
    )
    return f"<h2 id='failures'>Failed trials ({len(failed)})</h2><ul>{items}</ul>"


def write_report(run_dir: RunDir, recipe: Recipe, study: optuna.Study, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report_html(run_dir, recipe, study), encoding="utf-8")
