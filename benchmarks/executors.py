"""What an executor costs per trial, and how busy it keeps its workers.

1. Per-trial overhead: 30 trivial trials (a function returning two numbers) through the real
   runner with ``inline``, ``local`` (2 workers) and ``ray`` (2 workers, a local Ray): wall time
   per trial, after the executor has started (start-up reported apart).
2. Worker utilisation for 1 s trials with 2 workers: busy time / (workers x wall time), where
   busy time is the trials' own durations and wall time runs from the moment the first trial
   began in a worker (worker start-up is reported apart, and as a second utilisation); next to
   Optuna's ``study.optimize(n_jobs=2)`` on the same 1 s objective.

    .venv/bin/python benchmarks/executors.py --trials 30 --sleep-trials 40
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import yaml

from effsearch.recipe import load_recipe
from effsearch.search import records
from effsearch.search.rundir import RunDir
from effsearch.search.runner import Runner
from effsearch.search.view import View

HERE = Path(__file__).resolve().parent


def trivial(config: dict[str, Any]) -> dict[str, float]:
    """A trial that does nothing: what is left is the executor's cost."""
    return {"f1": config["x"]["x0"], "f2": 1.0 - config["x"]["x0"]}


def one_second(config: dict[str, Any]) -> dict[str, float]:
    time.sleep(1.0)
    return trivial(config)


class Silent(View):
    def start(self, study: Any, total: Any, counted: Any) -> None: ...
    def trial_completed(self, study: Any, number: Any, values: Any) -> None: ...
    def trial_failed(self, number: Any, reason: Any, trial_dir: Any) -> None: ...
    def message(self, text: str) -> None: ...


def search(executor: str, function: str, trials: int, folder: Path) -> dict[str, float]:
    document = {
        "name": f"{executor}-{function.replace('_', '-')}",
        "seed": 0,
        "task": {"entrypoint": f"executors:{function}", "metrics": ["f1", "f2"]},
        "space": {"x": {"x0": {"float": [0.0, 1.0]}}},
        "objectives": [
            {"metric": "f1", "direction": "minimize"},
            {"metric": "f2", "direction": "minimize"},
        ],
        "optimizer": {"name": "random"},
        "execution": {"executor": executor, "workers": 1 if executor == "inline" else 2},
        "budget": {"trials": trials},
        "baseline": False,
    }
    path = folder / f"{document['name']}.yaml"
    path.write_text(yaml.safe_dump(document))
    # the recipe's folder is where the entrypoint module is looked up
    (folder / "executors.py").write_text(Path(__file__).read_text())
    recipe = load_recipe(path)
    started = time.perf_counter()
    study = Runner(recipe, RunDir(folder / document["name"]), Silent()).run(resume=False).study
    wall_s = time.perf_counter() - started
    trials_done = study.get_trials(deepcopy=False)
    durations = {t.number: t.user_attrs.get(records.DURATION, 0.0) for t in trials_done}
    asked = min(t.datetime_start for t in trials_done if t.datetime_start)
    # when the first trial began running in a worker (its start-up, importing torch, is over)
    began = min(
        t.datetime_complete.timestamp() - durations[t.number]
        for t in trials_done
        if t.datetime_complete
    )
    ended = max(t.datetime_complete for t in trials_done if t.datetime_complete)
    busy_s = sum(durations.values())
    span_s = (ended - asked).total_seconds()
    running_s = ended.timestamp() - began
    workers = recipe.execution.workers if executor != "inline" else 1
    return {
        "wall_s": round(wall_s, 3),
        "start_up_s": round(began - asked.timestamp(), 3),
        "per_trial_s": round(running_s / trials, 4),
        "utilisation": round(busy_s / (workers * running_s), 3),
        "utilisation_with_start_up": round(busy_s / (workers * span_s), 3),
    }


def optuna_n_jobs(trials: int) -> dict[str, float]:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        started = time.perf_counter()
        x = trial.suggest_float("x0", 0.0, 1.0)
        time.sleep(1.0)
        trial.set_user_attr("busy_s", time.perf_counter() - started)
        return x, 1.0 - x

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=["minimize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0)
    )
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials, n_jobs=2)
    wall_s = time.perf_counter() - started
    busy_s = sum(t.user_attrs["busy_s"] for t in study.trials)
    return {"wall_s": round(wall_s, 3), "utilisation": round(busy_s / (2 * wall_s), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--sleep-trials", type=int, default=40)
    parser.add_argument("--executors", nargs="+", default=["inline", "local", "ray"])
    args = parser.parse_args()
    rows: dict[str, Any] = {"trivial": {}, "one_second": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for executor in args.executors:
            rows["trivial"][executor] = search(executor, "trivial", args.trials, Path(tmp))
            print(json.dumps({"trivial": executor, **rows["trivial"][executor]}), flush=True)
        for executor in [e for e in args.executors if e != "inline"]:
            rows["one_second"][executor] = search(
                executor, "one_second", args.sleep_trials, Path(tmp)
            )
            print(json.dumps({"one_second": executor, **rows["one_second"][executor]}), flush=True)
    rows["one_second"]["optuna n_jobs=2"] = optuna_n_jobs(args.sleep_trials)
    print(json.dumps({"one_second": "optuna n_jobs=2", **rows["one_second"]["optuna n_jobs=2"]}))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
