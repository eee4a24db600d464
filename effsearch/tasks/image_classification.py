"""Built-in task ``image-classification``: your own vision model on your own image folder.

Options (``task.options``): ``model`` (``"module:function"``, a factory of an ``nn.Module``
imported from the recipe's folder, called with ``num_classes=`` when it takes it; or
``"torchvision:NAME"`` where torchvision is installed), ``weights`` (an optional local state-dict
file, loaded with ``torch.load(weights_only=True)``; tensors whose shapes do not fit, such as a
head for another number of classes, are left as initialised and the trial notes say so),
``dataset`` (a folder with one subfolder of images per class), ``image_size`` (the side the
images are loaded at), ``train_samples``/``test_samples``.

Knobs: ``architecture.resolution`` (the input side the model is trained and measured at: the
resolution knob of the MobileNet line of work), training, pruning (``magnitude``, and
``channel``: whole channels removed through torch-pruning's dependency graph, so any conv net
whose layers allow it shrinks), quantization. One trial: build -> (load weights) -> train at the
resolution -> prune (+ recovery) -> quantize -> accuracy, agreement, latency, memory, size
(the shared pipeline of ``tasks.pipeline``).
"""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from effsearch.errors import TaskError
from effsearch.tasks import catalog, text_data
from effsearch.tasks.base import Config, Metrics, Task, TaskSpec, TrialContext
from effsearch.tasks.entrypoint import load_entrypoint
from effsearch.tasks.pipeline import Workload, accuracy, compress_and_measure, train_epochs

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SPLIT_SEED = 0
HELD_OUT_FRACTION = 0.25
CALIBRATION_SAMPLES = 64  # training images ONNX Runtime's int8_static calibrates on
CALIBRATION_BATCH = 16


