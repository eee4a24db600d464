"""Confirmation runs: front members re-run on more seeds, their spread and how surely each
stays on the front."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effsearch.cli import app
from effsearch.objectives.goals import Objective
from effsearch.search import confirmations


class _Recipe:
    objectives = (
        Objective(metric="f1", direction="minimize"),
        Objective(metric="f2", direction="minimize"),
    )


def test_a_member_on_the_front_by_the_luck_of_its_seed_gets_a_lower_probability() -> None:
    steady = [{"f1": 1.0, "f2": 1.0}] * 2
    noisy = [{"f1": 0.9, "f2": 0.9}, {"f1": 1.1, "f2": 1.1}]  # beats or loses to steady

    probability = confirmations._membership(_Recipe(), [steady, noisy])  # type: ignore[arg-type]

    # resampled means of `noisy`: 0.9 (1/4, dominates steady), 1.0 (1/2, a tie), 1.1 (1/4)
    assert probability == pytest.approx([0.75, 0.75], abs=0.06)
    solid = confirmations._membership(_Recipe(), [steady, [{"f1": 0.5, "f2": 2.0}] * 2])  # type: ignore[arg-type]
    assert solid == [1.0, 1.0]  # neither dominates the other in any resample


def test_confirmation_seeds_differ_from_the_search_seed_and_are_fixed() -> None:
    assert confirmations.seeds_for(0, 3) == confirmations.seeds_for(0, 3)
    assert 0 not in confirmations.seeds_for(0, 3) and len(set(confirmations.seeds_for(0, 3))) == 3


@pytest.mark.slow
def test_confirm_after_a_digits_search_adds_mean_std_and_probability_per_member(
    tmp_path: Path,
) -> None:
    recipe = Path(__file__).parent.parent / "recipes" / "quickstart.yaml"
    run_dir = tmp_path / "qs"
    cli = CliRunner(env={"COLUMNS": "200"})
    ran = cli.invoke(
        app,
        ["run", str(recipe), "--run-dir", str(run_dir), "--trials", "4", "--executor", "inline"],
    )
    assert ran.exit_code == 0, ran.output

    confirmed = cli.invoke(app, ["confirm", str(run_dir), "--seeds", "2"])

    assert confirmed.exit_code == 0, confirmed.output
    shown = json.loads(cli.invoke(app, ["show", str(run_dir), "--json"]).output)
    assert sorted(map(int, shown["confirmed"])) == shown["pareto"]
    for entry in shown["confirmed"].values():
        assert len(entry["seeds"]) == 3  # the search's seed and 2 more
        assert set(entry["metrics_mean"]) >= {"accuracy", "latency_ms", "size_mb"}
        assert entry["metrics_std"]["accuracy"] >= 0
        assert 0.0 <= entry["pareto_probability"] <= 1.0
    assert "confirmed on 3 seeds" in cli.invoke(app, ["show", str(run_dir)]).output
    assert json.loads((run_dir / "pareto.json").read_text())["confirmed"]
    from effsearch.report import plots
    from effsearch.search.rundir import RunDir
    from effsearch.search.study import load_study

    data = plots.collect(*load_study(RunDir(run_dir)))
    drawn = [p for p in data.points if p.kind == "Pareto set"]
    assert drawn and all(p.spread is not None and len(p.spread) == 3 for p in drawn)
    assert cli.invoke(app, ["plot", str(run_dir), "--out", str(tmp_path / "f.png")]).exit_code == 0

    # a second confirmation with one more seed runs only the new seed (finished runs kept)
    again = cli.invoke(app, ["confirm", str(run_dir), "--seeds", "3"])
    assert again.exit_code == 0, again.output
    shown = json.loads(cli.invoke(app, ["show", str(run_dir), "--json"]).output)
    assert all(len(e["seeds"]) == 4 for e in shown["confirmed"].values())
    logs = sorted(p.name for p in (run_dir / "confirm").iterdir())
    assert len(logs) == 3 * len(shown["pareto"])  # one folder per (member, seed), none twice


def test_budget_confirm_runs_it_at_the_end_of_a_search(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    import effsearch

    result = effsearch.run(
        write_recipe(budget={"trials": 5, "confirm": {"seeds": 1}}), run_dir=tmp_path / "run"
    )

    assert set(result.summary.confirmed) == {t.number for t in result.pareto}
    assert all(len(c.seeds) == 2 for c in result.summary.confirmed.values())
