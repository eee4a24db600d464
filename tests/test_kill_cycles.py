"""The driver killed again and again: SIGKILL or SIGTERM at random moments, each time resumed.

A fast entrypoint search (inline trials of 0.2 s) is stopped ``CYCLES`` times, at a moment
drawn from a seeded generator: sometimes while it starts up, mostly a little after it finished
another trial. After every stop the study must still load, and every trial that had completed
must be there unchanged; at the end one more resume completes the budget with no configuration
completed twice. ``pytest -m long`` repeats it ``LONG_CYCLES`` times.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from optuna.trial import FrozenTrial, TrialState
from test_sigkill_resume import journal_trials, start, stop_group

pytestmark = pytest.mark.slow

CYCLES, LONG_CYCLES = 20, 100
SIGNALS = (signal.SIGKILL, signal.SIGTERM)


def complete(trials: list[FrozenTrial]) -> dict[int, tuple[object, ...]]:
    return {
        t.number: (t.datetime_complete, tuple(t.values), tuple(sorted(t.params.items())))
        for t in trials
        if t.state == TrialState.COMPLETE
    }


def budget_for(cycles: int) -> int:
    """More trials than the stops let finish, so every stop lands in a running search."""
    return 3 * cycles + 10


def kill_and_resume(folder: Path, recipe: Path, cycles: int) -> Counter[str]:
    rng = random.Random(0)
    run_dir = folder / "run"
    seen: dict[int, tuple[object, ...]] = {}
    tally: Counter[str] = Counter()
    for cycle in range(cycles):
        args = ("run", recipe, "--run-dir", run_dir) if cycle == 0 else ("resume", run_dir)
        driver = start(folder, f"cycle-{cycle}.log", *args)
        try:
            done_before = len(complete(journal_trials(run_dir)))
            if rng.random() < 0.25:
                time.sleep(rng.uniform(0.0, 2.5))  # often still importing or opening the study
            else:
                deadline = time.monotonic() + 60
                while len(complete(journal_trials(run_dir))) <= done_before:
                    if driver.poll() is not None or time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
                time.sleep(rng.uniform(0.0, 0.2))
            sig = rng.choice(SIGNALS)
            if driver.poll() is None:
                driver.send_signal(sig)
                tally[sig.name] += 1
            code = driver.wait(timeout=60)
            tally[f"exit {code}"] += 1
        finally:
            stop_group(driver)
        now = complete(journal_trials(run_dir))  # the storage still loads
        lost = {n: seen[n] for n in seen if now.get(n) != seen[n]}
        assert not lost, f"cycle {cycle}: finished trials changed or vanished: {lost}"
        seen = now
    final = start(folder, "final.log", "resume", run_dir)
    try:
        assert final.wait(timeout=300) == 0, (folder / "final.log").read_text()
    finally:
        stop_group(final)
    trials = journal_trials(run_dir)
    done = complete(trials)
    assert all(done[n] == seen[n] for n in seen)
    assert len(done) == budget_for(cycles)
    configurations = Counter(v[2] for v in done.values())
    assert max(configurations.values()) == 1, "a configuration completed twice"
    tally["trials"] = len(trials)
    return tally


def cycle_recipe(folder: Path, writer: Callable[..., Path], cycles: int) -> Path:
    return writer(
        folder, entrypoint="sleeps", fixed={"sleep_s": 0.2}, budget={"trials": budget_for(cycles)},
        execution={"executor": "inline", "workers": 1, "trial_timeout_s": 60},
    )  # fmt: skip


def test_twenty_kills_at_random_moments_lose_nothing(
    tmp_path: Path, toy_recipe_writer: Callable[..., Path]
) -> None:
    recipe = cycle_recipe(tmp_path, toy_recipe_writer, CYCLES)
    tally = kill_and_resume(tmp_path, recipe, CYCLES)
    assert tally["exit 0"] == 0, "every cycle stopped a search that was still running"
    print(f"kill cycles: {CYCLES}, signals sent: {dict(tally)}")


@pytest.mark.long
def test_a_hundred_kills_lose_nothing(
    tmp_path: Path, toy_recipe_writer: Callable[..., Path]
) -> None:
    recipe = cycle_recipe(tmp_path, toy_recipe_writer, LONG_CYCLES)
    tally = kill_and_resume(tmp_path, recipe, LONG_CYCLES)
    print(f"kill cycles: {LONG_CYCLES}, signals sent: {dict(tally)}")
