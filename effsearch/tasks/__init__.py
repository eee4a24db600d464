"""Workloads: built-in task declarations (torch-free), their implementations, the entrypoint
adapter, and the per-process cache of built tasks."""

from __future__ import annotations

import json
from collections.abc import Callable

from effsearch.registry import lookup
from effsearch.tasks import catalog as catalog  # registers the built-in tasks
from effsearch.tasks.base import Task, TaskInfo, TaskSpec
from effsearch.tasks.entrypoint import EntrypointTask


def task_info(spec: TaskSpec) -> TaskInfo | None:
    """The declaration of a built-in task, or None for an entrypoint task."""
    if spec.builtin is None:
        return None
    info: TaskInfo = lookup("task", spec.builtin)
    return info


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
        info = task_info(spec)
        if load is not None:
            _BUILT[key] = load()
        elif info is None:
            assert spec.entrypoint is not None
            _BUILT[key] = EntrypointTask(spec.entrypoint, spec.recipe_dir)
        else:
            _BUILT[key] = info.load().create(spec)
    return _BUILT[key]
