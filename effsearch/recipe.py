"""The recipe: schema, loading with YAML line numbers, and validation that collects every problem.

``load_recipe(path)`` returns a :class:`Recipe` or raises one :class:`RecipeError` listing all
problems, each with its dotted path, YAML line, what must hold, what was given and, where one
fits, a "did you mean". Sections are validated by pydantic one at a time so that a problem in one
does not hide problems in the others; the search space and the cross-references (metrics named by
objectives and constraints, optimizer and executor names, the task's knobs) are checked after.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from effsearch.errors import Problem, RecipeError, TaskError
from effsearch.registry import did_you_mean, names
from effsearch.search.storage import mask_url
from effsearch.spaces.knobs import (
    CategoricalDistribution,
    Condition,
    FloatDistribution,
    IntDistribution,
    Knob,
    KnobDecl,
    SearchSpace,
)
from effsearch.tasks.base import MeasureSettings, TaskSpec

MAX_YAML_NODES = 100_000
_ABSENT = object()
MAX_RECIPE_BYTES = 1_000_000
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


# ----------------------------------------------------------------------------- schema sections
class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TaskSection(_Section):
    """``{builtin: NAME, options: {...}}`` or ``{entrypoint: "mod:func", metrics: [...]}``."""

    builtin: str | None = None
    entrypoint: str | None = None
    metrics: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class ObjectiveSection(_Section):
    """One objective; ``ref`` is its hypervolume reference value (the worst value that counts)."""

    metric: str
    direction: Literal["maximize", "minimize"]
    ref: float | None = None


class OptimizerSection(_Section):
    name: str = "auto"
    options: dict[str, Any] = Field(default_factory=dict)


class TrialResources(_Section):
    """What one trial reserves on a Ray cluster (default: ``threads_per_trial`` CPUs)."""

    cpu: float | None = Field(None, gt=0)
    gpu: float = Field(0.0, ge=0)


class ExecutionSection(_Section):
    executor: str = "local"
    workers: int = Field(2, ge=1, le=1024)
    trial_timeout_s: float = Field(600.0, gt=0)
    # how much more memory (address space) a trial may map; past it, MemoryError, not the OOM killer
    trial_memory_mb: int | None = Field(None, ge=64)
    threads_per_trial: int = Field(1, ge=1, le=1024)
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?)$")
    address: str | None = None  # executor ray: a cluster's HOST:PORT or auto
    trial_resources: TrialResources | None = None  # executor ray
    # executor ray: trials in flight at once, Ray Tune's name for ``workers`` (either works)
    max_concurrent: int | None = Field(None, ge=1, le=1024)

    @model_validator(mode="before")
    @classmethod
    def _in_flight(cls, data: Any) -> Any:
        # copied only when valid: a bad value is reported once, under its own name
        valid = isinstance(data, dict) and type(data.get("max_concurrent")) is int
        if valid and data["max_concurrent"] >= 1 and "workers" not in data:
            return {**data, "workers": data["max_concurrent"]}
        return data


class StallSection(_Section):
    """Stop when the last ``trials`` finished trials raised the hypervolume by less than
    ``min_improvement`` (relative)."""

    trials: int = Field(ge=1, le=100_000)
    min_improvement: float = Field(0.001, ge=0.0, le=1.0)


class BudgetSection(_Section):
    trials: int | None = Field(None, ge=1, le=1_000_000)
    wall_minutes: float | None = Field(None, gt=0)
    # Training steps (what trials report: epochs for built-in tasks) summed over finished
    # trials; what early stopping saves buys more trials.
    steps: int | None = Field(None, ge=1)
    # Minutes the trials ran, summed over trials (each from its start on a worker to its end):
    # the compute a search spends, whatever the number of workers.
    compute_minutes: float | None = Field(None, gt=0)
    stop_when_stalled: StallSection | None = None


class EarlyStoppingSection(_Section):
    """Stop unpromising trials at rungs ``min_step * eta**k`` of their reported steps."""

    method: Literal["successive_halving", "pareto", "successive_halving+pareto"] = (
        "successive_halving"
    )
    min_step: int = Field(1, ge=1)
    eta: int = Field(3, ge=2, le=100)
    min_trials: int = Field(5, ge=1)  # finished feasible trials before the Pareto pruner acts
    min_gain: float = Field(0.0, ge=0.0, lt=1.0)  # Pareto pruner: least hypervolume share


class MeasureSection(_Section):
    batch_size: int = Field(32, ge=1, le=65536)
    warmup: int = Field(5, ge=0, le=100_000)
    repeats: int = Field(30, ge=1, le=1_000_000)


_SECTIONS: dict[str, tuple[Any, bool]] = {
    # name: (type, required)
    "name": (str, True),
    "seed": (Annotated[int, Field(ge=0, le=2**32 - 1)], False),
    "task": (TaskSection, True),
    "space": (dict[str, Any], False),
    "objectives": (list[ObjectiveSection], True),
    "constraints": (list[str], False),
    "optimizer": (OptimizerSection, False),
    "execution": (ExecutionSection, False),
    "budget": (BudgetSection, True),
    "storage": (str | None, False),
    "measure": (MeasureSection, False),
    "baseline": (bool, False),
    "early_stopping": (EarlyStoppingSection | None, False),
}
_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "space": {},
    "constraints": [],
    "optimizer": OptimizerSection(),
    "execution": ExecutionSection(),
    "storage": None,
    "measure": MeasureSection(),
    "baseline": True,
    "early_stopping": None,
}

#: Top-level fields that may change when a run is resumed; any other change invalidates trials.
RESUMABLE_FIELDS = ("budget", "execution", "optimizer")


@dataclass(frozen=True)
class Constraint:
    """``metric <= limit`` or ``metric >= limit``; feasible when :meth:`violation` <= 0."""

    metric: str
    op: Literal["<=", ">="]
    limit: float

    def violation(self, value: float) -> float:
        return value - self.limit if self.op == "<=" else self.limit - value

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"


@dataclass(frozen=True)
class Recipe:
    """A validated recipe. ``data`` is the normalized document (defaults filled in)."""

    name: str
    seed: int
    task: TaskSection
    space: SearchSpace
    objectives: tuple[ObjectiveSection, ...]
    constraints: tuple[Constraint, ...]
    optimizer: OptimizerSection
    execution: ExecutionSection
    budget: BudgetSection
    storage: str | None
    measure: MeasureSection
    baseline: bool
    early_stopping: EarlyStoppingSection | None
    data: Mapping[str, Any]
    source: str
    recipe_dir: str

    @property
    def task_spec(self) -> TaskSpec:
        return TaskSpec(
            builtin=self.task.builtin,
            entrypoint=self.task.entrypoint,
            options=self.task.options,
            recipe_dir=self.recipe_dir,
        )

    @property
    def measure_settings(self) -> MeasureSettings:
        return MeasureSettings(
            batch_size=self.measure.batch_size,
            warmup=self.measure.warmup,
            repeats=self.measure.repeats,
        )

    def fingerprint(self) -> str:
        """Hash of everything that decides what a finished trial means (not budget/execution)."""
        kept = {k: v for k, v in self.data.items() if k not in RESUMABLE_FIELDS}
        return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ]

    def dump(self) -> str:
        """The normalized recipe as YAML; ``parse(dump(r)) == r``."""
        return yaml.dump(dict(self.data), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


# ----------------------------------------------------------------------------- YAML with lines
class _Loader(yaml.SafeLoader):
    """Safe YAML, plus YAML 1.2 floats such as ``1e-4`` (PyYAML reads them as strings)."""


_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


class _Dumper(yaml.SafeDumper):
    """Quotes text that :class:`_Loader` would read as a number (``'1e5'``)."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))

