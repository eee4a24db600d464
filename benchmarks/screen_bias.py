"""Does the acquisition's cheap screen pick different candidates than a precise one?

botorch's proposals are found by ranking about a thousand candidates on qLogNEHVI estimated
from a few quasi-MC samples, then re-scoring a shortlist precisely. With few samples the
estimate of a candidate with a wide posterior swings most, so the screen's best are biased
toward the widest posteriors: on DTLZ2 the corners of its distance variables x2..x5, the
worst place there (``g = sum (x_i - 0.5)^2`` scales every objective by ``1 + g``).

This reads the first ``--trials`` trials of a finished noisy-DTLZ2 run, fits the sampler's own
surrogate (``search/gp.Surrogate``, measured noise included) and scores 3,000 uniform
candidates with 4, 16, 32 and 256 samples; it prints the mean ``g`` and posterior standard
deviation of each screen's top 20 (lower ``g`` is better; 256 samples is the reference).

    .venv/bin/python benchmarks/optimizers.py --problems noisy_dtlz2 --evals 50 --jobs 1 \
        --seeds 0 --contenders "effsearch botorch" --keep-runs /tmp/screen-bias
    .venv/bin/python benchmarks/screen_bias.py \
        --run-dir /tmp/screen-bias/noisy_dtlz2-effsearch-botorch-0 --trials 20 30 40
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--trials", type=int, nargs="+", default=[20, 30, 40])
    parser.add_argument("--samples", type=int, nargs="+", default=[4, 16, 32, 256])
    args = parser.parse_args()
    shown = subprocess.run(
        [sys.executable, "-m", "effsearch", "show", str(args.run_dir), "--json"],
        check=True,
        capture_output=True,
    )
    trials = sorted(json.loads(shown.stdout)["trials"], key=lambda t: t["number"])
    for n in args.trials:
        print(screen(trials[:n], args.samples))


def screen(trials: list[dict], sample_counts: list[int]) -> str:
    import torch
    from botorch.acquisition.multi_objective.logei import (
        qLogNoisyExpectedHypervolumeImprovement,
    )
    from botorch.sampling.normal import SobolQMCNormalSampler

    from effsearch.search.gp import Surrogate

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    torch.manual_seed(len(trials))  # the fit's random restarts: the same figures every time
    x = np.array([[t["params"]["x"][f"x{i}"] for i in range(6)] for t in trials])
    # maximised, as the sampler models them; each measurement's own variance
    y = -np.array([[t["metrics"][f"f{i}"] for i in (1, 2, 3)] for t in trials])
    variances = np.array([[t["metrics"][f"f{i}_se"] ** 2 for i in (1, 2, 3)] for t in trials])
    model = Surrogate().fit(x, y, variances)
    candidates = np.random.default_rng(1).random((3000, 6))
    g = ((candidates[:, 2:] - 0.5) ** 2).sum(axis=1)
    with torch.no_grad():
        sd = model.posterior(torch.tensor(candidates)).variance.sqrt().sum(-1).numpy()
    lines = [f"{len(trials)} trials: all candidates mean g {g.mean():.3f}, sd {sd.mean():.3f}"]
    for samples in sample_counts:
        acquisition = qLogNoisyExpectedHypervolumeImprovement(
            model=model,
            ref_point=torch.tensor([-1.1] * 3, dtype=torch.float64),
            X_baseline=torch.tensor(x),
            sampler=SobolQMCNormalSampler(torch.Size([samples]), seed=len(trials)),
            prune_baseline=True,
            cache_root=True,
        )
        with torch.no_grad():
            scores = torch.cat(
                [
                    acquisition(torch.tensor(candidates[i : i + 500]).unsqueeze(1))
                    for i in range(0, len(candidates), 500)
                ]
            ).numpy()
        top = np.argsort(-scores)[:20]
        lines.append(
            f"  {samples:4d} samples: top 20 mean g {g[top].mean():.3f}, "
            f"posterior sd {sd[top].mean():.3f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
