"""Record real digits-cnn trials over a discrete version of the quickstart space, once, so that
optimizers can be compared on it by lookup (``problems/digits_lookup.py``) over many seeds.

Every configuration of the grid below is run as a real trial by effsearch's own trial code
(``search.trial.run_trial``: the quickstart's training, pruning, quantization and meters, its
measure settings, one torch thread), two worker processes side by side, each timing inside the
device's exclusive measurement slot as a run does. One line per configuration: its nested
configuration, the metrics the lookup returns, and where it was measured.

    .venv/bin/python benchmarks/record_digits_lookup.py \\
        --out benchmarks/results/digits-lookup.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "problems"))

from digits_lookup import KEPT_METRICS, grid

from effsearch.search.executors.base import TrialJob
from effsearch.tasks.base import MeasureSettings, TaskSpec

MEASURE = MeasureSettings(batch_size=32, warmup=10, repeats=50)  # the quickstart's


def run_one(args: tuple[int, dict[str, Any], str]) -> dict[str, Any]:
    from effsearch.search.trial import run_trial

    number, config, folder = args
    job = TrialJob(
        number=number,
        config=config,
        task=TaskSpec(builtin="digits-cnn"),
        seed=0,
        threads=1,
        measure=MEASURE,
        trial_dir=str(Path(folder) / str(number)),
    )
    Path(job.trial_dir).mkdir(parents=True, exist_ok=True)
    outcome = run_trial(job)
    return {
        "config": config,
        "ok": outcome.ok,
        "reason": outcome.reason,
        "metrics": {k: v for k, v in outcome.metrics.items() if k in KEPT_METRICS},
        "duration_s": round(outcome.duration_s, 2),
        "measured_on": outcome.measured_on,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    configs = list(grid())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, args.out.open("w") as out:
        jobs = [(n, c, folder) for n, c in zip(itertools.count(), configs)]
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.workers, maxtasksperchild=None) as pool:
            for done, row in enumerate(pool.imap_unordered(run_one, jobs), 1):
                out.write(json.dumps(row) + "\n")
                out.flush()
                if done % 20 == 0:
                    elapsed = time.perf_counter() - started
                    print(f"{done}/{len(configs)} in {elapsed:.0f} s", flush=True)


if __name__ == "__main__":
    main()