Path_ = tuple[str | int, ...]


def parse_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """Parse ``text`` safely; return the document and a map from path to 1-based line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        context_mark = getattr(exc, "context_mark", None)
        if context and context_mark is not None:
            problem = f"{context} (line {context_mark.line + 1}): {problem}"
        raise RecipeError(source, [Problem("", f"is not valid YAML: {problem}", line)]) from None
    finally:
        loader.dispose()
    if node is None:
        raise RecipeError(
            source,
            [
                Problem(
                    "",
                    "the file is empty; a recipe needs at least name, task, objectives "
                    "and budget (start from: effsearch init)",
                )
            ],
        )
    lines: dict[Path_, int] = {}
    counter = [0]
    constructor = _Loader("")
    problems: list[Problem] = []

    def build(current: yaml.Node, path: Path_) -> Any:
        counter[0] += 1
        if counter[0] > MAX_YAML_NODES:
            raise RecipeError(
                source,
                [
                    Problem(
                        _dotted(path),
                        f"has more than {MAX_YAML_NODES} YAML nodes (aliases "
                        "expanded); a recipe is a small file",
                        current.start_mark.line + 1,
                    )
                ],
            )
        lines[path] = current.start_mark.line + 1
        if isinstance(current, yaml.MappingNode):
            constructor.flatten_mapping(current)
            result: dict[str, Any] = {}
            for key_node, value_node in current.value:
                key = constructor.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if not isinstance(key, str):
                    problems.append(Problem(_dotted(path), f"keys must be text, got {key!r}", line))
                    continue
                if key in result:
                    problems.append(Problem(_dotted((*path, key)), "appears twice; keep one", line))
                    continue
                result[key] = build(value_node, (*path, key))
                lines[(*path, key)] = line
            return result
        if isinstance(current, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(current.value)]
        return constructor.construct_object(current, deep=True)

    try:
        document = build(node, ())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RecipeError(
            source,
            [Problem("", f"is not valid YAML: {exc}", mark.line + 1 if mark else None)],
        ) from None
    finally:
        constructor.dispose()
    if problems:
        raise RecipeError(source, problems)
    return document, lines


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ----------------------------------------------------------------------------- validation
class _Collector:
    def __init__(self, lines: Mapping[Path_, int]) -> None:
        self.lines = lines
        self.problems: list[Problem] = []

    def add(self, path: Path_, message: str) -> None:
        probe = tuple(path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        self.problems.append(Problem(_dotted(path), message, self.lines.get(probe)))


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
    lines: Mapping[Path_, int],
    source: str,
    recipe_dir: str,
    import_entrypoint: bool = True,
) -> Recipe:
    """Validate a parsed recipe document; raise one RecipeError listing every problem.

    ``import_entrypoint=False`` skips importing an entrypoint module: reading a finished run
    must neither need nor run the user's code.
    """
    out = _Collector(lines)
    if not isinstance(document, dict):
        out.add((), f"must be a mapping of sections (name, task, ...), got {_kind(document)}")
        raise RecipeError(source, out.problems)

    sections = _validate_sections(document, out)
    execution = sections.get("execution")
    device = execution.device if isinstance(execution, ExecutionSection) else "cpu"
    task_info = _validate_task(sections.get("task"), recipe_dir, import_entrypoint, device, out)
    space = _validate_space(sections.get("space"), task_info, device, out)
    _validate_objectives(sections.get("objectives"), task_info, out)
    constraints = _validate_constraints(sections.get("constraints"), task_info, out)
    _validate_names(sections, out)
    _validate_execution(execution, sections.get("early_stopping"), out)
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
        data=data,
        source=source,
        recipe_dir=recipe_dir,
    )


def _validate_sections(document: dict[str, Any], out: _Collector) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    for key in document:
        if key not in _SECTIONS:
            out.add(
                (key,),
                f"unknown section.{did_you_mean(key, _SECTIONS)} Sections: {', '.join(_SECTIONS)}",
            )
    for key, (kind, required) in _SECTIONS.items():
        if key not in document:
            if required:
                out.add((key,), f"is missing; {_REQUIRED_HINTS[key]}")
            else:
                sections[key] = _DEFAULTS[key]
            continue
        value = document[key]
        if isinstance(kind, type) and issubclass(kind, BaseModel) and value is None:
            value = {}
        item_kind = _list_item(kind)
        if item_kind is not None and isinstance(value, list):
            # Item by item, so one bad objective does not hide checks on the others.
            items = [_validated(item, item_kind, (key, i), out) for i, item in enumerate(value)]
            sections[key] = [item for item in items if item is not None]
        else:
            sections[key] = _validated(value, kind, (key,), out)
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


def _list_item(kind: Any) -> Any:
    return kind.__args__[0] if getattr(kind, "__origin__", None) is list else None


def _validated(value: Any, kind: Any, path: Path_, out: _Collector) -> Any:
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as exc:
        for error in exc.errors():
            out.add((*path, *error["loc"]), _pydantic_message(error, kind))
        return None


_REQUIRED_HINTS = {
    "name": "add e.g. name: my-search (it names the run folder)",
    "task": "add e.g. task: {builtin: digits-cnn} or task: {entrypoint: 'my_mod:evaluate'}",
    "objectives": "add e.g. objectives: [{metric: accuracy, direction: maximize}]",
    "budget": "add e.g. budget: {trials: 40}",
}


def _pydantic_message(error: Mapping[str, Any], kind: Any) -> str:
    kind_of_error = error["type"]
    given = error.get("input")
    if kind_of_error == "extra_forbidden":
        loc = error["loc"]
        model = _model_at(kind, loc[:-1])
        fields = list(model.model_fields) if model else []
        hint = did_you_mean(str(loc[-1]), fields)
        return f"unknown key.{hint} Allowed: {', '.join(fields)}"
    if kind_of_error == "missing":
        return "is required"
    message = str(error["msg"])
    message = re.sub(r"^Input should be", "must be", message)
    message = re.sub(r"^Input should have", "must have", message)
    message = message[0].lower() + message[1:] if message else message
    return f"{message} (got {_show(given)})"


def _model_at(kind: Any, loc: Sequence[Any]) -> type[BaseModel] | None:
    current = kind
    for part in loc:
        if isinstance(part, int):
            args = getattr(current, "__args__", ())
            current = args[0] if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    args = getattr(current, "__args__", ())
    if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


@dataclass
class _TaskInfo:
    builtin: str | None
    families: Mapping[str, tuple[KnobDecl, ...]] | None
    metrics: tuple[str, ...] | None
    #: metrics the task measures on other devices only: name -> those devices
    elsewhere: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _validate_task(
    task: TaskSection | None,
    recipe_dir: str,
    import_entrypoint: bool,
    device: str,
    out: _Collector,
) -> _TaskInfo | None:
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
        return _TaskInfo(None, None, metrics)
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
    from effsearch.tasks import task_class

    cls = task_class(TaskSpec(builtin=task.builtin))
    assert cls is not None
    import inspect

    try:
        inspect.signature(cls).bind(**task.options)
        for problem in cls.check_options(task.options, recipe_dir):
            out.add(("task", "options"), problem)
    except TypeError:
        accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
        out.add(
            ("task", "options"),
            f"task {task.builtin!r} accepts options {accepted or 'none'}; got "
            f"{sorted(task.options)}",
        )
    kind = device.split(":")[0]
    infos = cls.metrics or ()
    return _TaskInfo(
        task.builtin,
        cls.families,
        tuple(m.name for m in infos if kind in m.devices),
        {m.name: m.devices for m in infos if kind not in m.devices},
    )


# ----------------------------------------------------------------------------- search space
_SPEC_KEYS = ("float", "int", "choice", "log", "step", "when")


def _validate_space(
    space: Mapping[str, Any] | None, task: _TaskInfo | None, device: str, out: _Collector
) -> SearchSpace | None:
    if space is None or task is None:
        return None
    knobs: list[Knob] = []
    problems_before = len(out.problems)
    if task.families is None:
        for group, entries in space.items():
            if not _check_group(group, entries, out):
                continue
            for name, spec in entries.items():
                knob = _parse_knob(group, name, spec, None, knobs, out)
                if knob is not None:
                    knobs.append(knob)
    else:
        for group in space:
            if group not in task.families:
                out.add(
                    ("space", group),
                    f"unknown group for task {task.builtin!r}.{did_you_mean(group, task.families)} "
                    f"Groups: {', '.join(task.families)}",
                )
        for group in task.families:
            entries = space.get(group, {})
            if not _check_group(group, entries, out):
                continue
            declared = {d.name: d for d in task.families[group]}
            for name in entries:
                if name not in declared:
                    out.add(
                        ("space", group, name),
                        f"unknown knob.{did_you_mean(name, declared)} Knobs of {group}: "
                        f"{', '.join(declared)} (see: effsearch spaces)",
                    )
            for decl in task.families[group]:
                spec = entries.get(decl.name, decl.default)
                knob = _parse_knob(group, decl.name, spec, decl, knobs, out, task.families[group])
                if knob is not None and _runs_on(knob, decl, device, out):
                    knobs.append(knob)
    if len(out.problems) > problems_before:
        return None  # knobs are missing; later errors would only echo the ones reported
    if not any(k.searched for k in knobs):
        example = "see: effsearch spaces" if task.families else "e.g. params: {x: {float: [0, 1]}}"
        out.add(("space",), f"searches nothing; give at least one knob a range ({example})")
        return None
    try:
        return SearchSpace(knobs)
    except ValueError as exc:
        out.add(("space",), str(exc))
        return None


def _runs_on(knob: Knob, decl: KnobDecl, device: str, out: _Collector) -> bool:
    """Refuse choices the recipe's device cannot run (before the search, not mid-way)."""
    dist = knob.distribution
    values = dist.choices if isinstance(dist, CategoricalDistribution) else (knob.fixed,)
    wrong = [v for v in values if not decl.runs_on(v, device)]
    if not wrong:
        return True
    where = ", ".join(decl.devices[wrong[0]])
    path: Path_ = ("space", knob.group, knob.name)
    out.add(
        (*path, "choice") if dist is not None else path,
        f"{wrong[0]!r} runs on {where} only, and this recipe runs on {device} "
        "(execution.device); remove it or change the device",
    )
    return False


