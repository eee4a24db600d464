"""The ``effsearch`` command line: thin typer commands; all logic lives below."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from effsearch.errors import ArgumentError, EffsearchError

if TYPE_CHECKING:
    from effsearch.recipe.schema import Recipe
    from effsearch.search.view import View

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Search the Pareto set of accuracy vs. hardware cost over model compression knobs.",
)

EXIT_INTERRUPTED = 130
F = TypeVar("F", bound=Callable[..., Any])


def _err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


WIDE_LOG_COLUMNS = 160


def _out_console() -> Console:
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = WIDE_LOG_COLUMNS  # logs and pipes: tables must not be squeezed to 80
    return console


def _user_errors(func: F) -> F:
    """Turn an EffsearchError into its message and exit code (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EffsearchError as exc:
            console = _err_console()
            console.print(f"error: {exc}", markup=False)
            if getattr(exc, "source", None) and func.__name__ == "run":
                console.print(
                    f"Nothing was run. Check a recipe without running it: "
                    f"effsearch validate {exc.source}",  # type: ignore[attr-defined]
                    markup=False,
                )
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def _writing_to(out: Path) -> Iterator[None]:
    """An --out the file system refuses is bad input, said as such (exit 2), not a traceback."""
    try:
        yield
    except OSError as exc:
        raise ArgumentError(
            f"--out {out}: cannot write there ({exc.strerror or exc}); give a writable path"
        ) from None


RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML file.", show_default=False)]
AddressOption = typer.Option(
    "--address", help="Ray cluster to run trials on (HOST:PORT or auto); needs executor ray."
)
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing while it runs; one line at the end.")
]
EventsOption = Annotated[
    bool,
    typer.Option(
        "--events", help="Print one JSON object per event (for logs and CI) instead of the view."
    ),
]
RunDirArg = Annotated[
    Path, typer.Argument(help="Run directory (default runs/<name>).", show_default=False)
]


@app.command()
@_user_errors
def run(
    recipe_path: RecipeArg,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run-dir", help="Where the run lives (default: runs/<recipe name>)."),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials", min=1, help="Override budget.trials (total, including finished trials)."
        ),
    ] = None,
    executor: Annotated[str | None, typer.Option("--executor", help="inline | local | ray")] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Override execution.workers.")
    ] = None,
    address: Annotated[str | None, AddressOption] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the run in the run directory if there is one."),
    ] = False,
    quiet: QuietOption = False,
    events: EventsOption = False,
) -> None:
    """Run a search as RECIPE says."""
    from effsearch.recipe import load_recipe, with_overrides

    output = _output(quiet, events)
    recipe = with_overrides(
        load_recipe(recipe_path), trials=trials, executor=executor, workers=workers, address=address
    )
    directory = run_dir if run_dir is not None else Path("runs") / recipe.name
    _execute(recipe, directory, resume=resume, output=output)


@app.command()
@_user_errors
def resume(
    run_dir: RunDirArg,
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="New total trial budget.")
    ] = None,
    executor: Annotated[str | None, typer.Option("--executor", help="inline | local | ray")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1)] = None,
    address: Annotated[str | None, AddressOption] = None,
    quiet: QuietOption = False,
    events: EventsOption = False,
) -> None:
    """Continue a stopped or crashed run: finished trials are kept, interrupted ones re-run."""
    from effsearch.recipe import with_overrides
    from effsearch.search.rundir import RunDir

    output = _output(quiet, events)
    recipe = with_overrides(
        RunDir(run_dir).frozen_recipe(),
        trials=trials,
        executor=executor,
        workers=workers,
        address=address,
    )
    _execute(recipe, run_dir, resume=True, output=output)


