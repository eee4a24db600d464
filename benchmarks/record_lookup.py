"""Record real trials over a discrete version of a shipped recipe's space, once, so that
optimizers can be compared on it by lookup over many seeds: the quickstart's
(``problems/digits_lookup.py``, digits CNN) or the text recipe's (``problems/text_lookup.py``,
MiniLM on BBC News).

Every configuration of the problem's grid is run as a real trial by effsearch's own trial code
(``search.trial.run_trial``: the task's training, pruning, quantization and meters, the
problem's measure settings, one torch thread), ``--workers`` processes side by side, each
timing inside the device's exclusive measurement slot as a run does. One line per
configuration: its nested configuration, the metrics the lookup returns, and where it was
measured.

    .venv/bin/python benchmarks/record_lookup.py --problem digits_lookup \\
        --out benchmarks/results/digits-lookup.jsonl
    .venv/bin/python benchmarks/record_lookup.py --problem text_lookup \\
        --out benchmarks/results/text-lookup.jsonl
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

import digits_lookup
import text_lookup

from effsearch.search.executors.base import TrialJob
from effsearch.tasks.base import MeasureSettings, TaskSpec

MODULES = {"digits_lookup": digits_lookup, "text_lookup": text_lookup}


def run_one(args: tuple[str, int, dict[str, Any], str]) -> dict[str, Any]:
    from effsearch.search.trial import run_trial

    problem, number, config, folder = args
    module = MODULES[problem]
    job = TrialJob(
        number=number,
        config=config,
        task=TaskSpec(**module.TASK, cache_dir=str(Path(folder) / "cache")),
        seed=0,
        threads=1,
        measure=MeasureSettings(**module.MEASURE),
        trial_dir=str(Path(folder) / str(number)),
    )
    Path(job.trial_dir).mkdir(parents=True, exist_ok=True)
    outcome = run_trial(job)
    return {
        "config": config,
        "ok": outcome.ok,
        "reason": outcome.reason,
        "metrics": {k: v for k, v in outcome.metrics.items() if k in module.KEPT_METRICS},
        "duration_s": round(outcome.duration_s, 2),
        "measured_on": outcome.measured_on,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=list(MODULES), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    configs = list(MODULES[args.problem].grid())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, args.out.open("w") as out:
        jobs = [(args.problem, n, c, folder) for n, c in zip(itertools.count(), configs)]
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