def _check_group(group: str, entries: Any, out: _Collector) -> bool:
    if not isinstance(entries, dict):
        out.add(("space", group), f"must be a mapping of knobs, got {_kind(entries)}")
        return False
    return True


def _parse_knob(
    group: str,
    name: str,
    spec: Any,
    decl: KnobDecl | None,
    earlier: Sequence[Knob],
    out: _Collector,
    siblings: Sequence[KnobDecl] = (),
) -> Knob | None:
    path: Path_ = ("space", group, name)
    when = _declared_condition(group, decl, siblings) if decl is not None else ()
    if isinstance(spec, list):
        out.add(path, f"a list is not a knob; to search these values write {{choice: {spec}}}")
        return None
    if not isinstance(spec, dict):
        return _fixed_knob(group, name, spec, decl, when, path, out)

    unknown = [k for k in spec if k not in _SPEC_KEYS]
    for key in unknown:
        out.add(
            (*path, key),
            f"unknown key.{did_you_mean(key, _SPEC_KEYS)} A knob is "
            "{float: [low, high]}, {int: [low, high]} or {choice: [a, b]}, "
            "optionally with log, step, when",
        )
    kinds = [k for k in ("float", "int", "choice") if k in spec]
    if len(kinds) != 1:
        if not unknown:
            out.add(
                path,
                "must have exactly one of float, int or choice "
                f"(got {', '.join(kinds) or 'none'}); a bare value fixes the knob",
            )
        return None
    kind = kinds[0]
    if "when" in spec:
        if decl is not None:
            out.add(
                (*path, "when"), f"built-in knobs have fixed conditions ({_condition_text(when)})"
            )
        else:
            when = _parse_when(group, spec["when"], earlier, (*path, "when"), out)
    if decl is not None and decl.kind != kind and not (decl.kind == "float" and kind == "int"):
        out.add((*path, kind), f"{group}.{name} is a {decl.kind} knob ({decl.domain_text()})")
        return None
    dist: CategoricalDistribution | FloatDistribution | IntDistribution | None
    if kind == "choice":
        for key in ("log", "step"):
            if key in spec:
                out.add((*path, key), "applies to float and int knobs only")
        dist = _parse_choice(spec["choice"], decl, (*path, "choice"), out)
    else:
        dist = _parse_range(kind, spec, decl, path, out)
    if dist is None:
        return None
    return Knob(group, name, dist, when=when)


