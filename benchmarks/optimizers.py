"""Optimizers side by side on ZDT1, ZDT2, ZDT3 and DTLZ2, through the entrypoint task and the CLI.

Every (problem, contender, seed) is one real ``effsearch run`` of a generated recipe (inline
executor, ``effsearch/recipes/zdt_problems.py`` as the entrypoint) followed by
``effsearch show --json``. Hypervolume is computed over the first 50 / 100 / 200 trials against
the problem's standard reference point and divided by the hypervolume of its true Pareto front
(botorch's ``max_hv``), so 1.0 is the whole front. The suggestion overhead is the time the
driver spent in ``ask`` + sampling, recorded by the runner per trial (``suggest_s``).

Contenders: effsearch's ``auto`` (what a user gets by default), ``nsga2_dynamic`` and its tuned
``tpe``; Optuna's samplers at their defaults (``NSGAIISampler`` population 50, ``TPESampler``
univariate, ``GPSampler``) and ``RandomSampler``, all measured in the same run.

``--problems digits`` runs the quickstart recipe instead (a real CNN per trial, 2 local
workers; pass ``--jobs 1`` on a 2-core machine) with a fixed reference point (accuracy 0.9,
2 ms, 0.7 MB); it has no known front, so its hypervolume is divided by the box from that point
to the ideal one (accuracy 1, 0 ms, 0 MB).

    .venv/bin/python benchmarks/optimizers.py --seeds 0 1 2 3 4 --jobs 2
    .venv/bin/python benchmarks/optimizers.py --problems digits --evals 50 --jobs 1 \
        --contenders "effsearch auto" "effsearch botorch" "optuna NSGAII" "optuna TPE" \
        "optuna GP" random --seeds 0 1 2 --out benchmarks/results/optimizers-digits.jsonl
    .venv/bin/python benchmarks/optimizers.py --summarize benchmarks/results/optimizers.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "effsearch" / "recipes"
PROBLEM_MODULES = ROOT / "benchmarks" / "problems"
CHECKPOINTS = (50, 100, 200)

PROBLEMS: dict[str, dict[str, Any]] = {
    # name: objectives, botorch class and options (for the reference point and max_hv)
    "zdt1": {"objectives": 2, "cls": "ZDT1", "options": {}},
    "zdt2": {"objectives": 2, "cls": "ZDT2", "options": {}},
    "zdt3": {"objectives": 2, "cls": "ZDT3", "options": {}},
    "dtlz2": {"objectives": 3, "cls": "DTLZ2", "options": {"num_objectives": 3}},
    # The same functions measured with heteroscedastic Gaussian noise (zdt_problems._noisy):
    # scored on the noise-free values of what each run evaluated, and of what it reports.
    # Reference point 1.1 per objective, close to the front (botorch's 11 for ZDT would hide
    # differences the size of the noise); the front's hypervolume against it, analytically:
    # ZDT1 (r - 1) + 2/3 + (r - 1) r; DTLZ2 r^3 - pi/6 (the unit ball's octant).
    "noisy_zdt1": {
        "objectives": 2,
        "cls": "ZDT1",
        "options": {},
        "noisy": True,
        "ref": [1.1, 1.1],
        "max_hv": 0.1 + 2 / 3 + 0.1 * 1.1,
    },
    "noisy_dtlz2": {
        "objectives": 3,
        "cls": "DTLZ2",
        "options": {"num_objectives": 3},
        "noisy": True,
        "ref": [1.1, 1.1, 1.1],
        "max_hv": 1.1**3 - math.pi / 6,
    },
    # A synthetic NAS-Bench-201-shaped cell (benchmarks/problems/nas_cell.py): six categorical
    # edges and a channel count; the mixed one adds a log-scale lr and an int epochs. Exact
    # fronts by enumeration.
    "nas_cell": {"objectives": 2, "nas": "nas_cell"},
    "nas_cell_mixed": {"objectives": 2, "nas": "nas_cell_mixed"},
    # The quickstart's space made discrete, answered from 480 real digits-cnn trials recorded
    # once (benchmarks/problems/digits_lookup.py, record_lookup.py); the digits
    # objectives and reference point; exact front by enumeration of the table.
    "digits_lookup": {"objectives": 3, "lookup": "digits_lookup"},
    # The text recipe's space made discrete (MiniLM on BBC News, cheaper training), answered
    # from 252 real trials (benchmarks/problems/text_lookup.py).
    "text_lookup": {"objectives": 3, "lookup": "text_lookup"},
    # The quickstart recipe (digits CNN, 2 local workers); no known front: hypervolume is divided
    # by the box from the reference point to the ideal point (accuracy 1, 0 ms, 0 MB).
    "digits": {"objectives": 3},
}
DIGITS_OBJECTIVES: list[dict[str, Any]] = [
    {"metric": "accuracy", "direction": "maximize", "ref": 0.9},
    {"metric": "latency_ms", "direction": "minimize", "ref": 2.0},
    {"metric": "size_mb", "direction": "minimize", "ref": 0.7},
]
DIGITS_IDEAL = [1.0, 0.0, 0.0]
CONTENDERS: dict[str, dict[str, Any]] = {
    "effsearch auto": {"name": "auto"},
    "effsearch botorch": {"name": "botorch"},
    # a variant under study: a longer space-filling start (20 Sobol points instead of 10)
    "effsearch botorch startup 20": {"name": "botorch", "options": {"n_startup_trials": 20}},
    "effsearch botorch qLogEHVI": {"name": "botorch", "options": {"noisy": False}},
    "effsearch botorch categorical kernel": {
        "name": "botorch",
        "options": {"categorical_kernel": True},
    },
    "effsearch nsga2_dynamic": {"name": "nsga2_dynamic"},
    "effsearch tpe": {"name": "tpe"},
    "optuna NSGAII": {"name": "nsga2", "options": {"population_size": 50}},
    "optuna TPE": {
        "name": "tpe",
        "options": {"multivariate": False, "group": False, "constant_liar": False},
    },
    "optuna GP": {"name": "gp"},
    "optuna TPE multivariate": {"name": "tpe", "options": {"constant_liar": False}},
    "random": {"name": "random"},
}


def problem_facts(problem: str, dim: int) -> tuple[list[float], float]:
    """The reference point (as losses: maximized objectives negated) and the hypervolume that
    counts as 1.0 (the true front's; for digits the box up to the ideal point)."""
    from botorch.test_functions import multi_objective

    if problem == "digits":
        reference = [_loss(o, o["ref"]) for o in DIGITS_OBJECTIVES]
        box = np.prod(
            [abs(o["ref"] - i) for o, i in zip(DIGITS_OBJECTIVES, DIGITS_IDEAL, strict=True)]
        )
        return reference, float(box)
    spec = PROBLEMS[problem]
    if spec.get("lookup"):
        from optuna._hypervolume import compute_hypervolume

        objectives = _lookup(problem).OBJECTIVES
        reference = [_loss(o, o["ref"]) for o in objectives]
        rows = _lookup(problem).table().values()
        points = np.array([[_loss(o, r[o["metric"]]) for o in objectives] for r in rows])
        inside = points[np.all(points <= np.array(reference), axis=1)]
        return reference, float(compute_hypervolume(inside, np.array(reference)))
    if "nas" in spec:
        nas_cell = _nas_cell()
        return list(nas_cell.REFERENCE), nas_cell.max_hypervolume()
    if "ref" in spec:
        return list(spec["ref"]), float(spec["max_hv"])
    function = getattr(multi_objective, spec["cls"])(dim=dim, **spec["options"])
    return [float(v) for v in function.ref_point], float(function.max_hv)


def _lookup(problem: str) -> Any:
    """The module of a lookup problem (benchmarks/problems/<problem>.py)."""
    import importlib

    sys.path.insert(0, str(PROBLEM_MODULES))
    return importlib.import_module(PROBLEMS[problem]["lookup"])


def _nas_cell() -> Any:
    sys.path.insert(0, str(PROBLEM_MODULES))
    import nas_cell

    return nas_cell


def _loss(objective: dict[str, Any], value: float) -> float:
    return -value if objective["direction"] == "maximize" else value


def recipe(problem: str, contender: str, seed: int, dim: int, evals: int) -> dict[str, Any]:
    if problem == "digits":
        document = yaml.safe_load((RECIPES / "quickstart.yaml").read_text())
        document |= {
            "name": f"digits-{contender.replace(' ', '-')}-{seed}",
            "seed": seed,
            "objectives": DIGITS_OBJECTIVES,
            "optimizer": CONTENDERS[contender],
            "budget": {"trials": evals},
        }
        return dict(document)
    reference, _ = problem_facts(problem, dim)
    if PROBLEMS[problem].get("lookup"):
        lookup = _lookup(problem)
        return {
            "name": f"{problem}-{contender.replace(' ', '-')}-{seed}",
            "seed": seed,
            "task": {
                "entrypoint": f"{problem}:{problem}",
                "metrics": list(lookup.KEPT_METRICS),
            },
            "space": lookup.space(),
            "objectives": lookup.OBJECTIVES,
            "optimizer": CONTENDERS[contender],
            "execution": {"executor": "inline"},
            "budget": {"trials": evals},
        }
    if "nas" in PROBLEMS[problem]:
        return {
            "name": f"{problem}-{contender.replace(' ', '-')}-{seed}",
            "seed": seed,
            "task": {"entrypoint": f"nas_cell:{problem}", "metrics": ["error", "params_k"]},
            "space": _nas_cell().space(mixed=problem.endswith("mixed")),
            "objectives": [
                {"metric": "error", "direction": "minimize", "ref": reference[0]},
                {"metric": "params_k", "direction": "minimize", "ref": reference[1]},
            ],
            "optimizer": CONTENDERS[contender],
            "execution": {"executor": "inline"},
            "budget": {"trials": evals},
        }
    return {
        "name": f"{problem}-{contender.replace(' ', '-')}-{seed}",
        "seed": seed,
        "task": {
            "entrypoint": f"zdt_problems:{problem}",
            "metrics": [
                f"f{i + 1}{suffix}"
                for i in range(len(reference))
                for suffix in (("", "_se", "_true") if PROBLEMS[problem].get("noisy") else ("",))
            ],
        },
        "space": {"x": {f"x{i}": {"float": [0.0, 1.0]} for i in range(dim)}},
        "objectives": [
            {"metric": f"f{i + 1}", "direction": "minimize", "ref": ref}
            for i, ref in enumerate(reference)
        ],
        "optimizer": CONTENDERS[contender],
        "execution": {"executor": "inline"},
        "budget": {"trials": evals},
    }


def one_run(problem: str, contender: str, seed: int, dim: int, evals: int, folder: Path) -> dict:
    document = recipe(problem, contender, seed, dim, evals)
    path = folder / f"{document['name']}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    run_dir = folder / document["name"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(RECIPES), str(PROBLEM_MODULES), os.environ.get("PYTHONPATH", "")]
        ),
        "OMP_NUM_THREADS": "1",
    }
    started = time.perf_counter()
    cli = [sys.executable, "-m", "effsearch"]
    ran = subprocess.run(
        [*cli, "run", str(path), "--run-dir", str(run_dir)], env=env, capture_output=True, text=True
    )
    if ran.returncode != 0:
        raise RuntimeError(f"{document['name']}: exit {ran.returncode}\n{ran.stderr[-2000:]}")
    wall_s = time.perf_counter() - started
    shown = subprocess.run(
        [*cli, "show", str(run_dir), "--json"], check=True, env=env, capture_output=True
    )
    report = json.loads(shown.stdout)
    return summarize_run(problem, contender, seed, dim, report, wall_s)


