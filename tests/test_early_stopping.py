"""Multi-objective early stopping: rung decisions, the Pareto pruner's bound, and trials stopped
inside a real search."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import toy_tasks
from optuna.trial import FrozenTrial, TrialState, create_trial
from test_pareto import Quiet

from effsearch.recipe import ObjectiveSection, load_recipe
from effsearch.search import records, study_front
from effsearch.search.budget import compute_committed_s
from effsearch.search.early_stopping import ParetoPruner, SuccessiveHalving, rank
from effsearch.search.rundir import RunDir
from effsearch.search.runner import Runner
from effsearch.search.stopped_view import SeesStoppedTrials

ACCURACY_LATENCY = (
    ObjectiveSection(metric="accuracy", direction="maximize"),
    ObjectiveSection(metric="latency_ms", direction="minimize"),
)


def test_rungs_sit_at_min_step_times_powers_of_eta():
    halving = SuccessiveHalving(ACCURACY_LATENCY, min_step=2, eta=3)
    assert [halving.rung_of(s) for s in (1, 2, 5, 6, 17, 18)] == [-1, 0, 0, 1, 1, 2]


def test_the_top_third_goes_on_at_each_rung():
    halving = SuccessiveHalving(ACCURACY_LATENCY, min_step=1, eta=3)
    # below eta trials at a rung, everyone goes on
    assert halving.observe(0, 1, {"accuracy": 0.9})
    assert halving.observe(1, 1, {"accuracy": 0.5})
    # the third is worst of three: only ceil(3/3) = 1 goes on
    assert not halving.observe(2, 1, {"accuracy": 0.4})
    assert halving.observe(3, 1, {"accuracy": 0.95})  # best of four: goes on


def test_a_rung_is_decided_once_per_trial():
    halving = SuccessiveHalving(ACCURACY_LATENCY, min_step=1, eta=2)
    halving.observe(0, 1, {"accuracy": 0.9})
    assert not halving.observe(1, 1, {"accuracy": 0.1})
    assert halving.observe(1, 1.5, {"accuracy": 0.1})  # same rung: not judged again


def test_ranking_is_by_non_dominated_front_then_hypervolume_contribution():
    points = {0: [0.0, 2.0], 1: [2.0, 0.0], 2: [1.0, 1.0], 3: [2.0, 2.0], 4: [1.5, 1.5]}
    order = rank(points)
    assert set(order[:3]) == {0, 1, 2} and order[3:] == [4, 3]
    # the knee alone holds [1, 2) x [1, 2) of the front's volume: it goes first, whatever the
    # order the trials arrived in
    assert order[0] == 2


def test_a_near_duplicate_ranks_below_a_point_that_widens_the_front():
    points = {0: [0.0, 1.0], 1: [1.0, 0.0], 2: [0.01, 0.99], 3: [0.5, 0.5]}
    order = rank(points)
    assert order.index(3) < order.index(2)


def test_without_reported_objectives_nothing_is_stopped():
    halving = SuccessiveHalving(ACCURACY_LATENCY, min_step=1, eta=2)
    assert all(halving.observe(n, 1, {"train_loss": float(n)}) for n in range(6))


def test_a_search_stops_trials_early_and_records_them_as_pruned(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = load_recipe(
        write_recipe(
            entrypoint="reports_progress",
            early_stopping={"min_step": 1, "eta": 2},
            budget={"trials": 12},
        )
    )
    result = Runner(recipe, RunDir(tmp_path / "run"), Quiet()).run(resume=False)
    trials = result.study.get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and len(pruned) < len(trials)
    for trial in pruned:
        assert "stopped early at step" in trial.user_attrs[records.STOPPED]
        assert trial.user_attrs[records.METRICS]  # its last reported metrics
        assert trial.user_attrs[records.HISTORY][-1]["step"] < 4
    assert len(trials) == 12  # stopped trials count against the budget
    # the optimizer learns from them, through their last values
    assert isinstance(result.study.sampler, SeesStoppedTrials)


def test_local_workers_ask_the_driver_and_stop(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = load_recipe(
        write_recipe(
            entrypoint="reports_progress",
            early_stopping={"min_step": 1, "eta": 2},
            execution={"executor": "local", "workers": 2, "trial_timeout_s": 60},
            budget={"trials": 8},
        )
    )
    result = Runner(recipe, RunDir(tmp_path / "run"), Quiet()).run(resume=False)
    states = [t.state for t in result.study.get_trials()]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states


# ----------------------------------------------------------------------------- Pareto pruner
ACCURACY_SIZE = (
    ObjectiveSection(metric="accuracy", direction="maximize"),
    ObjectiveSection(metric="size_mb", direction="minimize"),
)


def finished_trial(accuracy: float, size_mb: float, history: list[float]) -> FrozenTrial:
    """A complete feasible trial whose accuracy was ``history[k]`` after epoch k + 1."""
    return create_trial(
        values=[accuracy, size_mb],
        user_attrs={
            records.HISTORY: [{"step": float(k + 1), "accuracy": a} for k, a in enumerate(history)]
        },
    )


# Finished trials gained at most 0.1 accuracy after epoch 1 (0.8 -> 0.9).
FINISHED = [
    finished_trial(0.90, 2.0, [0.80, 0.85, 0.90]),
    finished_trial(0.85, 1.0, [0.80, 0.82, 0.85]),
    finished_trial(0.70, 0.5, [0.65, 0.68, 0.70]),
]


def pruner(min_trials: int = 3) -> ParetoPruner:
    return ParetoPruner(ACCURACY_SIZE, lambda: FINISHED, min_step=1, min_trials=min_trials)


def test_pareto_pruner_stops_a_trial_whose_best_case_is_dominated():
    # size 2.5 MB is exact (known before training, never in a history); accuracy 0.6 at epoch 1
    # can reach at most 0.6 + 0.1 = 0.7 < 0.9 -> the 0.9 / 2.0 MB trial dominates it.
    assert not pruner().observe(7, 1, {"accuracy": 0.6, "size_mb": 2.5})


def test_pareto_pruner_keeps_a_trial_that_could_still_reach_the_front():
    # 0.85 + 0.1 = 0.95 would beat every finished trial's accuracy
    assert pruner().observe(7, 1, {"accuracy": 0.85, "size_mb": 2.5})
    # tiny models are on the front whatever their accuracy
    assert pruner().observe(7, 1, {"accuracy": 0.1, "size_mb": 0.1})


def test_pareto_pruner_is_optimistic_about_metrics_not_known_yet():
    # no size yet: assume the smallest size seen (0.5 MB); 0.6 + 0.1 = 0.7 ties, never beaten
    assert pruner().observe(7, 1, {"accuracy": 0.6})


def test_pareto_pruner_waits_for_enough_finished_trials():
    assert pruner(min_trials=4).observe(7, 1, {"accuracy": 0.0, "size_mb": 9.0})


def test_pareto_pruner_takes_gains_from_trials_at_the_same_level():
    """A slow starter gained 0.5 after epoch 1 (0.3 -> 0.8); trials that were near 0.9 then
    gained 0.02. A trial at 0.90 cannot count on 0.5: its bound is 0.92, below the 0.95 trial
    that is also smaller, so it stops."""
    finished = [
        finished_trial(0.8, 0.1, [0.3, 0.6, 0.8]),
        finished_trial(0.95, 1.0, [0.93, 0.94, 0.95]),
        *(finished_trial(a + 0.02, 3.0, [a, a + 0.01, a + 0.02]) for a in (0.88, 0.89, 0.9, 0.91)),
    ]
    rule = ParetoPruner(ACCURACY_SIZE, lambda: finished, min_step=1, min_trials=3)
    assert not rule.observe(7, 1, {"accuracy": 0.90, "size_mb": 2.0})
    # 0.5 is nearer the slow starter: 0.5 + 0.5 = 1.0 could beat 0.8 at 0.1 MB
    assert rule.observe(8, 1, {"accuracy": 0.50, "size_mb": 0.5})


def test_pareto_pruner_with_min_gain_stops_a_bound_that_adds_too_little_hypervolume():
    """0.87 at 0.9 MB is not dominated, but between 0.90 at 1.0 MB and 0.85 at 0.5 MB it adds
    little: from the reference (0.8, 2 MB) the front holds 0.1 x 1.0 + 0.05 x 0.5 = 0.125 and
    the bound (no finished trial gained after epoch 1) adds 0.02 x 0.1 = 0.002, 1.6 %."""
    finished = [
        finished_trial(0.90, 1.0, [0.90, 0.90, 0.90]),
        finished_trial(0.85, 0.5, [0.85, 0.85, 0.85]),
        finished_trial(0.81, 1.5, [0.81, 0.81, 0.81]),
    ]
    reference = study_front.Reference([0.8, 2.0], "recipe")

    def rule(min_gain: float, known: study_front.Reference | None = reference) -> ParetoPruner:
        return ParetoPruner(
            ACCURACY_SIZE, lambda: finished, 1, 3, min_gain=min_gain, reference=lambda: known
        )

    trial = {"accuracy": 0.87, "size_mb": 0.9}
    assert rule(0.0).observe(7, 1, trial)
    assert rule(0.01).observe(7, 1, trial)
    assert not rule(0.02).observe(7, 1, trial)
    assert rule(0.02, known=None).observe(7, 1, trial)  # no reference yet: dominance only


def test_pareto_pruner_stops_trials_in_a_real_search(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = load_recipe(
        write_recipe(
            entrypoint="reports_progress_and_cost",
            early_stopping={"method": "pareto", "min_step": 1, "min_trials": 3},
            budget={"trials": 20},
        )
    )
    result = Runner(recipe, RunDir(tmp_path / "run"), Quiet()).run(resume=False)
    trials = result.study.get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "a random search on ZDT1 has trials the front dominates from epoch 1"
    assert len(trials) == 20
    complete = [t.values for t in trials if t.state == TrialState.COMPLETE]
    for trial in pruned:
        assert "stopped early at step" in trial.user_attrs[records.STOPPED]
        # the bound is exact in this toy: what it would have reached is truly dominated
        would_be = toy_tasks.zdt1_values([trial.params[f"params.x{i}"] for i in range(3)])
        assert any(f1 <= would_be["f1"] and f2 <= would_be["f2"] for f1, f2 in complete), (
            trial.number
        )


# ----------------------------------------------------------------------------- budget.steps
def test_a_steps_budget_lets_stopped_trials_buy_more_trials(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    """Every trial reports 4 steps; 60 steps buy 15 full trials, more when some stop early."""
    full = load_recipe(
        write_recipe(name="full", entrypoint="reports_progress", budget={"steps": 60, "trials": 50})
    )
    early = load_recipe(
        write_recipe(
            name="early",
            entrypoint="reports_progress",
            early_stopping={"min_step": 1, "eta": 2},
            budget={"steps": 60, "trials": 50},
        )
    )
    full_trials = Runner(full, RunDir(tmp_path / "full"), Quiet()).run(resume=False).study.trials
    early_trials = Runner(early, RunDir(tmp_path / "early"), Quiet()).run(resume=False).study.trials

    assert len(full_trials) == 15
    assert sum(records.trial_steps(t) for t in early_trials) <= 60
    assert len(early_trials) > 15
    assert any(t.state == TrialState.PRUNED for t in early_trials)


def test_a_steps_budget_stops_when_trials_report_no_steps(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = load_recipe(write_recipe(entrypoint="zdt1", budget={"steps": 10, "trials": 50}))
    study = Runner(recipe, RunDir(tmp_path / "run"), Quiet()).run(resume=False).study

    assert len(study.trials) == 3
    assert "reported no steps" in study.user_attrs[records.STUDY_STOPPED_EARLY]


# ----------------------------------------------------------------------- budget.compute_minutes
def test_compute_committed_counts_finished_seconds_and_expected_ones():
    """Finished trials count what they ran; each trial in flight, and the next one, at least
    the median duration of trials that ran to the end (not of rejected or stopped ones)."""
    study = optuna.create_study(directions=["minimize", "minimize"])
    for seconds in (1.0, 3.0, 2.0):
        study.add_trial(create_trial(values=[0.0, 0.0], user_attrs={records.DURATION: seconds}))
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={records.DURATION: 0.5}))
    study.add_trial(
        create_trial(values=[9.0, 9.0], user_attrs={records.DURATION: 0.01, records.REJECTED: True})
    )

    spent = 1.0 + 3.0 + 2.0 + 0.5 + 0.01
    assert compute_committed_s(study, []) == pytest.approx(spent + 2.0)
    assert compute_committed_s(study, [0.5, 4.0]) == pytest.approx(spent + 2 + 4 + 2)


def test_a_compute_budget_stops_launching_before_it_is_spent(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    budget_s = 1.5
    recipe = load_recipe(
        write_recipe(
            entrypoint="sleeps",
            fixed={"sleep_s": 0.2},
            budget={"compute_minutes": budget_s / 60, "trials": 50},
        )
    )
    trials = Runner(recipe, RunDir(tmp_path / "run"), Quiet()).run(resume=False).study.trials

    durations = [t.user_attrs[records.DURATION] for t in trials]
    assert 2 <= len(trials) < 50
    # a trial starts only if the median trial still fits: the overshoot is at most one trial
    assert sum(durations) <= budget_s + max(durations)
