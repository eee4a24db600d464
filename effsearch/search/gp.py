"""Gaussian-process surrogates over a search space: one place that fits them.

Used by the ``botorch`` optimizer (objectives and constraints) and the cost predictor
(a trial's costs before it runs). Inputs are :class:`SpaceEncoding` rows, or their
:meth:`~SpaceEncoding.model_inputs` when a categorical kernel reads the choice knobs.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MIN_MEASURED_NOISE = 1e-6
"""Floor of a measured variance once standardized: an exact metric stays well conditioned."""


@dataclass
class Surrogate:
    """Fits GPs, each fit starting from the previous one's hyperparameters.

    ``categorical_dims``: input columns holding choice indices (a categorical kernel); empty
    for one-hot rows under a continuous kernel."""

    categorical_dims: list[int] = field(default_factory=list)
    _state: dict[str, Any] | None = None

    def fit(self, train_x: np.ndarray, train_y: np.ndarray, variances: np.ndarray | None) -> Any:
        """A botorch model of ``train_y`` (``n x m``: one GP per output, batched) at
        ``train_x`` (``n x d``), hyperparameters by maximum likelihood, in eval mode.

        ``variances`` (``n x m``, each observation's measured noise) make the noise of each
        point its measured variance plus one learned term per output: what the measurement
        does not capture (seed-to-seed training variance, load drift between trials). Without
        them the noise is one learned level per output."""
        import torch
        from botorch.exceptions import ModelFittingError
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import MixedSingleTaskGP, SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from botorch.models.utils.gpytorch_modules import (
            get_gaussian_likelihood_with_lognormal_prior,
        )
        from gpytorch.likelihoods import FixedNoiseGaussianLikelihood
        from gpytorch.mlls import ExactMarginalLogLikelihood

        x, y = torch.tensor(train_x), torch.tensor(train_y)
        train_yvar = None if variances is None else torch.tensor(variances)
        standardize = Standardize(m=y.shape[-1])
        model = (
            MixedSingleTaskGP(
                x,
                y,
                cat_dims=self.categorical_dims,
                train_Yvar=train_yvar,
                outcome_transform=standardize,
            )
            if self.categorical_dims
            else SingleTaskGP(x, y, train_Yvar=train_yvar, outcome_transform=standardize)
        )
        if variances is not None:
            # Measured noise (standardized by the model) plus a learned remainder, with the
            # prior and floor botorch gives an inferred noise level.
            default = get_gaussian_likelihood_with_lognormal_prior().noise_covar
            model.likelihood = FixedNoiseGaussianLikelihood(
                noise=model.likelihood.noise_covar.noise.detach().clamp_min(MIN_MEASURED_NOISE),
                learn_additional_noise=True,
                batch_shape=model._aug_batch_shape,
                noise_prior=default.noise_prior,
                noise_constraint=default.raw_noise_constraint,
            ).to(x)
        if self._state is not None:
            # The output count may have changed (a new constraint): then fit from scratch.
            with contextlib.suppress(RuntimeError, KeyError):
                model.load_state_dict(self._state, strict=False)
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        # A failed fit keeps the starting hyperparameters; the model still ranks candidates.
        with contextlib.suppress(ModelFittingError):
            fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 200}})
        self._state = {
            k: v.detach().clone()
            for k, v in model.state_dict().items()
            if "raw_" in k and "outcome_transform" not in k
        }
        model.eval()
        return model


@contextmanager
def torch_session(seed: int, threads: int) -> Iterator[None]:
    """Seeded torch RNG and a pinned thread count for one model step, restored after."""
    import torch
    from botorch.acquisition.multi_objective import logei

    # botorch's fused qLogEHVI C++ kernel is not built: a first-use JIT build took 28-146 s on
    # these machines and every process would wait on its lock (see botorch_sampler's docstring)
    logei._load_attempted = True
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
