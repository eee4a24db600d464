"""The recipe's sections (pydantic models, unknown keys refused) and the validated Recipe."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from effsearch.objectives.goals import Constraint, Objective
from effsearch.recipe.resume import fingerprint
from effsearch.recipe.yaml_lines import RecipeDumper
from effsearch.tasks.base import MeasureSettings, TaskSpec

if TYPE_CHECKING:
    from effsearch.spaces.knobs import SearchSpace

ObjectiveSection = Objective
"""One entry of ``objectives`` (the core type, from :mod:`effsearch.objectives.goals`)."""

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TaskSection(_Section):
    """``{builtin: NAME, options: {...}}`` or ``{entrypoint: "mod:func", metrics: [...]}``."""

    builtin: str | None = None
    entrypoint: str | None = None
    metrics: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class PredictCostsSection(_Section):
    """Reject a configuration whose constrained metrics a model of the finished trials
    predicts to break a constraint with probability >= ``confidence``; run ``recheck_rate``
    of those anyway to measure the false rejections (``search/cost_predictor.py``)."""

    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    recheck_rate: float = Field(0.1, ge=0.0, le=1.0)
    min_trials: int = Field(10, ge=3)


class OptimizerSection(_Section):
    name: str = "auto"
    options: dict[str, Any] = Field(default_factory=dict)
    predict_costs: PredictCostsSection | None = None


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
    # which trials keep their measured model in trials/<n>/artifact/ (export copies it)
    keep_artifacts: Literal["none", "pareto", "all"] = "pareto"
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


class ConfirmSection(_Section):
    """Re-run the Pareto set on ``seeds`` more seeds when the search ends (effsearch confirm)."""

    seeds: int = Field(2, ge=1, le=100)


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
    confirm: ConfirmSection | None = None


class EarlyStoppingSection(_Section):
    """Stop unpromising trials at rungs ``min_step * eta**k`` of their reported steps."""

    method: Literal["successive_halving", "pareto", "successive_halving+pareto"] = (
        "successive_halving"
    )
    min_step: int = Field(1, ge=1)
    eta: int = Field(3, ge=2, le=100)
    min_trials: int = Field(5, ge=1)  # finished feasible trials before the Pareto pruner acts
    min_gain: float = Field(0.0, ge=0.0, lt=1.0)  # Pareto pruner: least hypervolume share


class WarmStartSection(_Section):
    """Seed a new search with the finished trials of earlier runs of the same task
    (``runs``: their run directories, relative to the recipe's folder)."""

    runs: list[str] = Field(min_length=1)


MeasureSection = MeasureSettings
"""The ``measure`` section (the type trials receive, from :mod:`effsearch.tasks.base`)."""


SECTIONS: dict[str, tuple[Any, bool]] = {
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
    "warm_start": (WarmStartSection | None, False),
}
DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "space": {},
    "constraints": [],
    "optimizer": OptimizerSection(),
    "execution": ExecutionSection(),
    "storage": None,
    "measure": MeasureSection(),
    "baseline": True,
    "early_stopping": None,
    "warm_start": None,
}


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
    warm_start: WarmStartSection | None
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
        return self.measure

    def fingerprint(self) -> str:
        """Hash of everything that decides what a finished trial means (not budget/execution)."""
        return fingerprint(self.data)

    def dump(self) -> str:
        """The normalized recipe as YAML; ``parse(dump(r)) == r``."""
        return yaml.dump(dict(self.data), Dumper=RecipeDumper, sort_keys=False, allow_unicode=True)
