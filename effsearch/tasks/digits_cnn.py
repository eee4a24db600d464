"""Built-in task ``digits-cnn``: a small CNN trained from scratch on sklearn's digits.

Data: the 1,797 8x8 handwritten digits that ship with scikit-learn (no download), split once
into a stratified 75 % training / 25 % held-out split (fixed, independent of the recipe seed,
so every trial and every run is judged on the same images): the held-out 450 are halved into a
validation split (225, what the optimizer sees) and a test split (225, only reported).

One trial: build the CNN from the architecture knobs -> train -> prune (+ optional recovery
fine-tune) -> count params/FLOPs on the float model -> quantize -> accuracy on the held-out
split -> latency at the recipe's measure batch size -> serialized size.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from effsearch.objectives import meters
from effsearch.spaces import architecture
from effsearch.tasks import catalog
from effsearch.tasks.base import Config, Metrics, Task, TrialContext
from effsearch.tasks.pipeline import (
    Workload,
    accuracy,
    compress_and_measure,
    train_epochs,
    untrained_deployed_cost,
)
from effsearch.transforms import pruning, quantization

BASE_CHANNELS = (32, 64, 128, 128)
BASE_HIDDEN = 128
POOLED_BLOCKS = 2  # 8x8 -> 4x4 -> 2x2; later blocks keep 2x2
NUM_CLASSES = 10
HELD_OUT_FRACTION = 0.25
SPLIT_SEED = 0
CALIBRATION_SAMPLES = 256  # training images ONNX Runtime's int8_static calibrates on
CALIBRATION_BATCH = 32


def build_model(width_mult: float, depth: int) -> nn.Sequential:
    """The CNN: ``depth`` conv3x3+ReLU blocks (the first two pooled), then a 2-layer head.

    Input: ``batch x 1 x 8 x 8`` pixel intensities in [0, 1]; output: ``batch x 10`` logits.
    """
    if not 1 <= depth <= len(BASE_CHANNELS):
        raise ValueError(f"architecture.depth must be in [1, {len(BASE_CHANNELS)}], got {depth}")
    layers: list[nn.Module] = []
    in_channels, side = 1, 8
    for block in range(depth):
        out_channels = architecture.scaled(BASE_CHANNELS[block], width_mult)
        layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
        if block < POOLED_BLOCKS:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        in_channels = out_channels
    hidden = architecture.scaled(BASE_HIDDEN, width_mult, minimum=4)
    layers += [
        nn.Flatten(),
        nn.Linear(in_channels * side * side, hidden),
        nn.ReLU(),
        nn.Linear(hidden, NUM_CLASSES),
    ]
    return nn.Sequential(*layers)


def load_split() -> tuple[torch.Tensor, ...]:
    """``(train_x, train_y, val_x, val_y, test_x, test_y)``; images are ``n x 1 x 8 x 8``
    floats in [0, 1]. The held-out quarter is halved, stratified: validation (what the
    optimizer and early stopping see) and test (only read for reporting)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    train_x, held_x, train_y, held_y = train_test_split(
        images,
        digits.target,
        test_size=HELD_OUT_FRACTION,
        stratify=digits.target,
        random_state=SPLIT_SEED,
    )
    val_x, test_x, val_y, test_y = train_test_split(
        held_x, held_y, test_size=0.5, stratify=held_y, random_state=SPLIT_SEED
    )
    arrays = (train_x, train_y, val_x, val_y, test_x, test_y)
    return tuple(torch.from_numpy(a) if a.ndim > 1 else torch.from_numpy(a).long() for a in arrays)