def _fixed_knob(
    group: str,
    name: str,
    value: Any,
    decl: KnobDecl | None,
    when: Condition,
    path: Path_,
    out: _Collector,
) -> Knob | None:
    if value is not None and not isinstance(value, (str, int, float, bool)):
        out.add(path, f"a fixed value must be a number, text or true/false; got {_kind(value)}")
        return None
    if decl is not None:
        problem = _outside_domain(decl, value)
        if problem:
            out.add(path, problem)
            return None
        if decl.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
    return Knob(group, name, None, fixed=value, when=when)


def _outside_domain(decl: KnobDecl, value: Any) -> str:
    if decl.kind == "choice":
        if value not in decl.choices:
            options = ", ".join(map(str, decl.choices))
            hint = did_you_mean(str(value), map(str, decl.choices))
            return f"must be one of {options} (got {_show(value)}).{hint}".rstrip(".")
        return ""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not numeric or (decl.kind == "int" and not isinstance(value, int)):
        return f"must be {'an integer' if decl.kind == 'int' else 'a number'} (got {_show(value)})"
    assert decl.low is not None and decl.high is not None
    if not decl.low <= value <= decl.high:
        return f"must lie in [{decl.low:g}, {decl.high:g}] (got {value:g})"
    return ""


def _parse_range(
    kind: str, spec: Mapping[str, Any], decl: KnobDecl | None, path: Path_, out: _Collector
) -> FloatDistribution | IntDistribution | None:
    bounds = spec[kind]
    where = (*path, kind)
    if not isinstance(bounds, list) or len(bounds) != 2:
        out.add(where, f"must be [low, high] (got {_show(bounds)})")
        return None
    low, high = bounds
    want_int = kind == "int"
    for value in (low, high):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (want_int and not isinstance(value, int))
        ):
            out.add(
                where,
                f"low and high must be {'integers' if want_int else 'numbers'} "
                f"(got {_show(bounds)})",
            )
            return None
        if not math.isfinite(value):
            out.add(where, f"low and high must be finite (got {_show(bounds)})")
            return None
    if not low < high:
        out.add(
            where,
            f"low < high must hold, but got [{low:g}, {high:g}]; "
            "to fix a knob, give a bare value instead",
        )
        return None
    log = spec.get("log", False)
    step = spec.get("step")
    ok = True
    if not isinstance(log, bool):
        out.add((*path, "log"), f"must be true or false (got {_show(log)})")
        ok = False
    elif log and low <= 0:
        out.add((*path, "log"), f"a log range needs low > 0 (got low={low:g})")
        ok = False
    if decl is not None:
        assert decl.low is not None and decl.high is not None
        if low < decl.low or high > decl.high:
            out.add(
                where,
                f"{path[1]}.{path[2]} must lie in [{decl.low:g}, {decl.high:g}] "
                f"(got [{low:g}, {high:g}])",
            )
            ok = False
        if log and not decl.log_ok:
            out.add((*path, "log"), "this knob has no log scale")
            ok = False
    if step is not None:
        bad_type = (
            isinstance(step, bool)
            or not isinstance(step, (int, float))
            or (want_int and not isinstance(step, int))
        )
        if bad_type or step <= 0:
            out.add(
                (*path, "step"),
                f"must be a positive {'integer' if want_int else 'number'} (got {_show(step)})",
            )
            ok = False
        elif log:
            out.add((*path, "step"), "cannot be combined with log: true")
            ok = False
    if not ok:
        return None
    if want_int:
        return IntDistribution(int(low), int(high), log=bool(log), step=int(step or 1))
    return FloatDistribution(
        float(low), float(high), log=bool(log), step=float(step) if step is not None else None
    )


