"""What the runner tells whoever watches a search: events in order, all optional to handle.

The base class ignores every event (a search run from Python shows nothing); the command
line's views (``effsearch.report.live``) draw or print them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

if TYPE_CHECKING:
    from effsearch.search.summary import RunSummary


class View:
    """Receives the runner's events, in order: start, (trial_* | tick | message)*, stop,
    finished."""

    def start(self, study: optuna.Study, total: int | None, counted: int) -> None:
        """The loop starts; ``counted`` trials already count against ``total``."""

    def trial_started(self, number: int, config: Mapping[str, Any]) -> None:
        """A trial was handed to the executor."""

    def trial_completed(self, study: optuna.Study, number: int, values: Sequence[float]) -> None:
        """A trial finished; ``values`` in objective order."""

    def trial_failed(self, number: int, reason: str, trial_dir: Path) -> None:
        """A trial failed (or was rejected before training), with why and where its log is."""

    def trial_stopped(self, number: int, reason: str) -> None:
        """A trial was stopped early (it is recorded as PRUNED)."""
        self.message(f"trial {number} {reason}")

    def trial_rejected(self, number: int, reason: str) -> None:
        """A configuration was rejected by the cost predictor and never ran (recorded as an
        infeasible trial: ``reason`` gives the prediction)."""
        self.trial_stopped(number, reason)

    def tick(self, running: Sequence[int]) -> None:
        """Called every poll; a live view refreshes here."""

    def hypervolume(self, value: float) -> None:
        """The run's hypervolume after the latest finished trials."""

    def message(self, text: str) -> None:
        """A notice worth a line (resumed, stopping early, ...)."""

    def stop(self) -> None:
        """The loop ended."""

    def finished(self, summary: RunSummary, run_dir: Path, interrupted: bool) -> None:
        """The session ended: what the run holds now (``pareto.json`` is written)."""
