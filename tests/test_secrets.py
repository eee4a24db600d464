"""A storage URL's password is used to connect and never printed or written in clear."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effsearch.cli import app
from effsearch.recipe import load_recipe
from effsearch.search.rundir import RunDir
from effsearch.secrets import PASSWORD_ENV, mask_url, with_password

SECRET = "s3cret-pw"
URL = f"postgresql+psycopg://alice:{SECRET}@localhost:1/runs"


def test_the_frozen_recipe_and_its_fingerprint_hold_no_password(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = load_recipe(write_recipe(storage=URL))
    plain = load_recipe(write_recipe("plain.yaml", storage=mask_url(URL)))

    RunDir(tmp_path / "run").freeze(recipe)

    assert recipe.storage == URL  # kept in memory, to connect with
    assert SECRET not in recipe.dump()
    assert recipe.fingerprint() == plain.fingerprint()
    for path in (tmp_path / "run").rglob("*"):
        assert SECRET not in path.read_text(), path


def test_a_masked_password_comes_from_the_environment_or_is_left_to_libpq(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    masked = mask_url(URL)
    assert masked == "postgresql+psycopg://alice:***@localhost:1/runs"

    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    assert with_password(masked) == "postgresql+psycopg://alice@localhost:1/runs"
    monkeypatch.setenv(PASSWORD_ENV, "p@ss")
    assert with_password(masked) == "postgresql+psycopg://alice:p%40ss@localhost:1/runs"
    assert with_password(URL) == URL


def test_a_storage_that_cannot_be_reached_is_reported_without_its_password(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    pytest.importorskip("psycopg")
    recipe = write_recipe(storage=URL)

    result = CliRunner().invoke(app, ["run", str(recipe), "--run-dir", str(tmp_path / "run")])

    assert result.exit_code == 1
    assert "cannot open storage postgresql+psycopg://alice:***@localhost:1/runs" in result.output
    assert SECRET not in result.output
    for path in (tmp_path / "run").rglob("*"):
        assert path.is_dir() or SECRET not in path.read_text(), path