def summarize_run(
    problem: str, contender: str, seed: int, dim: int, report: dict, wall_s: float
) -> dict:
    from optuna._hypervolume import compute_hypervolume

    reference, max_hv = problem_facts(problem, dim)
    trials = sorted(report["trials"], key=lambda t: t["number"])
    ref = np.array(reference)
    row: dict[str, Any] = {
        "problem": problem,
        "contender": contender,
        "seed": seed,
        "dim": dim,
        "optimizer": report["optimizer"],
        "wall_s": round(wall_s, 1),
        "suggest_s": [t["suggest_s"] for t in trials],
    }
    objectives = report["objectives"]
    signs = [-1.0 if o["direction"] == "maximize" else 1.0 for o in objectives]
    noisy = PROBLEMS[problem].get("noisy", False)

    def losses(trial: dict) -> list[float]:
        if noisy:  # score what was found, not how lucky its measurement was
            return [trial["metrics"][f"{o['name']}_true"] for o in objectives]
        return [sign * v for sign, v in zip(signs, trial["values"], strict=True)]

    def held_out_losses(trial: dict) -> list[float]:
        # digits: the reported front's accuracy read on the test split, which nothing chose
        # on (latency and size as measured)
        return [
            sign * trial["metrics"]["test_accuracy" if o["name"] == "accuracy" else o["name"]]
            for sign, o in zip(signs, objectives, strict=True)
        ]

    def volume(rows: list[dict], score: Any = losses) -> float:
        values = np.array([score(t) for t in rows], dtype=float)
        inside = values[np.all(values <= ref, axis=1)] if len(values) else values
        return float(compute_hypervolume(inside, ref)) / max_hv if len(inside) else 0.0

    for evals in CHECKPOINTS:
        complete = [t for t in trials[:evals] if t["state"] == "COMPLETE"]
        row[f"hv_{evals}"] = volume(complete) if len(trials) >= evals else None
        if noisy or problem == "digits" or PROBLEMS[problem].get("lookup"):
            # The front a user is shown (chosen on measured values), scored on true values
            # (digits: on test accuracy).
            reported = [complete[i] for i in _front([t["values"] for t in complete], signs)]
            score = losses if noisy else held_out_losses
            row[f"hv_reported_{evals}"] = volume(reported, score) if len(trials) >= evals else None
    return row