def _parse_choice(
    values: Any, decl: KnobDecl | None, path: Path_, out: _Collector
) -> CategoricalDistribution | None:
    if not isinstance(values, list) or not values:
        out.add(path, f"must be a non-empty list of values (got {_show(values)})")
        return None
    for value in values:
        if value is not None and not isinstance(value, (str, int, float, bool)):
            out.add(path, f"choices must be numbers, text, true/false or null; got {_kind(value)}")
            return None
    for i, value in enumerate(values):
        # Optuna keeps one of two choices that compare equal (1 == 1.0 == true).
        twin = next((v for v in values[:i] if v == value), _ABSENT)
        if twin is not _ABSENT:
            same = f"{twin!r} and {value!r} compare equal" if twin is not value else repr(value)
            out.add(
                path, f"lists a value twice ({same}); choices must differ (got {_show(values)})"
            )
            return None
    if decl is not None:
        wrong = [v for v in values if v not in decl.choices]
        if wrong:
            hint = did_you_mean(str(wrong[0]), map(str, decl.choices))
            out.add(
                path,
                f"{_show(wrong[0])} is not a choice of {path[1]}.{path[2]}.{hint} "
                f"Choices: {', '.join(map(str, decl.choices))}",
            )
            return None
    return CategoricalDistribution(values)


