"""What does early stopping save on the digits recipe, and what hypervolume does it cost?

The quickstart search (digits-cnn; accuracy, latency_ms, size_mb; 15 epochs per trial) runs
twice per seed, side by side in one process: without and with successive halving
(`min_step` 3, `eta` 3: rungs at epochs 3 and 9; the top third goes on at each). Both use
the same fixed reference point (accuracy 0.9, latency 2 ms, size 0.7 MB), so their
hypervolumes compare. Trial compute is the sum of the trials' wall times (each from the
moment its worker starts it, data already loaded). With ``--compute-share 0.6`` the
early-stopping run gets ``budget.compute_minutes`` = 60 % of what the full run spent, and each
row also gives the full run cut at that share of its own compute (the trials finished by then):
what early stopping has to beat. That cut is a prefix of the very run it is compared with, so
it flatters; ``--control`` runs the plain search again under the same compute budget, an
independent run, the fair comparison.

    .venv/bin/python benchmarks/early_stopping.py --seeds 0 1 2 3 4 --compute-share 0.6 --control
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import yaml

from effsearch.recipe import load_recipe
from effsearch.search import records, study_front
from effsearch.search.rundir import RunDir
from effsearch.search.runner import Runner
from effsearch.search.view import View

MIN_STEP, ETA = 3, 3  # rungs at epochs 3 and 9 of 15
QUICKSTART = Path(__file__).resolve().parent.parent / "effsearch" / "recipes" / "quickstart.yaml"


class Silent(View):
    def start(self, study: Any, total: Any, counted: Any) -> None: ...
    def trial_completed(self, study: Any, number: Any, values: Any) -> None: ...
    def trial_failed(self, number: Any, reason: Any, trial_dir: Any) -> None: ...
    def message(self, text: str) -> None: ...


def run(
    seed: int,
    trials: int,
    early: dict[str, Any] | None,
    folder: Path,
    limit: dict[str, float] | None = None,
    share: float = 0.6,
) -> dict[str, float]:
    document = yaml.safe_load(QUICKSTART.read_text())
    label = early["method"].replace("+", "-") if early else "off"
    document["name"] = f"es-{label}{'-limited' if limit else ''}-{seed}"
    document["seed"] = seed
    document["budget"] = {"trials": trials} if limit is None else {"trials": 4 * trials, **limit}
    document["objectives"] = [
        {"metric": "accuracy", "direction": "maximize", "ref": 0.9},
        {"metric": "latency_ms", "direction": "minimize", "ref": 2.0},
        {"metric": "size_mb", "direction": "minimize", "ref": 0.7},
    ]
    if early:
        document["early_stopping"] = early
    path = folder / f"{document['name']}.yaml"
    path.write_text(yaml.safe_dump(document))
    recipe = load_recipe(path)
    study = Runner(recipe, RunDir(folder / document["name"]), Silent()).run(resume=False).study
    trials_done = study.get_trials(deepcopy=False)
    reference = study_front.fixed_reference(
        study, recipe.objectives, recipe.constraints, store=False
    )
    finished = [(t.datetime_complete, t) for t in trials_done if t.datetime_complete is not None]
    by_finish = [t for _, t in sorted(finished, key=lambda pair: pair[0])]
    spent = list(itertools.accumulate(t.user_attrs.get(records.DURATION, 0.0) for t in by_finish))

    def hypervolume_within(share: float) -> float:
        """The hypervolume of the trials that finished within ``share`` of the compute spent."""
        kept = [t for t, s in zip(by_finish, spent, strict=True) if s <= share * spent[-1]]
        return study_front.hypervolume(kept, recipe.objectives, reference) or 0.0

    return {
        "hypervolume": study_front.hypervolume(trials_done, recipe.objectives, reference) or 0.0,
        "hypervolume_at_share": hypervolume_within(share),
        "compute_s": sum(t.user_attrs.get(records.DURATION, 0.0) for t in trials_done),
        "epochs": sum(
            max((e["step"] for e in t.user_attrs.get(records.HISTORY, [])), default=0.0)
            for t in trials_done
        ),
        "pruned": sum(t.state.name == "PRUNED" for t in trials_done),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument(
        "--method",
        default="successive_halving",
        choices=["successive_halving", "pareto", "successive_halving+pareto"],
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="with --compute-share: also run the plain search (no early stopping) under the same "
        "compute budget, an independent run early stopping has to beat to be worth having",
    )
    parser.add_argument("--min-step", type=int, default=MIN_STEP)
    parser.add_argument("--eta", type=int, default=ETA)
    parser.add_argument("--min-trials", type=int, default=5)
    parser.add_argument("--min-gain", type=float, default=0.0)
    parser.add_argument(
        "--compute-share",
        type=float,
        help="give the early-stopping run this share of what the full run spent (instead of "
        "the same number of trials), so stopped trials buy more trials",
    )
    parser.add_argument(
        "--share-of",
        choices=["compute", "epochs"],
        default="compute",
        help="what --compute-share divides: the full run's summed trial seconds "
        "(budget.compute_minutes) or its trained epochs (budget.steps)",
    )
    args = parser.parse_args()
    rule = {
        "method": args.method,
        "min_step": args.min_step,
        "eta": args.eta,
        "min_trials": args.min_trials,
        "min_gain": args.min_gain,
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            share = args.compute_share if args.compute_share is not None else 0.6
            full = run(seed, args.trials, early=None, folder=Path(tmp), share=share)
            early = run(seed, args.trials, rule, Path(tmp), _limit(full, args))
            control = (
                run(seed, args.trials, None, Path(tmp), _limit(full, args))
                if args.control and args.compute_share is not None
                else None
            )
            rows.append(
                {
                    "seed": seed,
                    "full": full,
                    "early": early,
                    "hypervolume_ratio": round(early["hypervolume"] / full["hypervolume"], 3),
                    # no early stopping, the full run cut at the same share of its compute:
                    # what early stopping must beat to be worth it
                    "truncated_hypervolume_ratio": round(
                        full["hypervolume_at_share"] / full["hypervolume"], 3
                    ),
                    "compute_ratio": round(early["compute_s"] / full["compute_s"], 3),
                    **(
                        {
                            "control": control,
                            "control_hypervolume_ratio": round(
                                control["hypervolume"] / full["hypervolume"], 3
                            ),
                        }
                        if control
                        else {}
                    ),
                    "epochs_ratio": round(early["epochs"] / full["epochs"], 3),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    print(
        json.dumps(
            {
                "median_hypervolume_ratio": statistics.median(r["hypervolume_ratio"] for r in rows),
                "median_truncated_hypervolume_ratio": statistics.median(
                    r["truncated_hypervolume_ratio"] for r in rows
                ),
                "median_compute_ratio": statistics.median(r["compute_ratio"] for r in rows),
                **(
                    {
                        "median_control_hypervolume_ratio": statistics.median(
                            r["control_hypervolume_ratio"] for r in rows
                        )
                    }
                    if args.control
                    else {}
                ),
                "median_epochs_ratio": statistics.median(r["epochs_ratio"] for r in rows),
                "trials": args.trials,
                "early_stopping": rule,
                "compute_share": args.compute_share,
                "share_of": args.share_of,
            }
        )
    )


def _limit(full: dict[str, float], args: argparse.Namespace) -> dict[str, float] | None:
    """The early-stopping run's budget as a share of what the full run spent."""
    if args.compute_share is None:
        return None
    if args.share_of == "epochs":
        return {"steps": int(args.compute_share * full["epochs"])}
    return {"compute_minutes": args.compute_share * full["compute_s"] / 60}


if __name__ == "__main__":
    main()
