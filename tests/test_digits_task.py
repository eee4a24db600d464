"""The digits-cnn task: each technique does what it claims, on a real (tiny, fast) training run."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from effsearch.objectives import meters
from effsearch.tasks.base import MeasureSettings, TrialContext
from effsearch.tasks.digits_cnn import DigitsCNN, build_model
from effsearch.transforms import pruning, quantization

FAST_TRAINING = {"lr": 3e-3, "epochs": 2, "batch_size": 128}


@pytest.fixture(scope="module")
def task() -> DigitsCNN:
    torch.set_num_threads(1)
    return DigitsCNN()


def run(task: DigitsCNN, **groups: Any) -> tuple[dict[str, float], TrialContext]:
    config = {
        "architecture": {"width_mult": 0.5, "depth": 2},
        "training": FAST_TRAINING,
        "pruning": {"method": "none"},
        "quantization": {"scheme": "none"},
        **groups,
    }
    measure = MeasureSettings(batch_size=8, warmup=1, repeats=3)
    ctx = TrialContext(trial_number=0, seed=0, measure=measure)
    return task.run(config, ctx), ctx


def test_a_trial_reports_every_declared_metric(task):
    metrics, ctx = run(task)
    declared = {m.name for m in DigitsCNN.info.metrics}
    gpu_only = {"energy_j", "gpu_peak_memory_mb"}
    compiled_only = {"engine_build_s"}  # torch eager builds nothing
    assert set(metrics) == declared - gpu_only - compiled_only
    assert any("energy_j_est is an estimate" in note for note in ctx.notes)
    assert 0.5 < metrics["accuracy"] <= 1.0  # two epochs already learn the digits
    assert metrics["latency_ms"] > 0 and metrics["latency_repeats"] == 3
    assert metrics["torch_threads"] == 1
    assert [entry["step"] for entry in ctx.history] == [1.0, 2.0]  # one report per epoch


def test_same_seed_trains_the_same_model(task):
    first, _ = run(task)
    second, _ = run(task)
    assert first["accuracy"] == second["accuracy"]
    assert first["final_train_loss"] == second["final_train_loss"]


def test_channel_pruning_physically_shrinks_the_model(task):
    dense, _ = run(task)
    pruned, _ = run(task, pruning={"method": "channel", "sparsity": 0.5, "finetune_epochs": 0})
    assert pruned["params"] < 0.5 * dense["params"]
    assert pruned["size_mb"] < 0.5 * dense["size_mb"]
    assert pruned["flops"] < 0.5 * dense["flops"]


def test_magnitude_pruning_zeroes_weights_and_counts_size_as_stored_sparse(task):
    dense, _ = run(task)
    pruned, _ = run(task, pruning={"method": "magnitude", "sparsity": 0.8, "finetune_epochs": 1})
    assert pruned["params"] == dense["params"]
    assert pruned["nonzero_params"] < 0.3 * dense["params"]
    assert pruned["size_dense_mb"] == pytest.approx(dense["size_mb"], rel=0.01)
    # CSR with int32 indices: 8 bytes per kept weight instead of 4 per weight, plus row
    # pointers and the (dense) biases and per-tensor overhead of this small model
    assert pruned["size_mb"] < 0.75 * dense["size_mb"]


def test_below_half_sparsity_csr_does_not_pay_and_size_stays_dense(task):
    dense, _ = run(task)
    pruned, _ = run(task, pruning={"method": "magnitude", "sparsity": 0.3, "finetune_epochs": 0})
    assert pruned["size_mb"] == pytest.approx(dense["size_mb"], rel=0.01)


def test_compressed_model_is_checked_against_its_parent(task):
    plain, _ = run(task)
    assert plain["agreement"] == 1.0 and plain["accuracy_delta"] == 0.0
    broken, _ = run(task, pruning={"method": "magnitude", "sparsity": 0.95, "finetune_epochs": 0})
    assert broken["agreement"] < 0.9
    assert broken["accuracy_delta"] < 0


def test_magnitude_pruning_stays_sparse_through_recovery_finetuning():
    model = build_model(0.5, 2)
    example = torch.zeros(1, 1, 8, 8)
    pruning.apply(model, {"method": "magnitude", "sparsity": 0.5}, example)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(16, 1, 8, 8)).sum().backward()
        optimizer.step()
    pruning.finalize(model)
    conv = model[0]
    zero_fraction = float((conv.weight == 0).float().mean())
    assert zero_fraction == pytest.approx(0.5, abs=0.02)
    assert not hasattr(conv, "weight_orig")  # plain parameters again: saves and loads as usual


@pytest.mark.parametrize(
    ("scheme", "max_size_ratio"),
    [
        ("bf16", 0.55),
        ("fp16", 0.55),
        ("int8_dynamic", 0.9),
        ("int8_dynamic_fbgemm", 0.9),
        ("int8_weight_only", 0.9),
    ],
)
def test_quantization_shrinks_the_model_and_keeps_accuracy(task, scheme, max_size_ratio):
    dense, _ = run(task)
    quantized, ctx = run(task, quantization={"scheme": scheme})
    assert quantized["size_mb"] < max_size_ratio * dense["size_mb"]
    assert quantized["accuracy"] == pytest.approx(dense["accuracy"], abs=0.03)
    assert quantized["accuracy_unquantized"] == dense["accuracy"]
    if scheme.startswith("int8"):
        assert any("Linear layers only" in note for note in ctx.notes)
    assert quantized["agreement"] > 0.95


def test_int8_dynamic_fbgemm_stores_linear_weights_as_int8():
    model = build_model(0.5, 1).eval()
    quantized = quantization.apply(model, {"scheme": "int8_dynamic_fbgemm"})
    head = quantized.model[-1]
    assert head.weight().dtype == torch.qint8


@pytest.mark.parametrize("scheme", ["int8_dynamic", "int8_weight_only"])
def test_torchao_schemes_store_linear_weights_as_int8(scheme):
    model = build_model(0.5, 1).eval()
    quantized = quantization.apply(model, {"scheme": scheme})
    weight = quantized.model[-1].weight
    inner_names = weight.__tensor_flatten__()[0]  # torchao keeps int8 data in a tensor subclass
    assert any(getattr(weight, name).dtype == torch.int8 for name in inner_names)


def test_a_scheme_the_device_cannot_run_is_refused():
    with pytest.raises(ValueError, match="does not run on cpu"):
        quantization.apply(build_model(0.5, 1), {"scheme": "int4_weight_only"}, "cpu")


def test_flops_count_the_float_model_per_image():
    model = build_model(1.0, 1).eval()
    per_image = meters.flops(model, torch.zeros(1, 1, 8, 8), batch_size=1)["flops"]
    per_image_batched = meters.flops(model, torch.zeros(4, 1, 8, 8), batch_size=4)["flops"]
    assert per_image == per_image_batched
    # conv 1->32 3x3 on 8x8, then linear 512->128 and 128->10: 2 FLOPs per multiply-add
    expected = 2 * (32 * 9 * 64 + 512 * 128 + 128 * 10)
    assert per_image == expected


def test_latency_reports_spread_of_the_repeats():
    model = build_model(0.25, 1).eval()
    batch = torch.zeros(4, 1, 8, 8)
    result = meters.latency(lambda: model(batch), 4, warmup=1, repeats=7)
    assert result["latency_min_ms"] <= result["latency_ms"] <= result["latency_p90_ms"]
    assert result["latency_iqr_ms"] >= 0
    assert result["latency_batch_size"] == 4


@pytest.mark.parametrize("scheme", ["none", "int8_dynamic_fbgemm"])
def test_precheck_gives_cost_metrics_before_training_and_times_only_when_asked(task, scheme):
    config = {
        "architecture": {"width_mult": 0.5, "depth": 2},
        "pruning": {"method": "channel", "sparsity": 0.5},
        "quantization": {"scheme": scheme},
    }
    settings = MeasureSettings(batch_size=8, warmup=1, repeats=5)
    untimed = task.precheck(config, TrialContext(trial_number=0, seed=0, measure=settings))
    ctx = TrialContext(trial_number=0, seed=0, measure=settings, measure_before_training=True)
    timed = task.precheck(config, ctx)

    assert {"params", "flops", "size_mb"} <= set(untimed)
    assert "latency_ms" not in untimed
    assert timed["latency_ms"] > 0 and timed["throughput_per_s"] > 0
    assert set(timed) <= DigitsCNN.info.early_metrics
    assert any("untrained compressed model" in note for note in ctx.notes)
    # the same shapes and formats as the trained trial will have
    trained, _ = run(task, **config)
    assert untimed["size_mb"] == pytest.approx(trained["size_mb"])
    assert untimed["params"] == trained["params"]


def test_peak_memory_tells_a_small_model_from_a_big_one() -> None:
    """The model's own memory, not the process's: weights plus activations."""
    from effsearch.objectives import meters
    from effsearch.tasks.digits_cnn import build_model

    batch = torch.randn(64, 1, 8, 8)
    small, big = build_model(0.125, 1).eval(), build_model(1.0, 3).eval()

    small_mb = meters.peak_memory(lambda: small(batch), "cpu", small)["peak_memory_mb"]
    big_mb = meters.peak_memory(lambda: big(batch), "cpu", big)["peak_memory_mb"]

    weights_mb = meters.size(big)["size_mb"]
    assert big_mb > weights_mb  # activations on top of the weights
    assert big_mb > 2 * small_mb
