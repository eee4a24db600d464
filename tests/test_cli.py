"""The command line as a user meets it: exit codes and the lines they read (typer's CliRunner)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import toy_tasks
import yaml
from typer.testing import CliRunner, Result

from effsearch.cli import app
from effsearch.registry import names
from effsearch.search import records
from effsearch.search.rundir import RunDir
from effsearch.search.study import load_study

WriteRecipe = Callable[..., Path]
BAD_RECIPE = """\
name: toy
task: {entrypoint: "toy_tasks:zdt1"}
space:
  params: {x0: {float: [0, 1]}, x1: {float: [0, 1]}}
objectives:
  - {metric: f1, direction: minimize}
  - {metric: f2, direction: min}
execution: {executor: inline, workerz: 1}
budget: {trials: 6}
"""


def cli(*args: str | Path) -> Result:
    """Run ``effsearch ARGS`` on a 200-column terminal."""
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])


def no_traceback(result: Result) -> bool:
    return result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture
def finished_run(write_recipe: WriteRecipe, tmp_path: Path) -> Path:
    """A finished 6-trial inline run of zdt1 with one constraint, at ``tmp_path/run``."""
    recipe = write_recipe(constraints=["f1 <= 0.6"])
    result = cli("run", recipe, "--run-dir", tmp_path / "run")
    assert result.exit_code == 0, result.output
    return tmp_path / "run"


def show_json(run_dir: Path) -> dict[str, Any]:
    result = cli("show", run_dir, "--json")
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


# ----------------------------------------------------------------------------- validate
def test_validate_accepts_a_good_recipe_and_lists_its_knobs(write_recipe: WriteRecipe) -> None:
    path = write_recipe(fixed={"sleep_s": 0.5})

    result = cli("validate", path)

    assert result.exit_code == 0, result.output
    assert "valid recipe 'toy'" in result.output
    for knob in ("params.x0: float [0.0, 1.0]", "params.x1", "params.x2", "params.sleep_s"):
        assert knob in result.output
    assert "objectives: minimize f1, minimize f2" in result.output


def test_validate_rejects_a_bad_recipe_naming_each_problem_and_its_line(tmp_path: Path) -> None:
    (tmp_path / "toy_tasks.py").write_text(Path(toy_tasks.__file__).read_text())
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_RECIPE)

    result = cli("validate", path)

    assert result.exit_code == 2
    assert f"{path} is not a valid recipe (2 problems)" in result.output
    assert "objectives[1].direction (line 7)" in result.output
    assert "'min'" in result.output
    assert "execution.workerz (line 8)" in result.output
    assert "Did you mean 'workers'?" in result.output
    assert "Traceback" not in result.output
    assert no_traceback(result)


def test_run_of_a_bad_recipe_says_nothing_was_run(tmp_path: Path) -> None:
    (tmp_path / "toy_tasks.py").write_text(Path(toy_tasks.__file__).read_text())
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_RECIPE)

    result = cli("run", path, "--run-dir", tmp_path / "run")

    assert result.exit_code == 2
    assert "is not a valid recipe (2 problems)" in result.output
    assert "objectives[1].direction (line 7)" in result.output
    assert (
        f"Nothing was run. Check a recipe without running it: effsearch validate {path}"
        in result.output
    )
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_validate_of_a_missing_file_exits_2_with_how_to_create_one(tmp_path: Path) -> None:
    result = cli("validate", tmp_path / "nope.yaml")

    assert result.exit_code == 2
    assert "no such file" in result.output
    assert "effsearch init" in result.output


# ----------------------------------------------------------------------------- run / show
def test_run_exits_0_and_prints_the_pareto_table(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    result = cli("run", write_recipe(), "--run-dir", tmp_path / "run")

    assert result.exit_code == 0, result.output
    assert "[6/6] trial 5 done: f1=" in result.output
    assert "toy: 6 trials (6 complete, 0 fail)" in result.output
    assert "Pareto set (" in result.output
    assert "f1 ↓" in result.output and "f2 ↓" in result.output
    assert "hypervolume" in result.output
    assert f"details: effsearch show {tmp_path / 'run'} --json" in result.output
    front = json.loads(RunDir(tmp_path / "run").pareto_path.read_text())["pareto"]
    for number in front:
        assert f"│ {number:>5} │" in result.output


def test_run_with_trials_overrides_the_budget(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    result = cli("run", write_recipe(), "--run-dir", tmp_path / "run", "--trials", "3")

    assert result.exit_code == 0, result.output
    assert len(load_study(RunDir(tmp_path / "run"))[1].trials) == 3


def test_run_writes_the_pareto_set_to_pareto_json(finished_run: Path) -> None:
    written = json.loads(RunDir(finished_run).pareto_path.read_text())

    assert written["pareto"] == show_json(finished_run)["pareto"]
    assert [t["number"] for t in written["trials"]] == written["pareto"]


def test_run_with_an_unknown_executor_exits_2_suggesting_one(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    result = cli("run", write_recipe(), "--run-dir", tmp_path / "run", "--executor", "locl")

    assert result.exit_code == 2
    assert "--executor: unknown executor 'locl'. Did you mean 'local'?" in result.output
    assert not (tmp_path / "run").exists()


def test_run_reports_failed_trials_with_their_reason_and_log(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    # Seed 0 draws x0 = 0.549, 0.545, 0.438: two failures, then a success.
    recipe = write_recipe(entrypoint="fails_above_half", budget={"trials": 3})

    result = cli("run", recipe, "--run-dir", tmp_path / "run")

    assert result.exit_code == 0, result.output
    log = tmp_path / "run" / "trials" / "0" / "log.txt"
    assert f"trial 0 failed: RuntimeError: x0 above one half ({log})" in result.output
    assert "toy: 3 trials (1 complete, 2 fail)" in result.output
    assert "Failed trials (2)" in result.output


def test_run_into_an_existing_run_dir_exits_2_pointing_to_resume(
    finished_run: Path, write_recipe: WriteRecipe
) -> None:
    result = cli("run", write_recipe("again.yaml"), "--run-dir", finished_run)

    assert result.exit_code == 2
    assert "already holds a run" in result.output
    assert f"effsearch resume {finished_run}" in result.output
    assert no_traceback(result)


def test_show_json_has_the_documented_keys(finished_run: Path) -> None:
    document = show_json(finished_run)

    assert {"objectives", "trials", "pareto", "hypervolume"} <= set(document)
    assert document["objectives"] == [
        {"name": "f1", "direction": "minimize"},
        {"name": "f2", "direction": "minimize"},
    ]
    assert len(document["trials"]) == 6
    for trial in document["trials"]:
        assert {"number", "state", "params", "values", "metrics", "feasible"} <= set(trial)
    assert isinstance(document["hypervolume"], float)
    assert document["pareto"]
    assert set(document["pareto"]) <= {t["number"] for t in document["trials"]}


def test_show_json_trials_carry_nested_params_and_the_values_the_optimizer_saw(
    finished_run: Path,
) -> None:
    document = show_json(finished_run)
    objectives = [o["name"] for o in document["objectives"]]

    for trial in document["trials"]:
        assert trial["state"] == "COMPLETE"
        x = [trial["params"]["params"][f"x{i}"] for i in range(3)]
        assert trial["metrics"] == pytest.approx(toy_tasks.zdt1_values(x))
        assert trial["values"] == [trial["metrics"][o] for o in objectives]
        assert trial["feasible"] is (trial["metrics"]["f1"] <= 0.6)


def test_show_json_pareto_holds_only_feasible_non_dominated_trials(finished_run: Path) -> None:
    document = show_json(finished_run)
    feasible = [t for t in document["trials"] if t["feasible"]]

    def dominated(t: dict[str, Any]) -> bool:
        return any(
            all(a <= b for a, b in zip(o["values"], t["values"], strict=True))
            and o["values"] != t["values"]
            for o in feasible
        )

    expected = sorted(t["number"] for t in feasible if not dominated(t))
    assert sorted(document["pareto"]) == expected


def test_show_json_of_failed_trials_has_no_values_and_a_reason(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    cli(
        "run",
        write_recipe(entrypoint="missing_f2", budget={"trials": 2}),
        "--run-dir",
        tmp_path / "run",
    )

    document = show_json(tmp_path / "run")

    for trial in document["trials"]:
        assert trial["state"] == "FAIL"
        assert trial["values"] is None
        assert "'f2'" in trial["fail_reason"]
        assert set(trial["metrics"]) == {"f1", "g"}
    assert document["pareto"] == []
    assert document["hypervolume"] is None


def test_show_prints_the_summary(finished_run: Path) -> None:
    result = cli("show", finished_run)

    assert result.exit_code == 0, result.output
    assert "toy: 6 trials (6 complete, 0 fail)" in result.output
    assert "Pareto set (" in result.output


def test_show_of_a_missing_run_dir_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    result = cli("show", tmp_path / "nowhere", "--json")

    assert result.exit_code == 2
    assert f"{tmp_path / 'nowhere'} is not an effsearch run directory" in result.output
    assert "effsearch run RECIPE" in result.output
    assert result.stdout == ""  # nothing a JSON reader would try to parse
    assert no_traceback(result)


def test_show_needs_only_the_run_dir_not_the_entrypoint_module(
    write_recipe: WriteRecipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "gone_tasks.py"
    module.write_text(Path(toy_tasks.__file__).read_text())
    recipe = write_recipe(task={"entrypoint": "gone_tasks:zdt1"}, budget={"trials": 2})
    assert cli("run", recipe, "--run-dir", tmp_path / "run").exit_code == 0
    module.unlink()
    monkeypatch.delitem(sys.modules, "gone_tasks")

    result = cli("show", tmp_path / "run", "--json")

    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["trials"]) == 2


# ----------------------------------------------------------------------------- resume
def test_resume_with_more_trials_keeps_the_finished_ones(finished_run: Path) -> None:
    before = show_json(finished_run)["trials"]

    result = cli("resume", finished_run, "--trials", "9")

    assert result.exit_code == 0, result.output
    assert f"resuming 'toy' in {finished_run}" in result.output
    after = show_json(finished_run)["trials"]
    assert len(after) == 9
    assert after[:6] == before


def test_resume_of_a_finished_run_runs_nothing_more(finished_run: Path) -> None:
    result = cli("resume", finished_run)

    assert result.exit_code == 0, result.output
    assert len(show_json(finished_run)["trials"]) == 6


def test_resume_reruns_a_trial_a_dead_driver_left_running(finished_run: Path) -> None:
    recipe, study = load_study(RunDir(finished_run))
    stale = study.ask()
    stale.set_user_attr(records.CONFIG, recipe.space.suggest(stale))

    result = cli("resume", finished_run, "--trials", "7")

    assert result.exit_code == 0, result.output
    assert "resumed 'toy': 6 complete, 1 interrupted (re-running), 0 failed" in result.output
    trials = show_json(finished_run)["trials"]
    assert trials[stale.number]["state"] == "FAIL"
    retry = [t for t in trials if t.get(records.RETRY_OF) == stale.number]
    assert len(retry) == 1
    assert retry[0]["state"] == "COMPLETE"
    assert retry[0]["params"] == trials[stale.number]["params"]


def test_resume_of_a_missing_run_dir_exits_2(tmp_path: Path) -> None:
    result = cli("resume", tmp_path / "nowhere")

    assert result.exit_code == 2
    assert "is not an effsearch run directory" in result.output


def test_run_resume_with_a_changed_recipe_exits_2_naming_the_field(
    finished_run: Path, tmp_path: Path
) -> None:
    document = yaml.safe_load((tmp_path / "recipe.yaml").read_text())
    document["space"]["params"]["x1"] = {"float": [0.0, 0.5]}
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(document))

    result = cli("run", tmp_path / "changed.yaml", "--run-dir", finished_run, "--resume")

    assert result.exit_code == 2
    assert "space.params.x1" in result.output
    assert no_traceback(result)


# ----------------------------------------------------------------------------- spaces / init
def test_spaces_lists_the_digits_cnn_knobs_and_the_registries() -> None:
    result = cli("spaces")

    assert result.exit_code == 0, result.output
    assert "task digits-cnn:" in result.output
    for line in (
        "  architecture:",
        "    width_mult:",
        "    depth:",
        "  pruning:",
        "    method:",
        "    sparsity:",
        "  quantization:",
        "    scheme:",
        "  training:",
        "    lr:",
        "    accuracy:",
        "    latency_ms:",
    ):
        assert line in result.output
    assert f"executors: {', '.join(names('executor'))}" in result.output
    assert "nsga2" in result.output


def test_init_writes_a_recipe_that_validates(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"

    result = cli("init", path)

    assert result.exit_code == 0, result.output
    assert f"wrote {path}" in result.output
    validated = cli("validate", path)
    assert validated.exit_code == 0, validated.output
    assert "architecture.width_mult" in validated.output


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("mine")

    refused = cli("init", path)

    assert refused.exit_code == 2
    assert "--force" in refused.output
    assert path.read_text() == "mine"

    forced = cli("init", path, "--force")

    assert forced.exit_code == 0, forced.output
    assert path.read_text() != "mine"


# ----------------------------------------------------------------------------- --events, --quiet
def test_events_mode_prints_only_json_lines_one_per_event(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    recipe = write_recipe(entrypoint="fails_above_half", budget={"trials": 6})

    result = cli("run", recipe, "--run-dir", tmp_path / "run", "--events")

    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["message", "start"] and kinds[-2:] == ["end", "summary"]
    finished = [e for e in events if e["event"] in ("trial_completed", "trial_failed")]
    assert sorted(e["trial"] for e in finished) == list(range(6))
    assert all(set(e["values"]) == {"f1", "f2"} for e in finished if "values" in e)
    assert all("x0 above one half" in e["reason"] for e in finished if "reason" in e)
    assert events[-1]["pareto"] == show_json(tmp_path / "run")["pareto"]


def test_quiet_mode_prints_one_line(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    result = cli("run", write_recipe(), "--run-dir", tmp_path / "run", "--quiet")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"toy: 6 trials, {len(show_json(tmp_path / 'run')['pareto'])} on the Pareto set; "
        f"effsearch show {tmp_path / 'run'}"
    ]


def test_quiet_and_events_together_are_refused(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    result = cli("run", write_recipe(), "--run-dir", tmp_path / "run", "--quiet", "--events")

    assert result.exit_code == 2
    assert "--quiet and --events: choose one" in result.output


def test_show_puts_the_test_split_next_to_the_validation_figure(tmp_path: Path) -> None:
    """Built-in tasks optimize on a validation split and report a test split beside it."""
    from effsearch.search import records
    from effsearch.search.rundir import RunDir
    from effsearch.search.study import load_study

    recipe = Path(__file__).parent.parent / "recipes" / "quickstart.yaml"
    run_dir = tmp_path / "qs"
    ran = CliRunner(env={"COLUMNS": "250"}).invoke(
        app,
        ["run", str(recipe), "--run-dir", str(run_dir), "--trials", "2", "--executor", "inline"],
    )
    assert ran.exit_code == 0, ran.output

    shown = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["show", str(run_dir)])

    assert "test_accuracy" in shown.output
    for trial in load_study(RunDir(run_dir))[1].trials:
        metrics = trial.user_attrs[records.METRICS]
        assert 0 < metrics["test_accuracy"] <= 1 and 0 < metrics["accuracy"] <= 1