def _parse_when(
    group: str, when: Any, earlier: Sequence[Knob], path: Path_, out: _Collector
) -> Condition:
    if not isinstance(when, dict) or not when:
        out.add(
            path,
            "must map a knob declared earlier to its allowed values, e.g. when: {method: [a, b]}",
        )
        return ()
    known = {k.full_name: k for k in earlier}
    result = []
    for ref, allowed in when.items():
        full = ref if "." in ref else f"{group}.{ref}"
        if full not in known:
            out.add(
                (*path, ref), f"names no knob declared before this one.{did_you_mean(full, known)}"
            )
            continue
        values = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        dist = known[full].distribution
        if isinstance(dist, CategoricalDistribution):
            wrong = [v for v in values if v not in dist.choices]
            if wrong:
                out.add(
                    (*path, ref),
                    f"{_show(wrong[0])} is not a choice of {full} "
                    f"(choices: {', '.join(map(str, dist.choices))})",
                )
                continue
        result.append((full, values))
    return tuple(result)


def _declared_condition(group: str, decl: KnobDecl, siblings: Sequence[KnobDecl]) -> Condition:
    """``decl``'s condition, limited to the choices its task offers for the knobs it names."""
    return tuple(
        (f"{group}.{ref}", values) for ref, values in decl.condition_among(siblings).items()
    )


