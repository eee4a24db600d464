"""Shared fixtures: toy entrypoint recipes written into a test's tmp_path."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

TESTS_DIR = Path(__file__).resolve().parent


def toy_recipe_document(entrypoint: str = "zdt1", fixed: dict[str, Any] | None = None,
                        **sections: Any) -> dict[str, Any]:
    """A valid entrypoint recipe over ``params.x0..x2`` in [0, 1], minimizing f1 and f2.

    ``fixed`` adds fixed knobs to ``params``; every other keyword replaces a whole section.
    """
    document: dict[str, Any] = {
        "name": "toy",
        "seed": 0,
        "task": {"entrypoint": f"toy_tasks:{entrypoint}"},
        "space": {"params": {f"x{i}": {"float": [0.0, 1.0]} for i in range(3)} | (fixed or {})},
        "objectives": [
            {"metric": "f1", "direction": "minimize"},
            {"metric": "f2", "direction": "minimize"},
        ],
        "optimizer": {"name": "random"},
        "execution": {"executor": "inline", "workers": 1, "trial_timeout_s": 60},
        "budget": {"trials": 6},
    }
    document.update(sections)
    return document


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    """``write_recipe(filename="recipe.yaml", entrypoint=..., fixed=..., **sections) -> path``.

    The recipe lands in ``tmp_path`` next to a copy of ``toy_tasks.py`` (entrypoints are
    imported from the recipe's folder, in worker processes and subprocesses too).
    """

    def write(filename: str = "recipe.yaml", **kwargs: Any) -> Path:
        shutil.copy(TESTS_DIR / "toy_tasks.py", tmp_path / "toy_tasks.py")
        path = tmp_path / filename
        path.write_text(yaml.safe_dump(toy_recipe_document(**kwargs), sort_keys=False),
                        encoding="utf-8")
        return path

    return write
