"""What ``run`` shows while it works: a live view on a terminal, one line per event elsewhere."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import optuna
from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from effsearch.report.results import format_value, pareto_table, print_summary
from effsearch.search.summary import RunSummary
from effsearch.search.view import View


def terminal_console() -> Console:
    """A console on the terminal as it was at start-up.

    Trials run inline redirect file descriptors 1 and 2 into their log; writing through a copy
    of the original descriptor keeps the view on the terminal meanwhile.
    """
    stream: IO[str] = sys.stdout
    # Not a real file (tests capture output): write to it directly.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    console = Console(file=stream, highlight=False)
    if not console.is_terminal:
        console.width = 160  # logs and pipes: tables must not be squeezed to 80 columns
    return console


class LineView(View):
    """One line per event: for logs, CI and pipes."""

    def __init__(self, console: Console, metric_names: Sequence[str]) -> None:
        self.console = console
        self.metric_names = list(metric_names)
        self.total: int | None = None
        self.counted = 0

    def start(self, study: optuna.Study, total: int | None, counted: int) -> None:
        self.total, self.counted = total, counted

    def _progress(self) -> str:
        return f"[{self.counted}/{self.total}]" if self.total else f"[{self.counted}]"

    def trial_completed(self, study: optuna.Study, number: int, values: Sequence[float]) -> None:
        self.counted += 1
        shown = ", ".join(
            f"{n}={format_value(v)}" for n, v in zip(self.metric_names, values, strict=True)
        )
        self.console.print(f"{self._progress()} trial {number} done: {shown}")

    def trial_failed(self, number: int, reason: str, trial_dir: Path) -> None:
        self.counted += 1
        # a rejection says so itself ("rejected before training: ..."); it did not fail
        ended = reason if reason.startswith("rejected") else f"failed: {reason}"
        self.console.print(f"{self._progress()} trial {number} {ended} ({trial_dir / 'log.txt'})")

    def trial_stopped(self, number: int, reason: str) -> None:
        self.counted += 1
        self.console.print(f"{self._progress()} trial {number} {reason}")

    def message(self, text: str) -> None:
        self.console.print(text, markup=False)

    def finished(self, summary: RunSummary, run_dir: Path, interrupted: bool) -> None:
        print_summary(self.console, summary, run_dir)


class LiveView(LineView):
    """Progress with ETA, running trials, failures and the current Pareto set, redrawn in place."""

    def __init__(self, console: Console, metric_names: Sequence[str], recipe: Any) -> None:
        super().__init__(console, metric_names)
        self.recipe = recipe
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task_id = self.progress.add_task("trials", total=None)
        self.failures = 0
        self.last_failure = ""
        self.volume: float | None = None
        self.running: Sequence[int] = ()
        self.front: Any = Text("")
        self.live = Live(console=console, refresh_per_second=4, transient=True)

    def start(self, study: optuna.Study, total: int | None, counted: int) -> None:
        super().start(study, total, counted)
        self.progress.update(self.task_id, total=total, completed=counted)
        if study.best_trials:
            self.front = pareto_table(self.recipe, study, title="Current Pareto set", limit=8)
        self.live.start()
        self._draw()

    def _draw(self) -> None:
        status = Text(
            f"running: {', '.join(map(str, self.running)) or '–'}   failed: {self.failures}"
        )
        if self.volume is not None:
            status.append(f"   hypervolume: {self.volume:.4g}")
        if self.last_failure:
            status.append(f"   last failure: {self.last_failure}", style="red")
        self.live.update(Group(self.progress, status, self.front))

    def trial_completed(self, study: optuna.Study, number: int, values: Sequence[float]) -> None:
        self.counted += 1
        self.progress.advance(self.task_id)
        self.front = pareto_table(self.recipe, study, title="Current Pareto set", limit=8)
        self._draw()

    def trial_failed(self, number: int, reason: str, trial_dir: Path) -> None:
        self.counted += 1
        self.failures += 1
        self.progress.advance(self.task_id)
        self.last_failure = f"trial {number}: {reason[:100]} ({trial_dir / 'log.txt'})"
        self._draw()

    def tick(self, running: Sequence[int]) -> None:
        self.running = running
        self._draw()

    def trial_stopped(self, number: int, reason: str) -> None:
        self.counted += 1
        self.progress.advance(self.task_id)
        self._draw()

    def hypervolume(self, value: float) -> None:
        self.volume = value

    def message(self, text: str) -> None:
        self.live.console.print(text)

    def stop(self) -> None:
        self.live.stop()


class QuietView(View):
    """Nothing while the search runs (``--quiet``), one line at the end; warnings still reach
    stderr."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def finished(self, summary: RunSummary, run_dir: Path, interrupted: bool) -> None:
        self.console.print(
            f"{summary.recipe.name}: {len(summary.trials)} trials, {len(summary.pareto)} on the "
            f"Pareto set; effsearch show {run_dir}",
            markup=False,
        )


class EventView(View):
    """One JSON object per line and event (``--events``), for logs and CI to parse.

    Every object has ``event`` and ``time`` (Unix seconds); the rest depends on the event:
    ``start`` (total, counted), ``trial_started`` (trial, config), ``trial_completed`` (trial,
    values: objective -> value), ``trial_failed`` (trial, reason, log; also a rejection before
    training), ``trial_stopped`` (trial, reason: stopped early), ``trial_rejected`` (trial,
    reason: rejected by the cost predictor, never ran), ``hypervolume`` (value), ``message``
    (text), ``end``; the command adds ``summary`` (pareto, hypervolume, counts).
    """

    def __init__(self, stream: IO[str], metric_names: Sequence[str]) -> None:
        self.stream = stream
        self.metric_names = list(metric_names)

    def emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        self.stream.write(json.dumps(record, default=str) + "\n")
        self.stream.flush()

    def start(self, study: optuna.Study, total: int | None, counted: int) -> None:
        self.emit("start", total=total, counted=counted)

    def trial_started(self, number: int, config: Mapping[str, Any]) -> None:
        self.emit("trial_started", trial=number, config=dict(config))

    def trial_completed(self, study: optuna.Study, number: int, values: Sequence[float]) -> None:
        named = dict(zip(self.metric_names, map(float, values), strict=True))
        self.emit("trial_completed", trial=number, values=named)

    def trial_failed(self, number: int, reason: str, trial_dir: Path) -> None:
        self.emit("trial_failed", trial=number, reason=reason, log=str(trial_dir / "log.txt"))

    def trial_stopped(self, number: int, reason: str) -> None:
        self.emit("trial_stopped", trial=number, reason=reason)

    def trial_rejected(self, number: int, reason: str) -> None:
        self.emit("trial_rejected", trial=number, reason=reason)

    def hypervolume(self, value: float) -> None:
        self.emit("hypervolume", value=value)

    def message(self, text: str) -> None:
        self.emit("message", text=text)

    def stop(self) -> None:
        self.emit("end")

    def finished(self, summary: RunSummary, run_dir: Path, interrupted: bool) -> None:
        self.emit(
            "summary",
            pareto=[t.number for t in summary.pareto],
            hypervolume=summary.hypervolume,
            counts=summary.counts,
            interrupted=interrupted,
        )
