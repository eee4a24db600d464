"""``builtin:bbc-llama``: a small decoder of the Llama architecture, trained here on BBC News.

No PyPI package ships the weights of a pretrained small decoder (the package lists were searched
by name and summary), so the default causal-lm model is built from a real architecture's
config (Llama, with grouped-query attention) and trained briefly on the training side of the
bundled BBC News texts (never on the held-out side the task measures on), with a byte-level BPE
tokenizer trained on the same texts. It is built once and cached (``cache_dir``, by default the
run directory's ``cache/``); every later trial and run with the same cache loads it. It is a
real model of a real architecture, not a good language model: perplexity and speed are
measured on it honestly, and any local Hugging Face decoder folder can replace it.
"""

from __future__ import annotations

import fcntl
import json
import time
from pathlib import Path
from typing import Any

from effsearch.tasks import text_data

NAME = "builtin:bbc-llama"
VERSION = 1
VOCAB = 2048
CONFIG: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "tie_word_embeddings": False,
}
PRETRAIN_STEPS = 400
PRETRAIN_BATCH = 16
PRETRAIN_LENGTH = 64
PRETRAIN_LR = 3e-3
SEED = 0


def folder(cache_dir: Path) -> Path:
    """The model's folder in ``cache_dir``, trained first if it is not there yet (one process
    trains; others wait for it on a file lock)."""
    target = cache_dir / f"bbc-llama-v{VERSION}"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "bbc-llama.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "config.json").is_file():
            _train(target)
    return target


def token_rows(tokenizer: Any, texts: list[str], length: int) -> Any:
    """``texts`` as one token stream (each ended by the eos token) cut into ``length``-token
    rows: a ``rows x length`` tensor (a stream shorter than one row is repeated to fill it)."""
    import torch

    ids: list[int] = []
    for text in texts:
        ids += tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
    rows = max(1, len(ids) // length)
    ids = (ids * -(-rows * length // max(1, len(ids))))[: rows * length]
    return torch.tensor(ids).reshape(rows, length)


def _train(target: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    started = time.perf_counter()
    texts = text_data.load_corpus(text_data.BBC_NEWS, ".").train_texts
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=VOCAB,
            special_tokens=["<eos>", "<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>")
    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        **CONFIG,
    )
    model = LlamaForCausalLM(config)
    chunks = token_rows(tokenizer, texts, PRETRAIN_LENGTH)
    optimizer = torch.optim.AdamW(model.parameters(), lr=PRETRAIN_LR)
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    losses = []
    for step in range(PRETRAIN_STEPS):
        for group in optimizer.param_groups:  # linear warm-up, then linear decay
            group["lr"] = PRETRAIN_LR * min((step + 1) / 20, 1 - step / PRETRAIN_STEPS)
        batch = chunks[torch.randint(len(chunks), (PRETRAIN_BATCH,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    partial = target.with_name(target.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / "effsearch-training.json").write_text(
        json.dumps(
            {
                "what": "Llama architecture trained from scratch on BBC News (training split)",
                "steps": PRETRAIN_STEPS,
                "batch": PRETRAIN_BATCH,
                "sequence_length": PRETRAIN_LENGTH,
                "tokens_seen": PRETRAIN_STEPS * PRETRAIN_BATCH * PRETRAIN_LENGTH,
                "final_loss": sum(losses[-20:]) / 20,
                "seconds": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
    )
    partial.rename(target)  # whole or not at all: a killed build leaves only .partial
