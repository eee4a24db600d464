"""Pareto set, fixed reference point and hypervolume history: what show and plots rely on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from effsearch.recipe import Constraint, ObjectiveSection, load_recipe
from effsearch.search import records, study_front
from effsearch.search.rundir import RunDir
from effsearch.search.runner import Runner
from effsearch.search.view import View

MIN_MIN = (
    ObjectiveSection(metric="f1", direction="minimize"),
    ObjectiveSection(metric="f2", direction="minimize"),
)


class Quiet(View):
    def start(self, study, total, counted):  # type: ignore[no-untyped-def]
        pass

    def trial_completed(self, study, number, values):  # type: ignore[no-untyped-def]
        pass

    def trial_failed(self, number, reason, trial_dir):  # type: ignore[no-untyped-def]
        pass

    def message(self, text):  # type: ignore[no-untyped-def]
        self.last = text


def study_with(points: list[tuple[float, float]], directions: tuple[str, str]) -> optuna.Study:
    study = optuna.create_study(directions=list(directions))
    for values in points:
        trial = study.ask()
        study.tell(trial, list(values))
    return study


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 10), st.floats(0, 10)), min_size=1, max_size=25),
    st.sampled_from([("minimize", "minimize"), ("maximize", "minimize")]),
)
def test_no_pareto_member_is_dominated_and_every_other_trial_is(points, directions):
    study = study_with(points, directions)
    sign = [1 if d == "minimize" else -1 for d in directions]
    front = study_front.pareto_front(study.trials, study.directions)

    def dominates(a: list[float], b: list[float]) -> bool:
        la = [s * v for s, v in zip(sign, a, strict=True)]
        lb = [s * v for s, v in zip(sign, b, strict=True)]
        return all(x <= y for x, y in zip(la, lb, strict=True)) and la != lb

    for member in front:
        assert not any(dominates(t.values, member.values) for t in study.trials)
    numbers = {t.number for t in front}
    for other in study.trials:
        if other.number not in numbers:
            assert any(dominates(m.values, other.values) or m.values == other.values for m in front)


def test_reference_point_comes_from_objective_refs_and_constraint_limits():
    objectives = (
        ObjectiveSection(metric="acc", direction="maximize"),
        ObjectiveSection(metric="ms", direction="minimize", ref=20.0),
    )
    reference = study_front.reference_point([], objectives, [Constraint("acc", ">=", 0.9)])
    assert reference is not None
    assert reference.values == [0.9, 20.0]
    assert reference.source == "recipe"


def test_an_inferred_reference_point_waits_for_enough_trials():
    study = study_with([(1.0, 4.0), (2.0, 3.0), (3.0, 2.0), (4.0, 1.0)], ("minimize", "minimize"))
    assert study_front.reference_point(study.trials, MIN_MIN, []) is None  # 4 < 5 trials
    study.tell(study.ask(), [5.0, 0.5])
    reference = study_front.reference_point(study.trials, MIN_MIN, [])
    assert reference is not None
    assert reference.values == [5.4, 4.35]  # worst + 10 % of the range
    assert reference.source == "inferred from trials 0, 1, 2, 3, 4"


def test_hypervolume_of_a_known_front():
    study = study_with([(1.0, 2.0), (2.0, 1.0)], ("minimize", "minimize"))
    reference = study_front.Reference([3.0, 3.0], "recipe")
    # two 2x1 boxes overlapping in a 1x1 square
    assert study_front.hypervolume(study.trials, MIN_MIN, reference) == 3.0


def test_hypervolume_history_never_falls_and_ends_at_the_final_value():
    study = study_with([(3.0, 3.0), (1.0, 2.5), (2.0, 1.0), (2.5, 2.5)], ("minimize", "minimize"))
    reference = study_front.Reference([4.0, 4.0], "recipe")
    history = study_front.hypervolume_history(study.trials, MIN_MIN, reference)
    volumes = [h["hypervolume"] for h in history]
    assert volumes == sorted(volumes)
    assert volumes[-1] == study_front.hypervolume(study.trials, MIN_MIN, reference)
    assert [h["finished"] for h in history] == [1, 2, 3, 4]


def test_the_reference_point_is_stored_once_and_kept_on_resume(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = load_recipe(write_recipe(budget={"trials": 8}))
    first = Runner(recipe, RunDir(tmp_path / "run"), Quiet()).run(resume=False)
    stored = first.study.user_attrs[study_front.STUDY_REFERENCE]
    assert stored["source"].startswith("inferred from trials")

    more = load_recipe(write_recipe("more.yaml", budget={"trials": 20}))
    again = Runner(more, RunDir(tmp_path / "run"), Quiet()).run(resume=True)
    assert again.study.user_attrs[study_front.STUDY_REFERENCE] == stored


def test_a_stalled_hypervolume_stops_the_search_early_and_says_why(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = load_recipe(
        write_recipe(
            entrypoint="constant",
            objectives=[
                {"metric": "f1", "direction": "minimize", "ref": 1.0},
                {"metric": "f2", "direction": "minimize", "ref": 1.0},
            ],
            budget={"trials": 50, "stop_when_stalled": {"trials": 5, "min_improvement": 0.01}},
        )
    )
    view = Quiet()
    result = Runner(recipe, RunDir(tmp_path / "run"), view).run(resume=False)
    assert len(result.study.trials) == 6  # the first point, then 5 trials without a gain
    reason = result.study.user_attrs[records.STUDY_STOPPED_EARLY]
    assert "over the last 5 finished trials" in reason
    assert "stopping early" in view.last


def test_front_neighbours_closer_than_the_latency_spread_are_flagged(tmp_path: Path) -> None:
    """Two Pareto members 0.01 ms apart when each trial's repeats spread over 0.05 ms: the
    summary says the gap is within the noise; a gap wider than the spread is not flagged."""
    from optuna.trial import create_trial

    from effsearch.recipe import load_recipe
    from effsearch.search.summary import RunSummary

    path = tmp_path / "r.yaml"
    path.write_text(
        "name: t\ntask: {entrypoint: 'toy_tasks:zdt1', metrics: [accuracy, latency_ms]}\n"
        "space: {params: {x0: {float: [0, 1]}}}\n"
        "objectives: [{metric: accuracy, direction: maximize}, "
        "{metric: latency_ms, direction: minimize}]\nbudget: {trials: 3}\n"
    )
    recipe = load_recipe(path)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for accuracy, latency in ((0.90, 1.00), (0.91, 1.01), (0.99, 2.00)):
        study.add_trial(
            create_trial(
                values=[accuracy, latency],
                user_attrs={
                    records.METRICS: {
                        "accuracy": accuracy,
                        "latency_ms": latency,
                        "latency_iqr_ms": 0.05,
                    }
                },
            )
        )

    gaps = RunSummary.from_study(recipe, study).within_noise()

    assert gaps == [
        {
            "metric": "latency_ms",
            "trials": [0, 1],
            "difference": pytest.approx(0.01),
            "spread": 0.05,
        }
    ]
