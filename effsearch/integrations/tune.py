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

The trainable receives the nested configuration (``config["train"]["lr"]``) and reports every
objective and constrained metric with ``tune.report``; the last report of a trial is what is
told to the study. A trial that errors, or ends without an objective, is recorded as FAIL with
the reason. The study lives in ``run_dir`` (Optuna's journal) or the recipe's ``storage`` URL,
so ``effsearch show RUN_DIR`` works on it, and a second Tune run with the same ``run_dir``
continues it. The section names are the recipe's (``space``, ``objectives``, ``constraints``,
``optimizer``, ``seed``, ``storage``), validated the same way, with every problem reported.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from effsearch.recipe import Recipe, parse_constraint, validate
from effsearch.search import records
from effsearch.search.optimizers import OptimizerRequest, make_sampler
from effsearch.search.rundir import RunDir
from effsearch.search.runner import open_study, session_seed


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
        self.study = open_study(self.recipe, self.run_dir)
        if not self.run_dir.exists():
            self.run_dir.freeze(self.recipe)
        choice = make_sampler(
            self.recipe.optimizer.name,
            OptimizerRequest(
                seed=session_seed(self.recipe.seed, len(self.study.trials)),
                n_objectives=len(self.recipe.objectives),
                space=self.recipe.space,
                workers=max_concurrent,
                trials=trials,
                options=self.recipe.optimizer.options,
                objectives=self.recipe.objectives,
                constraints=self.recipe.constraints,
            ),
        )
        self.study.sampler = choice.sampler
        self.study.set_user_attr(
            records.STUDY_OPTIMIZER, {"name": choice.name, "reason": choice.reason}
        )
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
        trial.set_user_attr(records.METRICS, metrics)
        missing = [
            name
            for name in [o.metric for o in self.recipe.objectives]
            + [c.metric for c in self.recipe.constraints]
            if name not in metrics or not math.isfinite(metrics[name])
        ]
        if error or missing:
            reason = (
                "the Tune trial raised an error"
                if error
                else f"the trial's last tune.report lacks {', '.join(missing)} (or is not finite)"
            )
            trial.set_user_attr(records.FAIL_REASON, reason)
            self.study.tell(trial, state=TrialState.FAIL)
            return
        for constraint in self.recipe.constraints:
            trial.set_constraint(str(constraint), constraint.violation(metrics[constraint.metric]))
        self.study.tell(trial, [metrics[o.metric] for o in self.recipe.objectives])


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
