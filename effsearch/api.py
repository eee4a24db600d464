"""The Python API: run a search, or load one, and get one result object back.

    import effsearch
    result = effsearch.run("recipes/quickstart.yaml", trials=10)
    for trial in result.pareto:
        print(trial.number, trial.values, trial.params)
    again = effsearch.load(result.run_dir)      # the same, for a finished or stopped run

The command line's ``run``, ``resume`` and ``show`` are thin layers over :func:`run` and
:func:`load`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from effsearch.errors import ArgumentError, StorageError
from effsearch.recipe.overrides import with_overrides
from effsearch.recipe.schema import Recipe
from effsearch.recipe.validate import load_recipe
from effsearch.search import confirm as confirming
from effsearch.search import records
from effsearch.search.rundir import RunDir
from effsearch.search.runner import Runner, SessionResult
from effsearch.search.study import load_study
from effsearch.search.summary import RunSummary, trial_record
from effsearch.search.view import View

OVERRIDES = ("trials", "executor", "workers", "address")
"""The keyword overrides :func:`run` takes (the command line's flags of the same names)."""


@dataclass(frozen=True)
class Trial:
    """One trial of a run: ``state`` is Optuna's state name (COMPLETE, FAIL, PRUNED, RUNNING,
    WAITING), ``params`` the nested configuration, ``values`` in objective order (None unless
    COMPLETE), ``metrics`` every metric the trial recorded."""

    number: int
    state: str
    params: dict[str, Any]
    values: tuple[float, ...] | None
    metrics: dict[str, float]
    feasible: bool | None
    warm_start_from: dict[str, Any] | None = None
    """Set on a trial carried over from an earlier run: ``{run, trial, carried}``."""


@dataclass(frozen=True)
class RunResult:
    """A run's trials, Pareto set and hypervolume (the summary ``show`` prints)."""

    run_dir: Path
    recipe: Recipe
    study: optuna.Study
    """The Optuna study itself (storage, samplers, optuna-dashboard all work on it)."""
    trials: list[Trial]
    pareto: list[Trial]
    """The Pareto set: feasible complete trials that no other one dominates, by number."""
    hypervolume: float | None
    """Against the run's fixed reference point (None until one is known)."""
    summary: RunSummary = field(repr=False)
    session: SessionResult | None = field(default=None, repr=False)
    """How the session that produced it ended (interrupted, trials now); None from load."""

    @property
    def interrupted(self) -> bool:
        return self.session is not None and self.session.interrupted


def run(
    recipe: str | Path | Recipe,
    run_dir: str | Path | None = None,
    resume: bool = False,
    view: View | None = None,
    **overrides: Any,
) -> RunResult:
    """Run the search ``recipe`` describes (a path, or a recipe from ``load_recipe``).

    ``run_dir`` defaults to ``runs/<name>``; ``resume=True`` continues the run there if there
    is one. ``overrides`` are ``trials``, ``executor``, ``workers``, ``address``. ``view``
    receives the runner's events (default: none shown). Bad input raises a
    :class:`~effsearch.errors.UserInputError`; an interrupted run returns with
    ``result.interrupted`` set (every finished trial is kept).
    """
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise ArgumentError(
            f"effsearch.run: unknown override {', '.join(unknown)}; use {', '.join(OVERRIDES)}"
        )
    loaded = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    loaded = with_overrides(loaded, **overrides)
    directory = Path(run_dir) if run_dir is not None else Path("runs") / loaded.name
    runner = Runner(loaded, RunDir(directory), view)
    try:
        session = runner.run(resume=resume)
    except OSError as exc:  # a disk that filled up, a folder that went away, mid-run
        raise StorageError(
            f"the run could not write {exc.filename or 'its files'} ({exc.strerror or exc}); "
            "every trial that finished before is kept. Free some space (or fix the folder), "
            f"then continue with: effsearch resume {directory}"
        ) from None
    if loaded.budget.confirm is not None and not session.interrupted:
        confirm(directory, seeds=loaded.budget.confirm.seeds)
    return _result(directory, loaded, session.study, session)


def confirm(run_dir: str | Path, seeds: int = 2, top: str = "pareto") -> RunResult:
    """Re-run the Pareto set's members (``top``: ``pareto`` or ``N``, the N best by the first
    objective) on ``seeds`` more seeds; runs already done are kept (a stopped confirmation
    resumes). The result's summary then holds each member's mean, spread and
    Pareto-membership probability (``summary.confirmed``)."""
    directory = RunDir(Path(run_dir))
    recipe = directory.frozen_recipe()  # trials run again: the entrypoint is imported
    with directory.driver_lock():
        _, study = load_study(directory)
        confirming.run(recipe, study, directory, seeds, top)
        RunSummary.from_study(recipe, study).write_pareto(directory)
    return load(run_dir)


def resume(run_dir: str | Path, view: View | None = None, **overrides: Any) -> RunResult:
    """Continue a stopped or crashed run from its frozen recipe (finished trials are kept)."""
    frozen = RunDir(Path(run_dir)).frozen_recipe()
    return run(frozen, run_dir=run_dir, resume=True, view=view, **overrides)


def load(run_dir: str | Path) -> RunResult:
    """The result of a finished, stopped or running run, read from its directory (no trial
    code is imported)."""
    recipe, study = load_study(RunDir(Path(run_dir)))
    return _result(Path(run_dir), recipe, study, None)


def _result(
    run_dir: Path, recipe: Recipe, study: optuna.Study, session: SessionResult | None
) -> RunResult:
    summary = RunSummary.from_study(recipe, study)
    trials = [_trial(recipe, t) for t in summary.trials]
    pareto_numbers = {t.number for t in summary.pareto}
    return RunResult(
        run_dir=run_dir,
        recipe=recipe,
        study=study,
        trials=trials,
        pareto=[t for t in trials if t.number in pareto_numbers],
        hypervolume=summary.hypervolume,
        summary=summary,
        session=session,
    )


def _trial(recipe: Recipe, frozen: optuna.trial.FrozenTrial) -> Trial:
    record = trial_record(recipe, frozen)  # what show --json says of it
    return Trial(
        number=record["number"],
        state=record["state"],
        params=record["params"],
        values=tuple(record["values"]) if record["values"] is not None else None,
        metrics=record["metrics"],
        feasible=record["feasible"],
        warm_start_from=record.get(records.WARM_START_FROM),
    )
