"""SearchSpace and Knob: conditional and fixed knobs, parameter round trips, built-in defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from effsearch.recipe import load_recipe
from effsearch.registry import lookup
from effsearch.spaces.knobs import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    Knob,
    SearchSpace,
)

PRUNING_ACTIVE = (("pruning.method", ("magnitude", "channel")),)

DIGITS_RECIPE = """\
name: knobs-test
task: {builtin: digits-cnn}
space:
  pruning:
    method: {choice: [none, magnitude, channel]}
    sparsity: {float: [0.1, 0.8]}
    finetune_epochs: 2
  training:
    lr: {float: [1e-4, 1e-2], log: true}
    epochs: 5
objectives: [{metric: accuracy, direction: maximize}, {metric: latency_ms, direction: minimize}]
budget: {trials: 10}
"""

QUANTIZATION_ONLY_RECIPE = """\
name: knobs-test
task: {builtin: digits-cnn}
space:
  quantization:
    scheme: {choice: [none, bf16, int8_dynamic]}
objectives: [{metric: accuracy, direction: maximize}, {metric: latency_ms, direction: minimize}]
budget: {trials: 10}
"""


@pytest.fixture(autouse=True)
def _quiet_optuna():
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(level)


def load_space(tmp_path: Path, text: str) -> SearchSpace:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return load_recipe(path).space


def sample(space: SearchSpace, n: int, seed: int = 0) -> list[tuple[dict[str, Any], dict]]:
    """``n`` (Optuna params, nested config) pairs drawn by a seeded RandomSampler."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    drawn = []
    for _ in range(n):
        trial = study.ask()
        config = space.suggest(trial)
        study.tell(trial, 0.0)
        drawn.append((study.trials[-1].params, config))
    return drawn


@pytest.fixture
def digits_space(tmp_path) -> SearchSpace:
    return load_space(tmp_path, DIGITS_RECIPE)


# ----------------------------------------------------------------------------- conditional knobs
def test_conditional_knob_is_sampled_only_when_its_condition_holds(digits_space):
    drawn = sample(digits_space, 60)
    methods = {config["pruning"]["method"] for _, config in drawn}
    assert methods == {"none", "magnitude", "channel"}

    for params, config in drawn:
        active = config["pruning"]["method"] in ("magnitude", "channel")
        assert ("sparsity" in config["pruning"]) == active, config
        assert ("pruning.sparsity" in params) == active, params
        if active:
            assert 0.1 <= config["pruning"]["sparsity"] <= 0.8


def test_fixed_conditional_knob_follows_its_condition(digits_space):
    for _, config in sample(digits_space, 30):
        active = config["pruning"]["method"] != "none"
        assert config["pruning"].get("finetune_epochs") == (2 if active else None), config


def test_condition_on_an_inactive_knob_is_false():
    space = SearchSpace(
        [
            Knob("g", "a", CategoricalDistribution(("on", "off"))),
            Knob("g", "b", CategoricalDistribution(("x", "y")), when=(("g.a", ("on",)),)),
            Knob("g", "c", FloatDistribution(0.0, 1.0), when=(("g.b", ("x",)),)),
        ]
    )
    stale = {"g.a": "off", "g.b": "x", "g.c": 0.5}  # b and c were stored, but a switched b off

    assert space.config_from_params(stale) == {"g": {"a": "off"}}
    assert space.config_from_params({"g.a": "on", "g.b": "x", "g.c": 0.5}) == {
        "g": {"a": "on", "b": "x", "c": 0.5}
    }


def test_condition_naming_a_later_knob_is_refused():
    with pytest.raises(ValueError) as info:
        SearchSpace(
            [
                Knob("pruning", "sparsity", FloatDistribution(0.0, 0.9), when=PRUNING_ACTIVE),
                Knob(
                    "pruning", "method", CategoricalDistribution(("none", "magnitude", "channel"))
                ),
            ]
        )

    assert str(info.value) == (
        "knob 'pruning.sparsity': its condition names 'pruning.method', which must be "
        "declared before it"
    )


def test_condition_naming_the_knob_itself_is_refused():
    with pytest.raises(ValueError, match=r"'g\.a': its condition names 'g\.a'"):
        SearchSpace([Knob("g", "a", CategoricalDistribution((1, 2)), when=(("g.a", (1,)),))])


# ----------------------------------------------------------------------------- params <-> config
def test_config_from_params_rebuilds_every_sampled_config(digits_space):
    for params, config in sample(digits_space, 40):
        assert digits_space.config_from_params(params) == config
        assert digits_space.flat_params(config) == params


def test_fixed_knobs_are_in_configs_but_not_optuna_params(digits_space):
    params, config = sample(digits_space, 1)[0]

    assert config["training"]["epochs"] == 5
    assert config["architecture"] == {"width_mult": 1.0, "depth": 3}
    assert "training.epochs" not in params
    assert not any(name.startswith("architecture.") for name in params)


