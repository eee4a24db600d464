"""Names under which the runner records things on trials and on the study (read by reports)."""

from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial, TrialState

# Trial user attributes.
CONFIG = "config"
METRICS = "metrics"
FAIL_REASON = "fail_reason"
INTERRUPTED = "interrupted"
RETRY_OF = "retry_of"
BASELINE = "baseline"
DURATION = "duration_s"
SUGGEST_S = "suggest_s"
HISTORY = "history"
NOTES = "notes"
MEASURED_ON = "measured_on"
REJECTED = "rejected_before_training"
STOPPED = "stopped_early"
PREDICTED_COSTS = "predicted_costs"
"""The cost predictor's predictions for a trial, made before it ran (``search/cost_predictor``)."""
REJECTED_BY_PREDICTION = "rejected_by_prediction"
"""On a configuration turned away by the cost predictor: why (it never ran)."""
PREDICTION_RECHECK = "prediction_recheck"
"""On a trial the cost predictor would have rejected, run to check the prediction."""
WARM_START_FROM = "warm_start_from"
"""On a trial carried over from an earlier run (``search/warm_start.py``): not run here."""
WARM_START_REQUEUED = "warm_start_requeued"
"""On an earlier run's Pareto member queued to be measured again here."""
# Study user attributes.
STUDY_FINGERPRINT = "effsearch_fingerprint"
STUDY_OPTIMIZER = "effsearch_optimizer"
STUDY_WALL_S = "effsearch_wall_s_used"
STUDY_STOPPED_EARLY = "effsearch_stopped_early"
STUDY_WARM_START = "effsearch_warm_start"


def trial_steps(trial: FrozenTrial) -> float:
    """The last step a finished trial reported (0: it reported none)."""
    return max((float(e["step"]) for e in trial.user_attrs.get(HISTORY, [])), default=0.0)


def counted_trials(trials: Sequence[FrozenTrial]) -> int:
    """Trials that used up budget: finished ones, not those cut short by an interruption nor
    those carried over from an earlier run."""
    finished = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
    return sum(
        1
        for t in trials
        if t.state in finished
        and not t.user_attrs.get(INTERRUPTED)
        and WARM_START_FROM not in t.user_attrs
    )
