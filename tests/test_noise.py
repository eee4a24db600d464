"""Measurement noise: what each metric's standard error is, and the optimizer that uses it."""

from __future__ import annotations

import statistics

import numpy as np
import optuna
import pytest
import torch

from effsearch.objectives import meters, noise
from effsearch.recipe import Constraint, ObjectiveSection
from effsearch.search import records
from effsearch.search.botorch_sampler import BoTorchSampler, Observation, _variances
from effsearch.search.gp import Surrogate
from effsearch.search.optimizers import OptimizerRequest, make_sampler
from effsearch.spaces.knobs import CategoricalDistribution, FloatDistribution, Knob, SearchSpace


# ----------------------------------------------------------------------------- what is noisy
def test_latency_accuracy_and_own_metrics_take_their_recorded_standard_error():
    metrics = {"latency_se_ms": 0.2, "accuracy_se": 0.01, "f1_se": 0.5, "throughput_se_per_s": 3}

    assert noise.variance("latency_ms", metrics) == pytest.approx(0.04)
    assert noise.variance("accuracy", metrics) == pytest.approx(1e-4)
    assert noise.variance("accuracy_delta", metrics) == pytest.approx(1e-4)
    assert noise.variance("throughput_per_s", metrics) == pytest.approx(9.0)
    assert noise.variance("f1", metrics) == pytest.approx(0.25)  # an entrypoint's own `_se`


def test_configuration_metrics_are_exact_and_others_unknown():
    assert noise.variance("size_mb", {}) == 0.0
    assert noise.variance("params", {}) == 0.0
    assert noise.variance("perplexity", {"latency_se_ms": 1.0}) is None
    assert noise.variance("accuracy", {}) is None  # a record from before standard errors


def test_median_standard_error_matches_the_spread_of_medians():
    rng = np.random.default_rng(0)
    repeats = 15
    samples = rng.normal(10.0, 2.0, size=(4000, repeats))
    spread_of_medians = float(np.median(samples, axis=1).std())
    iqr = float(np.subtract(*np.percentile(samples[0], [75, 25])))
    typical_iqr = 2.0 * noise.IQR_PER_SIGMA
    assert noise.median_se(typical_iqr, repeats) == pytest.approx(spread_of_medians, rel=0.1)
    assert noise.median_se(iqr, 4 * repeats) < noise.median_se(iqr, repeats)


def test_binomial_error_shrinks_with_examples_and_is_never_zero():
    assert noise.binomial_se(0.5, 400) == pytest.approx(0.025, rel=0.01)
    assert noise.binomial_se(1.0, 10) > 0.05  # ten right out of ten is not certainty
    assert noise.binomial_se(0.9, 1000) < noise.binomial_se(0.9, 100)


def test_accuracy_and_latency_meters_record_their_standard_errors():
    predictions = torch.tensor([1, 0, 1, 1])
    scored = meters.fraction_correct("accuracy", predictions, torch.tensor([1, 0, 0, 1]))
    assert scored["accuracy"] == 0.75
    assert scored["accuracy_se"] == pytest.approx(noise.binomial_se(0.75, 4))

    timed = meters.latency(lambda: torch.ones(64, 64) @ torch.ones(64, 64), 1, 1, repeats=9)
    assert timed["latency_se_ms"] == pytest.approx(noise.median_se(timed["latency_iqr_ms"], 9))
    assert timed["throughput_se_per_s"] >= 0


# ----------------------------------------------------------------------------- the optimizer
SPACE = SearchSpace(
    [
        Knob("g", "x", FloatDistribution(0.0, 1.0)),
        Knob("g", "kind", CategoricalDistribution(("a", "b"))),
    ]
)
OBJECTIVES = [
    ObjectiveSection(metric="accuracy", direction="maximize", ref=0.0),
    ObjectiveSection(metric="size_mb", direction="minimize", ref=2.0),
]


def test_the_noise_rule_reads_each_trials_record_and_distrusts_imputed_values():
    request = OptimizerRequest(
        seed=0,
        n_objectives=2,
        space=SPACE,
        workers=1,
        trials=20,
        objectives=OBJECTIVES,
        constraints=[Constraint("latency_ms", "<=", 5.0)],
    )
    sampler = make_sampler("botorch", request).sampler
    assert isinstance(sampler, BoTorchSampler) and sampler.noise is not None
    study = optuna.create_study(directions=["maximize", "minimize"])
    measured = study.ask()
    measured.set_user_attr(records.METRICS, {"accuracy_se": 0.1, "latency_se_ms": 0.5})
    study.tell(measured, [0.9, 1.0])
    rejected = study.ask()
    rejected.set_user_attr(records.METRICS, {"latency_se_ms": 0.5})
    rejected.set_user_attr(records.REJECTED, "latency_ms 9 > 5")
    study.tell(rejected, [0.0, 2.0])

    first, second = study.trials
    assert sampler.noise(first) == ([pytest.approx(0.01), 0.0], {"latency_ms <= 5": 0.25})
    assert sampler.noise(second) == ([None, None], {"latency_ms <= 5": 0.25})


def test_unknown_variances_take_the_largest_measured_one_of_their_output():
    def seen(variances: list[float | None]) -> Observation:
        return Observation({}, [0.0, 0.0], {}, variances, {})

    table = _variances([seen([0.01, None]), seen([None, None]), seen([0.04, None])], [])
    assert table[:, 0].tolist() == [0.01, 0.04, 0.04]
    assert table[:, 1].tolist() == [0.0, 0.0, 0.0]  # none measured: the model learns it


def test_a_noisily_measured_point_is_not_trusted_as_exact():
    """Two outputs seen at the same points, one measured with 100x the variance: the model
    stays unsure of the noisy output where it was measured, and sure of the exact one."""
    x = np.tile(np.linspace(0, 1, 12)[:, None], (1, 3))
    y = np.column_stack([np.sin(6 * x[:, 0]), np.sin(6 * x[:, 0])])
    variances = np.tile([0.25, 0.0025], (12, 1))

    model = Surrogate().fit(x, y, variances)
    posterior_sd = model.posterior(torch.tensor(x)).variance.sqrt().mean(dim=0)
    assert posterior_sd[0] > 3 * posterior_sd[1]


@pytest.mark.parametrize(
    "options", [{"noisy": True}, {"noisy": False}, {"categorical_kernel": True}]
)
def test_every_model_and_acquisition_proposes_new_valid_configurations(options):
    request = OptimizerRequest(
        seed=1,
        n_objectives=2,
        space=SPACE,
        workers=2,
        trials=16,
        objectives=OBJECTIVES,
        options={**options, "n_startup_trials": 6},
    )
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=make_sampler("botorch", request).sampler
    )
    pending = study.ask()  # stays running: a pending point for every later proposal
    SPACE.suggest(pending)
    for _ in range(12):
        trial = study.ask()
        config = SPACE.suggest(trial)["g"]
        x = config["x"] + (0.3 if config["kind"] == "a" else 0.0)
        trial.set_user_attr(records.METRICS, {"accuracy_se": 0.02})
        study.tell(trial, [1 - (x - 0.5) ** 2, x])
    configs = [(t.params["g.x"], t.params["g.kind"]) for t in study.trials]
    assert len(set(configs)) == len(configs)
    assert all(0.0 <= x <= 1.0 and kind in ("a", "b") for x, kind in configs)
    assert statistics.pstdev(x for x, _ in configs[7:]) > 0  # not stuck on one point