def _condition_text(when: Condition) -> str:
    if not when:
        return "always active"
    return "active when " + ", ".join(f"{ref} in {list(v)}" for ref, v in when)


# ----------------------------------------------------------------------------- cross-references
def _known_metric(metric: str, task: _TaskInfo | None, path: Path_, out: _Collector) -> None:
    if task is None or task.metrics is None or metric in task.metrics:
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
    objectives: list[ObjectiveSection] | None, task: _TaskInfo | None, out: _Collector
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


_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|<|>|==|=)\s*(\S+)\s*$")


def parse_constraint(text: str) -> Constraint:
    """Parse ``"metric <= 5"`` / ``"metric >= 0.9"``; ValueError with the reason if malformed."""
    match = _CONSTRAINT.match(text)
    if not match:
        raise ValueError(f"must look like 'metric <= number' or 'metric >= number' (got {text!r})")
    metric, op, number = match.groups()
    if op not in ("<=", ">="):
        raise ValueError(f"use <= or >= (got {op!r} in {text!r})")
    try:
        limit = float(number)
    except ValueError:
        raise ValueError(f"the limit must be a number (got {number!r} in {text!r})") from None
    if not math.isfinite(limit):
        raise ValueError(f"the limit must be finite (got {number!r})")
    return Constraint(metric, op, limit)  # type: ignore[arg-type]


