"""The recipe: schema, YAML with lines, validation that collects every problem, resume rules.

Modules: ``schema`` (sections and the validated :class:`Recipe`), ``yaml_lines`` (safe YAML with
the line of every key), ``problems`` (collecting and wording problems), ``space`` (knobs against
the task's declarations), ``validate`` (``load_recipe``/``validate``), ``resume`` (what may
change on resume), ``overrides`` (command-line overrides).
"""

from __future__ import annotations

from effsearch.objectives.goals import Constraint, parse_constraint
from effsearch.recipe.overrides import with_overrides
from effsearch.recipe.resume import RESUMABLE_FIELDS, check_resumable, differences
from effsearch.recipe.schema import (
    BudgetSection,
    EarlyStoppingSection,
    ExecutionSection,
    MeasureSection,
    ObjectiveSection,
    OptimizerSection,
    Recipe,
    TaskSection,
)
from effsearch.recipe.validate import load_recipe, validate
from effsearch.recipe.yaml_lines import parse_yaml

__all__ = [
    "RESUMABLE_FIELDS",
    "BudgetSection",
    "Constraint",
    "EarlyStoppingSection",
    "ExecutionSection",
    "MeasureSection",
    "ObjectiveSection",
    "OptimizerSection",
    "Recipe",
    "TaskSection",
    "check_resumable",
    "differences",
    "load_recipe",
    "parse_constraint",
    "parse_yaml",
    "validate",
    "with_overrides",
]
