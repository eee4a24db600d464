"""The recipes shipped in recipes/ are valid and run as the README says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effsearch.cli import app
from effsearch.recipe import load_recipe

RECIPES = sorted((Path(__file__).parent.parent / "effsearch" / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_shipped_recipe_is_valid(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.space.searched


def test_zdt1_example_runs_through_the_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    run_dir = tmp_path / "zdt1"
    zdt1 = next(p for p in RECIPES if p.stem == "zdt1")
    result = runner.invoke(app, ["run", str(zdt1), "--run-dir", str(run_dir), "--trials", "30"])
    assert result.exit_code == 0, result.output
    shown = json.loads(runner.invoke(app, ["show", str(run_dir), "--json"]).output)
    assert len(shown["trials"]) == 30
    assert shown["hypervolume"] > 0


@pytest.mark.slow
def test_quickstart_trains_measures_and_beats_its_baseline(tmp_path: Path) -> None:
    quickstart = next(p for p in RECIPES if p.stem == "quickstart")
    runner = CliRunner()
    run_dir = tmp_path / "qs"
    result = runner.invoke(
        app, ["run", str(quickstart), "--run-dir", str(run_dir), "--trials", "6"]
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(runner.invoke(app, ["show", str(run_dir), "--json"]).output)
    baseline = next(t for t in shown["trials"] if t["baseline"])
    assert baseline["params"]["architecture"] == {"width_mult": 1.0, "depth": 3}
    assert baseline["metrics"]["accuracy"] > 0.95
    fastest = min(t["metrics"]["latency_ms"] for t in shown["trials"] if t["state"] == "COMPLETE")
    assert fastest < baseline["metrics"]["latency_ms"]
