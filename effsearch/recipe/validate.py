"""Reading a recipe: load, parse with lines, validate every section, collect every problem.

``load_recipe(path)`` returns a :class:`Recipe` or raises one :class:`RecipeError` listing all
problems, each with its dotted path, YAML line, what must hold, what was given and, where one
fits, a "did you mean". Sections are validated by pydantic one at a time so that a problem in one
does not hide problems in the others; the search space and the cross-references (metrics named by
objectives and constraints, optimizer and executor names, the task's knobs) are checked after.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from effsearch import builtins as builtins  # registers the built-in names
from effsearch.errors import Problem, RecipeError, TaskError
from effsearch.objectives.goals import Constraint, parse_constraint
from effsearch.objectives.metrics import DEVICE_METRICS, on_device
from effsearch.recipe.problems import Collector, kind_of, list_item, validated
from effsearch.recipe.schema import (
    DEFAULTS,
    NAME_PATTERN,
    SECTIONS,
    BudgetSection,
    ExecutionSection,
    ObjectiveSection,
    OptimizerSection,
    Recipe,
    TaskSection,
)
from effsearch.recipe.space import TaskFacts, validate_space
from effsearch.recipe.yaml_lines import YamlPath, parse_yaml
from effsearch.registry import did_you_mean, lookup, names
from effsearch.secrets import mask_url
from effsearch.tasks import task_info
from effsearch.tasks.base import MeasureSettings, TaskSpec

MAX_RECIPE_BYTES = 1_000_000


def load_recipe(path: str | Path) -> Recipe:
    """Read, parse and validate the recipe at ``path``."""
    file = Path(path)
    source = str(path)
    if not file.is_file():
        hint = "" if file.suffix in (".yaml", ".yml") else " (recipes are .yaml files)"
        raise RecipeError(
            source,
            [Problem("", f"no such file{hint}; create one with: effsearch init {source}")],
        )
    raw = file.read_bytes()
    if len(raw) > MAX_RECIPE_BYTES:
        raise RecipeError(
            source, [Problem("", f"is {len(raw)} bytes; a recipe must be under {MAX_RECIPE_BYTES}")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(
            source, [Problem("", f"is not UTF-8 text (byte {exc.start}); save it as UTF-8")]
        ) from None
    document, lines = parse_yaml(text, source)
    return validate(document, lines, source, str(file.resolve().parent))


def validate(
    document: Any,
    lines: Mapping[YamlPath, int],
    source: str,
    recipe_dir: str,
    import_entrypoint: bool = True,
) -> Recipe:
    """Validate a parsed recipe document; raise one RecipeError listing every problem.

    ``import_entrypoint=False`` skips importing an entrypoint module: reading a finished run
    must neither need nor run the user's code.
    """
    out = Collector(lines)
    if not isinstance(document, dict):
        out.add((), f"must be a mapping of sections (name, task, ...), got {kind_of(document)}")
        raise RecipeError(source, out.problems)

    sections = _validate_sections(document, out)
    execution = sections.get("execution")
    device = execution.device if isinstance(execution, ExecutionSection) else "cpu"
    measure = sections.get("measure")
    devices = list(measure.devices or []) if isinstance(measure, MeasureSettings) else []
    listed = tuple(dict.fromkeys(devices))
    task_info = _validate_task(sections.get("task"), recipe_dir, import_entrypoint, device, out)
    task_info = _measured_devices(task_info, devices, out)
    space = validate_space(sections.get("space"), task_info, device, out, also_on=listed)
    _validate_objectives(sections.get("objectives"), task_info, out)
    constraints = _validate_constraints(sections.get("constraints"), task_info, out)
    _validate_names(sections, out)
    _validate_execution(execution, out)
    optimizer = sections.get("optimizer")
    if isinstance(optimizer, OptimizerSection) and optimizer.predict_costs and not constraints:
        out.add(
            ("optimizer", "predict_costs"),
            "predicts constrained metrics, but the recipe has no constraints; add e.g. "
            "constraints: ['latency_ms <= 5'], or remove predict_costs",
        )
    budget = sections.get("budget")
    limits = ("trials", "wall_minutes", "steps", "compute_minutes")
    if isinstance(budget, BudgetSection) and all(getattr(budget, k) is None for k in limits):
        out.add(
            ("budget",),
            f"must set {', '.join(limits[:-1])} or {limits[-1]}, or several "
            "(e.g. budget: {trials: 40})",
        )
    storage = sections.get("storage")
    if isinstance(storage, str) and "://" not in storage:
        out.add(
            ("storage",),
            f"must be an Optuna storage URL such as sqlite:///study.db (got {storage!r}); "
            "leave it out for a journal file in the run directory",
        )
    if out.problems:
        raise RecipeError(source, out.problems)

    assert space is not None
    data = _normalized(document, sections)
    if isinstance(storage, str):
        # a password never leaves memory: the frozen recipe, bundles and reports get ***
        data["storage"] = mask_url(storage)
    return Recipe(
        name=sections["name"],
        seed=sections["seed"],
        task=sections["task"],
        space=space,
        objectives=tuple(sections["objectives"]),
        constraints=tuple(constraints),
        optimizer=sections["optimizer"],
        execution=sections["execution"],
        budget=sections["budget"],
        storage=sections["storage"],
        measure=sections["measure"],
        baseline=sections["baseline"],
        early_stopping=sections["early_stopping"],
        warm_start=sections["warm_start"],
        data=data,
        source=source,
        recipe_dir=recipe_dir,
    )


def _validate_sections(document: dict[str, Any], out: Collector) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    for key in document:
        if key not in SECTIONS:
            out.add(
                (key,),
                f"unknown section.{did_you_mean(key, SECTIONS)} Sections: {', '.join(SECTIONS)}",
            )
    for key, (kind, required) in SECTIONS.items():
        if key not in document:
            if required:
                out.add((key,), f"is missing; {_REQUIRED_HINTS[key]}")
            else:
                sections[key] = DEFAULTS[key]
            continue
        value = document[key]
        if isinstance(kind, type) and issubclass(kind, BaseModel) and value is None:
            value = {}
        item_kind = list_item(kind)
        if item_kind is not None and isinstance(value, list):
            # Item by item, so one bad objective does not hide checks on the others.
            items = [validated(item, item_kind, (key, i), out) for i, item in enumerate(value)]
            sections[key] = [item for item in items if item is not None]
        else:
            sections[key] = validated(value, kind, (key,), out)
        if sections[key] is None and value is not None:
            sections.pop(key)
    name = sections.get("name")
    if isinstance(name, str) and not re.match(NAME_PATTERN, name):
        out.add(
            ("name",),
            "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit "
            f"(it names the run folder); got {name!r}",
        )
        sections.pop("name")
    return sections


_REQUIRED_HINTS = {
    "name": "add e.g. name: my-search (it names the run folder)",
    "task": "add e.g. task: {builtin: digits-cnn} or task: {entrypoint: 'my_mod:evaluate'}",
    "objectives": "add e.g. objectives: [{metric: accuracy, direction: maximize}]",
    "budget": "add e.g. budget: {trials: 40}",
}


def _validate_task(
    task: TaskSection | None,
    recipe_dir: str,
    import_entrypoint: bool,
    device: str,
    out: Collector,
) -> TaskFacts | None:
    if task is None:
        return None
    if (task.builtin is None) == (task.entrypoint is None):
        out.add(
            ("task",),
            "must name exactly one of builtin or entrypoint "
            f"(builtin tasks: {', '.join(names('task'))}; or entrypoint: 'module:function')",
        )
        return None
    if task.entrypoint is not None:
        if task.options:
            out.add(
                ("task", "options"),
                "applies to builtin tasks only; an entrypoint function "
                "takes its settings from the space or its own code",
            )
        from effsearch.tasks.entrypoint import load_entrypoint

        try:
            if import_entrypoint:
                load_entrypoint(task.entrypoint, recipe_dir)
        except TaskError as exc:
            out.add(("task", "entrypoint"), str(exc))
        metrics = tuple(task.metrics) if task.metrics is not None else None
        return TaskFacts(None, None, metrics)
    assert task.builtin is not None
    if task.builtin not in names("task"):
        out.add(
            ("task", "builtin"),
            f"unknown task {task.builtin!r}.{did_you_mean(task.builtin, names('task'))} "
            f"Built-in tasks: {', '.join(names('task'))}",
        )
        return None
    if task.metrics is not None:
        out.add(
            ("task", "metrics"),
            "applies to entrypoint tasks only; built-in tasks declare "
            "their metrics (see: effsearch spaces)",
        )
    info = task_info(TaskSpec(builtin=task.builtin))
    assert info is not None
    for problem in info.option_problems(task.options, recipe_dir):
        out.add(("task", "options"), problem)
    kind = device.split(":")[0]
    infos = info.metrics
    return TaskFacts(
        task.builtin,
        info.families,
        tuple(m.name for m in infos if kind in m.devices),
        {m.name: m.devices for m in infos if kind not in m.devices},
    )


def _measured_devices(
    task: TaskFacts | None, devices: list[str], out: Collector
) -> TaskFacts | None:
    """With ``measure.devices``: the task must time on several devices, and its device-
    dependent metrics are named per device (``latency_ms@cuda``) instead of plainly."""
    if not devices:
        return task
    path: YamlPath = ("measure", "devices")
    repeated = sorted({d for d in devices if devices.count(d) > 1})
    if repeated:
        out.add(path, f"names {', '.join(repeated)} more than once; list each device once")
    if task is None:
        return None
    info = task_info(TaskSpec(builtin=task.builtin)) if task.builtin else None
    if info is None or not info.measures_devices:
        owner = f"task {task.builtin!r}" if task.builtin else "an entrypoint task"
        out.add(
            path,
            f"{owner} measures on execution.device only (digits-cnn, hf-text-classification "
            "and image-classification time on several devices); remove measure.devices",
        )
        return task
    per_device: dict[str, tuple[str, ...]] = {}
    names: list[str] = []
    for metric in info.metrics:
        if metric.name not in DEVICE_METRICS:
            names.append(metric.name)
            continue
        here = tuple(
            on_device(metric.name, d)
            for d in dict.fromkeys(devices)
            if d.split(":")[0] in metric.devices
        )
        per_device[metric.name] = here
        names += here
    return dataclasses.replace(task, metrics=tuple(names), elsewhere={}, per_device=per_device)


# ----------------------------------------------------------------------------- cross-references
def _known_metric(metric: str, task: TaskFacts | None, path: YamlPath, out: Collector) -> None:
    if task is None or task.metrics is None or metric in task.metrics:
        return
    if metric in task.per_device:
        named = ", ".join(task.per_device[metric]) or "none of measure.devices"
        out.add(
            path,
            f"{metric!r} is measured on each of measure.devices, so name the device: {named}",
        )
        return
    if metric in task.elsewhere:
        where = ", ".join(task.elsewhere[metric])
        out.add(
            path,
            f"{metric!r} is measured on {where} only, and this recipe runs on another "
            "device (execution.device)",
        )
        return
    owner = f"task {task.builtin!r}" if task.builtin else "task.metrics"
    out.add(
        path,
        f"{owner} does not measure {metric!r}.{did_you_mean(metric, task.metrics)} "
        f"Metrics: {', '.join(task.metrics)}",
    )


def _validate_objectives(
    objectives: list[ObjectiveSection] | None, task: TaskFacts | None, out: Collector
) -> None:
    if objectives is None:
        return
    if not objectives:
        out.add(
            ("objectives",),
            "needs at least one objective, e.g. [{metric: accuracy, direction: maximize}]",
        )
    seen: set[str] = set()
    for i, objective in enumerate(objectives):
        _known_metric(objective.metric, task, ("objectives", i, "metric"), out)
        if objective.metric in seen:
            out.add(("objectives", i, "metric"), f"{objective.metric!r} is already an objective")
        seen.add(objective.metric)
        if objective.ref is not None and not math.isfinite(objective.ref):
            out.add(("objectives", i, "ref"), f"must be finite (got {objective.ref})")


def _validate_constraints(
    constraints: list[str] | None, task: TaskFacts | None, out: Collector
) -> list[Constraint]:
    parsed: list[Constraint] = []
    for i, text in enumerate(constraints or []):
        try:
            constraint = parse_constraint(text)
        except ValueError as exc:
            out.add(("constraints", i), str(exc))
            continue
        _known_metric(constraint.metric, task, ("constraints", i), out)
        parsed.append(constraint)
    return parsed


def _validate_execution(execution: Any, out: Collector) -> None:
    """Options only another executor reads are refused; the chosen executor checks the rest."""
    if not isinstance(execution, ExecutionSection) or execution.executor not in names("executor"):
        return
    chosen = lookup("executor", execution.executor)
    for other in names("executor"):
        for key in lookup("executor", other).own_options:
            if key not in chosen.own_options and getattr(execution, key) is not None:
                out.add(
                    ("execution", key),
                    f"only used by executor: {other} (this recipe uses "
                    f"{execution.executor!r}); remove it or set execution.executor: {other}",
                )
    for path, message in chosen.check_execution(execution):
        out.add(("execution", *path), message)


def _validate_names(sections: Mapping[str, Any], out: Collector) -> None:
    checks = (("optimizer", "name", "optimizer"), ("execution", "executor", "executor"))
    for section, field_name, kind in checks:
        value = getattr(sections.get(section), field_name, None)
        known = names(kind)
        if isinstance(value, str) and value not in known:
            out.add(
                (section, field_name),
                f"unknown {kind} {value!r}.{did_you_mean(value, known)} "
                f"{kind.capitalize()}s: {', '.join(known)}",
            )


def _normalized(document: Mapping[str, Any], sections: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in SECTIONS:
        value = sections[key]
        if isinstance(value, BaseModel):
            data[key] = value.model_dump(exclude_defaults=False)
        elif isinstance(value, list):
            data[key] = [v.model_dump() if isinstance(v, BaseModel) else v for v in value]
        else:
            data[key] = value
    data["space"] = document.get("space", {})
    return data
