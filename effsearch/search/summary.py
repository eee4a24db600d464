"""What a run found, built once from its study: the one summary that ``show``, ``show --json``,
the report page, ``pareto.json`` and the Python API all read (pymoo's single ``Result``).

Read from the study alone (and the recipe, for names and the space): no entrypoint import,
no torch.
"""

from __future__ import annotations

import functools
import itertools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from effsearch.objectives.metrics import on_device, split_device
from effsearch.search import cost_predictor, records
from effsearch.search.confirmations import Confirmed, summarize
from effsearch.search.study import confirm_study
from effsearch.search.study_front import (
    Reference,
    fixed_reference,
    hypervolume,
    hypervolume_history,
    is_feasible,
    pareto_front,
)

if TYPE_CHECKING:
    from effsearch.recipe.schema import Recipe
    from effsearch.search.rundir import RunDir


def trial_config(recipe: Recipe, trial: FrozenTrial) -> dict[str, Any]:
    """The nested configuration of a trial (including fixed knobs)."""
    config = trial.user_attrs.get(records.CONFIG)
    if config is None:
        # A queued (WAITING) trial has no params yet; Optuna keeps the ones it will run with.
        params = trial.params or trial.system_attrs.get("fixed_params", {})
        config = recipe.space.config_from_params(params)
    return dict(config)


def trial_record(recipe: Recipe, trial: FrozenTrial) -> dict[str, Any]:
    """One trial as ``show --json`` prints it."""
    complete = trial.state == TrialState.COMPLETE
    record: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.name,
        "params": trial_config(recipe, trial),
        "values": list(trial.values) if complete and trial.values is not None else None,
        "metrics": dict(trial.user_attrs.get(records.METRICS, {})),
        "feasible": is_feasible(trial) if complete else None,
        "constraints": dict(trial.constraints),
        "baseline": bool(trial.user_attrs.get(records.BASELINE, False)),
        "duration_s": trial.user_attrs.get(records.DURATION),
        "suggest_s": trial.user_attrs.get(records.SUGGEST_S),
    }
    if trial.state == TrialState.FAIL:
        record["fail_reason"] = trial.user_attrs.get(records.FAIL_REASON, "unknown")
    for key in (
        records.RETRY_OF,
        records.NOTES,
        records.MEASURED_ON,
        records.REJECTED,
        records.STOPPED,
        records.HISTORY,
        records.WARM_START_FROM,
        records.WARM_START_REQUEUED,
        records.PREDICTED_COSTS,
        records.REJECTED_BY_PREDICTION,
        records.PREDICTION_RECHECK,
    ):
        if key in trial.user_attrs:
            record[key] = trial.user_attrs[key]
    return record


SPREADS = {"latency_ms": "latency_iqr_ms", "latency_p50_ms": "latency_iqr_ms"}
"""Objective -> the metric that holds the spread of its repeated measurement."""


