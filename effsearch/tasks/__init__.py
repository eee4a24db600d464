"""Workloads: built-in tasks (registered by name) and the entrypoint adapter."""

from __future__ import annotations

import json
from collections.abc import Callable

from effsearch.registry import lookup
from effsearch.tasks import digits_cnn as digits_cnn  # registers the task
from effsearch.tasks import hf_text as hf_text  # registers the task
from effsearch.tasks.base import Task, TaskSpec
from effsearch.tasks.entrypoint import EntrypointTask


def task_class(spec: TaskSpec) -> type[Task] | None:
    """The class of a built-in task, or None for an entrypoint task."""
    if spec.builtin is None:
        return None
    cls: type[Task] = lookup("task", spec.builtin)
    return cls


_BUILT: dict[str, Task] = {}


def task_key(spec: TaskSpec) -> str:
    """What identifies a built task: two specs with the same key share one instance."""
    return json.dumps(
        [spec.builtin, spec.entrypoint, spec.options, spec.recipe_dir], sort_keys=True, default=str
    )


def build_task(spec: TaskSpec, load: Callable[[], Task] | None = None) -> Task:
    """Build (once per process) the task a spec names: data loads once, trials reuse it.

    ``load``, when given, supplies the instance instead of building it here (the Ray executor
    fetches the one the driver built from the object store).
    """
    key = task_key(spec)
    if key not in _BUILT:
        if load is not None:
            _BUILT[key] = load()
        elif spec.entrypoint is not None:
            _BUILT[key] = EntrypointTask(spec.entrypoint, spec.recipe_dir)
        else:
            cls = task_class(spec)
            assert cls is not None
            _BUILT[key] = cls.create(spec)
    return _BUILT[key]
