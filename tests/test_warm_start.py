"""Warm start: a new search begins with the finished trials of earlier runs of its task."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import effsearch
from effsearch.cli import app
from effsearch.errors import UserInputError
from effsearch.search import records, warm_start


def test_a_second_search_starts_from_the_first_ones_trials(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    first = effsearch.run(write_recipe(), run_dir=tmp_path / "first", trials=8)
    recipe = write_recipe("second.yaml", warm_start={"runs": ["first"]})

    second = effsearch.run(recipe, run_dir=tmp_path / "second", trials=3)

    carried = [t for t in second.trials if t.warm_start_from is not None]
    own = [t for t in second.trials if t.warm_start_from is None]
    assert len(carried) == 8 and len(own) == 3  # carried trials do not use the budget
    # the first run's Pareto set comes first, with its measured values
    assert [t.warm_start_from["trial"] for t in carried[: len(first.pareto)]] == sorted(
        t.number for t in first.pareto
    )
    by_number = {t.number: t for t in first.trials}
    for trial in carried:
        assert trial.values == by_number[trial.warm_start_from["trial"]].values
    assert second.hypervolume is not None and second.hypervolume >= first.hypervolume
    assert effsearch.load(tmp_path / "second").trials == second.trials
    shown = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["show", str(tmp_path / "second")])
    assert "warm start: 8 finished trials carried over from" in shown.output


def test_only_configurations_of_the_new_space_carry_over(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    first = effsearch.run(write_recipe(), run_dir=tmp_path / "first", trials=10)
    narrower = {
        "params": {
            "x0": {"float": [0.0, 0.5]},
            "x1": {"float": [0.0, 1.0]},
            "x2": {"float": [0.0, 1.0]},
        }
    }
    recipe = write_recipe("second.yaml", space=narrower, warm_start={"runs": ["first"]})

    second = effsearch.run(recipe, run_dir=tmp_path / "second", trials=1)

    inside = [t for t in first.trials if t.params["params"]["x0"] <= 0.5]
    carried = [t for t in second.trials if t.warm_start_from is not None]
    assert 0 < len(inside) < 10 and len(carried) == len(inside)
    recorded = second.study.user_attrs[records.STUDY_WARM_START]
    assert recorded["outside_space"] == 10 - len(inside)


def test_on_another_machine_only_configuration_metrics_carry(
    write_recipe: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objectives = [
        {"metric": "params", "direction": "minimize"},
        {"metric": "size_mb", "direction": "minimize"},
    ]
    measured = [
        {"metric": "f1", "direction": "minimize"},
        {"metric": "f2", "direction": "minimize"},
    ]
    effsearch.run(
        write_recipe(entrypoint="sized", objectives=objectives),
        run_dir=tmp_path / "exact",
        trials=5,
    )
    first = effsearch.run(
        write_recipe("m.yaml", entrypoint="sized", objectives=measured),
        run_dir=tmp_path / "measured",
        trials=5,
    )
    here = warm_start.this_machine("cpu")
    elsewhere = here | {"torch_version": "0.0-other"}
    monkeypatch.setattr(warm_start, "this_machine", lambda device: elsewhere)

    exact = effsearch.run(
        write_recipe(
            "e2.yaml", entrypoint="sized", objectives=objectives, warm_start={"runs": ["exact"]}
        ),
        run_dir=tmp_path / "exact2",
        trials=1,
    )
    again = effsearch.run(
        write_recipe(
            "m2.yaml", entrypoint="sized", objectives=measured, warm_start={"runs": ["measured"]}
        ),
        run_dir=tmp_path / "measured2",
        trials=len(first.pareto),
    )

    assert sum(t.warm_start_from is not None for t in exact.trials) == 5
    assert all(t.warm_start_from is None for t in again.trials)
    # the earlier front is measured again first, and counts toward the budget
    assert [t.params for t in again.trials] == [t.params for t in first.pareto]
    recorded = again.study.user_attrs[records.STUDY_WARM_START]
    why = f"torch_version {here['torch_version']!r} there, '0.0-other' here"
    assert why in recorded["not_carried_metrics"]["f1"]


def test_a_resumed_run_does_not_carry_twice(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    effsearch.run(write_recipe(), run_dir=tmp_path / "first", trials=4)
    recipe = write_recipe("second.yaml", warm_start={"runs": ["first"]})
    effsearch.run(recipe, run_dir=tmp_path / "second", trials=2)

    again = effsearch.api.resume(tmp_path / "second", trials=3)

    assert sum(t.warm_start_from is not None for t in again.trials) == 4
    assert len(again.trials) == 4 + 3


def test_a_warm_start_run_that_is_no_run_or_another_task_is_refused(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    effsearch.run(write_recipe(entrypoint="sized"), run_dir=tmp_path / "other", trials=2)
    missing = write_recipe("a.yaml", warm_start={"runs": ["nowhere"]})
    other_task = write_recipe("b.yaml", warm_start={"runs": ["other"]})

    refused = CliRunner().invoke(app, ["validate", str(missing)])
    assert refused.exit_code == 2
    assert "'nowhere'" in refused.output and "not an effsearch run directory" in refused.output
    refused = CliRunner().invoke(app, ["validate", str(other_task)])
    assert refused.exit_code == 2 and "searched another task" in refused.output
    with pytest.raises(UserInputError, match="searched another task"):
        effsearch.run(other_task, run_dir=tmp_path / "never")
    assert not (tmp_path / "never").exists()
