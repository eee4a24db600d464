"""``effsearch bench BUNDLE``: time an exported bundle on this machine with the meters its trial
was measured with, beside the figures the trial recorded.

The bundle's model runs on its trial's engine (torch eager, torch.compile, or the ONNX graph in
ONNX Runtime), on batches of the bundle's example input at the recipe's measure batch size,
through ``tasks.pipeline.deployed_cost``: the same latency, energy, memory and size code a
trial uses.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effsearch.errors import ArgumentError
from effsearch.report.bundle import load_deployed, read_bundle
from effsearch.report.bundle_readme import where_measured
from effsearch.search.artifacts import EXAMPLE_FILE

COMPARED = (
    "latency_ms",
    "latency_p90_ms",
    "latency_iqr_ms",
    "throughput_per_s",
    "peak_memory_mb",
    "size_mb",
)
"""The figures ``bench`` prints side by side (``--json`` holds every one it measured)."""


@dataclass
class Benched:
    """A bundle's recorded figures and this machine's."""

    bundle: Path
    trial: int
    recorded: dict[str, float]
    recorded_on: dict[str, str]
    measured: dict[str, float]
    measured_on: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "trial": self.trial,
            "recorded": self.recorded,
            "recorded_on": self.recorded_on,
            "measured": self.measured,
            "measured_on": self.measured_on,
        }


def bench(
    folder: Path,
    device: str = "cpu",
    threads: int = 1,
    batch_size: int | None = None,
    repeats: int | None = None,
    warmup: int | None = None,
) -> Benched:
    """Time the bundle in ``folder`` here; batch size, repeats and warm-up default to the
    recipe's ``measure`` section (what the trial used)."""
    import torch

    from effsearch.objectives.meters import provenance
    from effsearch.tasks.base import MeasureSettings, TrialContext
    from effsearch.tasks.pipeline import deployed_cost
    from effsearch.transforms.runtime import repeat_batch

    document = read_bundle(folder)
    if not document.get("model"):
        raise ArgumentError(f"{folder}: the bundle holds no model to time (its task ran none)")
    example_path = folder / EXAMPLE_FILE
    if not example_path.is_file():
        raise ArgumentError(
            f"{folder}: no {EXAMPLE_FILE} (bundles exported before effsearch bench existed "
            "lack it); export the trial again: effsearch export RUN_DIR --trial N --out DIR"
        )
    recipe_measure = dict(document["recipe"].get("measure") or {})
    given = {"batch_size": batch_size, "repeats": repeats, "warmup": warmup}
    settings = MeasureSettings(
        **(recipe_measure | {k: v for k, v in given.items() if v is not None})
    )
    torch.set_num_threads(threads)
    deployed, _ = load_deployed(folder, device, threads)
    example = torch.load(example_path, map_location=device, weights_only=True)
    example_input = example if set(example) != {"input"} else example["input"]
    batch = repeat_batch(
        example_input,
        settings.batch_size,
        deployed.input_dtype,
    )

    def forward(model: Any, _dtype: Any) -> Any:
        return (lambda: model(**batch)) if isinstance(batch, dict) else (lambda: model(batch))

    ctx = TrialContext(trial_number=-1, seed=0, device=device, threads=threads, measure=settings)
    measured = deployed_cost(deployed, forward, ctx, one_input=example_input)
    measured_on = {
        **provenance(device),
        "host": socket.gethostname(),
        "torch_threads": str(threads),
        **ctx.measured_on,
    }
    return Benched(
        bundle=folder,
        trial=int(document["trial"]),
        recorded={k: float(v) for k, v in (document.get("metrics") or {}).items()},
        recorded_on=dict(document["provenance"].get("measured_on") or {}),
        measured=measured,
        measured_on=measured_on,
    )


def describe(result: Benched) -> list[str]:
    """Lines for the terminal: the compared figures side by side, then where each was taken."""
    rows = [("metric", "trial", "here", "here / trial")]
    for name in COMPARED:
        if name not in result.measured:
            continue
        here = result.measured[name]
        then = result.recorded.get(name)
        ratio = f"{here / then:.2f}x" if then else "-"
        rows.append((name, f"{then:.4g}" if then is not None else "-", f"{here:.4g}", ratio))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"bench {result.bundle} (trial {result.trial})"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append(f"  trial measured on: {where_measured(result.recorded_on)}")
    lines.append(f"  here:              {where_measured(result.measured_on)}")
    return lines
