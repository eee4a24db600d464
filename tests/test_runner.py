"""The runner: budget, failures, constraints, determinism, resume and crash recovery.

Searches run the toy entrypoints of ``toy_tasks.py`` inline (milliseconds per trial) unless a
test is about worker processes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest
import toy_tasks
import yaml
from optuna.trial import FrozenTrial, TrialState

import effsearch
from effsearch.errors import ResumeError
from effsearch.recipe import Recipe, load_recipe
from effsearch.report.results import constraint_lines
from effsearch.search import records
from effsearch.search.rundir import RunDir
from effsearch.search.runner import Runner, SessionResult
from effsearch.search.storage import JOURNAL_NAME
from effsearch.search.study_front import pareto_front
from effsearch.search.view import View

WriteRecipe = Callable[..., Path]


class RecordingView(View):
    """Keeps the runner's events instead of drawing them."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def start(self, study: optuna.Study, total: int | None, counted: int) -> None:
        self.events.append(("start", total, counted))

    def trial_completed(self, study: optuna.Study, number: int, values: Sequence[float]) -> None:
        self.events.append(("completed", number, list(values)))

    def trial_failed(self, number: int, reason: str, trial_dir: Path) -> None:
        self.events.append(("failed", number, reason))

    def message(self, text: str) -> None:
        self.events.append(("message", text))

    def stop(self) -> None:
        self.events.append(("stop",))


def run(
    recipe: Recipe, run_dir: Path, resume: bool = False, view: RecordingView | None = None
) -> SessionResult:
    return Runner(recipe, RunDir(run_dir), view or RecordingView()).run(resume=resume)


def search(write_recipe: WriteRecipe, tmp_path: Path, **recipe: Any) -> optuna.Study:
    """Write a toy recipe, run it into ``tmp_path/run`` and return the study."""
    return run(load_recipe(write_recipe(**recipe)), tmp_path / "run").study


def xs(trial: FrozenTrial) -> list[float]:
    return [trial.params[f"params.x{i}"] for i in range(3)]


def counted(study: optuna.Study) -> int:
    return records.counted_trials(study.get_trials())


def snapshot(study: optuna.Study) -> dict[int, tuple[str, Any, dict[str, Any]]]:
    """Every trial's state, values and params, by number."""
    return {t.number: (t.state.name, t.values, t.params) for t in study.get_trials()}


def open_journal(run_dir: Path, name: str = "toy") -> optuna.Study:
    """The study as another process (a dead driver, optuna-dashboard) sees it."""
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(run_dir / JOURNAL_NAME))
    )
    return optuna.load_study(study_name=name, storage=storage)


