"""Executors run trials: ``inline`` (same process), ``local`` (worker processes), ``ray``."""

from __future__ import annotations

from typing import Any

from effsearch.registry import lookup
from effsearch.search.executors import inline as inline
from effsearch.search.executors import local as local
from effsearch.search.executors import ray_executor as ray_executor
from effsearch.search.executors.base import Decide, Executor, TrialJob, TrialOutcome


def make_executor(
    name: str,
    workers: int,
    trial_timeout_s: float,
    threads: int,
    decide: Decide | None = None,
    **options: Any,
) -> Executor:
    """Start the executor registered as ``name``; ``decide`` answers intermediate reports;
    ``options`` are what only that executor takes (a Ray address, say)."""
    cls = lookup("executor", name)
    executor: Executor = cls(
        workers=workers, trial_timeout_s=trial_timeout_s, threads=threads, decide=decide, **options
    )
    return executor


__all__ = ["Executor", "TrialJob", "TrialOutcome", "make_executor"]
