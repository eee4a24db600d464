"""Shared fixtures: toy entrypoint recipes written into a test's tmp_path."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

TESTS_DIR = Path(__file__).resolve().parent


def toy_recipe_document(
    entrypoint: str = "zdt1", fixed: dict[str, Any] | None = None, **sections: Any
) -> dict[str, Any]:
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


def write_toy_recipe(folder: Path, filename: str = "recipe.yaml", **kwargs: Any) -> Path:
    """Write ``toy_recipe_document(**kwargs)`` to ``folder/filename`` next to ``toy_tasks.py``.

    Entrypoints are imported from the recipe's folder, in worker processes and subprocesses too.
    """
    shutil.copy(TESTS_DIR / "toy_tasks.py", folder / "toy_tasks.py")
    path = folder / filename
    path.write_text(
        yaml.safe_dump(toy_recipe_document(**kwargs), sort_keys=False), encoding="utf-8"
    )
    return path


@pytest.fixture(scope="session")
def toy_recipe_writer() -> Callable[..., Path]:
    """``write_toy_recipe(folder, filename=..., **kwargs)``, for fixtures wider than a test."""
    return write_toy_recipe


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    """``write_recipe(filename="recipe.yaml", entrypoint=..., fixed=..., **sections) -> path``,
    a toy recipe in ``tmp_path``."""

    def write(filename: str = "recipe.yaml", **kwargs: Any) -> Path:
        return write_toy_recipe(tmp_path, filename, **kwargs)

    return write


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """``HOST:PORT`` of the session's Ray cluster (see ray_nodes.py), started on first use."""
    import ray
    import ray_nodes

    if ray.is_initialized():
        ray.shutdown()
    ray_nodes.start_head()
    ray_nodes.start_second_node()
    try:
        yield ray_nodes.ADDRESS
    finally:
        if ray.is_initialized():
            ray.shutdown()
        ray_nodes.stop_all()
