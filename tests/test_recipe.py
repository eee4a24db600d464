"""Recipe loading and validation: every problem names its dotted path, its YAML line and what
must hold; all problems of a file are collected into one RecipeError."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from effsearch.errors import ArgumentError, Problem, RecipeError
from effsearch.recipe import (
    Constraint,
    Recipe,
    differences,
    load_recipe,
    parse_yaml,
    validate,
    with_overrides,
)
from effsearch.registry import names
from effsearch.spaces.knobs import FloatDistribution

# Line numbers in the cases below refer to this text; keep its lines where they are.
BASE = """\
name: digits-test
seed: 0
task: {builtin: digits-cnn}
space:
  architecture:
    width_mult: {float: [0.25, 1.0]}
    depth: {int: [1, 3]}
  pruning:
    method: {choice: [none, magnitude, channel]}
    sparsity: {float: [0.1, 0.8]}
  quantization:
    scheme: {choice: [none, bf16, int8_dynamic]}
  training:
    lr: {float: [1e-4, 1e-2], log: true}
    epochs: 2
objectives:
  - {metric: accuracy, direction: maximize}
  - {metric: latency_ms, direction: minimize}
constraints: ["latency_ms <= 5", "size_mb <= 2"]
optimizer: {name: nsga2}
execution: {executor: inline, workers: 1, trial_timeout_s: 60}
budget: {trials: 10}
"""
BASE_LINES = BASE.count("\n")


def edited(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[Problem]:
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, text))
    return info.value.problems


def only_problem(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [p.render() for p in problems]
    return problems[0]


# ----------------------------------------------------------------------------- entrypoint modules
_module_numbers = itertools.count()

TOY_SOURCE = """\
def evaluate(config):
    params = config["params"]
    return {"f1": float(len(params)), "f2": 0.0}

