"""Conformance suite for optimizers: every registered name passes the same tests.

A new optimizer registers itself with ``@register("optimizer", name)`` and is picked up here
without a new line: valid configs on a conditional mixed space, constraints respected, failed
trials handled, seeded reproducibility.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from effsearch.errors import UserInputError
from effsearch.recipe import Constraint, ObjectiveSection
from effsearch.registry import names
from effsearch.search import records, study_front
from effsearch.search.optimizers import OptimizerRequest, make_sampler
from effsearch.search.stopped_view import SeesStoppedTrials, last_values
from effsearch.spaces.knobs import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    Knob,
    SearchSpace,
)

OPTIMIZERS = names("optimizer")
# GP-based samplers cost ~0.1-1 s per trial after their start; keep their runs short.
TRIALS = {"gp": 15, "botorch": 20, "auto": 20}
DEFAULT_TRIALS = 25
DIRECTIONS = ["minimize", "maximize"]
FAIL_EVERY = 5  # trials 4, 9, 14, ... fail
X_LIMIT = 0.7  # constraint: x <= 0.7

SPACE = SearchSpace(
    [
        Knob("params", "x", FloatDistribution(0.0, 1.0)),
        Knob("params", "n", IntDistribution(1, 8)),
        Knob("params", "lr", FloatDistribution(1e-4, 1e-1, log=True)),
        Knob("params", "method", CategoricalDistribution(("none", "magnitude", "channel"))),
        Knob(
            "params",
            "sparsity",
            FloatDistribution(0.1, 0.9),
            when=(("params.method", ("magnitude", "channel")),),
        ),
        Knob("params", "epochs", None, fixed=3),
    ]
)


@pytest.fixture(autouse=True)
def _quiet_optuna():
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    yield
    optuna.logging.set_verbosity(level)


def objectives(config: dict[str, dict[str, Any]]) -> list[float]:
    p = config["params"]
    cost = p["x"] + p["n"] / 8 + p.get("sparsity", 0.0) + (0.2 if p["method"] == "none" else 0.0)
    quality = 1.0 - abs(p["x"] - 0.5) + math.log10(p["lr"]) / 8 + p.get("sparsity", 0.0) / 4
    return [cost, quality]


@dataclass
class Run:
    configs: list[dict[str, dict[str, Any]]]
    study: optuna.Study


def drive(
    name: str,
    seed: int = 0,
    trials: int | None = None,
    fails: Callable[[int], bool] = lambda i: i % FAIL_EVERY == FAIL_EVERY - 1,
) -> Run:
    """Ask-and-tell ``trials`` trials; failing ones are told FAIL, the rest get a constraint."""
    trials = trials or TRIALS.get(name, DEFAULT_TRIALS)
    request = OptimizerRequest(
        seed=seed, n_objectives=len(DIRECTIONS), space=SPACE, workers=1, trials=trials
    )
    study = optuna.create_study(directions=DIRECTIONS, sampler=make_sampler(name, request).sampler)
    configs = []
    for i in range(trials):
        trial = study.ask()
        config = SPACE.suggest(trial)
        configs.append(config)
        if fails(i):
            study.tell(trial, state=TrialState.FAIL)
            continue
        trial.set_constraint("x_limit", config["params"]["x"] - X_LIMIT)
        study.tell(trial, objectives(config))
    return Run(configs, study)


@functools.cache
def reference_run(name: str) -> Run:
    return drive(name)


def assert_valid(config: dict[str, dict[str, Any]], params: dict[str, Any]) -> None:
    p = config["params"]
    assert 0.0 <= p["x"] <= 1.0
    assert isinstance(p["n"], int) and 1 <= p["n"] <= 8
    assert 1e-4 <= p["lr"] <= 1e-1
    assert p["method"] in ("none", "magnitude", "channel")
    active = p["method"] != "none"
    assert ("sparsity" in p) == active, config
    if active:
        assert 0.1 <= p["sparsity"] <= 0.9
    assert p["epochs"] == 3
    assert set(params) == {f"params.{k}" for k in p if k != "epochs"}


# ----------------------------------------------------------------------------- conformance
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_sampled_config_is_valid(name):
    run = reference_run(name)

    assert len(run.study.trials) == len(run.configs)
    for trial, config in zip(run.study.trials, run.configs, strict=True):
        assert_valid(config, trial.params)
    methods = {c["params"]["method"] for c in run.configs}
    assert "none" in methods and methods - {"none"}, "both branches of the condition are drawn"


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_best_trials_hold_only_feasible_trials(name):
    run = reference_run(name)
    complete = run.study.get_trials(states=[TrialState.COMPLETE])
    infeasible = [t for t in complete if t.params["params.x"] > X_LIMIT]
    best = run.study.best_trials

    assert infeasible, "the run must contain infeasible trials for this test to mean anything"
    assert best
    for trial in best:
        assert trial.state == TrialState.COMPLETE
        assert trial.constraints == {"x_limit": trial.params["params.x"] - X_LIMIT}
        assert trial.params["params.x"] <= X_LIMIT
    assert not {t.number for t in best} & {t.number for t in infeasible}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_failed_trials_do_not_break_later_suggestions(name):
    run = reference_run(name)
    states = [t.state for t in run.study.trials]

    assert states == [
        TrialState.FAIL if i % FAIL_EVERY == FAIL_EVERY - 1 else TrialState.COMPLETE
        for i in range(len(states))
    ]
    after_failure = [t for t in run.study.trials if t.number % FAIL_EVERY == 0 and t.number]
    assert after_failure
    for trial in after_failure:
        assert_valid(run.configs[trial.number], trial.params)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_suggestions_continue_when_every_early_trial_failed(name):
    run = drive(name, trials=10, fails=lambda i: i < 6)

    assert [t.state for t in run.study.trials].count(TrialState.FAIL) == 6
    for trial, config in zip(run.study.trials, run.configs, strict=True):
        assert_valid(config, trial.params)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_same_seed_gives_the_same_configs(name):
    assert drive(name, seed=0).configs == reference_run(name).configs


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_different_seeds_give_different_configs(name):
    assert drive(name, seed=1).configs != reference_run(name).configs


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_unknown_sampler_options_are_a_user_error(name):
    request = OptimizerRequest(
        seed=0, n_objectives=2, space=SPACE, workers=1, trials=10, options={"no_such_option": 1}
    )
    with pytest.raises(UserInputError) as info:
        make_sampler(name, request)

    assert "optimizer.options do not fit optimizer" in str(info.value)
    assert "no_such_option" in str(info.value)


@pytest.mark.parametrize("name", [n for n in OPTIMIZERS if n != "auto"])
def test_named_optimizer_says_it_was_named(name):
    choice = make_sampler(name, OptimizerRequest(0, 2, SPACE, 1, 10))

    assert (choice.name, choice.reason) == (name, "named in the recipe")
    assert isinstance(choice.sampler, optuna.samplers.BaseSampler)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_parallel_workers_get_distinct_configs(name):
    """Four trials asked before any is told (four busy workers) must not repeat each other."""
    request = OptimizerRequest(seed=0, n_objectives=2, space=SPACE, workers=4, trials=40)
    study = optuna.create_study(directions=DIRECTIONS, sampler=make_sampler(name, request).sampler)
    for _ in range(12):
        trial = study.ask()
        config = SPACE.suggest(trial)
        trial.set_constraint("x_limit", config["params"]["x"] - X_LIMIT)
        study.tell(trial, objectives(config))
    in_flight = [SPACE.suggest(study.ask()) for _ in range(4)]

    distinct = {repr(sorted(c["params"].items())) for c in in_flight}
    assert len(distinct) == 4, in_flight


# ----------------------------------------------------------------------------- botorch
def test_botorch_infers_the_reference_point_once_and_stores_it():
    run = reference_run("botorch")
    stored = run.study.user_attrs[study_front.STUDY_REFERENCE]

    assert stored["source"].startswith("inferred from trials ")
    assert len(stored["values"]) == 2
    # it is the rule's point from the first feasible trials, not one refitted to later ones
    again = study_front.reference_point(
        run.study.trials,
        [ObjectiveSection(metric=f"objective {i}", direction=d) for i, d in enumerate(DIRECTIONS)],
        [],
    )
    assert again is not None and again.values == stored["values"]


def test_botorch_uses_the_recipe_reference_point_when_there_is_one():
    request = OptimizerRequest(
        seed=0,
        n_objectives=2,
        space=SPACE,
        workers=1,
        trials=15,
        objectives=[
            ObjectiveSection(metric="cost", direction="minimize", ref=3.0),
            ObjectiveSection(metric="quality", direction="maximize", ref=0.0),
        ],
    )
    sampler = make_sampler("botorch", request).sampler
    study = optuna.create_study(directions=DIRECTIONS, sampler=sampler)
    for _ in range(12):
        trial = study.ask()
        study.tell(trial, objectives(SPACE.suggest(trial)))

    stored = study.user_attrs[study_front.STUDY_REFERENCE]
    assert stored == {"values": [3.0, 0.0], "source": "recipe"}


# ----------------------------------------------------------------------------- auto
UNCONDITIONAL = SearchSpace([k for k in SPACE.knobs if not k.when])


@pytest.mark.parametrize(
    ("n_objectives", "space", "workers", "trials", "chosen", "why"),
    [
        (2, SPACE, 1, 40, "botorch", "a budget of 40 trials (<= 300), 2 objectives"),
        (3, UNCONDITIONAL, 4, 40, "botorch", "pending trials keep parallel workers apart"),
        (2, SPACE, 1, 1000, "tpe", "1000 trials: a GP would cost more"),
        (2, SPACE, 4, None, "tpe", "keeps 4 parallel workers apart"),
        (2, SPACE, 1, None, "tpe", "models conditional knobs by group"),
        (4, SPACE, 1, 40, "nsga3", "4 objectives"),
    ],
)
def test_auto_names_its_choice_and_why(n_objectives, space, workers, trials, chosen, why):
    choice = make_sampler("auto", OptimizerRequest(0, n_objectives, space, workers, trials))

    assert choice.name == chosen
    assert choice.reason.startswith(f"auto chose {chosen}: ")
    assert why in choice.reason
    assert chosen in OPTIMIZERS


@pytest.mark.parametrize(
    ("trial_s", "chosen"), [(2.0, "tpe"), (600.0, "botorch"), (None, "botorch")]
)
def test_auto_weighs_the_cost_of_a_trial(trial_s, chosen):
    request = OptimizerRequest(0, 2, SPACE, 2, 40, typical_trial_s=trial_s)
    choice = make_sampler("auto", request)

    assert choice.name == chosen
    if chosen == "tpe":
        assert "trials of this task take about 2 s" in choice.reason


def test_unknown_optimizer_lists_the_known_ones():
    with pytest.raises(KeyError) as info:
        make_sampler("nsgaa2", OptimizerRequest(0, 2, SPACE, 1, 10))

    message = info.value.args[0]
    assert "unknown optimizer 'nsgaa2'. Did you mean 'nsga2'?" in message
    assert f"Known: {', '.join(OPTIMIZERS)}" in message


def test_dynamic_nsga2_population_doubles_every_tau_evaluations_up_to_mu():
    from effsearch.search.dynamic_nsga2 import population_at

    sizes = [population_at(n, tau=10, mu=20) for n in (0, 9, 10, 19, 20, 29, 30, 1000)]
    assert sizes == [4, 4, 8, 8, 16, 16, 20, 20]


def test_dynamic_nsga2_runs_small_generations_first():
    from effsearch.search.dynamic_nsga2 import DynamicNSGAIISampler

    sampler = DynamicNSGAIISampler(seed=0, tau=8, mu=16)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(
        lambda t: (t.suggest_float("x", 0, 1), 1 - t.suggest_float("y", 0, 1)), n_trials=40
    )
    key = sampler._get_generation_key()
    generations = [t.system_attrs[key] for t in study.trials]
    sizes = [generations.count(g) for g in sorted(set(generations))]
    assert sizes[:4] == [4, 4, 8, 16]  # 4 for the first 8 evaluations, then doubling
    assert [sampler.generation_size(g) for g in range(5)] == [4, 4, 8, 16, 16]


COST_QUALITY = [
    ObjectiveSection(metric="cost", direction="minimize"),
    ObjectiveSection(metric="quality", direction="maximize"),
]


class Recording(optuna.samplers.RandomSampler):
    """A random sampler that keeps what the study showed it at each suggestion."""

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.shown: list[list[FrozenTrial]] = []

    def infer_relative_search_space(self, study, trial):
        self.shown.append(study.get_trials(deepcopy=False))
        return {}


def test_a_sampler_sees_stopped_trials_as_finished_with_their_last_values():
    inner = Recording()
    viewed = SeesStoppedTrials(inner, last_values(COST_QUALITY, [Constraint("quality", ">=", 0.5)]))
    study = optuna.create_study(directions=DIRECTIONS, sampler=viewed)
    for last in ({"cost": 1.0, "quality": 0.1}, {"cost": 2.0}):  # the second lacks quality
        trial = study.ask()
        trial.set_user_attr(records.METRICS, last)
        study.tell(trial, state=TrialState.PRUNED)
    study.ask().suggest_float("x", 0.0, 1.0)  # the sampler looks at the study on a suggestion

    first, second = inner.shown[-1][:2]
    assert first.state == TrialState.COMPLETE and first.values == [1.0, 0.1]
    assert first.constraints == {"quality >= 0.5": pytest.approx(0.4)}  # infeasible as it stood
    assert second.state == TrialState.PRUNED  # not every objective known: left as it was
    assert [t.state for t in study.get_trials()][:2] == [TrialState.PRUNED] * 2  # storage too


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_trials_stopped_early_and_shown_as_finished_do_not_break_suggestions(name):
    """Every third trial is stopped early with last metrics; the sampler, shown them as
    finished, goes on proposing valid configurations."""
    trials = TRIALS.get(name, DEFAULT_TRIALS)
    request = OptimizerRequest(
        seed=0, n_objectives=2, space=SPACE, workers=1, trials=trials, objectives=COST_QUALITY
    )
    sampler = SeesStoppedTrials(make_sampler(name, request).sampler, last_values(COST_QUALITY, []))
    study = optuna.create_study(directions=DIRECTIONS, sampler=sampler)
    for i in range(trials):
        trial = study.ask()
        config = SPACE.suggest(trial)
        assert_valid(config, trial.params)
        cost, quality = objectives(config)
        if i % 3 == 2:
            trial.set_user_attr(records.METRICS, {"cost": cost, "quality": quality - 0.2})
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, [cost, quality])
    assert len(study.get_trials(states=(TrialState.PRUNED,))) == trials // 3


def test_out_of_range_botorch_options_are_a_user_error():
    request = OptimizerRequest(0, 2, SPACE, 1, 10, options={"candidates": 4})
    with pytest.raises(UserInputError, match="need n_startup_trials >= 2, candidates >= 16"):
        make_sampler("botorch", request)
