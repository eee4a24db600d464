"""Pictures of a run: the Pareto front, hypervolume over trials, and the knobs of every trial.

``effsearch plot RUN_DIR --out X.png`` draws them with matplotlib in one figure; ``--out X.html``
with plotly, in one self-contained page (plotly.js inlined: it opens offline). Both read the
same :class:`PlotData`, collected from the study alone.

Front panels (every pair of objectives, for 3 and more): feasible trials on the Pareto set,
feasible dominated ones, infeasible ones (breaking a constraint) and trials stopped early (at
their last reported metrics) are drawn apart; the baseline is ringed; constraint limits on an
axis are dashed lines; confirmed members carry error bars, shaky ones a cross. Axis labels carry
the unit and which way is better.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from effsearch.errors import ArgumentError
from effsearch.objectives.metrics import unit_of
from effsearch.recipe import Constraint, Recipe
from effsearch.search import records, study_front
from effsearch.search.summary import RunSummary, trial_config

KINDS = ("Pareto set", "dominated", "infeasible", "stopped early")
"""How a trial is drawn, in drawing order (later kinds lie under earlier ones)."""
COLORS = {
    "Pareto set": "#d62728",
    "dominated": "#1f77b4",
    "infeasible": "#7f7f7f",
    "stopped early": "#ff7f0e",
}


@dataclass
class Point:
    number: int
    kind: str
    values: list[float]  # in objective order
    baseline: bool = False
    spread: list[float] | None = None
    """Standard deviation per objective over its confirmation runs (effsearch confirm)."""
    shaky: bool = False
    """Confirmed, but on the front in under half the bootstrap resamples."""


@dataclass
class KnobAxis:
    """One axis of the parallel coordinates: a searched knob, values scaled to [0, 1]."""

    label: str
    positions: dict[int, float]  # trial number -> position (absent: knob inactive)
    ticks: list[tuple[float, str]]


@dataclass
class PlotData:
    name: str
    objectives: list[tuple[str, str]]  # (metric, direction)
    constraints: list[Constraint]
    points: list[Point]
    history: list[tuple[int, float]]  # (finished trials, hypervolume)
    knobs: list[KnobAxis] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)  # why -> how many trials

    def label(self, metric: str) -> str:
        direction = dict(self.objectives).get(metric)
        better = {"maximize": "higher is better", "minimize": "lower is better"}.get(
            direction or "", ""
        )
        unit = unit_of(metric)
        inside = ", ".join(p for p in (unit, better) if p)
        return f"{metric} ({inside})" if inside else metric


def collect(recipe: Recipe, study: optuna.Study) -> PlotData:
    """What the plots show, from the study alone."""
    metrics = [o.metric for o in recipe.objectives]
    summary = RunSummary.from_study(recipe, study)
    front = {t.number for t in summary.pareto}
    points: list[Point] = []
    left_out: dict[str, int] = {}
    trials = summary.trials
    for trial in trials:
        drawn = _point(trial, metrics, front)
        if isinstance(drawn, str):
            left_out[drawn] = left_out.get(drawn, 0) + 1
        else:
            points.append(drawn)
    history = [(int(h["finished"]), float(h["hypervolume"])) for h in summary.hypervolume_history]
    for point in points:
        confirmed = summary.confirmed.get(point.number)
        if confirmed is not None:
            point.spread = [confirmed.metrics_std.get(m, 0.0) for m in metrics]
            point.shaky = confirmed.pareto_probability < 0.5
    numbers = {p.number for p in points}
    return PlotData(
        name=recipe.name,
        objectives=[(o.metric, o.direction) for o in recipe.objectives],
        constraints=list(recipe.constraints),
        points=points,
        history=history,
        knobs=_knob_axes(recipe, [t for t in trials if t.number in numbers]),
        left_out=left_out,
    )


def _point(trial: optuna.trial.FrozenTrial, metrics: Sequence[str], front: set[int]) -> Point | str:
    """How to draw a trial, or why it is not drawn."""
    recorded = trial.user_attrs.get(records.METRICS, {})
    baseline = bool(trial.user_attrs.get(records.BASELINE))
    if trial.state == TrialState.COMPLETE:
        if trial.user_attrs.get(records.REJECTED):
            return "rejected before training (no trained metrics)"
        if trial.number in front:
            kind = "Pareto set"
        else:
            kind = "dominated" if study_front.is_feasible(trial) else "infeasible"
        return Point(trial.number, kind, list(trial.values), baseline)
    if trial.state == TrialState.PRUNED:
        if all(m in recorded for m in metrics):
            return Point(trial.number, "stopped early", [float(recorded[m]) for m in metrics])
        return "stopped early before every objective was reported"
    return "failed" if trial.state == TrialState.FAIL else trial.state.name.lower()


def _knob_axes(recipe: Recipe, trials: Sequence[optuna.trial.FrozenTrial]) -> list[KnobAxis]:
    axes = []
    for knob in recipe.space.searched:
        dist = knob.distribution
        values = {
            t.number: trial_config(recipe, t).get(knob.group, {}).get(knob.name) for t in trials
        }
        values = {n: v for n, v in values.items() if v is not None}
        if isinstance(dist, CategoricalDistribution):
            choices = list(dist.choices)
            step = 1.0 / max(1, len(choices) - 1)
            positions = {n: choices.index(v) * step for n, v in values.items() if v in choices}
            ticks = [(i * step, str(c)) for i, c in enumerate(choices)]
        elif isinstance(dist, (FloatDistribution, IntDistribution)):
            low, high, log = float(dist.low), float(dist.high), bool(dist.log)

            def scale(v: float, low: float = low, high: float = high, log: bool = log) -> float:
                if high == low:
                    return 0.5
                if log:
                    return (math.log(v) - math.log(low)) / (math.log(high) - math.log(low))
                return (v - low) / (high - low)

            positions = {n: scale(float(v)) for n, v in values.items()}
            ticks = [(0.0, f"{low:g}"), (1.0, f"{high:g}")]
        else:
            continue
        axes.append(KnobAxis(knob.full_name, positions, ticks))
    return axes


# ----------------------------------------------------------------------------- writing
def write(data: PlotData, out: Path) -> None:
    """``out``'s suffix picks the format: .png (matplotlib) or .html (plotly, offline)."""
    suffix = out.suffix.lower()
    if suffix not in (".png", ".html"):
        raise ArgumentError(
            f"--out {out}: the file name must end in .png (a picture) or .html (interactive, "
            "works offline)"
        )
    if not data.points:
        raise ArgumentError(
            "the run has no finished trial with its objectives to plot yet; see effsearch show"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        png_figure(data).savefig(out, dpi=110)
    else:
        out.write_text(html_page(data), encoding="utf-8")


def _pairs(data: PlotData) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(len(data.objectives)), 2))