class DigitsCNN(Task):
    """Small CNN on sklearn digits; knobs: architecture, training, pruning, quantization."""

    info = catalog.DIGITS_CNN

    def __init__(self) -> None:
        split = load_split()
        self.train_x, self.train_y, self.val_x, self.val_y, self.test_x, self.test_y = split

    def run(self, config: Config, ctx: TrialContext) -> Metrics:
        torch.manual_seed(ctx.seed)
        arch = catalog.DIGITS_CNN.values(config, "architecture")
        train_cfg = catalog.DIGITS_CNN.values(config, "training")
        epochs = int(train_cfg["epochs"])

        device = torch.device(ctx.device)
        model = build_model(float(arch["width_mult"]), int(arch["depth"])).to(device)
        started = time.perf_counter()
        loss = self._train(model, train_cfg, epochs, ctx, first_step=0)
        batch = _measure_batch(self.val_x, ctx.measure.batch_size).to(device)
        work = Workload(
            predict=lambda m, dtype: self._predict(m, dtype, device),
            labels=self.val_y,
            recover=lambda m, n: self._train(m, train_cfg, n, ctx, first_step=epochs),
            forward=lambda m, dtype: lambda: m(batch.to(dtype)),
            one_input=self.val_x[:1].to(device),
            test_predict=lambda m, dtype: self._predict(m, dtype, device, self.test_x),
            test_labels=self.test_y,
            calibration=self._calibration(device),
        )
        return compress_and_measure(model, config, ctx, work, started, loss)

    def precheck(self, config: Config, ctx: TrialContext) -> Metrics:
        """Size, params and FLOPs of the configuration, from the untrained model: pruning,
        quantization and the engine give the same shapes and formats whatever the weights."""
        device = torch.device(ctx.device)
        model = self._pruned(config, ctx.device)
        metrics = meters.params(model) | meters.flops(model, self.val_x[:1].to(device), 1)
        batch = _measure_batch(self.val_x, ctx.measure.batch_size).to(device)
        return metrics | untrained_deployed_cost(
            model,
            config,
            ctx,
            lambda m, dtype: lambda: m(batch.to(dtype)),
            self.val_x[:1].to(device),
            self._calibration(device),
        )

    def skeleton(self, config: Config, device: str) -> quantization.Quantized:
        return quantization.apply(
            self._pruned(config, device), config.get("quantization", {}), device
        )

    def evaluate(self, model: nn.Module, input_dtype: Any, device: str) -> Metrics:
        where = torch.device(device)
        return {
            **meters.fraction_correct(
                "accuracy", self._predict(model, input_dtype, where), self.val_y
            ),
            "test_accuracy": accuracy(
                self._predict(model, input_dtype, where, self.test_x), self.test_y
            ),
        }

    def _pruned(self, config: Config, device: str) -> nn.Module:
        """The untrained float model of ``config``, pruned, in eval mode."""
        arch = catalog.DIGITS_CNN.values(config, "architecture")
        model = build_model(float(arch["width_mult"]), int(arch["depth"])).to(device)
        pruning.apply(model, config.get("pruning", {}), self.val_x[:1].to(device))
        return pruning.finalize(model).eval()

    def _calibration(self, device: torch.device) -> list[torch.Tensor]:
        """Training images in batches, for ONNX Runtime's static int8 calibration."""
        images = self.train_x[:CALIBRATION_SAMPLES].to(device)
        return list(images.split(CALIBRATION_BATCH))

    def _train(
        self,
        model: nn.Module,
        train_cfg: Mapping[str, Any],
        epochs: int,
        ctx: TrialContext,
        first_step: int,
    ) -> float:
        loss_fn = nn.CrossEntropyLoss()
        device = torch.device(ctx.device)
        train_x, train_y = self.train_x.to(device), self.train_y.to(device)

        def held_out_accuracy() -> float:
            with ctx.compute_slot():
                return accuracy(self._predict(model, torch.float32, device), self.val_y)

        return train_epochs(
            model,
            torch.optim.Adam(model.parameters(), lr=float(train_cfg["lr"])),
            lambda index: loss_fn(model(train_x[index]), train_y[index]),
            len(self.train_x),
            int(train_cfg["batch_size"]),
            epochs,
            ctx,
            first_step,
            held_out_accuracy,
        )

    def _predict(
        self,
        model: nn.Module,
        input_dtype: torch.dtype,
        device: torch.device,
        images: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predicted class of every validation image, or of ``images`` (on the CPU, to compare
        with labels)."""
        images = self.val_x if images is None else images
        with torch.inference_mode():
            return model(images.to(device, input_dtype)).argmax(dim=1).cpu()


def _measure_batch(images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The first ``batch_size`` held-out images (repeated if more are asked than exist)."""
    repeats = -(-batch_size // len(images))
    return images.repeat(repeats, 1, 1, 1)[:batch_size].contiguous()