@app.command()
@_user_errors
def show(
    run_dir: RunDirArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Trials, Pareto set and hypervolume of a run."""
    from effsearch.api import load
    from effsearch.report.results import print_summary

    result = load(run_dir)
    if as_json:
        typer.echo(json.dumps(result.summary.document(), indent=2))
        return
    print_summary(_out_console(), result.summary, run_dir)


@app.command()
@_user_errors
def confirm(
    run_dir: RunDirArg,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="More seeds per front member.")] = 2,
    top: Annotated[
        str,
        typer.Option(
            "--top", help="pareto (every member) or N (the N best by the first objective)."
        ),
    ] = "pareto",
) -> None:
    """Re-run the Pareto set on more seeds: mean, spread and how surely each stays on the front."""
    from effsearch import api
    from effsearch.report.results import confirmed_lines

    console = _out_console()
    console.print(f"confirming the Pareto set of {run_dir} on {seeds} more seeds...", markup=False)
    result = api.confirm(run_dir, seeds=seeds, top=top)
    for line in confirmed_lines(result.summary):
        console.print(line, markup=False)
    console.print(f"details: effsearch show {run_dir} --json (confirmed)", markup=False)


@app.command()
@_user_errors
def export(
    run_dir: RunDirArg,
    out: Annotated[
        Path,
        typer.Option("--out", help="New (or empty) folder for the bundle.", show_default=False),
    ],
    trial: Annotated[
        int | None, typer.Option("--trial", help="Export trial N.", show_default=False)
    ] = None,
    pick: Annotated[
        str | None,
        typer.Option(
            "--pick",
            help='knee, best:<objective>, or a limit such as "latency_ms <= 2" (the knee of '
            "the feasible trials within it).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="torch (state dict as measured); onnx as well (float models); hf (a Hugging "
            "Face folder transformers alone loads: text tasks, float or half weights). A trial "
            "measured on runtime.engine onnxruntime exports the ONNX graph it ran.",
        ),
    ] = "torch",
) -> None:
    """Write one trial's configuration, metrics, provenance and model to a bundle folder."""
    from effsearch.report import export as exporting
    from effsearch.search.rundir import RunDir
    from effsearch.search.study import load_study

    recipe, study = load_study(RunDir(run_dir))
    chosen = exporting.choose(recipe, study, trial, pick)
    console = _out_console()
    console.print(f"exporting trial {chosen.number}...", markup=False)
    exported = exporting.export(RunDir(run_dir), recipe, chosen, out, fmt)
    for line in exporting.describe(exported, recipe.objectives):
        console.print(line, markup=False)


@app.command()
@_user_errors
def bench(
    bundle: Annotated[
        Path,
        typer.Argument(help="An exported bundle folder (effsearch export).", show_default=False),
    ],
    device: Annotated[str, typer.Option("--device", help="Where to time it.")] = "cpu",
    threads: Annotated[int, typer.Option("--threads", help="torch / ONNX Runtime threads.")] = 1,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="Default: the recipe's measure batch size."),
    ] = None,
    repeats: Annotated[
        int | None, typer.Option("--repeats", help="Default: the recipe's measure repeats.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Time a bundle on this machine with the trial's meters, beside the trial's figures."""
    from effsearch.report import bench as benching

    result = benching.bench(bundle, device, threads, batch_size, repeats)
    console = _out_console()
    if as_json:
        console.print_json(json.dumps(result.as_json()))
        return
    for line in benching.describe(result):
        console.print(line, markup=False)


@app.command()
@_user_errors
def plot(
    run_dir: RunDirArg,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="X.png (a picture) or X.html (interactive, offline).", show_default=False
        ),
    ],
) -> None:
    """Draw the Pareto front, hypervolume over trials and the knobs of every trial."""
    from effsearch.report import plots
    from effsearch.search.rundir import RunDir
    from effsearch.search.study import load_study

    recipe, study = load_study(RunDir(run_dir))
    with _writing_to(out):
        plots.write(plots.collect(recipe, study), out)
    _out_console().print(f"wrote {out}", markup=False)


@app.command()
@_user_errors
def report(
    run_dir: RunDirArg,
    out: Annotated[
        Path, typer.Option("--out", help="The HTML page to write.", show_default=False)
    ] = Path("report.html"),
) -> None:
    """One offline HTML page: recipe, plots, Pareto set and an export command per point."""
    from effsearch.report.page import write_report
    from effsearch.search.rundir import RunDir
    from effsearch.search.study import load_study

    recipe, study = load_study(RunDir(run_dir))
    with _writing_to(out):
        write_report(RunDir(run_dir), recipe, study, out)
    _out_console().print(f"wrote {out}", markup=False)