TITLE_WORDS = {"Pareto set": "on the Pareto set"}


def _title(data: PlotData) -> str:
    shown = ", ".join(
        f"{sum(p.kind == k for p in data.points)} {TITLE_WORDS.get(k, k)}"
        for k in KINDS
        if any(p.kind == k for p in data.points)
    )
    skipped = "; not drawn: " + ", ".join(f"{n} {why}" for why, n in data.left_out.items())
    return f"{data.name}: {shown}{skipped if data.left_out else ''}"


def png_figure(data: PlotData) -> Any:
    """The matplotlib figure: front panels, then hypervolume and knobs side by side."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    pairs = _pairs(data)
    columns = min(3, len(pairs))
    rows = math.ceil(len(pairs) / columns)
    figure = plt.figure(figsize=(5.2 * max(columns, 2), 4.4 * (rows + 1)), layout="constrained")
    grid = figure.add_gridspec(rows + 1, max(columns, 2) * 2)
    for index, (i, j) in enumerate(pairs):
        row, column = divmod(index, columns)
        span = 2 * max(columns, 2) // columns
        axes = figure.add_subplot(grid[row, column * span : (column + 1) * span])
        _front_panel(axes, data, i, j)
    _history_panel(figure.add_subplot(grid[rows, : max(columns, 2)]), data)
    _knobs_panel(figure.add_subplot(grid[rows, max(columns, 2) :]), data)
    figure.suptitle(_title(data), fontsize=11)
    return figure


def _front_panel(axes: Any, data: PlotData, i: int, j: int) -> None:
    x_metric, y_metric = data.objectives[i][0], data.objectives[j][0]
    for kind in reversed(KINDS):
        chosen = [p for p in data.points if p.kind == kind]
        if not chosen:
            continue
        axes.scatter(
            [p.values[i] for p in chosen],
            [p.values[j] for p in chosen],
            s=42 if kind == "Pareto set" else 22,
            c=COLORS[kind],
            alpha=0.95 if kind == "Pareto set" else 0.6,
            label=kind,
            zorder=3 if kind == "Pareto set" else 2,
        )
    confirmed = [p for p in data.points if p.spread is not None]
    if confirmed:  # one standard deviation over the confirmation seeds
        axes.errorbar(
            [p.values[i] for p in confirmed],
            [p.values[j] for p in confirmed],
            xerr=[p.spread[i] for p in confirmed if p.spread],
            yerr=[p.spread[j] for p in confirmed if p.spread],
            fmt="none", ecolor=COLORS["Pareto set"], elinewidth=1, capsize=2, zorder=2,
        )  # fmt: skip
    shaky = [p for p in data.points if p.shaky]
    if shaky:
        axes.scatter(
            [p.values[i] for p in shaky], [p.values[j] for p in shaky], s=110, marker="x",
            c="black", label="shaky (on the front in < 50 % of resamples)", zorder=5,
        )  # fmt: skip
    front = sorted((p.values[i], p.values[j]) for p in data.points if p.kind == "Pareto set")
    if len(data.objectives) == 2 and len(front) > 1:
        # the edge of what the set dominates: between two points it keeps the value of the one
        # whose region reaches there (the right one when x is maximized)
        where = "pre" if data.objectives[i][1] == "maximize" else "post"
        axes.step(*zip(*front, strict=True), where=where, c=COLORS["Pareto set"], lw=1, alpha=0.5)
    for base in (p for p in data.points if p.baseline):
        axes.scatter(
            [base.values[i]], [base.values[j]], s=160, facecolors="none", edgecolors="black",
            label="baseline (uncompressed)", zorder=4,
        )  # fmt: skip
    for constraint in data.constraints:
        if constraint.metric == x_metric:
            axes.axvline(constraint.limit, ls="--", c="black", lw=1, label=str(constraint))
        elif constraint.metric == y_metric:
            axes.axhline(constraint.limit, ls="--", c="black", lw=1, label=str(constraint))
    axes.set_xlabel(data.label(x_metric))
    axes.set_ylabel(data.label(y_metric))
    if wide_range([p.values[i] for p in data.points]):
        axes.set_xscale("log")
    if wide_range([p.values[j] for p in data.points]):
        axes.set_yscale("log")
    axes.grid(alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    rank = {label: n for n, label in enumerate(KINDS)}
    order = sorted(range(len(labels)), key=lambda n: rank.get(labels[n], len(KINDS)))
    axes.legend([handles[n] for n in order], [labels[n] for n in order], fontsize=8, loc="best")


def _errors(points: Sequence[Point], k: int) -> dict[str, Any] | None:
    """Plotly error bars of objective ``k`` (standard deviation over confirmation seeds)."""
    if not any(p.spread for p in points):
        return None
    return {"type": "data", "array": [p.spread[k] if p.spread else 0.0 for p in points]}


def wide_range(values: Sequence[float]) -> bool:
    """Whether an axis reads better in log scale: positive values spanning over 20x."""
    return bool(values) and min(values) > 0 and max(values) > 20 * min(values)


def _history_panel(axes: Any, data: PlotData) -> None:
    if data.history:
        axes.plot(*zip(*data.history, strict=True), c=COLORS["Pareto set"], lw=1.5)
    else:
        axes.text(0.5, 0.5, "no reference point yet", ha="center", transform=axes.transAxes)
    axes.set_xlabel("finished trials (count)")
    axes.set_ylabel("hypervolume (objectives' units, fixed reference point)")
    axes.set_title("hypervolume over trials", fontsize=10)
    axes.grid(alpha=0.3)


def _knobs_panel(axes: Any, data: PlotData) -> None:
    knobs = data.knobs
    axes.set_title("searched knobs of each drawn trial (red: Pareto set)", fontsize=10)
    if not knobs:
        axes.text(0.5, 0.5, "no searched knobs", ha="center", transform=axes.transAxes)
        return
    for point in sorted(data.points, key=lambda p: p.kind == "Pareto set"):
        on_front = point.kind == "Pareto set"
        ys = [k.positions.get(point.number, math.nan) for k in knobs]
        axes.plot(
            range(len(knobs)), ys, c=COLORS["Pareto set"] if on_front else "#b0b0b0",
            lw=1.6 if on_front else 0.8, alpha=0.9 if on_front else 0.5, marker="o", ms=2.5,
        )  # fmt: skip
    for x, knob in enumerate(knobs):
        axes.axvline(x, c="black", lw=0.6)
        for y, text in knob.ticks:
            axes.text(x + 0.03, y, text, fontsize=7, va="center")
    axes.set_xticks(range(len(knobs)), [k.label for k in knobs], rotation=20, fontsize=8)
    axes.set_yticks([0, 1], ["low", "high"])
    axes.set_ylabel("position in the knob's range (log where searched in log)")
    axes.set_xlim(-0.2, len(knobs) - 0.5)


def html_page(data: PlotData) -> str:
    """One self-contained HTML page (plotly.js inlined once) with the same three views."""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>effsearch: {html.escape(data.name)}</title></head><body>\n"
        + "\n".join(html_parts(data))
        + "\n</body></html>\n"
    )


def html_parts(data: PlotData) -> list[str]:
    """The three views as HTML fragments; the first carries plotly.js (inlined, offline)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pairs = _pairs(data)
    columns = min(3, len(pairs))
    rows = math.ceil(len(pairs) / columns)
    fronts = make_subplots(rows=rows, cols=columns, horizontal_spacing=0.08)
    for index, (i, j) in enumerate(pairs):
        row, column = divmod(index, columns)
        for kind in KINDS:
            chosen = [p for p in data.points if p.kind == kind]
            if not chosen:
                continue
            fronts.add_trace(
                go.Scatter(
                    x=[p.values[i] for p in chosen],
                    y=[p.values[j] for p in chosen],
                    mode="markers",
                    name=kind,
                    legendgroup=kind,
                    showlegend=index == 0,
                    marker={"color": COLORS[kind], "size": 9 if kind == "Pareto set" else 6},
                    text=[
                        f"trial {p.number}{' (baseline)' if p.baseline else ''}"
                        f"{' (shaky)' if p.shaky else ''}"
                        for p in chosen
                    ],
                    error_x=_errors(chosen, i),
                    error_y=_errors(chosen, j),
                ),
                row=row + 1,
                col=column + 1,
            )
        for constraint in data.constraints:
            line = {"line_dash": "dash", "line_color": "black", "annotation_text": str(constraint)}
            if constraint.metric == data.objectives[i][0]:
                fronts.add_vline(x=constraint.limit, row=row + 1, col=column + 1, **line)
            elif constraint.metric == data.objectives[j][0]:
                fronts.add_hline(y=constraint.limit, row=row + 1, col=column + 1, **line)
        for update, k in ((fronts.update_xaxes, i), (fronts.update_yaxes, j)):
            update(
                title_text=data.label(data.objectives[k][0]),
                type="log" if wide_range([p.values[k] for p in data.points]) else "linear",
                row=row + 1,
                col=column + 1,
            )
    fronts.update_layout(title=_title(data), height=420 * rows, legend_title_text="trials")

    history = go.Figure(
        go.Scatter(
            x=[h[0] for h in data.history],
            y=[h[1] for h in data.history],
            mode="lines+markers",
            name="hypervolume",
        )
    )
    history.update_layout(
        title="hypervolume over trials",
        xaxis_title="finished trials (count)",
        yaxis_title="hypervolume (fixed reference point)",
        height=360,
    )
    order = sorted(data.points, key=lambda p: p.kind == "Pareto set")
    dimensions = [
        {
            "label": knob.label,
            "range": [0, 1],
            "values": [knob.positions.get(p.number, math.nan) for p in order],
            "tickvals": [t[0] for t in knob.ticks],
            "ticktext": [t[1] for t in knob.ticks],
        }
        for knob in data.knobs
    ]
    knobs = go.Figure(
        go.Parcoords(
            line={
                "color": [1 if p.kind == "Pareto set" else 0 for p in order],
                "colorscale": [[0, "#b0b0b0"], [1, COLORS["Pareto set"]]],
            },
            dimensions=dimensions,
        )
    )
    knobs.update_layout(
        title="searched knobs of each drawn trial (red: Pareto set; drag an axis to filter)",
        height=420,
    )
    return [
        fronts.to_html(full_html=False, include_plotlyjs=True),
        history.to_html(full_html=False, include_plotlyjs=False),
        knobs.to_html(full_html=False, include_plotlyjs=False),
    ]
