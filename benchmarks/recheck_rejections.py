"""Run every configuration a run's cost predictor rejected, and count the wrong rejections.

The predictor re-runs a share ``recheck_rate`` of its rejections inside the search; with few
rejections that sample can be empty. This runs all of them after the fact, each as the run's
own trial would run (``plan.trial_job`` + ``trial.run_trial``, the recipe's measure settings,
one at a time in this process, a scratch trial folder): a configuration whose measured
metrics meet every constraint was a *false rejection*. A configuration that breaks a
constraint known before training is turned away by the trial's own check in seconds.

    .venv/bin/python benchmarks/recheck_rejections.py --run-dir runs/text-pred-40 \
        --out benchmarks/results/cost-predictor-text-40-recheck.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from effsearch.search import plan, records
from effsearch.search.rundir import RunDir
from effsearch.search.study import load_study
from effsearch.search.trial import run_trial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    recipe, study = load_study(RunDir(args.run_dir))
    rejected = [t for t in study.trials if records.REJECTED_BY_PREDICTION in t.user_attrs]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for trial in rejected:
            job = plan.trial_job(
                recipe,
                trial.number,
                trial.user_attrs[records.CONFIG],
                args.run_dir,
                trial_dir=Path(scratch) / str(trial.number),
            )
            started = time.perf_counter()
            outcome = run_trial(job)
            measured = {c.metric: outcome.metrics.get(c.metric) for c in recipe.constraints}
            feasible = outcome.status.name == "COMPLETE" and all(
                v is not None and c.violation(v) <= 0
                for c, v in zip(recipe.constraints, measured.values(), strict=True)
            )
            rows.append(
                {
                    "trial": trial.number,
                    "predicted": trial.user_attrs[records.PREDICTED_COSTS],
                    "status": outcome.status.name,
                    "reason": outcome.reason,
                    "measured": measured,
                    "false_rejection": feasible,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    wrong = sum(r["false_rejection"] for r in rows)
    summary = {"rejected": len(rows), "false_rejections": wrong, "rows": rows}
    print(f"{wrong} of {len(rows)} rejections were wrong")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