def _front(values: list[list[float]], signs: list[float]) -> list[int]:
    from effsearch.objectives.pareto import non_dominated_mask

    if not values:
        return []
    mask = non_dominated_mask(np.array(values, dtype=float) * np.array(signs))
    return [i for i, keep in enumerate(mask) if keep]


def summarize(rows: list[dict]) -> str:
    """Median normalized hypervolume per problem and contender, and suggestion overhead."""
    table: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        table[(row["problem"], row["contender"])].append(row)
    lines = []
    for problem in PROBLEMS:
        # the registered contenders in their order, then any other label in the results
        contenders = [c for c in CONTENDERS if (problem, c) in table] + sorted(
            {c for p, c in table if p == problem} - set(CONTENDERS)
        )
        if not contenders:
            continue
        seeds = len(table[(problem, contenders[0])])
        dim = table[(problem, contenders[0])][0]["dim"]
        size = (
            "quickstart recipe"
            if problem == "digits"
            else "categorical"
            if problem == "nas_cell"
            else "mixed"
            if problem == "nas_cell_mixed"
            else f"{len(_lookup(problem).table())} recorded real trials, categorical and "
            "conditional"
            if PROBLEMS[problem].get("lookup")
            else f"d={dim}"
        )
        scores = {"hv": "normalized hypervolume"}
        if problem == "digits" or PROBLEMS[problem].get("lookup"):
            scores["hv_reported"] = "hypervolume of the reported front with test accuracy"
        if PROBLEMS[problem].get("noisy"):
            scores = {
                "hv": "true normalized hypervolume of every evaluated point",
                "hv_reported": "true normalized hypervolume of the reported (measured) front",
            }
        for key, label in scores.items():
            lines += _score_table(table, problem, contenders, key, f"{label}, {size}", seeds)
        chosen = {r["optimizer"]["name"] for r in table.get((problem, "effsearch auto"), [])}
        if chosen:
            lines.append(f"\n`auto` chose: {', '.join(sorted(chosen))}.")
    lines.append(
        "\nBold: at least the best median of Optuna's samplers at that budget. "
        "Suggestion times on the machine that ran the searches."
    )
    return "\n".join(lines)


