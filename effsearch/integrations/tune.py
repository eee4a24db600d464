"""effsearch's optimizers and durable study as a Ray Tune searcher, for people who use Tune.

Tune runs the trials (your trainable, your resources, your schedulers); effsearch proposes the
configurations and keeps the study::

    from ray import tune
    from effsearch.integrations.tune import EffsearchSearcher

    searcher = EffsearchSearcher(
        {
            "name": "my-tune-search",
            "space": {"train": {"lr": {"float": [1e-4, 1e-1], "log": True},
                                "width": {"choice": [64, 128, 256]}}},
            "objectives": [{"metric": "accuracy", "direction": "maximize"},
                           {"metric": "latency_ms", "direction": "minimize"}],
            "constraints": ["latency_ms <= 5"],
            "optimizer": {"name": "auto"},
        },
        run_dir="runs/my-tune-search",
        trials=40,
    )
    tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=40)).fit()

Tune checkpoints its searcher (``save``/``restore``); a Tune run restored after a crash hands
the searcher back, and every trial the study still holds as RUNNING from before is then failed
as interrupted and its configuration queued again, so none stays RUNNING forever and none is
lost.

The trainable receives the nested configuration (``config["train"]["lr"]``) and reports every
objective and constrained metric with ``tune.report``; the last report of a trial is what is
told to the study. A trial that errors, or ends without an objective, is recorded as FAIL with
the reason. The study lives in ``run_dir`` (Optuna's journal) or the recipe's ``storage`` URL,
so ``effsearch show RUN_DIR`` works on it (and ``pareto.json`` there is rewritten after each
trial), and a second Tune run with the same ``run_dir`` continues it. The section names are
the recipe's (``space``, ``objectives``, ``constraints``, ``optimizer``, ``seed``,
``storage``), validated the same way, with every problem reported.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from ray.tune.search import Searcher

from effsearch.objectives.goals import parse_constraint
from effsearch.recipe.schema import Recipe
from effsearch.recipe.validate import validate
from effsearch.search import records, tell
from effsearch.search.executors.base import Status, TrialOutcome
from effsearch.search.rundir import RunDir
from effsearch.search.study import attach_sampler, open_study, recover
from effsearch.search.summary import RunSummary


class EffsearchSearcher(Searcher):
    """A Tune ``Searcher`` backed by an effsearch study (see the module docstring)."""

    def __init__(
        self,
        recipe: Mapping[str, Any],
        run_dir: str | Path,
        trials: int | None = None,
        max_concurrent: int = 1,
    ) -> None:
        super().__init__(metric=None, mode=None)
        self.recipe = _recipe(recipe, trials)
        self.run_dir = RunDir(Path(run_dir))
        self.max_concurrent = max_concurrent
        self._open()

    def _open(self) -> None:
        self.study = open_study(self.recipe, self.run_dir)
        if not self.run_dir.exists():
            self.run_dir.freeze(self.recipe)
        attach_sampler(self.study, self.recipe, self.max_concurrent, typical_trial_s=None)
        self._trials: dict[str, optuna.Trial] = {}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        trial = self.study.ask()
        config = self.recipe.space.suggest(trial)
        trial.set_user_attr(records.CONFIG, config)
        trial.set_user_attr("tune_trial_id", trial_id)
        self._trials[trial_id] = trial
        return config

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        trial = self._trials.pop(trial_id, None)
        if trial is None:
            return
        metrics = {
            k: float(v)
            for k, v in (result or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        outcome = TrialOutcome(number=trial.number, metrics=metrics)
        if error:
            outcome.status, outcome.reason = Status.FAILED, "the Tune trial raised an error"
        else:
            missing = tell.missing_metric(
                {k: v for k, v in metrics.items() if math.isfinite(v)},
                self.recipe.objectives,
                self.recipe.constraints,
            )
            if missing:
                outcome.status = Status.FAILED
                outcome.reason = f"the trial's last tune.report is not usable: {missing}"
        tell.record(self.study, trial, outcome, self.recipe.objectives, self.recipe.constraints)
        RunSummary.from_study(self.recipe, self.study).write_pareto(self.run_dir)

    def save(self, checkpoint_path: str) -> None:
        """What Tune checkpoints: where the study is. The study itself is durable already."""
        state = {"recipe": dict(self.recipe.data), "run_dir": str(self.run_dir.path)}
        Path(checkpoint_path).write_text(json.dumps(state), encoding="utf-8")

    def restore(self, checkpoint_path: str) -> None:
        """Re-open the study after Tune restored this searcher (a crashed or resumed Tune run).

        Trials the study still holds as RUNNING belonged to the Tune run that died: their
        results will never come, so they are failed as interrupted and their configurations
        queued again (the next suggestions re-run them)."""
        state = json.loads(Path(checkpoint_path).read_text(encoding="utf-8"))
        self.run_dir = RunDir(Path(state["run_dir"]))
        self._open()
        recover(self.study)


def _recipe(sections: Mapping[str, Any], trials: int | None) -> Recipe:
    metrics = [o["metric"] for o in sections.get("objectives", []) if isinstance(o, Mapping)]
    for text in sections.get("constraints", []):
        with contextlib.suppress(ValueError):  # a malformed one is reported by validate()
            metrics.append(parse_constraint(str(text)).metric)
    document = {
        "name": "tune-search",
        "budget": {"trials": trials or 1_000_000},
        **sections,
        "task": {"entrypoint": "tune:trainable", "metrics": sorted(set(metrics))},
        "execution": {"executor": "inline"},
        "baseline": False,
    }
    return validate(document, {}, "<EffsearchSearcher recipe>", ".", import_entrypoint=False)