@app.command()
@_user_errors
def validate(recipe_path: RecipeArg) -> None:
    """Check a recipe without running it; list the search space it defines."""
    from effsearch.recipe import load_recipe

    recipe = load_recipe(recipe_path)
    console = _out_console()
    console.print(f"{recipe_path}: valid recipe {recipe.name!r}", markup=False)
    for knob in recipe.space.knobs:
        console.print(f"  {knob.full_name}: {knob.describe()}", markup=False)
    goals = ", ".join(f"{o.direction} {o.metric}" for o in recipe.objectives)
    console.print(f"  objectives: {goals}", markup=False)
    if recipe.constraints:
        console.print(f"  constraints: {', '.join(map(str, recipe.constraints))}", markup=False)
    if recipe.warm_start is not None:
        from optuna.trial import TrialState

        from effsearch.search.warm_start import read_runs

        for earlier in read_runs(recipe):
            done = (TrialState.COMPLETE,)
            finished = len(earlier.study.get_trials(deepcopy=False, states=done))
            console.print(
                f"  warm start from {earlier.path}: {finished} finished trials", markup=False
            )


@app.command()
@_user_errors
def spaces() -> None:
    """List built-in tasks, their knob groups, knobs and metrics."""
    from effsearch import builtins as builtins  # registers the built-in names
    from effsearch.registry import lookup, names

    console = _out_console()
    for name in names("task"):
        task = lookup("task", name)
        console.print(f"task {name}: {task.summary}", markup=False)
        for group, decls in task.families.items():
            console.print(f"  {group}:", markup=False)
            for decl in decls:
                when = ""
                if decl.when:
                    condition = decl.condition_among(decls)
                    when = "  (when " + ", ".join(f"{k} in {list(v)}" for k, v in condition.items())
                    when += ")"
                console.print(
                    f"    {decl.name}: {decl.domain_text()}, default {decl.default!r}"
                    f" - {decl.help}{when}",
                    markup=False,
                )
        console.print("  metrics:", markup=False)
        for metric in task.metrics:
            where = "" if len(metric.devices) > 1 else f" [{metric.devices[0]} only]"
            console.print(f"    {metric.name}{where}: {metric.description}", markup=False)
    console.print(f"optimizers: {', '.join(names('optimizer'))}", markup=False)
    console.print(f"executors: {', '.join(names('executor'))}", markup=False)


@app.command()
@_user_errors
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the recipe.")] = Path("recipe.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write the quickstart recipe (digits-cnn) to PATH, a starting point to edit."""
    from effsearch.starter import STARTER_RECIPE

    if path.exists() and not force:
        raise ArgumentError(f"{path} exists; pass --force to overwrite it")
    path.write_text(STARTER_RECIPE, encoding="utf-8")
    _out_console().print(
        f"wrote {path}. Next: effsearch validate {path} && effsearch run {path}", markup=False
    )


# --------------------------------------------------------------------------------- helpers
def _output(quiet: bool, events: bool) -> str:
    if quiet and events:
        raise ArgumentError("--quiet and --events: choose one")
    return "quiet" if quiet else "events" if events else "view"


def _view(output: str, recipe: Recipe) -> View:
    """What ``run`` shows while it works and at its end."""
    from effsearch.report.live import EventView, LineView, LiveView, QuietView, terminal_console

    console = terminal_console()
    metric_names = [o.metric for o in recipe.objectives]
    if output == "events":
        return EventView(console.file, metric_names)
    if output == "quiet":
        return QuietView(console)
    if console.is_terminal:
        return LiveView(console, metric_names, recipe)
    return LineView(console, metric_names)


def _execute(recipe: Recipe, run_dir: Path, resume: bool, output: str = "view") -> None:
    from effsearch import api
    from effsearch.search.rundir import RunDir
    from effsearch.search.storage import describe

    view = _view(output, recipe)
    view.message(
        f"{'resuming' if resume and RunDir(run_dir).exists() else 'starting'} "
        f"{recipe.name!r} in {run_dir} (study: {describe(recipe.storage, run_dir)})"
    )
    result = api.run(recipe, run_dir=run_dir, resume=resume, view=view)
    # --events keeps stdout for JSON; notices go to stderr there
    notices = _err_console() if output == "events" else _out_console()
    if result.interrupted:
        notices.print(
            f"interrupted; every finished trial is saved. Resume with: effsearch resume {run_dir}",
            markup=False,
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    if not result.summary.counts.get("COMPLETE"):
        notices.print(
            f"no trial completed; effsearch show {run_dir} lists why each one failed",
            markup=False,
        )
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
