"""Export one trial for deployment: a folder (a *bundle*) with what it is and the model itself.

``config.yaml`` holds every knob value, the trial's metrics, the recipe it came from and the
provenance (versions, device, threads, seed, recipe hash); ``README.md`` says what the bundle is
and how to load it; ``example_input.pt`` is one validation input. The model: ``model.pt``, the
compressed model's state dict as it was measured (``meters.deployable_state``: the bytes
``size_mb`` counts); ``model.onnx`` for a trial measured on ``runtime.engine: onnxruntime`` (the
graph it ran, int8 by ONNX Runtime where its scheme says) or with ``--format onnx``; with
``--format hf`` a Hugging Face folder (``report/hf_export.py``). A PEFT trial's ``adapter/``
stays only where it reproduces the trial. A model the run kept (``execution.keep_artifacts``)
is copied; otherwise export rebuilds it by running the trial's configuration again with its
seed, and says so, with the rebuilt metrics next to the trial's. Only fixed file names are
written, inside ``--out``: names from the run or the trial never become paths.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from effsearch.errors import ArgumentError, TaskError
from effsearch.objectives import goals, noise
from effsearch.objectives.goals import parse_constraint
from effsearch.recipe.schema import Recipe
from effsearch.report.bundle_readme import write_readme
from effsearch.search import records, study_front
from effsearch.search.artifacts import EXAMPLE_FILE, MODEL_FILE, kept, load_state, save_example
from effsearch.search.rundir import RunDir
from effsearch.search.summary import trial_config
from effsearch.spaces.runtime import ONNX_FILE, engine_of
from effsearch.tasks.base import ADAPTER_FOLDER
from effsearch.version import __version__

CONFIG_FILE = "config.yaml"
FORMATS = ("torch", "onnx", "hf")
HF_SCHEMES = ("none", "bf16", "fp16")
"""What a Hugging Face folder holds: float or half-precision weights."""

BUNDLE_VERSION = 1
REBUILT_WHY = (
    "the trial's model was not kept (execution.keep_artifacts, or it left the Pareto set); it "
    "was rebuilt by running the trial's configuration again with its seed, on this machine"
)
KEPT_WHY = (
    "the model the trial measured, kept when it ran (execution.keep_artifacts): not re-trained"
)


Obtained = tuple[dict[str, float] | None, Any, Any, list[str]]
"""``(rebuilt metrics or None when kept, the torch model (Quantized) or None, one example
input, notes)``."""


@dataclass
class Exported:
    """What :func:`export` wrote and found."""

    out: Path
    trial: FrozenTrial
    rebuilt_metrics: dict[str, float] | None  # None: copied from the trial's kept artifact
    model_bytes: int | None  # None: the task handed over no model (an entrypoint task)
    notes: list[str] = field(default_factory=list)
    onnx: dict[str, Any] | None = None
    model_file: str = MODEL_FILE


def choose(recipe: Recipe, study: optuna.Study, trial: int | None, pick: str | None) -> FrozenTrial:
    """The trial ``--trial N`` or ``--pick knee | best:<objective> | "<metric> <= <x>"`` names."""
    if (trial is None) == (pick is None):
        raise ArgumentError(
            'give exactly one of --trial N or --pick (knee, best:<objective>, "<metric> <= <x>")'
        )
    if trial is not None:
        return _numbered(study, trial)
    assert pick is not None
    candidates = study_front.feasible_complete(study.get_trials(deepcopy=False))
    if not candidates:
        raise ArgumentError(
            "--pick: the run has no feasible complete trial to pick from; see effsearch show, "
            "or export one by number with --trial N"
        )
    names = [o.metric for o in recipe.objectives]
    if pick == "knee":
        return study_front.knee(
            study_front.non_dominated(candidates, recipe.objectives), recipe.objectives
        )
    if pick.startswith("best:"):
        metric = pick.removeprefix("best:")
        if metric not in names:
            raise ArgumentError(
                f"--pick best:{metric}: {metric!r} is not an objective of this run; "
                f"use one of: {', '.join(names)}"
            )
        index = names.index(metric)
        sign = goals.signs(recipe.objectives)[index]
        return min(candidates, key=lambda t: (sign * t.values[index], t.number))
    try:
        limit = parse_constraint(pick)
    except ValueError as exc:
        raise ArgumentError(
            f"--pick {pick!r}: expected knee, best:<objective> or a limit such as "
            f'"latency_ms <= 2"; as a limit it {exc}'
        ) from None
    inside = [t for t in candidates if limit.violation(_metric(t, limit.metric)) <= 0]
    if not inside:
        raise ArgumentError(
            f"--pick {pick!r}: no feasible complete trial has {limit}; loosen the limit "
            "(effsearch show lists the trials)"
        )
    return study_front.knee(study_front.non_dominated(inside, recipe.objectives), recipe.objectives)


def export(
    run_dir: RunDir, recipe: Recipe, chosen: FrozenTrial, out: Path, fmt: str = "torch"
) -> Exported:
    """Rebuild ``chosen`` and write its bundle into ``out`` (new or empty); ``fmt`` "onnx" adds
    ``model.onnx`` (raises TaskError, after writing the rest, where the model cannot). A trial
    measured on ``runtime.engine: onnxruntime`` exports the ONNX graph it ran, whatever ``fmt``."""
    if fmt not in FORMATS:
        raise ArgumentError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArgumentError(
            f"--out {out}: exists and is not an empty folder; give a new folder (export never "
            "overwrites)"
        )
    config = trial_config(recipe, chosen)
    if fmt == "hf":
        _check_hf(recipe, config, chosen.number)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArgumentError(
            f"--out {out}: cannot make that folder ({exc.strerror or exc}); give a writable path"
        ) from None
    try:
        found: Obtained | None = _from_kept(
            recipe, config, kept(run_dir.trial_dir(chosen.number)), out
        )
        if found is None:
            found = _rebuild(run_dir, recipe, chosen.number, config, out)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # it was new or empty: leave nothing half-done
        raise
    rebuilt, artifact, example, notes = found
    if example is not None:
        save_example(example, out / EXAMPLE_FILE)
    adapter = _keep_adapter(out, config, notes)
    model_entry = _write_model(fmt, recipe, artifact, example, out, notes)
    if model_entry is not None and fmt != "hf":
        from effsearch.tasks import build_task

        build_task(recipe.task_spec).save_preprocessing(out)
    model_bytes = model_entry["bytes"] if model_entry else None
    document = {
        "effsearch_bundle": BUNDLE_VERSION,
        "trial": chosen.number,
        "run": str(run_dir.path.resolve()),
        "config": config,
        "metrics": dict(chosen.user_attrs.get(records.METRICS, {})),
        "feasible": study_front.is_feasible(chosen),
        "model": model_entry,
        "example_input": _example_entry(example),
        "adapter": {
            "folder": ADAPTER_FOLDER,
            "format": "peft (PeftModel.save_pretrained), as trained; it applies to the task's "
            "model with architecture.drop_layers top layers dropped (the trial neither pruned "
            "nor quantized after merging it)",
        }
        if adapter
        else None,
        "rebuilt": {"why": REBUILT_WHY, "metrics": rebuilt, "notes": notes}
        if rebuilt is not None
        else {"why": KEPT_WHY, "metrics": None, "notes": notes},
        "provenance": _provenance(run_dir, recipe, chosen),
        "recipe": dict(recipe.data),
    }
    onnx_failure, onnx = None, None
    if fmt == "onnx" and not (model_entry and model_entry["file"] == ONNX_FILE):
        from effsearch.report.onnx_export import write_onnx

        if artifact is None:
            raise ArgumentError("--format onnx: the task handed over no model to convert")
        try:
            onnx = write_onnx(artifact.model, example, artifact.input_dtype, out)
            document["onnx"] = onnx
        except TaskError as exc:
            onnx_failure = exc
    (out / CONFIG_FILE).write_text(
        yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    write_readme(out, document)
    if onnx_failure is not None:
        raise onnx_failure
    model_file = model_entry["file"] if model_entry else MODEL_FILE
    return Exported(out, chosen, rebuilt, model_bytes, notes, onnx, model_file)


def _check_hf(recipe: Recipe, config: dict[str, Any], number: int) -> None:
    """Refuse, before rebuilding anything, a trial whose model no Hugging Face folder holds."""
    from effsearch.tasks import task_info

    info = task_info(recipe.task_spec)
    if info is None or "hf" not in info.export_formats:
        raise ArgumentError(
            f"--format hf: task {recipe.task.builtin or recipe.task.entrypoint!r} has no "
            "Hugging Face model (hf-text-classification does); export it with --format torch "
            "or onnx"
        )
    scheme = config.get("quantization", {}).get("scheme", "none")
    if scheme not in HF_SCHEMES:
        raise ArgumentError(
            f"--format hf: trial {number} is quantized {scheme}, and a Hugging Face folder "
            "holds float or half-precision weights; export it with --format torch, or search "
            "runtime.engine: onnxruntime for int8 that exports as ONNX"
        )
    if engine_of(config) == "onnxruntime":
        raise ArgumentError(
            f"--format hf: trial {number} was measured on onnxruntime; its model is the ONNX "
            "graph it ran (export it with --format onnx)"
        )
    if config.get("pruning", {}).get("method") == "semi_structured_24":
        raise ArgumentError(
            f"--format hf: trial {number} runs 2:4 sparse CUDA kernels, which a Hugging Face "
            "folder cannot hold; export it with --format torch"
        )


def _keep_adapter(out: Path, config: dict[str, Any], notes: list[str]) -> bool:
    """Whether the trained PEFT adapter the task wrote stays in the bundle: only when it
    reproduces the trial on the task's model, i.e. nothing pruned or quantized the merged
    weights afterwards (the bundle's model holds them either way)."""
    folder = out / ADAPTER_FOLDER
    if not folder.is_dir():
        return False
    changed = [
        f"{group}.{knob} {config.get(group, {}).get(knob)}"
        for group, knob in (("pruning", "method"), ("quantization", "scheme"))
        if config.get(group, {}).get(knob, "none") != "none"
    ]
    if not changed:
        return True
    shutil.rmtree(folder)
    notes.append(
        f"no adapter/: the trial changed the merged weights after training ({', '.join(changed)}),"
        " so the adapter alone would not reproduce it; the bundle's model holds the merged, "
        "transformed weights"
    )
    return False


def _write_model(
    fmt: str,
    recipe: Recipe,
    artifact: Any,
    example: Any,
    out: Path,
    notes: list[str],
) -> dict[str, Any] | None:
    """Write the bundle's model as ``fmt`` says; what ``config.yaml`` records of it."""
    engine_graph = out / ONNX_FILE
    if engine_graph.is_file():  # the pipeline copied the graph an onnxruntime trial ran
        from effsearch.report.onnx_export import describe_engine_graph

        notes.append(
            "measured on onnxruntime: the bundle's model is the ONNX graph the trial ran "
            f"({ONNX_FILE}, quantized by ONNX Runtime where the scheme says); it needs only "
            "onnxruntime"
        )
        return describe_engine_graph(engine_graph, example)
    if artifact is None:
        if fmt != "torch":
            raise ArgumentError(f"--format {fmt}: the task handed over no model to convert")
        notes.append(
            "the task handed over no model (entrypoint tasks return metrics only); the bundle "
            "holds the configuration"
        )
        return None
    if fmt == "hf":
        from effsearch.report.hf_export import write_hf

        return write_hf(recipe, artifact, example, out, notes)
    from effsearch.objectives.meters import deployable_state, serialized_state

    (out / MODEL_FILE).write_bytes(serialized_state(deployable_state(artifact.model)))
    return {
        "file": MODEL_FILE,
        "format": "torch state dict (torch.save); float weight matrices stored in CSR "
        "where that is smaller; load with effsearch.load_bundle",
        "input_dtype": str(artifact.input_dtype).removeprefix("torch."),
        "bytes": (out / MODEL_FILE).stat().st_size,
    }


def _example_entry(example: Any) -> dict[str, Any] | None:
    if example is None:
        return None
    tensors = example if isinstance(example, dict) else {"input": example}
    return {"file": EXAMPLE_FILE, "shapes": {k: list(v.shape) for k, v in tensors.items()}}


def _numbered(study: optuna.Study, number: int) -> FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise ArgumentError(
            f"--trial {number}: the run has trials 0 to {len(trials) - 1}; "
            "effsearch show lists them"
        )
    trial = trials[number]
    if trial.state != TrialState.COMPLETE or trial.user_attrs.get(records.REJECTED):
        why = trial.user_attrs.get(records.FAIL_REASON) or (
            "rejected before training" if trial.user_attrs.get(records.REJECTED) else ""
        )
        raise ArgumentError(
            f"--trial {number}: it is {trial.state.name}{f' ({why})' if why else ''}, not a "
            "finished trial; export a COMPLETE one (effsearch show lists them)"
        )
    return trial


def _metric(trial: FrozenTrial, metric: str) -> float:
    metrics = trial.user_attrs.get(records.METRICS, {})
    if metric not in metrics:
        raise ArgumentError(
            f"--pick: trial {trial.number} recorded no {metric!r}; recorded metrics: "
            f"{', '.join(sorted(metrics))}"
        )
    return float(metrics[metric])


def _from_kept(
    recipe: Recipe, config: dict[str, Any], folder: Path | None, out: Path
) -> Obtained | None:
    """The trial's kept artifact copied into ``out``, its torch model loaded back into the
    configuration's structure (None: nothing kept, or a structure that cannot be rebuilt
    without its weights, such as 2:4 kernels, so the trial must run again)."""
    if folder is None:
        return None
    import torch

    from effsearch.tasks import build_task
    from effsearch.transforms.quantization import Quantized

    artifact = None
    if (folder / MODEL_FILE).is_file():
        try:
            with torch.inference_mode(False), torch.enable_grad():
                skeleton = build_task(recipe.task_spec).skeleton(config, "cpu")
        except TaskError:
            return None
        skeleton.model.load_state_dict(load_state(folder / MODEL_FILE, "cpu"), assign=True)
        artifact = Quantized(skeleton.model.eval(), skeleton.input_dtype, skeleton.note)
    shutil.copytree(folder, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(MODEL_FILE))
    example = None
    if (folder / EXAMPLE_FILE).is_file():
        saved = torch.load(folder / EXAMPLE_FILE, weights_only=True)
        example = saved["input"] if set(saved) == {"input"} else saved
    return None, artifact, example, []


def _rebuild(
    run_dir: RunDir, recipe: Recipe, number: int, config: dict[str, Any], out: Path
) -> tuple[dict[str, float], Any, Any, list[str]]:
    """Run the trial's configuration again, in this process, the way a worker runs a trial
    (``run_trial``: the same metric checks, memory cap and device slots); the task writes
    what else a deployment needs (a PEFT adapter) into ``out``."""
    from effsearch.search.plan import trial_job
    from effsearch.search.trial import run_trial

    with tempfile.TemporaryDirectory() as scratch:
        job = trial_job(recipe, number, config, run_dir.path, Path(scratch), export_dir=out)
        outcome = run_trial(job)
    if not outcome.ok:
        raise TaskError(f"rebuilding trial {number} failed: {outcome.reason}")
    return dict(outcome.metrics), outcome.artifact, outcome.example_input, list(outcome.notes)


def _provenance(run_dir: RunDir, recipe: Recipe, trial: FrozenTrial) -> dict[str, Any]:
    def version(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "effsearch": __version__,
        "torch": version("torch"),
        "peft": version("peft"),
        "torchao": version("torchao"),
        "transformers": version("transformers"),
        "device": recipe.execution.device,
        "threads": recipe.execution.threads_per_trial,
        "seed": recipe.seed,
        "recipe_sha256": hashlib.sha256(run_dir.recipe_path.read_bytes()).hexdigest(),
        "recipe_dir": recipe.recipe_dir,
        "measured_on": dict(trial.user_attrs.get(records.MEASURED_ON, {})),
    }


NOISE_SIGMAS = 3.0


def beyond_noise(name: str, recorded: Mapping[str, float], rebuilt: Mapping[str, float]) -> str:
    """How the rebuilt ``name`` differs from the trial's beyond both measurements' noise
    (NOISE_SIGMAS standard errors of the difference; exact metrics must match), or ''."""
    then, now = float(recorded[name]), float(rebuilt[name])
    variances = [noise.variance(name, recorded), noise.variance(name, rebuilt)]
    if variances[0] is None or variances[1] is None:
        return ""
    spread = NOISE_SIGMAS * math.sqrt(variances[0] + variances[1])
    tolerance = max(spread, 1e-9 * max(abs(then), abs(now), 1.0))
    if abs(now - then) <= tolerance:
        return ""
    return (
        f"rebuilt {now:.4g} vs {then:.4g} in the trial: apart by more than the measurements' "
        f"noise ({NOISE_SIGMAS:g} standard errors: {spread:.3g}); the rebuild may differ "
        "(another machine or load, nondeterministic kernels)"
    )


def describe(exported: Exported, objectives: Sequence[Any]) -> list[str]:
    """Lines for the terminal: what was exported, and how the rebuild compares."""
    trial = exported.trial
    recorded = trial.user_attrs.get(records.METRICS, {})
    lines = [f"exported trial {trial.number} to {exported.out}"]
    rebuilt = exported.rebuilt_metrics or {}
    for name in [o.metric for o in objectives]:
        again = rebuilt.get(name)
        if name in recorded and again is not None:
            lines.append(f"  {name}: {recorded[name]:.4g} in the trial, {again:.4g} rebuilt")
            apart = beyond_noise(name, recorded, rebuilt)
            if apart:
                lines.append(f"  warning: {name} {apart}")
    if exported.model_bytes is not None:
        lines.append(
            f"  {exported.model_file}: {exported.model_bytes / 1e6:.4g} MB "
            f"(the trial's size_mb: {float(recorded.get('size_mb', float('nan'))):.4g})"
        )
    onnx = exported.onnx
    if onnx is not None:
        lines.append(
            f"  {onnx['file']}: {onnx['bytes'] / 1e6:.4g} MB, dynamic batch; onnxruntime "
            f"agrees with torch within {onnx['max_abs_difference_vs_torch']:.2g}"
        )
    lines.append(f"  {REBUILT_WHY if exported.rebuilt_metrics is not None else KEPT_WHY}")
    lines += [f"  note: {n}" for n in exported.notes]
    return lines