def test_flat_params_names_are_group_dot_knob(digits_space):
    config = {
        "architecture": {"width_mult": 1.0, "depth": 3},
        "training": {"lr": 0.001, "epochs": 5, "batch_size": 64},
        "pruning": {"method": "channel", "sparsity": 0.5, "finetune_epochs": 2},
        "quantization": {"scheme": "none"},
    }

    assert digits_space.flat_params(config) == {
        "training.lr": 0.001,
        "pruning.method": "channel",
        "pruning.sparsity": 0.5,
    }


def test_groups_keep_declaration_order():
    space = SearchSpace(
        [
            Knob("b", "x", None, fixed=1),
            Knob("a", "y", FloatDistribution(0.0, 1.0)),
            Knob("b", "z", None, fixed=2),
        ]
    )
    assert space.groups() == ["b", "a"]
    assert [k.full_name for k in space.searched] == ["a.y"]


def test_choice_knob_sampling_null_stays_in_config():
    space = SearchSpace([Knob("params", "act", CategoricalDistribution((None, "relu")))])
    drawn = sample(space, 12)
    assert any(params["params.act"] is None for params, _ in drawn)

    for params, config in drawn:
        assert config["params"]["act"] == params["params.act"]


# ----------------------------------------------------------------------------- describe
@pytest.mark.parametrize(
    ("knob", "text"),
    [
        (Knob("g", "x", FloatDistribution(0.1, 0.8)), "float [0.1, 0.8]"),
        (Knob("g", "x", FloatDistribution(1e-4, 1e-2, log=True)), "float [0.0001, 0.01] log"),
        (Knob("g", "x", FloatDistribution(0.0, 1.0, step=0.25)), "float [0.0, 1.0] step 0.25"),
        (Knob("g", "n", IntDistribution(1, 4)), "int [1, 4]"),
        (Knob("g", "n", IntDistribution(2, 64, log=True)), "int [2, 64] log"),
        (Knob("g", "n", IntDistribution(0, 8, step=2)), "int [0, 8] step 2"),
        (Knob("g", "m", CategoricalDistribution(("none", "bf16"))), "choice none, bf16"),
        (Knob("g", "e", None, fixed=15), "= 15"),
        (Knob("g", "m", None, fixed="none"), "= 'none'"),
        (
            Knob("pruning", "sparsity", FloatDistribution(0.1, 0.8), when=PRUNING_ACTIVE),
            "float [0.1, 0.8]  when pruning.method in (magnitude, channel)",
        ),
    ],
)
def test_describe_says_range_or_value_and_condition(knob, text):
    assert knob.describe() == text


# ----------------------------------------------------------------------------- built-in defaults
def test_builtin_recipe_fills_every_knob_of_every_family_with_its_default(tmp_path):
    space = load_space(tmp_path, QUANTIZATION_ONLY_RECIPE)
    families = lookup("task", "digits-cnn").families
    by_name = {k.full_name: k for k in space.knobs}

    assert list(by_name) == [f"{g}.{d.name}" for g, decls in families.items() for d in decls]
    for group, decls in families.items():
        for decl in decls:
            knob = by_name[f"{group}.{decl.name}"]
            # a condition lists only the choices this task offers for the knob it names
            offered = {d.name: d.choices for d in decls}
            assert knob.when == tuple(
                (f"{group}.{r}", tuple(x for x in v if x in offered[r]))
                for r, v in decl.when.items()
            )
            if group != "quantization":
                assert not knob.searched, knob.full_name
                assert knob.fixed == decl.default, knob.full_name
    assert by_name["training.lr"].fixed == 3e-3
    assert by_name["pruning.sparsity"].when == (("pruning.method", ("magnitude", "channel")),)
    assert [k.full_name for k in space.searched] == ["quantization.scheme"]


def test_builtin_defaults_make_a_complete_config(tmp_path):
    space = load_space(tmp_path, QUANTIZATION_ONLY_RECIPE)
    for _, config in sample(space, 5):
        assert config == {
            "architecture": {"width_mult": 1.0, "depth": 3},
            "training": {"lr": 3e-3, "epochs": 15, "batch_size": 64},
            "pruning": {"method": "none"},  # sparsity and finetune_epochs are inactive
            "quantization": {"scheme": config["quantization"]["scheme"]},
            "runtime": {"engine": "eager"},
        }


def test_fixed_integer_for_a_float_knob_arrives_as_float(tmp_path):
    space = load_space(
        tmp_path, DIGITS_RECIPE.replace("space:\n", "space:\n  architecture:\n    width_mult: 1\n")
    )
    width = next(k for k in space.knobs if k.full_name == "architecture.width_mult")

    assert width.fixed == 1.0
    assert isinstance(width.fixed, float)
