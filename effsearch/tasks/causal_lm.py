"""Built-in task ``causal-lm``: adapt and compress a decoder language model, measure its decode.

Options (``task.options``): ``model`` (a local Hugging Face decoder folder: Llama, Qwen2,
Mistral, GPT-2 or OPT layouts; or ``builtin:bbc-llama``, see ``lm_builtin``), ``dataset``
(``builtin:bbc-news``, or a .jsonl/.csv file with ``text_column`` and optional
``label_column``, or a .txt file of paragraphs), ``max_length`` (tokens per training and
held-out text), ``train_samples``/``test_samples``, ``prompt_tokens`` and ``decode_tokens``
(the timed generation). Nothing is downloaded.

One trial: copy the pretrained model -> drop top blocks -> adapt (PEFT or full fine-tune) on
next-token loss -> merge adapters -> next-token predictions and perplexity of this
uncompressed parent -> prune heads / FFN / weights (+ optional recovery) -> quantize ->
perplexity, next-token agreement with the parent (and label accuracy when the data has labels:
the label whose name the model finds likeliest after the text) -> prefill time of a
``measure.batch_size`` x ``prompt_tokens`` prompt, greedy decoding of ``decode_tokens`` tokens
with the KV cache (tokens/s), peak memory while decoding (the KV cache included), size, params.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from effsearch.errors import TaskError
from effsearch.models import layouts, surgery
from effsearch.objectives import meters, noise
from effsearch.tasks import catalog, lm_builtin, text_data
from effsearch.tasks.base import Config, Metrics, Task, TaskSpec, TrialContext
from effsearch.transforms import peft, pruning, quantization

EVAL_BATCH = 16
RECOVERY_LR_SCALE = 0.05


@dataclass(frozen=True)
class HeldOut:
    """A held-out split: texts, their padded token ids and mask (``n x max_length``), labels."""

    texts: list[str]
    ids: torch.Tensor
    mask: torch.Tensor
    labels: list[int]


class CausalLM(Task):
    """Causal language modelling on a decoder (see the module docstring)."""

    info = catalog.CAUSAL_LM

    def __init__(
        self,
        model: str = lm_builtin.NAME,
        dataset: str = text_data.BBC_NEWS,
        text_column: str = "text",
        label_column: str | None = "label",
        max_length: int = 64,
        train_samples: int | None = 400,
        test_samples: int | None = 100,
        prompt_tokens: int = 32,
        decode_tokens: int = 32,
        recipe_dir: str = ".",
        cache_dir: str | None = None,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        folder = catalog.resolve_decoder_dir(model, recipe_dir, cache_dir)
        self.layout = layouts.layout_of_folder(folder, kind="decoder")
        self.data = text_data.load_corpus(
            dataset,
            recipe_dir,
            text_column,
            label_column,
            train_samples=train_samples,
            test_samples=test_samples,
        )
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.pretrained = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise TaskError(f"cannot load model {model!r} from {folder}: {exc}") from exc
        self.pretrained.eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.prompt_tokens = prompt_tokens
        self.decode_tokens = decode_tokens
        self.train_chunks = lm_builtin.token_rows(self.tokenizer, self.data.train_texts, max_length)
        # the held-out texts, halved: validation (optimized) and test (only reported)
        first, second = text_data.halves(self.data.test_labels or [0] * len(self.data.test_texts))
        self.val = self._split(first, max_length)
        self.test = self._split(second, max_length)
        self.prompt = self._prompt(prompt_tokens)

    @classmethod
    def create(cls, spec: TaskSpec) -> Task:
        return cls(**dict(spec.options), recipe_dir=spec.recipe_dir, cache_dir=spec.cache_dir)

    # ------------------------------------------------------------------------------- a trial
    def run(self, config: Config, ctx: TrialContext) -> Metrics:
        torch.manual_seed(ctx.seed)
        device = torch.device(ctx.device)
        train_cfg = catalog.CAUSAL_LM.values(config, "training")
        model: nn.Module = copy.deepcopy(self.pretrained)
        surgery.drop_top_layers(
            model, self.layout, int(config.get("architecture", {}).get("drop_layers", 0))
        )
        model = model.to(device)
        started = time.perf_counter()
        adapted = peft.apply(model, config.get("peft", {"method": "lora"}), self.layout, None)
        if adapted.note:
            ctx.note(adapted.note)
        loss = self._train(adapted.model, train_cfg, int(train_cfg["epochs"]), ctx, 0)
        model = peft.merge(adapted.model).eval()

        parent_nll, parent_next = self._evaluate(model, device, self.val)
        prune_cfg = config.get("pruning", {})
        pruning.apply(model, prune_cfg, layout=self.layout)
        recovery = int(prune_cfg.get("finetune_epochs", 0))
        if recovery:
            for parameter in model.parameters():
                parameter.requires_grad_(True)
            recover_cfg = {**train_cfg, "lr": float(train_cfg["lr"]) * RECOVERY_LR_SCALE}
            loss = self._train(model, recover_cfg, recovery, ctx, int(train_cfg["epochs"]))
        pruning.finalize(model)
        model.eval()
        metrics: dict[str, float] = {
            "train_time_s": time.perf_counter() - started,
            "final_train_loss": loss,
            "trainable_params": float(adapted.trainable_params),
            "decoder_layers": float(len(surgery.find_blocks(model, self.layout))),
        }
        metrics |= meters.params(model)
        metrics["perplexity_unquantized"] = math.exp(self._evaluate(model, device, self.val)[0])

        quantized = quantization.apply(model, config.get("quantization", {}), ctx.device)
        if quantized.note:
            ctx.note(quantized.note)
        nll, next_tokens = self._evaluate(quantized.model, device, self.val)
        metrics["test_perplexity"] = math.exp(self._evaluate(quantized.model, device, self.test)[0])
        metrics["perplexity"] = math.exp(nll)
        metrics["perplexity_parent"] = math.exp(parent_nll)
        metrics["agreement"] = meters.agreement(next_tokens, parent_next)
        if self.data.label_names:
            metrics["accuracy"] = self._label_accuracy(quantized.model, device, self.val)
            metrics["accuracy_se"] = noise.binomial_se(metrics["accuracy"], len(self.val.labels))
            metrics["test_accuracy"] = self._label_accuracy(quantized.model, device, self.test)
        metrics |= self._measure_generation(quantized.model, ctx)
        metrics |= meters.size(quantized.model, sparse=True)
        ctx.artifact, ctx.example_input = quantized, {"input_ids": self.prompt[:1]}
        return metrics

    # ------------------------------------------------------------------------------- pieces
    def _split(self, rows: list[int], length: int) -> HeldOut:
        texts = [self.data.test_texts[i] for i in rows]
        encoded = self.tokenizer(
            texts, padding="max_length", truncation=True, max_length=length, return_tensors="pt"
        )
        labels = [self.data.test_labels[i] for i in rows] if self.data.test_labels else []
        return HeldOut(texts, encoded["input_ids"], encoded["attention_mask"], labels)

    def _prompt(self, length: int) -> torch.Tensor:
        """One held-out text's first ``length`` tokens (repeated to the measure batch later)."""
        ids: list[int] = []
        for text in self.val.texts:
            ids += self.tokenizer(text)["input_ids"]
            if len(ids) >= length:
                break
        if len(ids) < length:
            raise TaskError(f"the held-out texts hold fewer than prompt_tokens={length} tokens")
        return torch.tensor([ids[:length]])

    def _train(
        self, model: nn.Module, cfg: Mapping[str, Any], epochs: int, ctx: TrialContext, first: int
    ) -> float:
        trainable = [p for p in model.parameters() if p.requires_grad]
        if not trainable or epochs <= 0:
            return float("nan")
        optimizer = torch.optim.AdamW(trainable, lr=float(cfg["lr"]))
        generator = torch.Generator().manual_seed(ctx.seed)
        device = torch.device(ctx.device)
        batch_size = int(cfg["batch_size"])
        mean = float("nan")
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(len(self.train_chunks), generator=generator)
            total, seen = 0.0, 0
            for start in range(0, len(order), batch_size):
                batch = self.train_chunks[order[start : start + batch_size]].to(device)
                with ctx.compute_slot():
                    optimizer.zero_grad()
                    loss = model(input_ids=batch, labels=batch).loss
                    loss.backward()
                    optimizer.step()
                total += loss.item() * len(batch)
                seen += len(batch)
            mean = total / seen
            model.eval()
            nll, _ = self._evaluate(model, device, self.val)
            ctx.report(first + epoch + 1, {"train_loss": mean, "perplexity": math.exp(nll)})
        return mean

    def _evaluate(
        self, model: nn.Module, device: torch.device, split: HeldOut
    ) -> tuple[float, torch.Tensor]:
        """Mean next-token negative log-likelihood on a held-out split, and the predicted next
        token at every real position (flattened, for agreement)."""
        total, count, predicted = 0.0, 0, []
        with torch.inference_mode():
            for start in range(0, len(split.ids), EVAL_BATCH):
                ids = split.ids[start : start + EVAL_BATCH]
                mask = split.mask[start : start + EVAL_BATCH]
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                logits = logits[:, :-1].float()
                target, real = ids[:, 1:].to(device), mask[:, 1:].bool().to(device)
                nll = nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none"
                )
                total += float(nll[real.reshape(-1)].sum())
                count += int(real.sum())
                predicted.append(logits.argmax(-1)[real].cpu())
        return total / max(1, count), torch.cat(predicted)

    def _label_accuracy(self, model: nn.Module, device: torch.device, split: HeldOut) -> float:
        """Texts of a held-out split whose label name the model finds likeliest as the next
        words."""
        names = [f" {name}" for name in self.data.label_names]
        label_ids = [self.tokenizer(name)["input_ids"] for name in names]
        right = 0
        with torch.inference_mode():
            for text_ids, mask, label in zip(split.ids, split.mask, split.labels, strict=True):
                context = text_ids[mask.bool()][-(split.ids.shape[1] // 2) :]
                scores = []
                for candidate in label_ids:
                    ids = torch.cat([context, torch.tensor(candidate)])[None].to(device)
                    logits = model(input_ids=ids).logits[0, len(context) - 1 : -1].float()
                    logp = torch.log_softmax(logits, -1)
                    scores.append(float(logp.gather(1, ids[0, len(context) :, None]).mean()))
                right += int(max(range(len(scores)), key=scores.__getitem__) == label)
        return right / len(split.labels)

    def _measure_generation(self, model: nn.Module, ctx: TrialContext) -> dict[str, float]:
        """Prefill and greedy decode with the KV cache, timed alone on the device."""
        prompt = self.prompt.repeat(ctx.measure.batch_size, 1)
        waited = time.perf_counter()
        with ctx.measure_slot():
            waited = time.perf_counter() - waited
            metrics = time_generation(
                model,
                prompt,
                self.decode_tokens,
                ctx.measure.warmup,
                ctx.measure.repeats,
                ctx.device,
            )
        ctx.note(
            f"decode: greedy, KV cache, batch {ctx.measure.batch_size}, prompt "
            f"{self.prompt_tokens} tokens, {self.decode_tokens} new tokens; median of "
            f"{ctx.measure.repeats} after {ctx.measure.warmup} warm-up runs (torch eager)"
        )
        return metrics | {"measure_wait_s": waited}


def time_generation(
    model: nn.Module, prompt: torch.Tensor, steps: int, warmup: int, repeats: int, device: str
) -> dict[str, float]:
    """Prefill time and greedy decode speed with the KV cache, and peak memory while decoding.

    ``prompt``: ``batch x prompt_tokens`` token ids. Medians of ``repeats`` runs after
    ``warmup``; CUDA work is synchronised before each clock read. The caller holds the device.
    """
    where = torch.device(device)
    prompt = prompt.to(where)
    # transformers 5.24 renamed the KV-cache argument and output field to ``cache``
    cache_name = (
        "cache" if "cache" in inspect.signature(model.forward).parameters else ("past_key_values")
    )

    def generate() -> tuple[float, float]:
        began = time.perf_counter()
        out = model(input_ids=prompt, use_cache=True)
        _sync(where)
        prefilled = time.perf_counter()
        for _ in range(steps):
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            kv = getattr(out, "cache", None) or out.past_key_values
            out = model(input_ids=token, use_cache=True, **{cache_name: kv})
        _sync(where)
        return prefilled - began, time.perf_counter() - prefilled

    with torch.inference_mode():
        for _ in range(warmup):
            generate()
        prefill, decode = zip(*(generate() for _ in range(repeats)), strict=True)
    memory = meters.peak_memory(generate, device, model)
    decode_s = statistics.median(decode)
    metrics = {
        "prefill_ms": statistics.median(prefill) * 1000,
        "decode_tokens_per_s": len(prompt) * steps / decode_s,
        "decode_ms_per_token": decode_s * 1000 / steps,
        "torch_threads": float(torch.get_num_threads()),
        **memory,
    }
    return metrics


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