@dataclass(frozen=True)
class RunSummary:
    """A run's trials, Pareto set, hypervolume and counts, read once from its study."""

    recipe: Recipe
    study: optuna.Study
    trials: list[FrozenTrial]
    pareto: list[FrozenTrial]
    """The Pareto set: feasible complete trials no other dominates, by trial number."""
    reference: Reference | None
    hypervolume: float | None
    hypervolume_history: list[dict[str, float]]
    counts: dict[str, int]
    """Trials per state name, plus ``interrupted`` (failed by a stop, re-run later)."""

    @classmethod
    def from_study(cls, recipe: Recipe, study: optuna.Study) -> RunSummary:
        trials = study.get_trials(deepcopy=False)
        reference = fixed_reference(study, recipe.objectives, recipe.constraints, store=False)
        counts: dict[str, int] = {}
        for trial in trials:
            counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
            if trial.user_attrs.get(records.INTERRUPTED):
                counts["interrupted"] = counts.get("interrupted", 0) + 1
        return cls(
            recipe=recipe,
            study=study,
            trials=trials,
            pareto=pareto_front(trials, recipe.objectives),
            reference=reference,
            hypervolume=hypervolume(trials, recipe.objectives, reference),
            hypervolume_history=hypervolume_history(trials, recipe.objectives, reference),
            counts=counts,
        )

    @property
    def optimizer(self) -> dict[str, str]:
        """``{"name", "reason"}``: the optimizer that ran (what ``auto`` chose, and why)."""
        return dict(self.study.user_attrs.get(records.STUDY_OPTIMIZER, {}))

    @property
    def stopped_early(self) -> str | None:
        """Why the run stopped launching trials before its budget was spent, if it did."""
        return self.study.user_attrs.get(records.STUDY_STOPPED_EARLY)

    @functools.cached_property
    def cost_predictor(self) -> dict[str, Any] | None:
        """How the cost predictor did (``search/cost_predictor.report``), if it ran."""
        return cost_predictor.report(self.trials)

    @property
    def warm_start(self) -> dict[str, Any] | None:
        """What the run carried over from earlier runs (``search/warm_start.Carried``)."""
        return self.study.user_attrs.get(records.STUDY_WARM_START)

    @property
    def baseline(self) -> FrozenTrial | None:
        """The task's uncompressed configuration, when it ran to the end."""
        return next(
            (
                t
                for t in self.trials
                if t.state == TrialState.COMPLETE and t.user_attrs.get(records.BASELINE)
            ),
            None,
        )

    def within_noise(self) -> list[dict[str, Any]]:
        """Neighbours on the Pareto set whose difference in an objective is smaller than the
        spread of its repeated measurement (latency's interquartile range): a gap the noise
        could make. Each: ``{metric, trials: [a, b], difference, spread}``."""
        found = []
        for i, objective in enumerate(self.recipe.objectives):
            base, device = split_device(objective.metric)
            spread_name = SPREADS.get(base)
            if spread_name is None:
                continue
            spread_name = on_device(spread_name, device) if device else spread_name
            ordered = sorted(self.pareto, key=lambda t: t.values[i])
            for a, b in itertools.pairwise(ordered):
                spreads = [t.user_attrs.get(records.METRICS, {}).get(spread_name) for t in (a, b)]
                if any(s is None for s in spreads):
                    continue
                difference = abs(b.values[i] - a.values[i])
                spread = max(float(s) for s in spreads if s is not None)
                if difference < spread:
                    found.append(
                        {
                            "metric": objective.metric,
                            "trials": [a.number, b.number],
                            "difference": difference,
                            "spread": spread,
                        }
                    )
        return found

    @functools.cached_property
    def confirmed(self) -> dict[int, Confirmed]:
        """Front members confirmed on more seeds (``effsearch confirm``), by trial number."""
        extra = confirm_study(self.study, create=False)
        return summarize(self.recipe, self.study, extra) if extra is not None else {}

    def document(self) -> dict[str, Any]:
        """The ``show --json`` document (the public contract in docs/architecture.md)."""
        recipe, reference = self.recipe, self.reference
        return {
            "name": recipe.name,
            "objectives": [{"name": o.metric, "direction": o.direction} for o in recipe.objectives],
            "constraints": [str(c) for c in recipe.constraints],
            "optimizer": self.optimizer,
            "trials": [trial_record(recipe, t) for t in self.trials],
            "pareto": [t.number for t in self.pareto],
            "hypervolume": self.hypervolume,
            "reference_point": reference.values if reference else None,
            "reference_point_source": reference.source if reference else None,
            "hypervolume_history": self.hypervolume_history,
            "stopped_early": self.stopped_early,
            "warm_start": self.warm_start,
            "cost_predictor": self.cost_predictor,
            "within_noise": self.within_noise(),
            "confirmed": {str(n): c.as_dict() for n, c in self.confirmed.items()},
        }

    def pareto_document(self) -> dict[str, Any]:
        """``pareto.json``: the ``show --json`` document with only the Pareto set's trials."""
        document = self.document()
        front = set(document["pareto"])
        document["trials"] = [t for t in document["trials"] if t["number"] in front]
        return document

    def write_pareto(self, run_dir: RunDir) -> None:
        """Write ``pareto.json`` into the run directory."""
        text = json.dumps(self.pareto_document(), indent=2) + "\n"
        run_dir.pareto_path.write_text(text, encoding="utf-8")
