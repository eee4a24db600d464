"""Shared storage on a real PostgreSQL server: a search, then a resume, through the CLI.

`.ci/run` starts a server (`.ci/postgres.sh`) and sets ``EFFSEARCH_TEST_POSTGRES_URL``;
elsewhere this module is skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from effsearch.cli import app
from effsearch.search.rundir import RunDir
from effsearch.search.study import load_study

URL = os.environ.get("EFFSEARCH_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(
    not URL, reason="no PostgreSQL server (EFFSEARCH_TEST_POSTGRES_URL; .ci/run starts one)"
)


def test_a_search_and_its_resume_live_in_postgresql(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    name = f"pg-{uuid.uuid4().hex[:12]}"  # the server outlives one test
    recipe = write_recipe(name=name, storage=URL, budget={"trials": 4})
    run_dir = tmp_path / "run"
    runner = CliRunner()

    first = runner.invoke(app, ["run", str(recipe), "--run-dir", str(run_dir)])
    assert first.exit_code == 0, first.output
    before = {t.number: t.datetime_complete for t in load_study(RunDir(run_dir))[1].trials}
    again = runner.invoke(app, ["resume", str(run_dir), "--trials", "6"])
    assert again.exit_code == 0, again.output

    _, study = load_study(RunDir(run_dir))
    in_server = optuna.load_study(study_name=study.study_name, storage=URL)
    assert len(in_server.trials) == 6
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6
    assert {t.number: t.datetime_complete for t in study.trials[:4]} == before


def test_a_password_in_the_url_reaches_the_server_but_not_the_run_directory(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    assert URL is not None
    secret = "never-written-pw"
    # the CI server trusts local users, so any password connects; what matters is where it goes
    with_secret = URL.replace("postgres@", f"postgres:{secret}@", 1)
    recipe = write_recipe(
        name=f"pg-{uuid.uuid4().hex[:12]}", storage=with_secret, budget={"trials": 2}
    )
    run_dir = tmp_path / "run"

    ran = CliRunner().invoke(app, ["run", str(recipe), "--run-dir", str(run_dir)])
    shown = CliRunner().invoke(app, ["show", str(run_dir)])  # reopens from the frozen recipe

    assert ran.exit_code == 0 and shown.exit_code == 0, ran.output + shown.output
    assert secret not in ran.output + shown.output
    assert ":***@" in (run_dir / "recipe.yaml").read_text()
    for path in run_dir.rglob("*"):
        assert path.is_dir() or secret not in path.read_text(errors="replace"), path
