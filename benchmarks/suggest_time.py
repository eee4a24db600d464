"""Seconds per botorch suggestion at N finished trials (ZDT1, DTLZ2 or the NAS cell).

A study gets ``--trials`` random finished trials of the problem, then the botorch sampler
proposes ``--suggestions`` more, one at a time (each told before the next, as a run does);
the time of each proposal is printed, the first separately (its GP fit starts cold; later
fits start from the previous hyperparameters, as in a run). One torch thread.

    .venv/bin/python benchmarks/suggest_time.py --problem dtlz2 --trials 200
    .venv/bin/python benchmarks/suggest_time.py --problem nas_cell --trials 200 \
        --options '{"categorical_kernel": false}'
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from effsearch.search.optimizers import OptimizerRequest, make_sampler
from effsearch.spaces.knobs import CategoricalDistribution, FloatDistribution, Knob, SearchSpace

PROBLEMS = Path(__file__).resolve().parent / "problems"


def problem(name: str) -> tuple[SearchSpace, Any, int]:
    """The space, ``f(config) -> list of losses`` and the number of objectives."""
    if name == "nas_cell":
        sys.path.insert(0, str(PROBLEMS))
        import nas_cell

        knobs = [Knob("cell", e, CategoricalDistribution(nas_cell.OPS)) for e in nas_cell.EDGES]
        knobs.append(Knob("cell", "channels", CategoricalDistribution(nas_cell.CHANNELS)))
        return SearchSpace(knobs), lambda c: list(nas_cell.nas_cell(c).values()), 2
    from botorch.test_functions.multi_objective import DTLZ2, ZDT1

    function = DTLZ2(dim=6, num_objectives=3) if name == "dtlz2" else ZDT1(dim=6)
    space = SearchSpace([Knob("x", f"x{i}", FloatDistribution(0.0, 1.0)) for i in range(6)])

    def evaluate(config: dict[str, Any]) -> list[float]:
        x = torch.tensor([[config["x"][f"x{i}"] for i in range(6)]], dtype=torch.float64)
        return [float(v) for v in function(x)[0]]

    return space, evaluate, function.num_objectives


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", choices=["zdt1", "dtlz2", "nas_cell"], default="dtlz2")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--suggestions", type=int, default=6)
    parser.add_argument("--options", type=json.loads, default={})
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space, evaluate, objectives = problem(args.problem)
    study = optuna.create_study(
        directions=["minimize"] * objectives, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    for _ in range(args.trials):
        trial = study.ask()
        study.tell(trial, evaluate(space.suggest(trial)))
    request = OptimizerRequest(
        seed=0,
        n_objectives=objectives,
        space=space,
        workers=1,
        trials=args.trials + args.suggestions,
        options=args.options,
    )
    study.sampler = make_sampler("botorch", request).sampler
    seconds = []
    for _ in range(args.suggestions):
        started = time.perf_counter()
        trial = study.ask()
        config = space.suggest(trial)
        seconds.append(time.perf_counter() - started)
        study.tell(trial, evaluate(config))
    later = seconds[1:]
    print(
        f"{args.problem}, {args.trials} finished trials, options {args.options}: first "
        f"suggestion {seconds[0]:.2f} s (cold fit), then median {statistics.median(later):.2f} "
        f"s (max {max(later):.2f} s) over {len(later)}"
    )


if __name__ == "__main__":
    main()
