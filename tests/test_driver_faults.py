"""A run directory that cannot be written (read-only file system, full disk) is a clear error
before any trial starts: exit 2, what and where, no traceback, nothing run."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effsearch.cli import app
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
