"""Warm start: how many trials of its own a second search needs to reach the first one's result.

One run of the recipe (``--first-trials``); then, with another seed, a second search of
``--second-trials`` warm-started from it, and the same search cold (no warm start), all real
``effsearch run`` commands on this machine. For each second search: the hypervolume after
each of its own trials (carried trials included, under the *first* run's reference point), and
the fewest own trials after which it reaches the first run's final hypervolume.

    .venv/bin/python benchmarks/warm_start.py --recipe recipes/quickstart.yaml \
        --first-trials 40 --second-trials 20 --seeds 1 2 3 \
        --out benchmarks/results/warm-start-quickstart.jsonl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "effsearch"]


def run(recipe: Path, run_dir: Path, trials: int) -> dict[str, Any]:
    subprocess.run(
        [*CLI, "run", str(recipe), "--run-dir", str(run_dir), "--trials", str(trials), "--quiet"],
        check=True,
        capture_output=True,
    )
    shown = subprocess.run(
        [*CLI, "show", str(run_dir), "--json"], check=True, capture_output=True, text=True
    )
    return dict(json.loads(shown.stdout))


def volume_curve(report: dict[str, Any], reference: list[float]) -> list[float]:
    """Hypervolume (losses, under ``reference``) of the carried trials plus the first k own
    finished trials, for k = 0 .. own trials."""
    from effsearch.objectives.pareto import volume

    signs = np.array([-1.0 if o["direction"] == "maximize" else 1.0 for o in report["objectives"]])
    ref = np.array(reference) * signs

    def losses(trials: list[dict]) -> np.ndarray:
        rows = [t["values"] for t in trials if t["state"] == "COMPLETE" and t["feasible"]]
        return np.array(rows, dtype=float).reshape(-1, len(signs)) * signs

    trials = sorted(report["trials"], key=lambda t: t["number"])
    carried = [t for t in trials if t.get("warm_start_from")]
    own = [t for t in trials if not t.get("warm_start_from")]
    return [volume(losses(carried + own[:k]), ref) for k in range(len(own) + 1)]


def trials_to_reach(curve: list[float], target: float) -> int | None:
    return next((k for k, v in enumerate(curve) if v >= target * (1 - 1e-9)), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes/quickstart.yaml")
    parser.add_argument("--first-trials", type=int, default=40)
    parser.add_argument("--second-trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    document = yaml.safe_load(args.recipe.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        first_recipe = folder / "first.yaml"
        first_recipe.write_text(yaml.safe_dump(document | {"name": "first"}))
        first = run(first_recipe, folder / "first", args.first_trials)
        reference = first["reference_point"]
        target = volume_curve(first, reference)[-1]
        print(f"first run: {args.first_trials} trials, hypervolume {target:.5f}")
        for seed in args.seeds:
            rows = {}
            for mode in ("warm", "cold"):
                second = document | {"name": f"{mode}-{seed}", "seed": seed}
                if mode == "warm":
                    second["warm_start"] = {"runs": [str(folder / "first")]}
                path = folder / f"{mode}-{seed}.yaml"
                path.write_text(yaml.safe_dump(second))
                report = run(path, folder / f"{mode}-{seed}", args.second_trials)
                curve = volume_curve(report, reference)
                rows[mode] = {
                    "carried": sum(1 for t in report["trials"] if t.get("warm_start_from")),
                    "own_trials": len(curve) - 1,
                    "hypervolume": curve,
                    "own_trials_to_reach_first": trials_to_reach(curve, target),
                }
                print(
                    f"seed {seed} {mode}: {rows[mode]['carried']} carried, "
                    f"hypervolume {curve[0]:.5f} before its own trials, {curve[-1]:.5f} after "
                    f"{len(curve) - 1}; reaches the first run's after "
                    f"{rows[mode]['own_trials_to_reach_first']} own trials",
                    flush=True,
                )
            if args.out:
                with args.out.open("a") as out:
                    out.write(
                        json.dumps(
                            {
                                "recipe": str(args.recipe),
                                "first_trials": args.first_trials,
                                "first_hypervolume": target,
                                "seed": seed,
                                **rows,
                            }
                        )
                        + "\n"
                    )


if __name__ == "__main__":
    main()
