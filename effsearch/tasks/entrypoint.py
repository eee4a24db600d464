"""The entrypoint task: a user's plain function ``f(config)`` or ``f(config, ctx)``.

The module is imported from the recipe's folder or ``PYTHONPATH``. This is the only way a
recipe runs code of its own (docs/architecture.md, "What a recipe can make run").
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

from effsearch.errors import TaskError
from effsearch.tasks.base import Config, Metrics, Task, TrialContext


def load_entrypoint(reference: str, recipe_dir: str) -> Callable[..., Any]:
    """Import ``module:function`` (folder ``recipe_dir`` first on the path); TaskError if not."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise TaskError(f"entrypoint must look like 'module:function', got {reference!r}")
    if recipe_dir not in sys.path:
        sys.path.insert(0, recipe_dir)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TaskError(
            f"cannot import module {module_name!r} ({exc}); it is looked up in {recipe_dir} "
            "and on PYTHONPATH"
        ) from exc
    except Exception as exc:
        raise TaskError(
            f"importing module {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    func = module
    for part in attr.split("."):
        if not hasattr(func, part):
            public = [n for n in dir(module) if not n.startswith("_")]
            raise TaskError(
                f"module {module_name!r} has no attribute {attr!r} (it has: {', '.join(public)})"
            )
        func = getattr(func, part)
    if not callable(func):
        raise TaskError(f"{reference!r} is a {type(func).__name__}, not a function")
    return func


def wants_context(func: Callable[..., Any]) -> bool:
    """Whether ``func`` takes a second (TrialContext) argument."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


class EntrypointTask(Task):
    """Runs a user function; its groups, knobs and metrics are the user's own."""

    def __init__(self, reference: str, recipe_dir: str) -> None:
        self.reference = reference
        self.func = load_entrypoint(reference, recipe_dir)
        self.pass_context = wants_context(self.func)

    def run(self, config: Config, ctx: TrialContext) -> Metrics:
        plain = {group: dict(knobs) for group, knobs in config.items()}
        if self.pass_context:
            result: Metrics = self.func(plain, ctx)
        else:
            result = self.func(plain)
        return result
