"""A run directory that cannot be written (read-only file system, full disk) is a clear error
before any trial starts: exit 2, what and where, no traceback, nothing run. A disk that fills
during a run stops it with the reason, keeping every finished trial, and resume completes it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from optuna.trial import TrialState
from test_sigkill_resume import journal_trials, start
from typer.testing import CliRunner

from effsearch.cli import app
from effsearch.search import records
from effsearch.search.rundir import PROBE_NAME


def run(recipe: Path, run_dir: Path | str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["run", str(recipe), "--run-dir", str(run_dir)])
    return result.exit_code, result.output


def test_a_run_directory_on_a_read_only_file_system_is_refused(
    write_recipe: Callable[..., Path],
) -> None:
    code, output = run(write_recipe(), "/proc/effsearch-run")  # procfs takes no new folders

    assert code == 2
    assert "error: cannot write to the run directory /proc/effsearch-run" in output
    assert "nothing was run" in output and "Traceback" not in output


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_refused_before_any_trial(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / PROBE_NAME).symlink_to("/dev/full")  # every write there: "No space left"

    code, output = run(write_recipe(), run_dir)

    assert code == 2
    assert "(No space left on device); nothing was run" in output
    assert not (run_dir / "trials").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["plot", "{run}", "--out", "/proc/effsearch/front.png"],
        ["report", "{run}", "--out", "/proc/effsearch/report.html"],
        ["export", "{run}", "--trial", "0", "--out", "/proc/effsearch-bundle"],
    ],
)
def test_an_output_the_file_system_refuses_is_exit_2_with_the_reason(
    write_recipe: Callable[..., Path], tmp_path: Path, command: list[str]
) -> None:
    code, _ = run(write_recipe(budget={"trials": 2}), tmp_path / "run")
    assert code == 0
    args = [a.format(run=tmp_path / "run") for a in command]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 2, result.output
    assert f"error: --out {args[-1]}: cannot" in result.output


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1.2 MB tmpfs (needs the right to mount: root in a container that allows it)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["inline", "local"])
def test_a_disk_that_fills_mid_run_is_said_clearly_and_resume_finishes_the_budget(
    write_recipe: Callable[..., Path], small_disk: Path, executor: str
) -> None:
    recipe = write_recipe(
        entrypoint="chatty", budget={"trials": 30},
        execution={"executor": executor, "workers": 1, "trial_timeout_s": 60},
    )  # fmt: skip
    run_dir = small_disk / "run"

    # its own process, as a user's driver: it holds the study's lease until it exits
    driver = start(recipe.parent, "full.log", "run", recipe, "--run-dir", run_dir)
    code = driver.wait(timeout=120)
    output = (recipe.parent / "full.log").read_text()

    assert code == 1, output
    assert "(No space left on device); every trial that finished before is kept" in output
    assert "Traceback" not in output
    before = {t.number: t.datetime_complete for t in journal_trials(run_dir)
              if t.state == TrialState.COMPLETE}  # fmt: skip
    assert 0 < len(before) < 30
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    resumed = CliRunner().invoke(app, ["resume", str(run_dir)])
    assert resumed.exit_code == 0, resumed.output
    trials = journal_trials(run_dir)
    after = {t.number: t.datetime_complete for t in trials if t.state == TrialState.COMPLETE}
    assert all(after[n] == when for n, when in before.items())
    # the budget is spent: a trial whose own output hit the full disk failed, with that reason
    assert records.counted_trials(trials) == 30
    failed = [t for t in trials if t.state == TrialState.FAIL
              and not t.user_attrs.get(records.INTERRUPTED)]  # fmt: skip
    assert all("No space left on device" in t.user_attrs[records.FAIL_REASON] for t in failed)


def test_a_torn_last_journal_record_is_cut_off_and_nothing_before_it(tmp_path: Path) -> None:
    from effsearch.search.storage import JOURNAL_NAME, drop_torn_tail

    journal = tmp_path / JOURNAL_NAME
    whole = b'{"op_code":0}\n{"op_code":1}\n'
    journal.write_bytes(whole + b'{"op_code":4,"trial_id":7,"val')

    assert drop_torn_tail(tmp_path) == len(b'{"op_code":4,"trial_id":7,"val')
    assert journal.read_bytes() == whole
    assert drop_torn_tail(tmp_path) == 0  # a journal that ends with a line end stays as it is
    assert journal.read_bytes() == whole
