"""Command-line and API overrides of a recipe's budget and execution."""

from __future__ import annotations

from dataclasses import replace

from effsearch import builtins as builtins  # registers the built-in names
from effsearch.errors import ArgumentError
from effsearch.recipe.schema import Recipe
from effsearch.registry import did_you_mean, lookup, names


def with_overrides(
    recipe: Recipe,
    trials: int | None = None,
    executor: str | None = None,
    workers: int | None = None,
    address: str | None = None,
) -> Recipe:
    """``recipe`` with command-line overrides of the budget and execution applied."""
    budget, execution = recipe.budget, recipe.execution
    if trials is not None:
        budget = budget.model_copy(update={"trials": trials})
    if executor is not None:
        if executor not in names("executor"):
            known = names("executor")
            raise ArgumentError(
                f"--executor: unknown executor {executor!r}.{did_you_mean(executor, known)} "
                f"Executors: {', '.join(known)}"
            )
        execution = execution.model_copy(update={"executor": executor})
    if workers is not None:
        in_flight = {"workers": workers}
        if execution.max_concurrent is not None:
            in_flight["max_concurrent"] = workers
        execution = execution.model_copy(update=in_flight)
    if address is not None:
        if "address" not in lookup("executor", execution.executor).own_options:
            raise ArgumentError(
                f"--address: only used by the ray executor (this run uses "
                f"{execution.executor!r}); add --executor ray"
            )
        execution = execution.model_copy(update={"address": address})
    data = dict(recipe.data)
    data["budget"] = budget.model_dump()
    data["execution"] = execution.model_dump()
    return replace(recipe, budget=budget, execution=execution, data=data)
