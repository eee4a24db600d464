"""The run's Optuna study: open or load it, recover what a dead driver left, attach a sampler.

Shared by the runner and the Ray Tune searcher, so both set a study up the same way. This is
also the one module that reaches into Optuna internals for a trial's id and its queued
parameters (``_trial_id``, ``system_attrs["fixed_params"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from effsearch.errors import ResumeError
from effsearch.search import records, stopped_view
from effsearch.search import storage as storage_mod
from effsearch.search.optimizers import Choice, OptimizerRequest, make_sampler

if TYPE_CHECKING:
    from effsearch.recipe.schema import Recipe
    from effsearch.search.rundir import RunDir


def session_seed(seed: int, trials_so_far: int) -> int:
    """The sampler seed for a (re)started search.

    A fresh run uses the recipe's seed. A resumed one must not replay the random stream that
    proposed the trials it already has, so the seed moves on with the number of trials.
    """
    if trials_so_far == 0:
        return seed
    return (seed * 1_000_003 + trials_so_far) % 2**32


def open_study(recipe: Recipe, run_dir: RunDir) -> optuna.Study:
    """Create or re-open the run's study in its storage (a sampler is attached separately)."""
    storage_mod.quiet_optuna()
    storage = storage_mod.open_storage(recipe.storage, run_dir.path)
    study = optuna.create_study(
        storage=storage,
        study_name=recipe.name,
        directions=[o.direction for o in recipe.objectives],
        load_if_exists=True,
    )
    fingerprint = study.user_attrs.get(records.STUDY_FINGERPRINT)
    if fingerprint is None:
        study.set_metric_names([o.metric for o in recipe.objectives])
        study.set_user_attr(records.STUDY_FINGERPRINT, recipe.fingerprint())
    elif fingerprint != recipe.fingerprint():
        raise ResumeError(
            f"the study {recipe.name!r} in {storage_mod.describe(recipe.storage, run_dir.path)} "
            "was made by a different recipe (task, space, objectives, constraints or measure "
            "differ); use another name or storage"
        )
    return study


def load_study(run_dir: RunDir) -> tuple[Recipe, optuna.Study]:
    """Re-open a finished or running run for reading (show, export): no entrypoint import."""
    recipe = run_dir.frozen_recipe(import_entrypoint=False)
    storage_mod.quiet_optuna()
    storage = storage_mod.open_storage(recipe.storage, run_dir.path)
    try:
        study = optuna.load_study(study_name=recipe.name, storage=storage)
    except KeyError:
        raise ResumeError(
            f"{run_dir.path} has no study named {recipe.name!r} yet; run it with: "
            f"effsearch resume {run_dir.path}"
        ) from None
    return recipe, study


def attach_sampler(
    study: optuna.Study, recipe: Recipe, workers: int, typical_trial_s: float | None
) -> Choice:
    """Give the study the recipe's optimizer (``auto`` resolved, seeded for this session), seen
    through stopped trials when early stopping is on, and record the choice on the study."""
    request = OptimizerRequest(
        seed=session_seed(recipe.seed, len(study.trials)),
        n_objectives=len(recipe.objectives),
        space=recipe.space,
        workers=workers,
        trials=recipe.budget.trials,
        options=recipe.optimizer.options,
        objectives=recipe.objectives,
        constraints=recipe.constraints,
        typical_trial_s=typical_trial_s,
    )
    choice = make_sampler(recipe.optimizer.name, request)
    study.sampler = choice.sampler
    if recipe.early_stopping is not None:
        study.sampler = stopped_view.SeesStoppedTrials(
            choice.sampler, stopped_view.last_values(recipe.objectives, recipe.constraints)
        )
    study.set_user_attr(records.STUDY_OPTIMIZER, {"name": choice.name, "reason": choice.reason})
    return choice


def resumed_line(name: str, study: optuna.Study) -> str:
    """``resumed 'x': 37 complete, 2 interrupted (re-running), 1 failed``."""
    trials = study.get_trials(deepcopy=False)
    complete = sum(1 for t in trials if t.state == TrialState.COMPLETE)
    requeued = sum(
        1 for t in trials if t.state == TrialState.WAITING and records.RETRY_OF in t.user_attrs
    )
    failed = sum(
        1
        for t in trials
        if t.state == TrialState.FAIL and not t.user_attrs.get(records.INTERRUPTED)
    )
    return (
        f"resumed {name!r}: {complete} complete, {requeued} interrupted (re-running), "
        f"{failed} failed"
    )


def recover(study: optuna.Study) -> int:
    """Fail and re-enqueue trials a dead driver left RUNNING; return how many."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for frozen in stale:
        trial = optuna.Trial(study, frozen._trial_id)
        # A driver killed between ask and the end of suggest leaves a trial with no (or half
        # a) configuration: it never ran, so there is nothing to re-run. A queued trial keeps
        # its fixed params; a sampled one has its configuration once CONFIG is recorded.
        queued = frozen.system_attrs.get("fixed_params", {})
        params = frozen.params if records.CONFIG in frozen.user_attrs else queued
        why = "re-run on resume" if params else "it had no configuration yet; not re-run"
        trial.set_user_attr(
            records.FAIL_REASON,
            f"interrupted: the driver stopped before the trial finished ({why})",
        )
        trial.set_user_attr(records.INTERRUPTED, True)
        if params:
            reenqueue(study, frozen.number, params, frozen.user_attrs)
        study.tell(frozen.number, state=TrialState.FAIL)
    return len(stale)


def reenqueue(
    study: optuna.Study, number: int, params: Mapping[str, Any], user_attrs: Mapping[str, Any]
) -> None:
    """Queue trial ``number``'s parameters again (it was interrupted), marked as its retry."""
    attrs: dict[str, Any] = {records.RETRY_OF: number}
    if user_attrs.get(records.BASELINE):
        attrs[records.BASELINE] = True
    study.enqueue_trial(dict(params), user_attrs=attrs)


CONFIRM_SUFFIX = ":confirm"


def confirm_study(study: optuna.Study, create: bool) -> optuna.Study | None:
    """The run's confirmation study (``<name>:confirm``, same storage; see
    ``search/confirm.py``); None if it does not exist and ``create`` is False."""
    name = study.study_name + CONFIRM_SUFFIX
    if create:
        return optuna.create_study(
            storage=study._storage,
            study_name=name,
            directions=study.directions,
            load_if_exists=True,
        )
    try:
        return optuna.load_study(study_name=name, storage=study._storage)
    except KeyError:
        return None