def _score_table(
    table: dict[tuple[str, str], list[dict]],
    problem: str,
    contenders: list[str],
    key: str,
    label: str,
    seeds: int,
) -> list[str]:
    lines = [
        f"\n### {problem.upper()}: median {label}, over {seeds} seeds",
        "",
        "| contender | 50 evals | 100 evals | 200 evals | suggest s/trial (90-110) | "
        "suggest s/trial (all) |",
        "|---|---|---|---|---|---|",
    ]
    best_optuna = {
        evals: max(
            _median(table[(problem, c)], f"{key}_{evals}") or 0.0
            for c in contenders
            if c.startswith("optuna")
        )
        for evals in CHECKPOINTS
        if any(c.startswith("optuna") for c in contenders)
    }
    for contender in contenders:
        runs = table[(problem, contender)]
        cells = []
        for evals in CHECKPOINTS:
            median = _median(runs, f"{key}_{evals}")
            text = "-" if median is None else f"{median:.5f}"
            if median is not None and median >= best_optuna.get(evals, 2.0):
                text = f"**{text}**"
            cells.append(text)
        around_100 = [s for r in runs for s in r["suggest_s"][89:110] if s is not None]
        overall = [s for r in runs for s in r["suggest_s"] if s is not None]
        cells.append(f"{statistics.median(around_100):.3f}" if around_100 else "-")
        cells.append(f"{statistics.mean(overall):.3f}" if overall else "-")
        lines.append(f"| {contender} | " + " | ".join(cells) + " |")
    return lines


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--problems",
        nargs="+",
        default=[p for p in PROBLEMS if p != "digits"],
        choices=list(PROBLEMS),
    )
    parser.add_argument(
        "--contenders",
        nargs="+",
        default=[c for c in CONTENDERS if not c.startswith("effsearch botorch")],
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--dim", type=int, default=6)
    parser.add_argument("--evals", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/optimizers.jsonl")
    parser.add_argument("--summarize", type=Path, help="only print the table of a results file")
    parser.add_argument(
        "--keep-runs", type=Path, help="keep each run's directory here (default: deleted)"
    )
    args = parser.parse_args()
    if args.summarize:
        rows = [json.loads(line) for line in args.summarize.read_text().splitlines() if line]
        print(summarize(rows))
        return
    unknown = set(args.contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; known: {list(CONTENDERS)}")
    work = [
        (problem, contender, seed)
        for seed in args.seeds
        for problem in args.problems
        for contender in args.contenders
    ]
    # The slowest (GP-based) runs first, so the parallel tail is short.
    work.sort(key=lambda w: w[1] not in ("effsearch auto", "optuna GP"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        folder = args.keep_runs or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        futures = [pool.submit(one_run, p, c, s, args.dim, args.evals, folder) for p, c, s in work]
        with args.out.open("a") as out:
            for future in as_completed(futures):
                row = future.result()
                rows.append(row)
                out.write(json.dumps(row) + "\n")
                out.flush()
                print(
                    f"{row['problem']:6} {row['contender']:24} seed {row['seed']}: "
                    + " ".join(f"hv@{e} {row[f'hv_{e}']}" for e in CHECKPOINTS)
                    + f"  ({row['wall_s']} s)",
                    flush=True,
                )
    print(summarize(rows))


if __name__ == "__main__":
    main()
