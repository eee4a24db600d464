"""The ``botorch`` optimizer: qLogNEHVI on a Gaussian process over the mixed, conditional space,
with each measurement's own noise.

One trial at a time, in the driver:

1. Until ``n_startup_trials`` trials have finished and the run's reference point is known,
   configurations come from a scrambled Sobol sequence over the space (space-filling, seeded).
2. Then one multi-output ``SingleTaskGP`` is fitted to every finished trial (objectives turned
   into maxima, plus one output per constraint; with early stopping the runner shows it stopped
   trials as finished with their last metrics: ``stopped_view``), inputs from
   :class:`SpaceEncoding` (one-hot choices, log scales, inactive knobs imputed): with one
   lengthscale per column this is a Hamming-type kernel with a weight per choice. The
   ``categorical_kernel`` option reads choices as indices under botorch's categorical kernel
   instead (``MixedSingleTaskGP``); on the NAS-cell problems of ``benchmarks/README.md`` it
   reached 0.80 and 0.70 of the true hypervolume at 100 evaluations where one-hot reached 0.985
   and 0.944 (medians of 5 seeds), so it is off by default.
   Each observation's noise is its *measured* variance (``objectives/noise.py``: the latency
   median's standard error from its repeats' IQR, accuracy's binomial one, 0 for size and
   parameter counts, ``<metric>_se`` where a task reports it) plus one learned term per output
   for what the measurement does not see (seed-to-seed variance, drift between trials).
   Hyperparameters start from the previous fit.
3. qLogNEHVI (Daulton et al. 2021, in its log form, Ament et al. 2023) scores candidates: the
   hypervolume improvement over the run's *stored* reference point, integrated over joint
   posterior samples of the finished trials that may be on the front (so a point measured lucky
   is not taken as the front) and of the running ones (pending points: parallel workers get
   distinct proposals). Constraints enter as feasibility probabilities.
4. The acquisition is maximised over canonical candidates only (each one a valid
   configuration): a Sobol set plus neighbours of the current non-dominated trials, then two
   rounds of local search around the best, all screened on a few MC samples; the best
   ``SHORTLIST`` are scored in full. Choices and integer steps never need rounding after the
   fact, and a conditional knob is only ever proposed where it is active.

``noisy=False`` (``optimizer.options``) keeps the earlier, cheaper form: qLogEHVI over the
observed front taken as exact, one learned noise level per output, running trials as a kriging
believer: a fraction of the seconds per suggestion, and on the noise-free ZDT1 and DTLZ2 about
as good at 100 evaluations, clearly behind on noisy ones (``benchmarks/README.md``).

Why not optuna-integration's BoTorchSampler: it took 14-22 s per suggestion at 11-16 trials
here (gradient restarts over a relaxed space, refitting from scratch). This one takes 0.2-1.5 s
at 100 finished trials on one thread (``benchmarks/optimizers.py``).

botorch's fused qLogEHVI C++ kernel is not compiled: a first-use JIT build takes 28-146 s on
these machines and every process would wait on its lock; the Python path is fast enough for
the candidate batches used here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from effsearch.objectives.goals import signs
from effsearch.objectives.pareto import non_dominated_mask
from effsearch.search.gp import Surrogate, torch_session
from effsearch.search.space_encoding import SpaceEncoding
from effsearch.spaces.knobs import SearchSpace

SCREEN_MC_SAMPLES = 4
SHORTLIST = 32

NoiseRule = Callable[[FrozenTrial], "tuple[list[float | None], dict[str, float | None]]"]
"""A finished trial's measurement variances: per objective, and per constraint name (None:
the trial's record does not say; the model then learns that output's noise)."""
ReferenceRule = Callable[[Study], "list[float] | None"]
"""The run's fixed reference point in the objectives' own units (None: not known yet)."""


@dataclass(frozen=True)
class Observation:
    """A finished trial as the model sees it."""

    params: dict[str, Any]
    values: list[float]
    violations: dict[str, float]
    """Constraint name -> violation (<= 0 is met)."""
    variances: list[float | None]
    """Per objective, the variance of its measurement (None: unknown)."""
    violation_variances: dict[str, float | None]


class BoTorchSampler(BaseSampler):
    """Multi-objective Bayesian optimization with qLogEHVI (see the module docstring)."""

    def __init__(
        self,
        space: SearchSpace,
        reference: ReferenceRule,
        *,
        seed: int = 0,
        n_startup_trials: int = 10,
        candidates: int = 512,
        mc_samples: int = 32,
        threads: int = 1,
        noisy: bool = True,
        categorical_kernel: bool = False,
        noise: NoiseRule | None = None,
    ) -> None:
        if n_startup_trials < 2 or candidates < 16 or mc_samples < 8 or threads < 1:
            raise ValueError(
                "need n_startup_trials >= 2, candidates >= 16, mc_samples >= 8 and threads >= 1; "
                f"got {n_startup_trials=}, {candidates=}, {mc_samples=}, {threads=}"
            )
        self.encoding = SpaceEncoding(space)
        self.reference = reference
        self.seed = seed
        self.n_startup_trials = n_startup_trials
        self.candidates = candidates
        self.mc_samples = mc_samples
        self.threads = threads
        self.noisy = noisy
        self.noise = noise
        self._fallback = RandomSampler(seed=seed)
        self._surrogate = Surrogate(self.encoding.model_categorical if categorical_kernel else [])

    # ------------------------------------------------------------------ Optuna interface
    def reseed_rng(self) -> None:
        self._fallback.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {
            c.knob.full_name: c.knob.distribution
            for c in self.encoding.columns
            if c.knob.distribution is not None
        }

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        finished = self._observations(study)
        reference = self.reference(study) if len(finished) >= self.n_startup_trials else None
        if reference is None:
            return self.encoding.decode(self._sobol_point(trial.number))
        running = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.number != trial.number and t.params
        ]
        with torch_session(self.seed + trial.number, self.threads):
            row = self._propose(study, finished, running, reference, trial.number)
        return self.encoding.decode(row)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        # Only reached for a parameter outside the recipe's space (never, through the runner).
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    # ------------------------------------------------------------------ the model step
    def _observations(self, study: Study) -> list[Observation]:
        """Finished trials with finite objective values."""
        observed = []
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if not trial.params or trial.values is None:
                continue
            if not all(math.isfinite(v) for v in trial.values):
                continue
            variances, violation_variances = (
                self.noise(trial) if self.noise else ([None] * len(trial.values), {})
            )
            observed.append(
                Observation(
                    trial.params,
                    list(trial.values),
                    dict(trial.constraints),
                    variances,
                    violation_variances,
                )
            )
        return observed

    def _sobol_point(self, number: int) -> np.ndarray:
        from scipy.stats import qmc

        sobol = qmc.Sobol(d=max(1, self.encoding.n_knobs), scramble=True, seed=self.seed)
        if number:
            sobol.fast_forward(number)
        return self.encoding.from_unit(sobol.random(1))[0]

    def _propose(
        self,
        study: Study,
        finished: Sequence[Observation],
        running: Sequence[FrozenTrial],
        reference: Sequence[float],
        number: int,
    ) -> np.ndarray:
        import torch
        from botorch.acquisition.multi_objective.logei import (
            qLogExpectedHypervolumeImprovement,
            qLogNoisyExpectedHypervolumeImprovement,
        )
        from botorch.acquisition.multi_objective.objective import (
            IdentityMCMultiOutputObjective,
        )
        from botorch.sampling.normal import SobolQMCNormalSampler
        from botorch.utils.multi_objective.box_decompositions.non_dominated import (
            FastNondominatedPartitioning,
        )

        to_max = -signs(study.directions)  # botorch maximises: the negated losses
        n_obj = len(to_max)
        constraint_names = sorted({name for o in finished for name in o.violations})
        x = np.array([self.encoding.encode(o.params) for o in finished])
        outcomes = np.hstack(
            [
                np.array([o.values for o in finished], dtype=float) * to_max,
                np.array(
                    [[o.violations.get(name, 0.0) for name in constraint_names] for o in finished],
                    dtype=float,
                ).reshape(len(finished), len(constraint_names)),
            ]
        )
        variances = _variances(finished, constraint_names) if self.noisy else None
        # a categorical kernel reads choice indices; else the one-hot rows as they are
        to_model = self.encoding.model_inputs if self._surrogate.categorical_dims else _as_is
        model = self._surrogate.fit(to_model(x), outcomes, variances)
        seen = {row.tobytes() for row in x}
        pending = np.array([self.encoding.encode(t.params) for t in running]).reshape(
            len(running), self.encoding.dims
        )
        seen |= {row.tobytes() for row in pending}
        ref_point = torch.tensor(np.array(reference, dtype=float) * to_max)
        objective = IdentityMCMultiOutputObjective(outcomes=list(range(n_obj)))
        constraints = [_output(n_obj + i) for i in range(len(constraint_names))] or None

        if self.noisy:
            # qLogNEHVI: the observed front is itself uncertain; the hypervolume improvement is
            # integrated over joint posterior samples of the finished trials (those with a
            # chance of being on the front) and of the running ones (pending points).
            baseline = torch.tensor(to_model(x))
            pending_x = torch.tensor(to_model(pending)) if len(pending) else None

            def acquisition(mc_samples: int) -> Any:
                return qLogNoisyExpectedHypervolumeImprovement(
                    model=model,
                    ref_point=ref_point,
                    X_baseline=baseline,
                    sampler=SobolQMCNormalSampler(
                        torch.Size([mc_samples]), seed=self.seed + number
                    ),
                    objective=objective,
                    constraints=constraints,
                    X_pending=pending_x,
                    prune_baseline=True,
                    cache_root=True,
                )

        else:
            if len(pending):
                # Kriging believer: a running trial counts as observed at the model's mean, so
                # the next proposal looks elsewhere (and the model is less uncertain there).
                pending_x = torch.tensor(to_model(pending))
                believed = model.posterior(pending_x).mean.detach()
                model = model.condition_on_observations(pending_x, believed)
                outcomes = np.vstack([outcomes, believed.numpy()])
            believed_front = _non_dominated(outcomes[:, :n_obj], outcomes[:, n_obj:])
            partitioning = FastNondominatedPartitioning(
                ref_point, Y=torch.tensor(outcomes[believed_front, :n_obj])
            )

            def acquisition(mc_samples: int) -> Any:
                return qLogExpectedHypervolumeImprovement(
                    model=model,
                    ref_point=ref_point,
                    partitioning=partitioning,  # type: ignore[arg-type]  # a subclass in practice
                    sampler=SobolQMCNormalSampler(
                        torch.Size([mc_samples]), seed=self.seed + number
                    ),
                    objective=objective,
                    constraints=constraints,
                )

        def scorer(mc_samples: int) -> Scorer:
            function = acquisition(mc_samples)

            def score(rows: np.ndarray) -> np.ndarray:
                with torch.no_grad():
                    return function(torch.tensor(to_model(rows)).unsqueeze(1)).numpy()

            return score

        front = _non_dominated(outcomes[: len(x), :n_obj], outcomes[: len(x), n_obj:])
        rng = np.random.default_rng(self.seed * 1_000_003 + number)
        return _maximise(
            scorer(SCREEN_MC_SAMPLES),
            scorer(self.mc_samples),
            self.encoding,
            x[front] if front.any() else x,
            self.candidates,
            seen,
            rng,
        )


def _variances(finished: Sequence[Observation], constraint_names: Sequence[str]) -> np.ndarray:
    """Measured variances, ``n x m`` (objectives, then constraints). A value the record does
    not give takes the largest measured one of its output (a trial rejected before training,
    an imputed value); an output with none measured gets 0: its learned noise term covers it."""
    table = np.array(
        [
            list(o.variances) + [o.violation_variances.get(name) for name in constraint_names]
            for o in finished
        ],
        dtype=float,  # None -> nan
    ).reshape(len(finished), -1)
    for column in table.T:
        known = column[np.isfinite(column)]
        column[~np.isfinite(column)] = known.max() if len(known) else 0.0
    return np.maximum(table, 0.0)


Scorer = Callable[[np.ndarray], np.ndarray]
"""Acquisition values of encoded rows (``n x dims`` -> ``n``)."""


def _maximise(
    screen: Scorer,
    score: Scorer,
    encoding: SpaceEncoding,
    incumbents: np.ndarray,
    budget: int,
    seen: set[bytes],
    rng: np.random.Generator,
) -> np.ndarray:
    """The canonical candidate with the highest acquisition value, not evaluated before.

    Candidates: a Sobol set and random neighbours of the incumbents, then two rounds of
    random neighbours of the five best. Every candidate is ranked by ``screen`` (the
    acquisition on a few MC samples); the ``SHORTLIST`` best are scored by ``score`` and the
    best of those wins."""
    from scipy.stats import qmc

    sobol = qmc.Sobol(d=max(1, encoding.n_knobs), scramble=True, seed=rng.integers(2**31))
    half = budget // 2
    parents = incumbents[rng.integers(0, len(incumbents), half)]
    pool = np.vstack(
        [
            encoding.from_unit(sobol.random(budget - half)),
            encoding.perturb(parents, 0.1, rng),
        ]
    )
    rows, scores = _score(screen, pool, seen)
    for scale in (0.05, 0.02):  # local search around the five best
        top = rows[np.argsort(-scores)[:5]]
        local = encoding.perturb(np.repeat(top, budget // 10, axis=0), scale, rng)
        more_rows, more_scores = _score(screen, local, seen | {r.tobytes() for r in rows})
        rows = np.vstack([rows, more_rows])
        scores = np.concatenate([scores, more_scores])
    if not len(rows):  # every candidate was evaluated before: a tiny, exhausted space
        return encoding.from_unit(rng.random((1, max(1, encoding.n_knobs))))[0]
    shortlist = rows[np.argsort(-scores, kind="stable")[:SHORTLIST]]
    _, final = _score(score, shortlist, set())
    return shortlist[int(np.argmax(final))]


def _score(scorer: Scorer, rows: np.ndarray, seen: set[bytes]) -> tuple[np.ndarray, np.ndarray]:
    unique = {row.tobytes(): row for row in rows if row.tobytes() not in seen}
    if not unique:
        return np.zeros((0, rows.shape[1])), np.zeros(0)
    candidates = np.array(list(unique.values()))
    scores = [scorer(candidates[start : start + 256]) for start in range(0, len(candidates), 256)]
    return candidates, np.concatenate(scores)


def _as_is(rows: np.ndarray) -> np.ndarray:
    return rows


def _non_dominated(values: np.ndarray, violations: np.ndarray) -> np.ndarray:
    """Mask of the feasible rows no other feasible row dominates (``values``: ``n x k``, every
    objective maximised; ``violations``: ``n x c``, <= 0 is met)."""
    feasible = np.all(violations <= 0.0, axis=1)
    mask = np.zeros(len(values), dtype=bool)
    mask[feasible] = non_dominated_mask(-values[feasible])
    return mask


def _output(index: int) -> Callable[[Any], Any]:
    """A botorch constraint callable: model output ``index`` (<= 0 is feasible)."""
    return lambda samples: samples[..., index]
