"""effsearch plot: what the pictures show and how they are labelled, checked on a real run with
Pareto, dominated, infeasible and stopped trials."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from effsearch.cli import app
from effsearch.objectives.metrics import unit_of
from effsearch.report import plots
from effsearch.search.rundir import RunDir
from effsearch.search.study import load_study


def cli(*args: str | Path) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def run_dir(
    tmp_path_factory: pytest.TempPathFactory, toy_recipe_writer: Callable[..., Path]
) -> Path:
    folder = tmp_path_factory.mktemp("plots")
    recipe = toy_recipe_writer(
        folder,
        entrypoint="reports_progress_and_cost",
        constraints=["f1 <= 0.8"],
        early_stopping={"min_step": 1, "eta": 2},
        budget={"trials": 24},
    )
    result = cli("run", recipe, "--run-dir", folder / "run")
    assert result.exit_code == 0, result.output
    return folder / "run"


@pytest.fixture(scope="module")
def data(run_dir: Path) -> plots.PlotData:
    return plots.collect(*load_study(RunDir(run_dir)))


def test_every_kind_of_trial_is_told_apart(data: plots.PlotData) -> None:
    kinds = {p.kind for p in data.points}
    assert kinds == set(plots.KINDS), kinds
    assert len(data.history) > 0


def test_the_png_labels_axes_with_direction_and_shows_legend_and_limits(
    data: plots.PlotData,
) -> None:
    figure = plots.png_figure(data)
    front, history, knobs = figure.axes

    assert front.get_xlabel() == "f1 (lower is better)"
    assert front.get_ylabel() == "f2 (lower is better)"
    legend = [t.get_text() for t in front.get_legend().get_texts()]
    assert set(plots.KINDS) <= set(legend)
    assert "f1 <= 0.8" in legend  # the constraint limit is drawn and named
    assert history.get_xlabel() == "finished trials (count)"
    assert [t.get_text() for t in knobs.get_xticklabels()] == [
        "params.x0",
        "params.x1",
        "params.x2",
    ]


def test_units_come_from_metric_names():
    assert unit_of("latency_ms") == "ms"
    assert unit_of("size_mb") == "MB"
    assert unit_of("energy_j_est") == "J, estimated"
    assert unit_of("throughput_per_s") == "per s"
    assert unit_of("accuracy") == "fraction"
    assert unit_of("f1") == ""


def test_plot_writes_a_png_picture(run_dir: Path, tmp_path: Path) -> None:
    from matplotlib import image

    result = cli("plot", run_dir, "--out", tmp_path / "front.png")

    assert result.exit_code == 0, result.output
    assert (tmp_path / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = image.imread(tmp_path / "front.png").shape
    assert width > 800 and height > 500


def test_plot_writes_a_self_contained_html_page(run_dir: Path, tmp_path: Path) -> None:
    result = cli("plot", run_dir, "--out", tmp_path / "front.html")

    assert result.exit_code == 0, result.output
    page = (tmp_path / "front.html").read_text()
    assert "<script src=" not in page  # plotly.js is inlined: it opens offline
    assert len(page) > 1_000_000
    for text in (
        "f1 (lower is better)",
        "stopped early",
        "infeasible",
        "Pareto set",
        "hypervolume over trials",
        "parcoords",
    ):
        assert text in page, text


def test_plot_refuses_other_file_types(run_dir: Path, tmp_path: Path) -> None:
    result = cli("plot", run_dir, "--out", tmp_path / "front.svg")

    assert result.exit_code == 2
    assert "must end in .png (a picture) or .html" in result.output
