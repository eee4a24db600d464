"""The cost predictor: configurations that will surely break a constraint are not run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import effsearch
from effsearch.cli import app
from effsearch.search import records

PREDICT = {"confidence": 0.95, "recheck_rate": 0.3, "min_trials": 8}


def search(write_recipe: Callable[..., Path], run_dir: Path, trials: int = 36):
    recipe = write_recipe(
        entrypoint="costly",
        constraints=["cost_ms <= 4"],
        optimizer={"name": "random", "predict_costs": PREDICT},
    )
    return effsearch.run(recipe, run_dir=run_dir, trials=trials)


def cost(trial) -> float:  # what toy_tasks.costly would measure
    p = trial.params["params"]
    return 1.0 + 8.0 * p["x0"] + 2.0 * p["x1"] ** 2


def test_sure_violations_are_rejected_without_running_and_feasible_ones_never(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    result = search(write_recipe, tmp_path / "run")
    frozen = {t.number: t for t in result.study.trials}

    rejected = [
        t for t in result.trials if records.REJECTED_BY_PREDICTION in frozen[t.number].user_attrs
    ]
    assert rejected, "a random search over x0 in [0, 1] proposes many configurations above 4 ms"
    assert all(cost(t) > 4 for t in rejected)  # no feasible configuration was turned away
    assert all(t.metrics == {} for t in rejected)  # they never ran
    assert all(t.feasible is False for t in rejected)
    # the first trials ran before the predictor had min_trials to learn from
    assert all(records.PREDICTED_COSTS not in frozen[n].user_attrs for n in range(8))
    ran = [t for t in result.trials if t.metrics]
    assert len(ran) + len(rejected) == 36  # a rejection counts toward the budget


def test_rechecks_measure_the_false_rejection_rate_and_the_run_reports_it(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    result = search(write_recipe, tmp_path / "run")
    report = result.summary.cost_predictor

    rechecked = [t for t in result.study.trials if t.user_attrs.get(records.PREDICTION_RECHECK)]
    assert report is not None and report["rechecks"] == len(rechecked) > 0
    assert report["false_rejections"] == 0 and report["false_rejection_rate"] == 0.0
    assert report["rejected"] > 0 and report["compute_saved_s_est"] >= 0
    assert report["rank_correlation"]["cost_ms"] > 0.9
    shown = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["show", str(tmp_path / "run")])
    assert f"{report['rejected']} configurations rejected by prediction" in shown.output


def test_events_name_a_prediction_rejection_for_what_it_is(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = write_recipe(
        entrypoint="costly",
        constraints=["cost_ms <= 4"],
        optimizer={"name": "random", "predict_costs": PREDICT},
    )
    runner = CliRunner()
    result = runner.invoke(
        app, ["run", str(recipe), "--run-dir", str(tmp_path / "run"), "--events", "--trials", "24"]
    )

    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    rejected = [e for e in events if e["event"] == "trial_rejected"]
    study = effsearch.load(tmp_path / "run").study
    by_prediction = [
        t.number for t in study.trials if records.REJECTED_BY_PREDICTION in t.user_attrs
    ]
    assert by_prediction and sorted(e["trial"] for e in rejected) == by_prediction
    assert all(
        e["reason"].startswith("rejected by prediction: predicted cost_ms") for e in rejected
    )
    assert not any(e["event"] == "trial_stopped" for e in events)  # nothing was stopped early


def test_the_same_seed_rejects_the_same_configurations(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    def rejected(run_dir: Path) -> list[int]:
        result = search(write_recipe, run_dir, trials=20)
        return [
            t.number for t in result.study.trials if records.REJECTED_BY_PREDICTION in t.user_attrs
        ]

    assert rejected(tmp_path / "a") == rejected(tmp_path / "b")


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"name": "random", "predict_costs": {"confidence": 1.5}}, "less than 1"),
        ({"name": "random", "predict_costs": {}}, "has no constraints"),
    ],
)
def test_bad_predictor_settings_are_refused_at_validate(
    write_recipe: Callable[..., Path], section: dict, problem: str
) -> None:
    recipe = write_recipe(entrypoint="costly", optimizer=section)
    refused = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["validate", str(recipe)])
    assert refused.exit_code == 2 and problem in refused.output
