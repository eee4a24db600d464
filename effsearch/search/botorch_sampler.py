"""The ``botorch`` optimizer: qLogEHVI on a Gaussian process over the mixed, conditional space.

One trial at a time, in the driver:

1. Until ``n_startup_trials`` trials have finished and the run's reference point is known,
   configurations come from a scrambled Sobol sequence over the space (space-filling, seeded).
2. Then one multi-output ``SingleTaskGP`` is fitted to every finished trial (objectives turned
   into maxima, plus one output per constraint; with early stopping the runner shows it stopped
   trials as finished with their last metrics: ``stopped_view``), inputs from
   :class:`SpaceEncoding` (one-hot choices, log scales, inactive knobs imputed).
   Hyperparameters start from the previous fit.
3. Trials still running are pending points, handled as a kriging believer: the model is
   conditioned on its own mean there and the believed values join the Pareto set, so parallel
   workers get distinct proposals at no extra cost per pending trial.
4. qLogEHVI (Ament et al. 2023) over that Pareto set, with the run's *stored* reference point,
   constraints entering as feasibility probabilities, scores candidates. Not qLogNEHVI: our
   objectives are measured once per configuration, and NEHVI's per-sample box decompositions
   took 15 s per suggestion on DTLZ2 at 150 trials here.
5. The acquisition is maximised over canonical candidates only (each one a valid
   configuration): a Sobol set plus neighbours of the current non-dominated trials, then two
   rounds of local search around the best, all screened on a few MC samples; the best
   ``SHORTLIST`` are scored in full. Choices and integer steps never need rounding after the
   fact, and a conditional knob is only ever proposed where it is active.

Why not optuna-integration's BoTorchSampler: it took 14-22 s per suggestion at 11-16 trials
here (gradient restarts over a relaxed space, refitting from scratch). This one takes 0.2-1.5 s
at 100 finished trials on one thread (``benchmarks/optimizers.py``).

botorch's fused qLogEHVI C++ kernel is not compiled: a first-use JIT build takes 28-146 s on
these machines and every process would wait on its lock; the Python path is fast enough for
the candidate batches used here.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from effsearch.objectives.goals import signs
from effsearch.objectives.pareto import non_dominated_mask
from effsearch.search.space_encoding import SpaceEncoding
from effsearch.spaces.knobs import SearchSpace

SCREEN_MC_SAMPLES = 4
SHORTLIST = 32

Observation = tuple[dict[str, Any], list[float], dict[str, float]]
"""A finished trial as the model sees it: params, objective values, constraint violations."""
ReferenceRule = Callable[[Study], "list[float] | None"]
"""The run's fixed reference point in the objectives' own units (None: not known yet)."""


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
        self._fallback = RandomSampler(seed=seed)
        self._hyperparameters: dict[str, Any] | None = None

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
        with _torch_session(self.seed + trial.number, self.threads):
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
        """Finished trials as (params, objective values, constraint violations)."""
        observed = [
            (trial.params, list(trial.values), dict(trial.constraints))
            for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if trial.params and trial.values is not None
        ]
        return [o for o in observed if all(math.isfinite(v) for v in o[1])]

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
        from botorch.acquisition.multi_objective.logei import qLogExpectedHypervolumeImprovement
        from botorch.acquisition.multi_objective.objective import (
            IdentityMCMultiOutputObjective,
        )
        from botorch.sampling.normal import SobolQMCNormalSampler
        from botorch.utils.multi_objective.box_decompositions.non_dominated import (
            FastNondominatedPartitioning,
        )

        to_max = -signs(study.directions)  # botorch maximises: the negated losses
        n_obj = len(to_max)
        constraint_names = sorted({name for _, _, violations in finished for name in violations})
        x = np.array([self.encoding.encode(params) for params, _, _ in finished])
        outcomes = np.hstack(
            [
                np.array([values for _, values, _ in finished], dtype=float) * to_max,
                np.array(
                    [[v.get(name, 0.0) for name in constraint_names] for _, _, v in finished],
                    dtype=float,
                ).reshape(len(finished), len(constraint_names)),
            ]
        )
        model = self._fit(torch.tensor(x), torch.tensor(outcomes))
        seen = {row.tobytes() for row in x}
        if running:
            # Kriging believer: a running trial counts as observed at the model's mean, so the
            # next proposal looks elsewhere (and the model is less uncertain where it runs).
            pending = np.array([self.encoding.encode(t.params) for t in running])
            seen |= {row.tobytes() for row in pending}
            pending_x = torch.tensor(pending)
            believed = model.posterior(pending_x).mean.detach()
            model = model.condition_on_observations(pending_x, believed)
            x = np.vstack([x, pending])
            outcomes = np.vstack([outcomes, believed.numpy()])
        front = _non_dominated(outcomes[:, :n_obj], outcomes[:, n_obj:])
        ref_point = torch.tensor(np.array(reference, dtype=float) * to_max)
        partitioning = FastNondominatedPartitioning(
            ref_point, Y=torch.tensor(outcomes[front, :n_obj])
        )

        def acquisition(mc_samples: int) -> Any:
            return qLogExpectedHypervolumeImprovement(
                model=model,
                ref_point=ref_point,
                partitioning=partitioning,  # type: ignore[arg-type]  # a subclass in practice
                sampler=SobolQMCNormalSampler(torch.Size([mc_samples]), seed=self.seed + number),
                objective=IdentityMCMultiOutputObjective(outcomes=list(range(n_obj))),
                constraints=[_output(n_obj + i) for i in range(len(constraint_names))] or None,
            )

        rng = np.random.default_rng(self.seed * 1_000_003 + number)
        best = x[front] if front.any() else x
        return _maximise(
            acquisition(SCREEN_MC_SAMPLES),
            acquisition(self.mc_samples),
            self.encoding,
            best,
            self.candidates,
            seen,
            rng,
        )

    def _fit(self, train_x: Any, train_y: Any) -> Any:
        from botorch.exceptions import ModelFittingError
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from gpytorch.mlls import ExactMarginalLogLikelihood

        model = SingleTaskGP(train_x, train_y, outcome_transform=Standardize(m=train_y.shape[-1]))
        if self._hyperparameters is not None:
            # The output count may have changed (a new constraint): then fit from scratch.
            with contextlib.suppress(RuntimeError, KeyError):
                model.load_state_dict(self._hyperparameters, strict=False)
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        # A failed fit keeps the starting hyperparameters; the acquisition still ranks candidates.
        with contextlib.suppress(ModelFittingError):
            fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 200}})
        self._hyperparameters = {
            k: v.detach().clone()
            for k, v in model.state_dict().items()
            if "raw_" in k and "outcome_transform" not in k
        }
        model.eval()
        return model


def _maximise(
    screen: Any,
    acquisition: Any,
    encoding: SpaceEncoding,
    incumbents: np.ndarray,
    budget: int,
    seen: set[bytes],
    rng: np.random.Generator,
) -> np.ndarray:
    """The canonical candidate with the highest acquisition value, not evaluated before.

    Every candidate is ranked by ``screen`` (the same acquisition on a few MC samples); the
    ``SHORTLIST`` best are scored by ``acquisition`` and the best of those wins."""
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
    _, final = _score(acquisition, shortlist, set())
    return shortlist[int(np.argmax(final))]


def _score(acquisition: Any, rows: np.ndarray, seen: set[bytes]) -> tuple[np.ndarray, np.ndarray]:
    import torch

    unique = {row.tobytes(): row for row in rows if row.tobytes() not in seen}
    if not unique:
        return np.zeros((0, rows.shape[1])), np.zeros(0)
    candidates = np.array(list(unique.values()))
    scores = []
    with torch.no_grad():
        for start in range(0, len(candidates), 256):
            batch = torch.tensor(candidates[start : start + 256]).unsqueeze(1)
            scores.append(acquisition(batch).numpy())
    return candidates, np.concatenate(scores)


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


@contextmanager
def _torch_session(seed: int, threads: int) -> Iterator[None]:
    """Seeded torch RNG and a pinned thread count for one suggestion, restored after."""
    import torch
    from botorch.acquisition.multi_objective import logei

    logei._load_attempted = True  # skip the fused kernel's JIT build (see module docstring)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(), warnings.catch_warnings():
            # gpytorch's jitter notices and linear_operator's sparse-tensor notice: numerics
            # it handles itself, printed once per fit otherwise.
            warnings.simplefilter("ignore")
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(before)