NOT_A_FUNCTION = 3
"""


@pytest.fixture
def toy_module(tmp_path):
    """Write a fresh entrypoint module into ``tmp_path``; return its name.

    Module names are unique per test because imported modules stay in ``sys.modules``.
    """
    saved_path = list(sys.path)
    created: list[str] = []

    def make(source: str = TOY_SOURCE, folder: Path = tmp_path) -> str:
        name = f"effsearch_toy_recipe_{next(_module_numbers)}"
        (folder / f"{name}.py").write_text(source, encoding="utf-8")
        created.append(name)
        return name

    yield make
    sys.path[:] = saved_path
    for name in created:
        sys.modules.pop(name, None)


def entrypoint_recipe(module: str, params: str = "x: {float: [0.0, 1.0]}", extra: str = "") -> str:
    return (
        "name: toy\n"
        f'task: {{entrypoint: "{module}:evaluate"{extra}}}\n'
        f"space:\n  params: {{{params}}}\n"
        "objectives:\n"
        "  - {metric: f1, direction: minimize}\n"
        "  - {metric: f2, direction: maximize}\n"
        "budget: {trials: 5}\n"
    )


# ----------------------------------------------------------------------------- valid recipes
def test_valid_digits_recipe_loads_with_every_knob_of_the_task(tmp_path):
    recipe = load_recipe(write(tmp_path, BASE))

    assert recipe.name == "digits-test"
    assert [k.full_name for k in recipe.space.knobs] == [
        "architecture.width_mult",
        "architecture.depth",
        "training.lr",
        "training.epochs",
        "training.batch_size",
        "pruning.method",
        "pruning.sparsity",
        "pruning.finetune_epochs",
        "quantization.scheme",
        "runtime.engine",
    ]
    assert [k.full_name for k in recipe.space.searched] == [
        "architecture.width_mult",
        "architecture.depth",
        "training.lr",
        "pruning.method",
        "pruning.sparsity",
        "quantization.scheme",
    ]
    assert [(o.metric, o.direction) for o in recipe.objectives] == [
        ("accuracy", "maximize"),
        ("latency_ms", "minimize"),
    ]
    assert recipe.constraints == (
        Constraint("latency_ms", "<=", 5.0),
        Constraint("size_mb", "<=", 2.0),
    )
    assert recipe.optimizer.name == "nsga2"
    assert recipe.execution.executor == "inline"
    assert recipe.budget.trials == 10


def test_shipped_quickstart_recipe_is_valid():
    path = Path(__file__).parents[1] / "effsearch" / "recipes" / "quickstart.yaml"
    recipe = load_recipe(path)
    assert recipe.task.builtin == "digits-cnn"
    assert [o.metric for o in recipe.objectives] == ["accuracy", "latency_ms", "size_mb"]


def test_float_range_written_without_a_dot_is_read_as_numbers(tmp_path):
    recipe = load_recipe(write(tmp_path, BASE))
    lr = next(k for k in recipe.space.knobs if k.full_name == "training.lr")

    assert lr.distribution == FloatDistribution(1e-4, 1e-2, log=True)


def test_fixed_value_written_without_a_dot_is_read_as_a_number(tmp_path):
    text = edited("    lr: {float: [1e-4, 1e-2], log: true}", "    lr: 1e-3")
    recipe = load_recipe(write(tmp_path, text))
    lr = next(k for k in recipe.space.knobs if k.full_name == "training.lr")

    assert lr.fixed == pytest.approx(1e-3)
    assert isinstance(lr.fixed, float)


def test_constraint_written_with_an_exponent_is_parsed(tmp_path):
    text = edited('"size_mb <= 2"', '"size_mb <= 2e-1"')
    recipe = load_recipe(write(tmp_path, text))
    assert recipe.constraints[1] == Constraint("size_mb", "<=", 0.2)
    assert str(recipe.constraints[1]) == "size_mb <= 0.2"


def test_normalized_data_fills_defaults_of_left_out_sections(tmp_path):
    text = edited("optimizer: {name: nsga2}\n", "")
    recipe = load_recipe(write(tmp_path, text))

    assert recipe.data["optimizer"] == {"name": "auto", "options": {}, "predict_costs": None}
    assert recipe.data["storage"] is None
    assert recipe.data["baseline"] is True
    assert recipe.data["measure"] == {"batch_size": 32, "warmup": 5, "repeats": 30, "devices": None}


# ----------------------------------------------------------------------------- one problem each
# (recipe text, dotted path, YAML line, phrase the user must read), one problem each
SINGLE_PROBLEMS = [
    pytest.param(
        BASE + "objetives: []\n",
        "objetives",
        BASE_LINES + 1,
        "unknown section. Did you mean 'objectives'?",
        id="unknown-section",
    ),
    pytest.param(
        edited("    sparsity:", "    sparsty:"),
        "space.pruning.sparsty",
        10,
        "unknown knob. Did you mean 'sparsity'?",
        id="unknown-knob",
    ),
    pytest.param(
        edited("  quantization:", "  quantisation:"),
        "space.quantisation",
        11,
        "unknown group for task 'digits-cnn'. Did you mean 'quantization'?",
        id="unknown-group",
    ),
    pytest.param(
        edited("workers: 1", "workers: two"),
        "execution.workers",
        21,
        "must be a valid integer (got 'two')",
        id="wrong-type-int",
    ),
    pytest.param(
        edited("name: digits-test", "name: 123"),
        "name",
        1,
        "must be a valid string (got 123)",
        id="wrong-type-name",
    ),
    pytest.param(
        edited(
            "  - {metric: accuracy, direction: maximize}\n"
            "  - {metric: latency_ms, direction: minimize}\n",
            "  {metric: accuracy, direction: maximize}\n\n",
        ),
        "objectives",
        16,
        "must be a valid list",
        id="wrong-type-objectives",
    ),
    pytest.param(
        edited("name: digits-test", "name: my search"),
        "name",
        1,
        "must be 1-64 letters, digits, '.', '_' or '-'",
        id="name-with-space",
    ),
    pytest.param(
        edited("[0.1, 0.8]", "[0.9, 0.1]"),
        "space.pruning.sparsity.float",
        10,
        "low < high must hold, but got [0.9, 0.1]",
        id="empty-range",
    ),
    pytest.param(
        edited("{float: [0.1, 0.8]}", "{float: [0.0, 0.8], log: true}"),
        "space.pruning.sparsity.log",
        10,
        "a log range needs low > 0 (got low=0)",
        id="log-range-from-zero",
    ),
    pytest.param(
        edited("{choice: [none, bf16, int8_dynamic]}", "{choice: [none, int4]}"),
        "space.quantization.scheme.choice",
        12,
        "'int4' is not a choice of quantization.scheme. Choices: none, bf16, fp16, int8_dynamic,",
        id="choice-not-allowed",
    ),
    pytest.param(
        edited("{choice: [none, bf16, int8_dynamic]}", "int4"),
        "space.quantization.scheme",
        12,
        "must be one of none, bf16, fp16, int8_dynamic, int8_dynamic_fbgemm, int8_weight_only, "
        "int4_weight_only, int8_static (got 'int4')",
        id="fixed-choice-not-allowed",
    ),
    pytest.param(
        edited("{choice: [none, bf16, int8_dynamic]}", "{choice: [none, int4_weight_only]}"),
        "space.quantization.scheme.choice",
        12,
        "'int4_weight_only' runs on cuda only, and this recipe runs on cpu (execution.device)",
        id="scheme-the-device-cannot-run",
    ),
    pytest.param(
        edited("{int: [1, 3]}", "{int: [1, 9]}"),
        "space.architecture.depth.int",
        7,
        "architecture.depth must lie in [1, 4] (got [1, 9])",
        id="range-outside-domain",
    ),
    pytest.param(
        edited("    epochs: 2", "    epochs: 0"),
        "space.training.epochs",
        15,
        "must lie in [1, 1000] (got 0)",
        id="fixed-outside-domain",
    ),
    pytest.param(
        edited("    epochs: 2", "    epochs: 2.5"),
        "space.training.epochs",
        15,
        "must be an integer (got 2.5)",
        id="fixed-int-knob-given-float",
    ),
    pytest.param(
        edited("    epochs: 2", "    epochs: {float: [1, 5]}"),
        "space.training.epochs.float",
        15,
        "training.epochs is a int knob",
        id="wrong-knob-kind",
    ),
    pytest.param(
        edited("{int: [1, 3]}", "{int: [1, 3], log: true}"),
        "space.architecture.depth.log",
        7,
        "this knob has no log scale",
        id="log-on-linear-knob",
    ),
    pytest.param(
        edited("{float: [0.25, 1.0]}", "[0.25, 1.0]"),
        "space.architecture.width_mult",
        6,
        "a list is not a knob; to search these values write {choice: [0.25, 1.0]}",
        id="list-as-knob",
    ),
    pytest.param(
        edited("{float: [0.25, 1.0]}", "{flot: [0.25, 1.0]}"),
        "space.architecture.width_mult.flot",
        6,
        "unknown key. Did you mean 'float'?",
        id="unknown-knob-key",
    ),
    pytest.param(
        edited("{float: [0.25, 1.0]}", "{float: [0.25, 1.0], step: 0.25, log: true}"),
        "space.architecture.width_mult.step",
        6,
        "cannot be combined with log: true",
        id="step-with-log",
    ),
    pytest.param(
        edited("{float: [0.1, 0.8]}", "{float: [0.1, 0.8], when: {method: [magnitude]}}"),
        "space.pruning.sparsity.when",
        10,
        "built-in knobs have fixed conditions (active when pruning.method in "
        "['magnitude', 'channel'])",
        id="when-on-builtin-knob",
    ),
    pytest.param(
        edited("{name: nsga2}", "{name: nsgaa2}"),
        "optimizer.name",
        20,
        "unknown optimizer 'nsgaa2'. Did you mean 'nsga2'? Optimizers: "
        + ", ".join(names("optimizer")),
        id="unknown-optimizer",
    ),
    pytest.param(
        edited("{name: nsga2}", "{name: nsga}"),
        "optimizer.name",
        20,
        "unknown optimizer 'nsga'. Did you mean 'nsga",
        id="unknown-optimizer-prefix",
    ),
    pytest.param(
        edited("{name: nsga2}", "{name: nsga2, seeds: 3}"),
        "optimizer.seeds",
        20,
        "unknown key. Allowed: name, options",
        id="unknown-key-in-section",
    ),
    pytest.param(
        edited("executor: inline", "executor: inlin"),
        "execution.executor",
        21,
        "unknown executor 'inlin'. Did you mean 'inline'? Executors: "
        + ", ".join(names("executor")),
        id="unknown-executor",
    ),
    pytest.param(
        edited("{executor: inline", "{executer: inline"),
        "execution.executer",
        21,
        "unknown key. Did you mean 'executor'?",
        id="misspelled-section-key",
    ),
    pytest.param(
        edited("latency_ms, direction: minimize", "latency_ms, direction: min"),
        "objectives[1].direction",
        18,
        "must be 'maximize' or 'minimize' (got 'min')",
        id="bad-direction",
    ),
    pytest.param(
        edited("metric: accuracy,", "metric: acuracy,"),
        "objectives[0].metric",
        17,
        "task 'digits-cnn' does not measure 'acuracy'. Did you mean 'accuracy'?",
        id="unmeasured-objective",
    ),
    pytest.param(
        edited("metric: latency_ms,", "metric: accuracy,"),
        "objectives[1].metric",
        18,
        "'accuracy' is already an objective",
        id="duplicate-objective",
    ),
    pytest.param(
        edited('"size_mb <= 2"', '"power_w <= 2"'),
        "constraints[1]",
        19,
        "task 'digits-cnn' does not measure 'power_w'",
        id="unmeasured-constraint",
    ),
    pytest.param(
        edited('"size_mb <= 2"', '"energy_j <= 2"'),
        "constraints[1]",
        19,
        "'energy_j' is measured on cuda only, and this recipe runs on another device",
        id="metric-of-another-device",
    ),
    pytest.param(
        edited('"latency_ms <= 5"', '"latency_ms < 5"'),
        "constraints[0]",
        19,
        "use <= or >= (got '<' in 'latency_ms < 5')",
        id="constraint-strict-operator",
    ),
    pytest.param(
        edited('"latency_ms <= 5"', '"latency_ms <= fast"'),
        "constraints[0]",
        19,
        "the limit must be a number (got 'fast' in 'latency_ms <= fast')",
        id="constraint-limit-not-a-number",
    ),
    pytest.param(
        edited('"latency_ms <= 5"', '"latency_ms"'),
        "constraints[0]",
        19,
        "must look like 'metric <= number' or 'metric >= number' (got 'latency_ms')",
        id="constraint-without-operator",
    ),
    pytest.param(
        edited("{trials: 10}", "{}"),
        "budget",
        22,
        "must set trials, wall_minutes, steps or compute_minutes, or several",
        id="budget-without-limits",
    ),
    pytest.param(
        edited("{trials: 10}", "{trials: 10, wall_minutes: -1}"),
        "budget.wall_minutes",
        22,
        "must be greater than 0 (got -1)",
        id="budget-negative-wall",
    ),
    pytest.param(
        edited("seed: 0", "seed: 1.5"),
        "seed",
        2,
        "must be a valid integer",
        id="seed-not-int",
    ),
    pytest.param(
        BASE + "storage: study.db\n",
        "storage",
        BASE_LINES + 1,
        "must be an Optuna storage URL such as sqlite:///study.db (got 'study.db')",
        id="storage-not-a-url",
    ),
    pytest.param(
        edited("{builtin: digits-cnn}", "{builtin: digits_cnn}"),
        "task.builtin",
        3,
        "unknown task 'digits_cnn'. Did you mean 'digits-cnn'?",
        id="unknown-builtin-task",
    ),
    pytest.param(
        edited("{builtin: digits-cnn}", "{builtin: digits-cnn, options: {foo: 1}}"),
        "task.options",
        3,
        "task 'digits-cnn' has no option 'foo'. Options: none",
        id="builtin-task-option",
    ),
    pytest.param(
        BASE + "name: again\n",
        "name",
        BASE_LINES + 1,
        "appears twice; keep one",
        id="duplicate-top-level-key",
    ),
    pytest.param(
        edited("    epochs: 2\n", "    epochs: 2\n    epochs: 3\n"),
        "space.training.epochs",
        16,
        "appears twice; keep one",
        id="duplicate-nested-key",
    ),
    pytest.param(
        edited("{trials: 10}", "{trials: [10}"),
        "",
        22,
        "is not valid YAML",
        id="unclosed-bracket",
    ),
    pytest.param(
        BASE + "extra: [1, 2\n",
        "",
        BASE_LINES + 2,
        "is not valid YAML",
        id="unclosed-bracket-at-end",
    ),
    pytest.param(
        edited(
            "{executor: inline, workers: 1, trial_timeout_s: 60}",
            "{executor: ray, device: cuda, trial_resources: {gpu: 0.5}}",
            edited("none, bf16, int8_dynamic", "none, bf16"),
        ),
        "execution.trial_resources.gpu",
        21,
        "must be a whole number of GPUs (1, 2, ...) when device is cuda (got 0.5)",
        id="ray-fractional-gpu",
    ),
    pytest.param(
        edited(
            "{executor: inline, workers: 1, trial_timeout_s: 60}",
            "{executor: ray, device: 'cuda:1', trial_resources: {gpu: 1}}",
            edited("none, bf16, int8_dynamic", "none, bf16"),
        ),
        "execution.device",
        21,
        "on Ray the trial runs on the GPU Ray gives it; use device: cuda",
        id="ray-gpu-index",
    ),
    pytest.param(
        edited(
            "{executor: inline, workers: 1, trial_timeout_s: 60}",
            "{executor: ray, trial_resources: {gpu: 1}}",
        ),
        "execution.trial_resources.gpu",
        21,
        "but execution.device is 'cpu'; set device: cuda",
        id="ray-gpu-on-cpu-device",
    ),
    pytest.param(
        edited(
            "{executor: inline, workers: 1, trial_timeout_s: 60}",
            "{executor: ray, workers: 2, max_concurrent: 4}",
        ),
        "execution.max_concurrent",
        21,
        "is 4 but execution.workers is 2; both say how many trials run at once: keep one",
        id="ray-max-concurrent-and-workers",
    ),
    pytest.param(
        "- name\n- task\n",
        "",
        1,
        "must be a mapping of sections (name, task, ...), got a list",
        id="list-document",
    ),
    pytest.param(
        "just some text\n",
        "",
        1,
        "must be a mapping of sections (name, task, ...), got text",
        id="text-document",
    ),
]


@pytest.mark.parametrize(("text", "path", "line", "phrase"), SINGLE_PROBLEMS)
def test_bad_recipe_reports_path_line_and_message(tmp_path, text, path, line, phrase):
    problem = only_problem(problems_of(tmp_path, text))

    assert (problem.path, problem.line) == (path, line), problem.render()
    assert phrase in problem.message


@pytest.mark.parametrize(
    "text", ["", "\n\n", "# only a comment\n"], ids=["empty", "blank", "comment"]
)
def test_empty_file_says_what_a_recipe_needs(tmp_path, text):
    problem = only_problem(problems_of(tmp_path, text))

    assert problem.path == ""
    assert "the file is empty" in problem.message
    assert "effsearch init" in problem.message


@pytest.mark.parametrize(
    ("section", "removed", "hint"),
    [
        ("name", "name: digits-test\n", "add e.g. name: my-search"),
        ("task", "task: {builtin: digits-cnn}\n", "add e.g. task: {builtin: digits-cnn}"),
        (
            "objectives",
            "objectives:\n  - {metric: accuracy, direction: maximize}\n"
            "  - {metric: latency_ms, direction: minimize}\n",
            "add e.g. objectives: [{metric: accuracy, direction: maximize}]",
        ),
        ("budget", "budget: {trials: 10}\n", "add e.g. budget: {trials: 40}"),
    ],
)
def test_missing_required_section_is_named_with_an_example(tmp_path, section, removed, hint):
    text = edited(removed, "")
    if section == "objectives":
        text = edited('constraints: ["latency_ms <= 5", "size_mb <= 2"]\n', "", text)
    problem = only_problem(problems_of(tmp_path, text))

    assert problem.path == section
    assert problem.message.startswith("is missing; ")
    assert hint in problem.message


def test_several_mistakes_are_reported_in_one_error(tmp_path):
    text = edited("    sparsity:", "    sparsty:")
    text = edited("direction: minimize", "direction: min", text)
    text = edited("{name: nsga2}", "{name: nsgaa2}", text)
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, text))
    error = info.value

    assert len(error.problems) >= 3
    assert {p.path for p in error.problems} >= {
        "space.pruning.sparsty",
        "objectives[1].direction",
        "optimizer.name",
    }
    lines = str(error).splitlines()
    assert lines[0] == f"{tmp_path / 'recipe.yaml'} is not a valid recipe (3 problems)"
    unknown_knob = "  • space.pruning.sparsty (line 10): unknown knob. Did you mean 'sparsity'?"
    assert any(line.startswith(unknown_knob) for line in lines)
    assert (
        "  • objectives[1].direction (line 18): must be 'maximize' or 'minimize' (got 'min')"
        in lines
    )


def test_two_bad_constraints_are_two_problems(tmp_path):
    text = edited('"latency_ms <= 5", "size_mb <= 2"', '"latency_ms < 5", "latency_ms <= fast"')
    problems = problems_of(tmp_path, text)

    assert [p.path for p in problems] == ["constraints[0]", "constraints[1]"]


def test_missing_file_says_how_to_create_one(tmp_path):
    with pytest.raises(RecipeError) as info:
        load_recipe(tmp_path / "nope.yaml")
    problem = only_problem(info.value.problems)

    assert "no such file" in problem.message
    assert f"effsearch init {tmp_path / 'nope.yaml'}" in problem.message


def test_recipe_error_is_user_input_with_exit_code_2(tmp_path):
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, ""))
    assert info.value.exit_code == 2


def test_seed_outside_sampler_range_is_a_recipe_problem(tmp_path):
    problem = only_problem(problems_of(tmp_path, edited("seed: 0", "seed: -1")))
    assert (problem.path, problem.line) == ("seed", 2)


def test_bad_choice_of_a_condition_knob_is_reported_once(tmp_path):
    text = edited("[none, magnitude, channel]", "[none, magnitde]")
    problem = only_problem(problems_of(tmp_path, text))
    assert problem.path == "space.pruning.method.choice"
    assert "Did you mean 'magnitude'?" in problem.message


# ----------------------------------------------------------------------------- entrypoint tasks
def test_entrypoint_recipe_imports_module_from_the_recipe_folder(tmp_path, toy_module):
    module = toy_module()
    recipe = load_recipe(write(tmp_path, entrypoint_recipe(module)))

    assert recipe.task.entrypoint == f"{module}:evaluate"
    assert recipe.recipe_dir == str(tmp_path.resolve())
    assert [k.full_name for k in recipe.space.knobs] == ["params.x"]


def test_entrypoint_that_cannot_be_imported_is_a_task_problem(tmp_path, toy_module):
    text = entrypoint_recipe("no_such_module_for_effsearch_tests")
    problem = only_problem(problems_of(tmp_path, text))

    assert (problem.path, problem.line) == ("task.entrypoint", 2)
    assert "cannot import module 'no_such_module_for_effsearch_tests'" in problem.message
    assert str(tmp_path.resolve()) in problem.message


def test_entrypoint_attribute_missing_lists_what_the_module_has(tmp_path, toy_module):
    module = toy_module()
    text = entrypoint_recipe(module).replace(":evaluate", ":evaluat")
    problem = only_problem(problems_of(tmp_path, text))

    assert (problem.path, problem.line) == ("task.entrypoint", 2)
    assert f"module {module!r} has no attribute 'evaluat'" in problem.message
    assert "evaluate" in problem.message


def test_entrypoint_naming_a_non_function_is_a_task_problem(tmp_path, toy_module):
    module = toy_module()
    text = entrypoint_recipe(module).replace(":evaluate", ":NOT_A_FUNCTION")
    problem = only_problem(problems_of(tmp_path, text))

    assert problem.path == "task.entrypoint"
    assert "not a function" in problem.message


def test_entrypoint_without_function_part_says_the_form(tmp_path, toy_module):
    module = toy_module()
    text = entrypoint_recipe(module).replace(":evaluate", "")
    problem = only_problem(problems_of(tmp_path, text))

    assert problem.path == "task.entrypoint"
    assert "must look like 'module:function'" in problem.message


def test_task_with_both_builtin_and_entrypoint_is_a_problem(tmp_path, toy_module):
    module = toy_module()
    text = entrypoint_recipe(module, extra=", builtin: digits-cnn")
    problem = only_problem(problems_of(tmp_path, text))

    assert (problem.path, problem.line) == ("task", 2)
    assert "must name exactly one of builtin or entrypoint" in problem.message


def test_objective_outside_declared_entrypoint_metrics_is_a_problem(tmp_path, toy_module):
    module = toy_module()
    text = entrypoint_recipe(module, extra=", metrics: [f1, f3]")
    problem = only_problem(problems_of(tmp_path, text))

    assert (problem.path, problem.line) == ("objectives[1].metric", 7)
    assert "task.metrics does not measure 'f2'. Metrics: f1, f3" in problem.message


def test_entrypoint_space_without_a_range_searches_nothing(tmp_path, toy_module):
    module = toy_module()
    problem = only_problem(problems_of(tmp_path, entrypoint_recipe(module, params="x: 0.5")))

    assert problem.path == "space"
    assert "searches nothing" in problem.message


def test_entrypoint_condition_naming_a_later_knob_is_a_problem(tmp_path, toy_module):
    module = toy_module()
    params = "x: {float: [0, 1], when: {mode: [a]}}, mode: {choice: [a, b]}"
    problem = only_problem(problems_of(tmp_path, entrypoint_recipe(module, params=params)))

    assert problem.path == "space.params.x.when.mode"
    assert "names no knob declared before this one" in problem.message


def test_entrypoint_condition_on_earlier_knob_is_kept(tmp_path, toy_module):
    module = toy_module()
    params = "mode: {choice: [a, b]}, x: {float: [0, 1], when: {mode: [a]}}"
    recipe = load_recipe(write(tmp_path, entrypoint_recipe(module, params=params)))

    x = recipe.space.knobs[1]
    assert x.when == (("params.mode", ("a",)),)


# ----------------------------------------------------------------------------- with_overrides
@pytest.fixture
def base_recipe(tmp_path) -> Recipe:
    return load_recipe(write(tmp_path, BASE))


def test_override_trials_changes_budget_and_data_only(base_recipe):
    overridden = with_overrides(base_recipe, trials=99)

    assert overridden.budget.trials == 99
    assert overridden.data["budget"]["trials"] == 99
    assert base_recipe.budget.trials == 10
    assert base_recipe.data["budget"]["trials"] == 10
    assert differences(base_recipe.data, overridden.data) == ["budget.trials"]
    assert overridden.fingerprint() == base_recipe.fingerprint()


def test_override_executor_and_workers(base_recipe):
    overridden = with_overrides(base_recipe, executor="local", workers=3)

    assert (overridden.execution.executor, overridden.execution.workers) == ("local", 3)
    assert overridden.data["execution"]["executor"] == "local"
    assert differences(base_recipe.data, overridden.data) == [
        "execution.executor",
        "execution.workers",
    ]


def test_no_overrides_keep_the_recipe(base_recipe):
    assert with_overrides(base_recipe).data == base_recipe.data


def test_override_with_unknown_executor_suggests_a_known_one(base_recipe):
    with pytest.raises(ArgumentError) as info:
        with_overrides(base_recipe, executor="locl")

    assert str(info.value) == (
        "--executor: unknown executor 'locl'. Did you mean 'local'? Executors: "
        + ", ".join(names("executor"))
    )
    assert info.value.exit_code == 2


# ----------------------------------------------------------------------------- differences
def test_differences_of_equal_recipes_is_empty(base_recipe):
    assert differences(base_recipe.data, dict(base_recipe.data)) == []


def test_differences_name_nested_paths_in_sorted_order(tmp_path, base_recipe):
    text = edited("[0.1, 0.8]", "[0.2, 0.8]")
    text = edited("seed: 0", "seed: 3", text)
    changed = load_recipe(write(tmp_path, text, "changed.yaml"))

    assert differences(base_recipe.data, changed.data) == ["seed", "space.pruning.sparsity.float"]


def test_differences_name_keys_present_on_one_side_only():
    old = {"space": {"pruning": {"method": "none"}}}
    new = {"space": {"pruning": {"method": "none"}, "training": {"epochs": 3}}, "seed": 1}

    assert differences(old, new) == ["seed", "space.training"]


def test_fingerprint_changes_with_the_space_but_not_the_budget(tmp_path, base_recipe):
    other_space = load_recipe(write(tmp_path, edited("    epochs: 2", "    epochs: 3"), "a.yaml"))
    other_budget = load_recipe(write(tmp_path, edited("{trials: 10}", "{trials: 20}"), "b.yaml"))

    assert other_space.fingerprint() != base_recipe.fingerprint()
    assert other_budget.fingerprint() == base_recipe.fingerprint()


# ----------------------------------------------------------------------------- parse(dump(r))
def reparse(recipe: Recipe) -> Recipe:
    document, lines = parse_yaml(recipe.dump(), "dumped.yaml")
    return validate(document, lines, "dumped.yaml", recipe.recipe_dir)


def test_dump_of_a_digits_recipe_parses_to_the_same_recipe(base_recipe):
    again = reparse(base_recipe)

    assert again.data == base_recipe.data
    assert again.space.knobs == base_recipe.space.knobs


@pytest.fixture(scope="module")
def roundtrip_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("roundtrip")
    name = f"effsearch_toy_recipe_{next(_module_numbers)}"
    (folder / f"{name}.py").write_text(TOY_SOURCE, encoding="utf-8")
    saved_path = list(sys.path)
    yield folder, name
    sys.path[:] = saved_path
    sys.modules.pop(name, None)


IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
NUMBER = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def knob_specs(draw):
    kind = draw(st.sampled_from(["float", "int", "choice", "fixed"]))
    if kind == "float":
        low, high = sorted(draw(st.lists(NUMBER, min_size=2, max_size=2, unique=True)))
        spec = {"float": [low, high]}
        if low > 0 and draw(st.booleans()):
            spec["log"] = True
        return spec
    if kind == "int":
        low, high = sorted(
            draw(st.lists(st.integers(-1000, 1000), min_size=2, max_size=2, unique=True))
        )
        return {"int": [low, high]}
    if kind == "choice":
        values = draw(
            st.lists(
                st.one_of(IDENT, st.integers(-100, 100)),
                min_size=1,
                max_size=4,
                unique_by=lambda v: (type(v), v),
            )
        )
        return {"choice": values}
    return draw(st.one_of(NUMBER, st.integers(-100, 100), IDENT, st.booleans()))


@st.composite
def entrypoint_documents(draw, module: str):
    params = draw(st.dictionaries(IDENT, knob_specs(), min_size=1, max_size=5))
    params[draw(IDENT) + "_x"] = {"float": [0.0, 1.0]}  # at least one searched knob
    document = {
        "name": draw(st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True)),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "task": {"entrypoint": f"{module}:evaluate"},
        "space": {"params": params},
        "objectives": [
            {"metric": "f1", "direction": draw(st.sampled_from(["minimize", "maximize"]))},
            {"metric": "f2", "direction": "maximize"},
        ],
        "budget": {"trials": draw(st.integers(1, 500))},
    }
    if draw(st.booleans()):
        document["constraints"] = [f"f1 <= {draw(NUMBER)!r}"]
    if draw(st.booleans()):
        document["optimizer"] = {"name": draw(st.sampled_from(names("optimizer")))}
    return document


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_parse_of_dump_gives_the_same_recipe(roundtrip_module, data):
    folder, module = roundtrip_module
    document = data.draw(entrypoint_documents(module))
    text = yaml.safe_dump(document, sort_keys=False)
    first_doc, first_lines = parse_yaml(text, "drawn.yaml")
    recipe = validate(first_doc, first_lines, "drawn.yaml", str(folder))

    again = reparse(recipe)

    assert again.data == recipe.data
    assert again.space.knobs == recipe.space.knobs


@pytest.mark.parametrize("text", ["1e5", "2.5e3"])
def test_dump_keeps_text_that_looks_like_an_exponent(roundtrip_module, text):
    folder, module = roundtrip_module
    source = (
        f"name: '{text}'\n"
        f'task: {{entrypoint: "{module}:evaluate"}}\n'
        f"space: {{params: {{x: {{choice: ['{text}', b]}}}}}}\n"
        "objectives: [{metric: f1, direction: minimize}]\n"
        "budget: {trials: 3}\n"
    )
    first_doc, first_lines = parse_yaml(source, "quoted.yaml")
    recipe = validate(first_doc, first_lines, "quoted.yaml", str(folder))
    assert recipe.name == text

    assert reparse(recipe).data == recipe.data


@pytest.mark.parametrize("choices", ["[1, true]", "[1, 1.0]", "[a, b, a]"])
def test_choices_that_compare_equal_are_rejected(tmp_path, toy_module, choices):
    # Optuna keeps one of two equal choices, so the config that ran could not be rebuilt.
    text = entrypoint_recipe(toy_module(), params=f"x: {{choice: {choices}}}")
    problem = only_problem(problems_of(tmp_path, text))
    assert problem.path == "space.params.x.choice"
    assert "lists a value twice" in problem.message


def test_max_concurrent_is_how_many_ray_trials_run_at_once(tmp_path):
    text = edited(
        "{executor: inline, workers: 1, trial_timeout_s: 60}",
        "{executor: ray, max_concurrent: 6}",
    )

    recipe = load_recipe(write(tmp_path, text))

    assert recipe.execution.workers == 6
    assert with_overrides(recipe, workers=3).execution.workers == 3