def _validate_constraints(
    constraints: list[str] | None, task: _TaskInfo | None, out: _Collector
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


def _validate_execution(execution: Any, early_stopping: Any, out: _Collector) -> None:
    if not isinstance(execution, ExecutionSection):
        return
    if execution.executor != "ray":
        for key in ("address", "trial_resources", "max_concurrent"):
            if getattr(execution, key) is not None:
                out.add(
                    ("execution", key),
                    f"only used by executor: ray (this recipe uses {execution.executor!r}); "
                    "remove it or set execution.executor: ray",
                )
    else:
        if execution.max_concurrent not in (None, execution.workers):
            out.add(
                ("execution", "max_concurrent"),
                f"is {execution.max_concurrent} but execution.workers is {execution.workers}; "
                "both say how many trials run at once: keep one",
            )
        if early_stopping is not None:
            out.add(
                ("early_stopping",),
                "is not available with executor: ray yet; remove it, or use executor: local",
            )
        _validate_ray_gpus(execution, out)


def _validate_ray_gpus(execution: ExecutionSection, out: _Collector) -> None:
    """A GPU trial on Ray must hold whole GPUs, picked by Ray: a fraction of a GPU would let
    two trials time their models on one device at once."""
    gpu = execution.trial_resources.gpu if execution.trial_resources else 0.0
    if execution.device.startswith("cuda"):
        if execution.device != "cuda":
            out.add(
                ("execution", "device"),
                f"is {execution.device!r}, but on Ray the trial runs on the GPU Ray gives it; "
                "use device: cuda",
            )
        if gpu < 1 or gpu != int(gpu):
            out.add(
                ("execution", "trial_resources", "gpu"),
                f"must be a whole number of GPUs (1, 2, ...) when device is cuda (got {gpu:g}): "
                "each trial measures on GPUs it holds alone; fractional Ray GPUs are shared",
            )
    elif gpu:
        out.add(
            ("execution", "trial_resources", "gpu"),
            f"asks for {gpu:g} GPU per trial, but execution.device is {execution.device!r}; "
            "set device: cuda, or remove trial_resources.gpu",
        )


def _validate_names(sections: Mapping[str, Any], out: _Collector) -> None:
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


# ----------------------------------------------------------------------------- helpers
def _normalized(document: Mapping[str, Any], sections: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in _SECTIONS:
        value = sections[key]
        if isinstance(value, BaseModel):
            data[key] = value.model_dump(exclude_defaults=False)
        elif isinstance(value, list):
            data[key] = [v.model_dump() if isinstance(v, BaseModel) else v for v in value]
        else:
            data[key] = value
    data["space"] = document.get("space", {})
    return data


def differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths where two normalized recipes differ."""
    paths: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        where = f"{prefix}.{key}" if prefix else str(key)
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            paths += differences(a, b, where)
        elif a != b:
            paths.append(where)
    return paths


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def with_overrides(
    recipe: Recipe,
    trials: int | None = None,
    executor: str | None = None,
    workers: int | None = None,
    address: str | None = None,
) -> Recipe:
    """``recipe`` with command-line overrides of the budget and execution applied."""
    from dataclasses import replace

    from effsearch.errors import ArgumentError

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
        if execution.executor != "ray":
            raise ArgumentError(
                f"--address: only used by the ray executor (this run uses "
                f"{execution.executor!r}); add --executor ray"
            )
        execution = execution.model_copy(update={"address": address})
    data = dict(recipe.data)
    data["budget"] = budget.model_dump()
    data["execution"] = execution.model_dump()
    return replace(recipe, budget=budget, execution=execution, data=data)
