"""How long the read commands take, and whether they import torch.

Times ``effsearch validate RECIPE``, ``effsearch show RUN_DIR``, ``effsearch spaces`` and
``effsearch --help`` as whole processes (what a user waits for), interleaved round by round so
that machine noise hits every command alike; reports the median and min of ``--rounds`` runs
and whether ``torch`` was in ``sys.modules`` at exit. ``--source LABEL=PATH`` (repeatable) times
the effsearch of another checkout in the same rounds (``git worktree add /tmp/before REV``), so
before/after ratios come from one run; JSON lines go to ``--out``.

    .venv/bin/python benchmarks/read_commands.py --run-dir /tmp/qs-run --rounds 7 \
        --source before=/tmp/before --source after=. --out benchmarks/results/read-commands.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROBE = (
    "import sys, runpy; sys.argv = ['effsearch', *sys.argv[1:]];\n"
    "try:\n    runpy.run_module('effsearch', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "print('TORCH_LOADED=' + str('torch' in sys.modules), file=sys.stderr)"
)


def commands(run_dir: str, recipe: str) -> dict[str, list[str]]:
    return {
        "validate": ["validate", recipe],
        "show": ["show", run_dir],
        "spaces": ["spaces"],
        "--help": ["--help"],
    }


def time_once(args: list[str], source: Path) -> tuple[float, bool]:
    """Seconds for ``effsearch ARGS`` from the checkout ``source`` (first on the path)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(source)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, cwd=source
    )
    elapsed = time.perf_counter() - started
    if "TORCH_LOADED=" not in done.stderr:
        raise SystemExit(f"effsearch {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, "TORCH_LOADED=True" in done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, help="a finished run for `show`")
    parser.add_argument("--recipe", default="recipes/quickstart.yaml")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--source", action="append", default=[], help="LABEL=PATH of a checkout (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    sources = dict(s.split("=", 1) for s in args.source) or {"now": str(ROOT)}
    todo = commands(args.run_dir, args.recipe)
    times: dict[tuple[str, str], list[float]] = {}
    torch_loaded: dict[tuple[str, str], bool] = {}
    for _ in range(args.rounds):
        for name, argv in todo.items():
            for label, path in sources.items():
                seconds, loaded = time_once(argv, Path(path).resolve())
                times.setdefault((label, name), []).append(seconds)
                torch_loaded[(label, name)] = loaded
    rows = []
    for (label, name), runs in times.items():
        row = {
            "label": label,
            "command": f"effsearch {' '.join(todo[name])}",
            "median_s": round(statistics.median(runs), 3),
            "min_s": round(min(runs), 3),
            "rounds": args.rounds,
            "imports_torch": torch_loaded[(label, name)],
        }
        rows.append(row)
        print(
            f"{label:<8} {row['command']:<42} median {row['median_s']:6.2f} s  "
            f"min {row['min_s']:6.2f} s  torch imported: {row['imports_torch']}"
        )
    if args.out is not None:
        with args.out.open("a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