class ImageClassification(Task):
    """A user's vision model on an image folder (see the module docstring)."""

    info = catalog.IMAGE_CLASSIFICATION

    def __init__(
        self,
        model: str,
        dataset: str,
        weights: str | None = None,
        image_size: int = 32,
        train_samples: int | None = None,
        test_samples: int | None = None,
        recipe_dir: str = ".",
    ) -> None:
        self.factory = model_factory(model, recipe_dir)
        self.weights = _resolve(weights, recipe_dir) if weights else None
        folder = _resolve(dataset, recipe_dir)
        images, labels, self.class_names = load_folder(folder, image_size)
        order = random.Random(SPLIT_SEED).sample(range(len(labels)), len(labels))
        held_out = max(len(self.class_names), round(HELD_OUT_FRACTION * len(labels)))
        held, train = order[:held_out][:test_samples], order[held_out:][:train_samples]
        self.train_x, self.train_y = images[train], labels[train]
        # the held-out images, halved: validation (optimized) and test (only reported)
        first, second = text_data.halves([int(labels[i]) for i in held])
        self.val_x, self.val_y = images[[held[i] for i in first]], labels[[held[i] for i in first]]
        self.test_x = images[[held[i] for i in second]]
        self.test_y = labels[[held[i] for i in second]]

    @classmethod
    def create(cls, spec: TaskSpec) -> Task:
        return cls(**dict(spec.options), recipe_dir=spec.recipe_dir)

    def run(self, config: Config, ctx: TrialContext) -> Metrics:
        torch.manual_seed(ctx.seed)
        train_cfg = catalog.IMAGE_CLASSIFICATION.values(config, "training")
        resolution = int(catalog.IMAGE_CLASSIFICATION.values(config, "architecture")["resolution"])
        epochs = int(train_cfg["epochs"])
        device = torch.device(ctx.device)
        model = self._build(ctx).to(device)
        train_x, val_x = _resized(self.train_x, resolution), _resized(self.val_x, resolution)
        test_x = _resized(self.test_x, resolution)
        started = time.perf_counter()
        loss = self._train(model, train_x, val_x, train_cfg, epochs, ctx, first_step=0)
        repeats = -(-ctx.measure.batch_size // len(val_x))
        batch = val_x.repeat(repeats, 1, 1, 1)[: ctx.measure.batch_size].to(device)
        work = Workload(
            predict=lambda m, dtype: _predict(m, val_x, dtype, device),
            labels=self.val_y,
            recover=lambda m, n: self._train(m, train_x, val_x, train_cfg, n, ctx, epochs),
            forward=lambda m, dtype: lambda: m(batch.to(dtype)),
            one_input=val_x[:1].to(device),
            test_predict=lambda m, dtype: _predict(m, test_x, dtype, device),
            test_labels=self.test_y,
            calibration=list(train_x[:CALIBRATION_SAMPLES].to(device).split(CALIBRATION_BATCH)),
        )
        metrics = compress_and_measure(model, config, ctx, work, started, loss)
        return metrics | {"resolution": float(resolution)}

    def _build(self, ctx: TrialContext) -> nn.Module:
        model = self.factory(len(self.class_names))
        if self.weights is not None:
            skipped = load_fitting(model, self.weights)
            if skipped:
                ctx.note(
                    f"weights: {len(skipped)} tensors did not fit and were left as built "
                    f"({', '.join(skipped[:4])}{' ...' if len(skipped) > 4 else ''})"
                )
        return model

    def _train(
        self,
        model: nn.Module,
        train_x: torch.Tensor,
        val_x: torch.Tensor,
        cfg: Mapping[str, Any],
        epochs: int,
        ctx: TrialContext,
        first_step: int,
    ) -> float:
        loss_fn = nn.CrossEntropyLoss()
        device = torch.device(ctx.device)
        x, y = train_x.to(device), self.train_y.to(device)

        def held_out_accuracy() -> float:
            with ctx.compute_slot():
                return accuracy(_predict(model, val_x, torch.float32, device), self.val_y)

        return train_epochs(
            model,
            torch.optim.Adam(model.parameters(), lr=float(cfg["lr"])),
            lambda index: loss_fn(model(x[index]), y[index]),
            len(x),
            int(cfg["batch_size"]),
            epochs,
            ctx,
            first_step,
            held_out_accuracy,
        )


def model_factory(reference: str, recipe_dir: str) -> Callable[[int], nn.Module]:
    """``num_classes -> model`` for ``"module:function"`` or ``"torchvision:NAME"``."""
    if reference.startswith("torchvision:"):
        name = reference.split(":", 1)[1]
        try:
            from torchvision import models
        except ImportError as exc:
            raise TaskError(f"model {reference!r} needs torchvision ({exc})") from exc
        return lambda classes: models.get_model(name, weights=None, num_classes=classes)
    function = load_entrypoint(reference, recipe_dir)
    takes_classes = "num_classes" in _parameters(function)

    def build(classes: int) -> nn.Module:
        built = function(num_classes=classes) if takes_classes else function()
        if not isinstance(built, nn.Module):
            raise TaskError(f"{reference} returned {type(built).__name__}, not a torch nn.Module")
        return built

    return build


def load_folder(folder: Path, side: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Every image of ``folder/<class>/`` as ``n x 3 x side x side`` floats in [0, 1], the
    labels (classes in sorted order) and the class names."""
    from PIL import Image

    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
    pixels, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted((folder / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            with Image.open(file) as image:
                rgb = image.convert("RGB").resize((side, side))
                data = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
            pixels.append(data.reshape(side, side, 3).permute(2, 0, 1).float() / 255.0)
            labels.append(label)
    if len(classes) < 2 or len(labels) < 4:
        raise TaskError(
            f"dataset {folder}: needs 2+ class subfolders with images ({len(classes)} classes, "
            f"{len(labels)} images found)"
        )
    return torch.stack(pixels), torch.tensor(labels), classes


def load_fitting(model: nn.Module, path: Path) -> list[str]:
    """Load the tensors of the state dict at ``path`` whose names and shapes fit ``model``;
    return the names of those that did not (a head for another number of classes, say)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise TaskError(f"cannot load weights {path}: {exc}") from exc
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fitting, strict=False)
    return sorted(set(state) - set(fitting)) + sorted(set(own) - set(state))


def _parameters(function: Callable[..., Any]) -> Mapping[str, Any]:
    try:
        return inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}


def _resolve(path: str, recipe_dir: str) -> Path:
    return Path(path) if Path(path).is_absolute() else Path(recipe_dir) / path


def _resized(images: torch.Tensor, side: int) -> torch.Tensor:
    if images.shape[-1] == side:
        return images
    return nn.functional.interpolate(images, size=(side, side), mode="bilinear", antialias=True)


def _predict(
    model: nn.Module, images: torch.Tensor, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    with torch.inference_mode():
        return model(images.to(device, dtype)).argmax(dim=1).cpu()