# ----------------------------------------------------------------------------- one search
def test_a_search_runs_exactly_its_trial_budget(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    view = RecordingView()

    result = run(load_recipe(write_recipe(budget={"trials": 7})), tmp_path / "run", view=view)

    trials = result.study.get_trials()
    assert len(trials) == 7
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    assert result.completed_now == 7
    assert not result.interrupted
    assert view.events[0] == ("start", 7, 0)
    assert view.events[-1] == ("stop",)
    assert [e[1] for e in view.events if e[0] == "completed"] == list(range(7))


def test_the_study_is_told_the_objective_values_the_task_returned(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    study = search(write_recipe, tmp_path)

    for trial in study.trials:
        expected = toy_tasks.zdt1_values(xs(trial))
        assert trial.values == pytest.approx([expected["f1"], expected["f2"]])


def test_every_metric_the_task_returned_is_recorded_on_the_trial(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    study = search(write_recipe, tmp_path, entrypoint="with_context")

    for trial in study.trials:
        metrics = trial.user_attrs[records.METRICS]
        assert set(metrics) == {"f1", "f2", "g", "trial_number"}
        assert metrics["g"] == pytest.approx(toy_tasks.zdt1_values(xs(trial))["g"])
        assert metrics["trial_number"] == trial.number
        assert trial.user_attrs[records.HISTORY] == [
            {"step": 1.0, "partial": 0.5},
            {"step": 2.0, "partial": 0.25},
        ]


def test_a_trial_records_its_nested_config_including_fixed_knobs(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    study = search(write_recipe, tmp_path, entrypoint="sleeps", fixed={"sleep_s": 0.0})

    for trial in study.trials:
        x0, x1, x2 = xs(trial)
        assert trial.user_attrs[records.CONFIG] == {
            "params": {"x0": x0, "x1": x1, "x2": x2, "sleep_s": 0.0}
        }


def test_failing_trials_are_failed_with_their_reason_and_the_budget_is_still_spent(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    view = RecordingView()

    result = run(
        load_recipe(write_recipe(entrypoint="fails_above_half", budget={"trials": 10})),
        tmp_path / "run",
        view=view,
    )

    trials = result.study.get_trials()
    assert len(trials) == 10
    failed = [t for t in trials if t.state == TrialState.FAIL]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert failed and complete  # seed 0 draws x0 on both sides of 0.5
    assert all(t.params["params.x0"] > 0.5 for t in failed)
    assert all(t.params["params.x0"] <= 0.5 for t in complete)
    for trial in failed:
        assert trial.user_attrs[records.FAIL_REASON] == "RuntimeError: x0 above one half"
        assert not trial.user_attrs.get(records.INTERRUPTED)
        assert ("failed", trial.number, "RuntimeError: x0 above one half") in view.events
    assert result.failed_now == len(failed)
    assert counted(result.study) == 10


def test_a_search_whose_every_trial_fails_still_ends(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    study = search(write_recipe, tmp_path, entrypoint="raises", budget={"trials": 4})

    assert [t.state for t in study.trials] == [TrialState.FAIL] * 4
    assert pareto_front(study.trials, study.directions) == []


def test_a_missing_objective_metric_fails_the_trial_naming_the_metric(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    study = search(write_recipe, tmp_path, entrypoint="missing_f2", budget={"trials": 3})

    for trial in study.trials:
        assert trial.state == TrialState.FAIL
        reason = trial.user_attrs[records.FAIL_REASON]
        assert "'f2'" in reason
        assert "f1, g" in reason  # what it did return


def test_a_missing_constraint_metric_fails_the_trial_naming_the_metric(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    study = search(write_recipe, tmp_path, constraints=["size_mb <= 2"], budget={"trials": 2})

    for trial in study.trials:
        assert trial.state == TrialState.FAIL
        assert "'size_mb'" in trial.user_attrs[records.FAIL_REASON]


def test_constraints_are_recorded_as_violations_and_infeasible_trials_are_off_the_front(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    study = search(
        write_recipe, tmp_path, constraints=["f1 <= 0.5", "g >= 2"], budget={"trials": 20}
    )

    for trial in study.trials:
        f1, g = trial.user_attrs[records.METRICS]["f1"], trial.user_attrs[records.METRICS]["g"]
        assert trial.constraints == pytest.approx({"f1 <= 0.5": f1 - 0.5, "g >= 2": 2 - g})
    feasible = [t for t in study.trials if all(v <= 0 for v in t.constraints.values())]
    infeasible = [t for t in study.trials if t not in feasible]
    assert feasible and infeasible
    front = {t.number for t in pareto_front(study.trials, study.directions)}
    assert front
    assert not front & {t.number for t in infeasible}


def test_an_infeasible_trial_that_would_dominate_stays_off_the_front(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    # g >= 4 rules out small x1 + x2, i.e. the trials with the best f2 for their f1.
    study = search(write_recipe, tmp_path, constraints=["g >= 4"], budget={"trials": 30})

    unconstrained = {t.number for t in _non_dominated(study.trials)}
    front = {t.number for t in pareto_front(study.trials, study.directions)}
    infeasible = {t.number for t in study.trials if t.constraints["g >= 4"] > 0}
    assert unconstrained & infeasible  # the check below means something
    assert not front & infeasible


def _non_dominated(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    def dominates(a: FrozenTrial, b: FrozenTrial) -> bool:
        return all(x <= y for x, y in zip(a.values, b.values, strict=True)) and a.values != b.values

    return [t for t in trials if not any(dominates(o, t) for o in trials)]


def test_the_front_respects_each_objective_direction(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    study = search(
        write_recipe,
        tmp_path,
        budget={"trials": 20},
        objectives=[
            {"metric": "f1", "direction": "maximize"},
            {"metric": "f2", "direction": "minimize"},
        ],
    )
    signed = {t.number: (-t.values[0], t.values[1]) for t in study.trials}

    def dominated(n: int) -> bool:
        return any(
            all(a <= b for a, b in zip(signed[m], signed[n], strict=True))
            and signed[m] != signed[n]
            for m in signed
        )

    front = pareto_front(study.trials, study.directions)
    assert [t.number for t in front] == [n for n in signed if not dominated(n)]


def test_a_wall_clock_budget_ends_the_search_and_counts_across_resumes(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    recipe = load_recipe(
        write_recipe(entrypoint="sleeps", fixed={"sleep_s": 0.2}, budget={"wall_minutes": 0.01})
    )  # 0.6 s

    first = run(recipe, tmp_path / "run").study
    again = run(recipe, tmp_path / "run", resume=True).study

    assert 2 <= len(first.trials) <= 4
    assert len(again.trials) == len(first.trials)


def test_a_storage_url_holds_the_study_and_resume_reopens_it(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    run(load_recipe(write_recipe(storage=url, budget={"trials": 3})), tmp_path / "run")

    result = run(
        load_recipe(write_recipe("more.yaml", storage=url, budget={"trials": 5})),
        tmp_path / "run",
        resume=True,
    )

    assert len(result.study.trials) == 5
    assert not (tmp_path / "run" / JOURNAL_NAME).exists()
    stored = optuna.load_study(study_name="toy", storage=url)
    assert [t.values for t in stored.trials] == [t.values for t in result.study.trials]


def test_a_different_recipe_under_the_same_name_in_a_shared_storage_is_refused(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    run(load_recipe(write_recipe(storage=url, budget={"trials": 2})), tmp_path / "a")
    other = load_recipe(write_recipe("other.yaml", storage=url, budget={"trials": 2}, seed=7))

    with pytest.raises(ResumeError, match="made by a different recipe"):
        run(other, tmp_path / "b")

    assert len(optuna.load_study(study_name="toy", storage=url).trials) == 2


# ----------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("optimizer", ["tpe", "nsga2", "random"])
def test_the_same_seed_proposes_the_same_configurations(
    write_recipe: WriteRecipe, tmp_path: Path, optimizer: str
) -> None:
    recipe = load_recipe(write_recipe(optimizer={"name": optimizer}, budget={"trials": 14}))

    first = [xs(t) for t in run(recipe, tmp_path / "a").study.trials]
    second = [xs(t) for t in run(recipe, tmp_path / "b").study.trials]

    assert len(first) == 14
    assert first == second


@pytest.mark.parametrize("optimizer", ["tpe", "nsga2", "random"])
def test_different_seeds_propose_different_configurations(
    write_recipe: WriteRecipe, tmp_path: Path, optimizer: str
) -> None:
    base = {"optimizer": {"name": optimizer}, "budget": {"trials": 14}}
    seed0 = load_recipe(write_recipe("seed0.yaml", seed=0, **base))
    seed1 = load_recipe(write_recipe("seed1.yaml", seed=1, **base))

    first = [xs(t) for t in run(seed0, tmp_path / "a").study.trials]
    second = [xs(t) for t in run(seed1, tmp_path / "b").study.trials]

    assert first != second


# ----------------------------------------------------------------------------- run dirs, resume
def test_running_into_an_existing_run_dir_without_resume_is_refused(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    recipe = load_recipe(write_recipe(budget={"trials": 2}))
    run(recipe, tmp_path / "run")
    before = snapshot(open_journal(tmp_path / "run"))

    with pytest.raises(ResumeError, match="already holds a run"):
        run(recipe, tmp_path / "run")

    assert snapshot(open_journal(tmp_path / "run")) == before


def test_the_run_dir_holds_the_frozen_recipe(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    recipe = load_recipe(write_recipe(budget={"trials": 2}))
    run(recipe, tmp_path / "run")

    frozen = RunDir(tmp_path / "run").frozen_recipe()

    assert frozen.data == recipe.data
    assert frozen.fingerprint() == recipe.fingerprint()


def test_resume_with_a_changed_space_is_refused_naming_the_field(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    run(load_recipe(write_recipe(budget={"trials": 2})), tmp_path / "run")
    document = yaml.safe_load((tmp_path / "recipe.yaml").read_text())
    document["space"]["params"]["x0"] = {"float": [0.0, 2.0]}
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(document))

    with pytest.raises(ResumeError, match=r"space\.params\.x0") as caught:
        run(load_recipe(tmp_path / "changed.yaml"), tmp_path / "run", resume=True)

    assert "space.params.x1" not in str(caught.value)
    assert len(open_journal(tmp_path / "run").trials) == 2


def test_resume_with_a_changed_objective_is_refused(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    run(load_recipe(write_recipe(budget={"trials": 2})), tmp_path / "run")
    changed = write_recipe(
        "changed.yaml",
        budget={"trials": 2},
        objectives=[
            {"metric": "f1", "direction": "minimize"},
            {"metric": "g", "direction": "minimize"},
        ],
    )

    with pytest.raises(ResumeError, match="objectives"):
        run(load_recipe(changed), tmp_path / "run", resume=True)


def test_resume_with_a_raised_budget_keeps_the_trials_and_runs_up_to_the_new_total(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    run(load_recipe(write_recipe(budget={"trials": 4})), tmp_path / "run")
    before = snapshot(open_journal(tmp_path / "run"))
    more = load_recipe(write_recipe("more.yaml", budget={"trials": 9}))

    result = run(more, tmp_path / "run", resume=True)

    after = snapshot(result.study)
    assert len(after) == 9
    assert {n: after[n] for n in before} == before
    assert result.completed_now == 5
    assert RunDir(tmp_path / "run").frozen_recipe().budget.trials == 9


@pytest.mark.parametrize(
    "optimizer",
    [
        "random",
        "tpe",  # its first 10 trials are random
        "nsga2",
    ],
)
def test_resume_does_not_propose_configurations_already_run(
    write_recipe: WriteRecipe, tmp_path: Path, optimizer: str
) -> None:
    run(
        load_recipe(write_recipe(optimizer={"name": optimizer}, budget={"trials": 4})),
        tmp_path / "run",
    )
    more = load_recipe(
        write_recipe("more.yaml", optimizer={"name": optimizer}, budget={"trials": 8})
    )

    trials = run(more, tmp_path / "run", resume=True).study.trials

    first, resumed = [xs(t) for t in trials[:4]], [xs(t) for t in trials[4:]]
    assert len(resumed) == 4
    assert not [x for x in resumed if x in first]


def test_resume_of_a_finished_run_runs_nothing(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    recipe = load_recipe(write_recipe(budget={"trials": 3}))
    run(recipe, tmp_path / "run")

    result = run(recipe, tmp_path / "run", resume=True)

    assert len(result.study.trials) == 3
    assert result.completed_now == 0


def test_a_second_driver_on_a_locked_run_dir_is_refused(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    recipe = load_recipe(write_recipe(budget={"trials": 2}))
    run(recipe, tmp_path / "run")

    with (
        RunDir(tmp_path / "run").driver_lock(),
        pytest.raises(ResumeError, match="is being run by pid"),
    ):
        run(recipe, tmp_path / "run", resume=True)

    assert len(open_journal(tmp_path / "run").trials) == 2


def test_a_locked_fresh_run_dir_is_refused_too(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    recipe = load_recipe(write_recipe(budget={"trials": 2}))

    with (
        RunDir(tmp_path / "run").driver_lock(),
        pytest.raises(ResumeError, match="is being run by"),
    ):
        run(recipe, tmp_path / "run")


# ----------------------------------------------------------------------------- crash recovery
def _leave_a_trial_running(recipe: Recipe, run_dir: Path) -> FrozenTrial:
    """What a driver that died mid-trial leaves behind: a RUNNING trial with sampled params."""
    study = open_journal(run_dir)
    trial = study.ask()
    trial.set_user_attr(records.CONFIG, recipe.space.suggest(trial))
    return study.trials[trial.number]


def test_resume_after_a_crash_reruns_the_interrupted_trial_once_and_keeps_the_rest(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    run(load_recipe(write_recipe(budget={"trials": 4})), tmp_path / "run")
    finished = snapshot(open_journal(tmp_path / "run"))
    stale = _leave_a_trial_running(load_recipe(tmp_path / "recipe.yaml"), tmp_path / "run")
    assert stale.state == TrialState.RUNNING

    result = run(
        load_recipe(write_recipe("more.yaml", budget={"trials": 6})), tmp_path / "run", resume=True
    )

    trials = result.study.get_trials()
    assert result.recovered == 1
    assert {n: snapshot(result.study)[n] for n in finished} == finished
    interrupted = trials[stale.number]
    assert interrupted.state == TrialState.FAIL
    assert interrupted.user_attrs[records.INTERRUPTED] is True
    assert "interrupted" in interrupted.user_attrs[records.FAIL_REASON]
    retries = [t for t in trials if t.user_attrs.get(records.RETRY_OF) == stale.number]
    assert len(retries) == 1
    assert retries[0].params == stale.params
    assert retries[0].state == TrialState.COMPLETE
    assert [t.params for t in trials].count(stale.params) == 2  # the stale one and its re-run
    assert counted(result.study) == 6
    assert {t.state for t in trials if t.number != stale.number} == {TrialState.COMPLETE}


def test_a_trial_killed_before_it_had_a_configuration_is_failed_but_not_rerun(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    run(load_recipe(write_recipe(budget={"trials": 3})), tmp_path / "run")
    bare = open_journal(tmp_path / "run").ask()  # the driver died between ask and suggest

    result = run(
        load_recipe(write_recipe("more.yaml", budget={"trials": 4})), tmp_path / "run", resume=True
    )

    trials = result.study.get_trials()
    assert trials[bare.number].state == TrialState.FAIL
    assert "not re-run" in trials[bare.number].user_attrs[records.FAIL_REASON]
    assert not any(t.user_attrs.get(records.RETRY_OF) == bare.number for t in trials)
    assert counted(result.study) == 4


def test_an_interrupted_trial_does_not_count_against_the_budget(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    run(load_recipe(write_recipe(budget={"trials": 4})), tmp_path / "run")
    _leave_a_trial_running(load_recipe(tmp_path / "recipe.yaml"), tmp_path / "run")

    result = run(
        load_recipe(write_recipe("more.yaml", budget={"trials": 5})), tmp_path / "run", resume=True
    )

    assert len(result.study.trials) == 6  # 4 finished, 1 interrupted, its re-run
    assert counted(result.study) == 5


def test_a_stop_signal_ends_the_search_with_every_finished_trial_saved(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    marker = tmp_path / "interrupted.txt"
    recipe = load_recipe(
        write_recipe(
            entrypoint="interrupts_once",
            budget={"trials": 6},
            fixed={"interrupt_at": 2, "marker": str(marker)},
        )
    )

    result = run(recipe, tmp_path / "run")

    assert result.interrupted
    assert marker.exists()
    assert len(result.study.trials) == 3
    assert {t.state for t in result.study.trials} == {TrialState.COMPLETE}

    resumed = run(recipe, tmp_path / "run", resume=True)

    assert not resumed.interrupted
    assert counted(resumed.study) == 6
    assert len(resumed.study.trials) == 6


# ----------------------------------------------------------------------------- worker processes
def test_a_search_on_local_workers_survives_trials_that_kill_their_worker(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    # Seed 0 draws x0 = 0.549, 0.545, 0.438: two workers die at once, then a trial succeeds.
    recipe = load_recipe(
        write_recipe(
            entrypoint="dies_above_half",
            fixed={"how": "sigkill"},
            budget={"trials": 3},
            execution={"executor": "local", "workers": 2, "trial_timeout_s": 60},
        )
    )

    study = run(recipe, tmp_path / "run").study

    assert [t.state for t in study.trials] == [
        TrialState.FAIL,
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    for trial in study.trials[:2]:
        assert "worker process died: killed by SIGKILL" in trial.user_attrs[records.FAIL_REASON]
    expected = toy_tasks.zdt1_values(xs(study.trials[2]))
    assert study.trials[2].values == pytest.approx([expected["f1"], expected["f2"]])
    assert study.trials[2].user_attrs[records.METRICS] == pytest.approx(expected)


CHEAP_FIRST_RECIPE = """\
name: cheap-first
task: {builtin: digits-cnn}
space:
  architecture: {width_mult: {float: [0.1, 1.0]}, depth: 1}
  training: {epochs: 1}
objectives:
  - {metric: accuracy, direction: maximize}
  - {metric: latency_ms, direction: minimize}
constraints: ["size_mb <= 0.1"]
measure: {batch_size: 4, warmup: 1, repeats: 3}
optimizer: {name: random}
execution: {executor: inline}
budget: {trials: 10}
"""


def test_configurations_breaking_a_size_limit_are_rejected_before_training(
    tmp_path: Path,
) -> None:
    (tmp_path / "r.yaml").write_text(CHEAP_FIRST_RECIPE)
    result = run(load_recipe(tmp_path / "r.yaml"), tmp_path / "run")

    trials = result.study.get_trials()
    rejected = [t for t in trials if records.REJECTED in t.user_attrs]
    trained = [t for t in trials if "train_time_s" in t.user_attrs.get(records.METRICS, {})]
    assert rejected and trained  # widths 0.1-1.0 straddle the 0.1 MB limit
    for trial in rejected:
        metrics = trial.user_attrs[records.METRICS]
        assert metrics["size_mb"] > 0.1
        assert "train_time_s" not in metrics and "accuracy" not in metrics
        assert "rejected before training: size_mb" in trial.user_attrs[records.REJECTED]
    told = [t for t in rejected if t.state == TrialState.COMPLETE]
    assert told  # every rejection after the first measured trial
    for trial in told:  # the optimizer saw them as infeasible, with the worst values so far
        assert trial.constraints["size_mb <= 0.1"] > 0
    front = pareto_front(result.study.trials, result.study.directions)
    assert not {t.number for t in rejected} & {t.number for t in front}
    assert counted(result.study) == 10


def test_rejections_before_any_trial_finished_are_failed_and_still_counted_as_rejections(
    tmp_path: Path,
) -> None:
    (tmp_path / "r.yaml").write_text(
        CHEAP_FIRST_RECIPE.replace("size_mb <= 0.1", "size_mb <= 0.0001").replace(
            "trials: 10", "trials: 3"
        )
    )
    result = run(load_recipe(tmp_path / "r.yaml"), tmp_path / "run")

    trials = result.study.get_trials()
    # nothing was ever measured, so no values could stand in: each is told as failed
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert all("breaks size_mb <= 0.0001" in t.user_attrs[records.REJECTED] for t in trials)
    lines = constraint_lines(effsearch.load(tmp_path / "run").summary)
    assert (
        "3 configurations rejected before training (a constraint on size, params, FLOPs or "
        "untrained latency, or an engine that cannot run them); 3 of them recorded as failed"
    ) in "\n".join(lines)
